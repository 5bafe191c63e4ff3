package kafkaedge;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/** Topics, an idempotent acks=all producer, and reading a topic back whole; shared by the scenarios. */
final class Basic {
    static final Duration DEADLINE = Duration.ofSeconds(60);

    private Basic() {}

    /**
     * Creates topics (broker-default replication factor) and waits until every partition has a
     * leader in the metadata: CreateTopics answers before every broker learned of the topic.
     */
    static void createTopics(Main.Ctx ctx, int partitions, String... topics) throws Exception {
        try (Admin admin = Admin.create(ctx.props())) {
            List<NewTopic> news = new ArrayList<>();
            for (String t : topics) news.add(new NewTopic(t, Optional.of(partitions), Optional.empty()));
            admin.createTopics(news).all().get(60, TimeUnit.SECONDS);
            long deadline = System.nanoTime() + DEADLINE.toNanos();
            while (!haveLeaders(admin, List.of(topics), partitions)) {
                if (System.nanoTime() > deadline) throw new IllegalStateException("no leaders for " + List.of(topics));
                Thread.sleep(100);
            }
        }
        ctx.emit("create_topics", true, Map.of("topics", List.of(topics), "partitions", partitions));
    }

    private static boolean haveLeaders(Admin admin, List<String> topics, int partitions) throws Exception {
        try {
            for (TopicDescription d : admin.describeTopics(topics).allTopicNames().get(60, TimeUnit.SECONDS).values()) {
                if (d.partitions().size() != partitions) return false;
                for (TopicPartitionInfo p : d.partitions()) if (p.leader() == null) return false;
            }
            return true;
        } catch (ExecutionException e) {
            if (e.getCause() instanceof UnknownTopicOrPartitionException) return false;
            throw e;
        }
    }

    static KafkaProducer<String, String> producer(Main.Ctx ctx, Object... kv) {
        Object[] base = {"acks", "all", "enable.idempotence", "true", "linger.ms", "5", "delivery.timeout.ms", "60000"};
        Object[] all = new Object[base.length + kv.length];
        System.arraycopy(base, 0, all, 0, base.length);
        System.arraycopy(kv, 0, all, base.length, kv.length);
        return new KafkaProducer<>(ctx.props(all), new StringSerializer(), new StringSerializer());
    }

    static KafkaConsumer<String, String> consumer(Main.Ctx ctx, Object... kv) {
        return new KafkaConsumer<>(ctx.props(kv), new StringDeserializer(), new StringDeserializer());
    }

    static List<String> values(String prefix, int from, int count) {
        List<String> out = new ArrayList<>();
        for (int i = from; i < from + count; i++) out.add(String.format("%s-%05d", prefix, i));
        return out;
    }

    /** Sends every value (to partition i % partitions when partitions > 0) and waits for each ack. */
    static List<RecordMetadata> send(KafkaProducer<String, String> producer, String topic, List<String> values, int partitions)
            throws Exception {
        List<Future<RecordMetadata>> acks = new ArrayList<>();
        for (int i = 0; i < values.size(); i++) {
            Integer p = partitions > 0 ? i % partitions : null;
            acks.add(producer.send(new ProducerRecord<>(topic, p, "k" + i, values.get(i))));
        }
        producer.flush();
        List<RecordMetadata> out = new ArrayList<>();
        for (Future<RecordMetadata> f : acks) out.add(f.get(60, TimeUnit.SECONDS));
        return out;
    }

    /** Every record of a topic from the beginning, until `expected` records came or the deadline passed. */
    static List<String> readAll(Main.Ctx ctx, String topic, int expected, String isolation) {
        List<String> got = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer(ctx, "isolation.level", isolation, "enable.auto.commit", "false")) {
            List<TopicPartition> parts = new ArrayList<>();
            for (PartitionInfo p : c.partitionsFor(topic, DEADLINE)) parts.add(new TopicPartition(topic, p.partition()));
            c.assign(parts);
            c.seekToBeginning(parts);
            long deadline = System.nanoTime() + DEADLINE.toNanos();
            while (got.size() < expected && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) got.add(r.value());
            }
            // A short extra poll: more records than expected (duplicates) would show here.
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) got.add(r.value());
        }
        return got;
    }

    /** {count, distinct, duplicates, missing, unexpected}: how `got` compares with `want`. */
    static Map<String, Object> compare(List<String> want, List<String> got) {
        Map<String, Integer> seen = new HashMap<>();
        for (String v : got) seen.merge(v, 1, Integer::sum);
        int duplicates = 0;
        for (int n : seen.values()) duplicates += n - 1;
        Set<String> wantSet = Set.copyOf(want);
        long missing = want.stream().filter(v -> !seen.containsKey(v)).count();
        long unexpected = seen.keySet().stream().filter(v -> !wantSet.contains(v)).count();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("count", got.size());
        out.put("expected", want.size());
        out.put("duplicates", duplicates);
        out.put("missing", missing);
        out.put("unexpected", unexpected);
        out.put("exact", duplicates == 0 && missing == 0 && unexpected == 0);
        return out;
    }

    /** Idempotent acks=all producer, then every value read back exactly once. */
    static void produceConsume(Main.Ctx ctx) throws Exception {
        String topic = ctx.topic("t");
        createTopics(ctx, 3, topic);
        List<String> want = values(topic, 0, 300);
        try (KafkaProducer<String, String> p = producer(ctx, "compression.type", "lz4")) {
            List<RecordMetadata> acks = send(p, topic, want, 0);
            Map<Integer, Integer> perPartition = new TreeMap<>();
            for (RecordMetadata m : acks) perPartition.merge(m.partition(), 1, Integer::sum);
            ctx.emit("produce", acks.size() == want.size(), Map.of("acked", acks.size(), "per_partition", perPartition));
        }
        Map<String, Object> cmp = compare(want, readAll(ctx, topic, want.size(), "read_uncommitted"));
        ctx.emit("consume", (Boolean) cmp.get("exact"), cmp);
    }
}
