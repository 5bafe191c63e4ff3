package kafkaedge;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.TopicPartition;

/**
 * A consumer group (group.protocol classic or consumer) whose three members join and leave while
 * records arrive in three waves: A alone, then A+B+C (each must get records), then C alone (it must
 * own all partitions). Each member commits after every batch and on revocation, so every record
 * is consumed exactly once across the members.
 */
final class Groups {
    static final int PARTITIONS = 6;
    static final int WAVE = 60;

    private Groups() {}

    static void run(Main.Ctx ctx, String protocol) throws Exception {
        String topic = ctx.topic("t");
        String group = ctx.topic("g");
        Basic.createTopics(ctx, PARTITIONS, topic);
        List<String> got = Collections.synchronizedList(new ArrayList<>());
        List<String> want = new ArrayList<>();
        try (KafkaProducer<String, String> p = Basic.producer(ctx)) {
            Member a = new Member(ctx, protocol, topic, group, "A", got);
            Member b = new Member(ctx, protocol, topic, group, "B", got);
            Member c = new Member(ctx, protocol, topic, group, "C", got);
            try {
                want.addAll(wave(p, topic, 1));
                a.start();
                await(ctx, "wave1", () -> got.size() >= want.size());
                ctx.emit("wave1", true, Map.of("members", 1, "consumed", got.size()));

                b.start();
                c.start();
                await(ctx, "join", () -> a.owned() > 0 && b.owned() > 0 && c.owned() > 0
                        && a.owned() + b.owned() + c.owned() == PARTITIONS);
                int[] before = {a.count.get(), b.count.get(), c.count.get()};
                want.addAll(wave(p, topic, 2));
                await(ctx, "wave2", () -> got.size() >= want.size());
                int[] during = {a.count.get() - before[0], b.count.get() - before[1], c.count.get() - before[2]};
                ctx.emit("wave2", during[0] > 0 && during[1] > 0 && during[2] > 0,
                        Map.of("members", 3, "per_member", List.of(during[0], during[1], during[2])));

                a.leave();
                b.leave();
                await(ctx, "leave", () -> c.owned() == PARTITIONS);
                want.addAll(wave(p, topic, 3));
                await(ctx, "wave3", () -> got.size() >= want.size());
                ctx.emit("wave3", true, Map.of("members", 1, "owned_by_c", c.owned()));
            } finally {
                a.leave();
                b.leave();
                c.leave();
            }
            List<String> errors = new ArrayList<>();
            for (Member m : List.of(a, b, c)) if (m.error != null) errors.add(m.name + ": " + m.error);
            Map<String, Object> cmp = Basic.compare(want, new ArrayList<>(got));
            cmp.put("protocol", protocol);
            cmp.put("member_errors", errors);
            ctx.emit("group_exactly_once", (Boolean) cmp.get("exact") && errors.isEmpty(), cmp);
        }
    }

    private static List<String> wave(KafkaProducer<String, String> p, String topic, int n) throws Exception {
        List<String> values = Basic.values(topic + "-w" + n, 0, WAVE);
        Basic.send(p, topic, values, PARTITIONS);
        return values;
    }

    private static void await(Main.Ctx ctx, String what, BooleanSupplier done) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new IllegalStateException("timeout waiting for " + what);
            Thread.sleep(50);
        }
    }

    /** One member: its own thread polls, records, commits. */
    static final class Member implements ConsumerRebalanceListener {
        final String name;
        final AtomicInteger count = new AtomicInteger();
        private final List<String> sink;
        private final KafkaConsumer<String, String> consumer;
        private final String topic;
        private final Thread thread;
        private volatile boolean running = true;
        private volatile int owned;
        volatile String error;

        Member(Main.Ctx ctx, String protocol, String topic, String group, String name, List<String> sink) {
            this.name = name;
            this.sink = sink;
            this.topic = topic;
            Object[] kv = protocol.equals("classic")
                    ? new Object[] {"group.protocol", "classic", "group.id", group, "enable.auto.commit", "false",
                        "auto.offset.reset", "earliest", "session.timeout.ms", "10000", "heartbeat.interval.ms", "500",
                        "max.poll.interval.ms", "30000", "client.id", group + "-" + name}
                    : new Object[] {"group.protocol", "consumer", "group.id", group, "enable.auto.commit", "false",
                        "auto.offset.reset", "earliest", "client.id", group + "-" + name};
            this.consumer = Basic.consumer(ctx, kv);
            this.thread = new Thread(this::loop, "member-" + name);
        }

        void start() {
            thread.start();
        }

        int owned() {
            return owned;
        }

        void leave() throws InterruptedException {
            running = false;
            if (thread.isAlive()) thread.join(60_000);
        }

        private void loop() {
            try {
                consumer.subscribe(List.of(topic), this);
                while (running) {
                    ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(100));
                    for (ConsumerRecord<String, String> r : records) {
                        sink.add(r.value());
                        count.incrementAndGet();
                    }
                    if (!records.isEmpty()) consumer.commitSync();
                    owned = consumer.assignment().size();
                }
            } catch (Exception e) {
                error = e.getClass().getName() + ": " + e.getMessage();
            } finally {
                owned = 0;
                consumer.close();
            }
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            consumer.commitSync();
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            owned = consumer.assignment().size();
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            error = "partitions lost: " + Set.copyOf(partitions);
        }
    }
}
