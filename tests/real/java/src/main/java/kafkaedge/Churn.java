package kafkaedge;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * Traffic for fault tests: an idempotent acks=all producer sends for a given time while a
 * consumer group member reads and commits; then the whole topic is read back. Every acknowledged
 * value must be in the log exactly once (idempotence) and must have reached the group member.
 * The test moves the cluster underneath (restarts, elections, reassignments, new brokers).
 */
final class Churn {
    private Churn() {}

    static void run(Main.Ctx ctx, int seconds) throws Exception {
        String topic = ctx.topic("t");
        Basic.createTopics(ctx, 6, topic);
        ctx.emit("started", true, Map.of("topic", topic, "seconds", seconds));
        List<String> acked = Collections.synchronizedList(new ArrayList<>());
        List<String> consumed = Collections.synchronizedList(new ArrayList<>());
        AtomicLong failedSends = new AtomicLong();
        java.util.concurrent.atomic.AtomicReference<String> firstError = new java.util.concurrent.atomic.AtomicReference<>("");
        Thread consumer = new Thread(() -> consume(ctx, topic, consumed), "churn-consumer");
        consumer.setDaemon(true);
        consumer.start();
        long end = System.nanoTime() + Duration.ofSeconds(seconds).toNanos();
        try (KafkaProducer<String, String> p = Basic.producer(ctx, "delivery.timeout.ms", "120000",
                "request.timeout.ms", "10000", "max.in.flight.requests.per.connection", "5")) {
            for (int i = 0; System.nanoTime() < end; i++) {
                String value = String.format("%s-%07d", topic, i);
                p.send(new ProducerRecord<>(topic, "k" + i, value), (md, e) -> {
                    if (e == null) {
                        acked.add(value);
                    } else {
                        failedSends.incrementAndGet();
                        firstError.compareAndSet("", e.getClass().getName() + ": " + e.getMessage());
                    }
                });
                if (i % 50 == 49) Thread.sleep(20); // a few thousand records a second
            }
            p.flush();
        }
        ctx.emit("produced", failedSends.get() == 0, Map.of("acked", acked.size(), "failed_sends", failedSends.get(),
                "first_error", firstError.get()));
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (missing(acked, consumed) > 0 && System.nanoTime() < deadline) Thread.sleep(100);
        Map<String, Object> group = Basic.compare(acked, new ArrayList<>(consumed));
        // Redelivery after a rebalance is at-least-once: the group must miss nothing.
        ctx.emit("group_consumed_all", (Long) group.get("missing") == 0, group);
        Map<String, Object> log = Basic.compare(acked, Basic.readAll(ctx, topic, acked.size(), "read_uncommitted"));
        ctx.emit("log_exactly_once", (Boolean) log.get("exact"), log);
    }

    private static void consume(Main.Ctx ctx, String topic, List<String> sink) {
        try (KafkaConsumer<String, String> c = Basic.consumer(ctx, "group.id", topic + "-g", "group.protocol", "consumer",
                "auto.offset.reset", "earliest", "enable.auto.commit", "false")) {
            c.subscribe(List.of(topic));
            while (true) {
                var records = c.poll(Duration.ofMillis(200));
                for (ConsumerRecord<String, String> r : records) sink.add(r.value());
                if (!records.isEmpty()) {
                    try {
                        c.commitSync();
                    } catch (RuntimeException e) {
                        // A commit lost to a coordinator move: the next one covers it.
                    }
                }
            }
        }
    }

    /** How many of `want` are not in `got` (both lists shared with other threads). */
    private static long missing(List<String> want, List<String> got) {
        java.util.Set<String> seen;
        synchronized (got) {
            seen = new java.util.HashSet<>(got);
        }
        synchronized (want) {
            return want.stream().filter(v -> !seen.contains(v)).count();
        }
    }
}
