package kafkaedge;

import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;

/**
 * A Kafka Streams application with processing.guarantee=exactly_once_v2 (transactions underneath):
 * input values upper-cased into an output topic, read back read_committed, each exactly once.
 */
final class StreamsEos {
    private StreamsEos() {}

    static void run(Main.Ctx ctx) throws Exception {
        String in = ctx.topic("in");
        String out = ctx.topic("out");
        Basic.createTopics(ctx, 3, in, out);
        List<String> input = Basic.values(in, 0, 100);
        try (KafkaProducer<String, String> p = Basic.producer(ctx)) {
            Basic.send(p, in, input, 0);
        }
        StreamsBuilder b = new StreamsBuilder();
        b.<String, String>stream(in).mapValues(v -> v.toUpperCase()).to(out);
        Properties props = new Properties();
        props.putAll(ctx.common);
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, ctx.topic("app"));
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "200");
        props.put(StreamsConfig.STATE_DIR_CONFIG, Files.createTempDirectory("kafka-edge-streams").toString());
        props.put("consumer.auto.offset.reset", "earliest");
        List<String> want = new ArrayList<>();
        for (String v : input) want.add(v.toUpperCase());
        try (KafkaStreams streams = new KafkaStreams(b.build(), props)) {
            streams.start();
            Map<String, Object> cmp = Basic.compare(want, Basic.readAll(ctx, out, want.size(), "read_committed"));
            cmp.put("state", streams.state().toString());
            ctx.emit("streams_eos", (Boolean) cmp.get("exact"), cmp);
            streams.close(Duration.ofSeconds(20));
        }
    }
}
