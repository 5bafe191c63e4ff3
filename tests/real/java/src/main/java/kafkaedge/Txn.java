package kafkaedge;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.FeatureMetadata;
import org.apache.kafka.clients.admin.FinalizedVersionRange;
import org.apache.kafka.clients.producer.KafkaProducer;

/**
 * A transactional producer: commit, abort, commit; read_committed sees exactly the committed
 * values, read_uncommitted the aborted ones too. Prints the cluster's finalized
 * transaction.version (2: the producer relies on Produce v12+, no AddPartitionsToTxn).
 */
final class Txn {
    private Txn() {}

    static void run(Main.Ctx ctx) throws Exception {
        try (Admin admin = Admin.create(ctx.props())) {
            FeatureMetadata f = admin.describeFeatures().featureMetadata().get(60, TimeUnit.SECONDS);
            FinalizedVersionRange tv = f.finalizedFeatures().get("transaction.version");
            ctx.emit("features", true, Map.of("transaction.version", tv == null ? 0 : (int) tv.maxVersionLevel()));
        }
        String topic = ctx.topic("t");
        Basic.createTopics(ctx, 3, topic);
        List<String> first = Basic.values(topic + "-c1", 0, 50);
        List<String> aborted = Basic.values(topic + "-ab", 0, 30);
        List<String> second = Basic.values(topic + "-c2", 0, 20);
        try (KafkaProducer<String, String> p = Basic.producer(ctx, "transactional.id", topic + "-txid",
                "transaction.timeout.ms", "30000")) {
            p.initTransactions();
            p.beginTransaction();
            Basic.send(p, topic, first, 0);
            p.commitTransaction();
            ctx.emit("commit", true, Map.of("records", first.size()));
            p.beginTransaction();
            Basic.send(p, topic, aborted, 0);
            p.abortTransaction();
            ctx.emit("abort", true, Map.of("records", aborted.size()));
            p.beginTransaction();
            Basic.send(p, topic, second, 0);
            p.commitTransaction();
            ctx.emit("commit", true, Map.of("records", second.size()));
        }
        List<String> committed = new ArrayList<>(first);
        committed.addAll(second);
        Map<String, Object> rc = Basic.compare(committed, Basic.readAll(ctx, topic, committed.size(), "read_committed"));
        ctx.emit("read_committed", (Boolean) rc.get("exact"), rc);
        List<String> everything = new ArrayList<>(committed);
        everything.addAll(aborted);
        Map<String, Object> ru = Basic.compare(everything, Basic.readAll(ctx, topic, everything.size(), "read_uncommitted"));
        ctx.emit("read_uncommitted", (Boolean) ru.get("exact"), ru);
    }
}
