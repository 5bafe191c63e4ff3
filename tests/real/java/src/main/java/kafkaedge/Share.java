package kafkaedge;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ShareGroupDescription;
import org.apache.kafka.clients.admin.ShareMemberDescription;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * A share group (KIP-932): the group starts at the earliest offset (a group config), one share
 * consumer accepts every record, and the group is described while it is live. Kafka 4.x clients
 * only (the class does not exist before 4.0).
 */
final class Share {
    private Share() {}

    static void run(Main.Ctx ctx) throws Exception {
        String topic = ctx.topic("t");
        String group = ctx.topic("sg");
        Basic.createTopics(ctx, 3, topic);
        try (Admin admin = Admin.create(ctx.props())) {
            ConfigResource gr = new ConfigResource(ConfigResource.Type.GROUP, group);
            AlterConfigOp earliest = new AlterConfigOp(new ConfigEntry("share.auto.offset.reset", "earliest"),
                    AlterConfigOp.OpType.SET);
            admin.incrementalAlterConfigs(Map.of(gr, List.of(earliest))).all().get(60, TimeUnit.SECONDS);
            List<String> want = Basic.values(topic, 0, 100);
            try (KafkaProducer<String, String> p = Basic.producer(ctx)) {
                Basic.send(p, topic, want, 0);
            }
            List<String> got = new ArrayList<>();
            try (KafkaShareConsumer<String, String> c = new KafkaShareConsumer<>(
                    ctx.props("group.id", group, "client.id", group + "-m", "share.acknowledgement.mode", "explicit"), new StringDeserializer(),
                    new StringDeserializer())) {
                c.subscribe(List.of(topic));
                long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
                boolean described = false;
                while (got.size() < want.size() && System.nanoTime() < deadline) {
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                        got.add(r.value());
                        c.acknowledge(r, AcknowledgeType.ACCEPT);
                    }
                    c.commitSync();
                    if (!described && !got.isEmpty()) {
                        describe(ctx, admin, group);
                        described = true;
                    }
                }
            }
            Map<String, Object> cmp = Basic.compare(want, got);
            ctx.emit("share_consume", (Boolean) cmp.get("exact"), cmp);
        }
    }

    private static void describe(Main.Ctx ctx, Admin admin, String group) throws Exception {
        ShareGroupDescription d = admin.describeShareGroups(List.of(group)).all().get(60, TimeUnit.SECONDS).get(group);
        Collection<ShareMemberDescription> members = d.members();
        List<Map<String, Object>> ms = new ArrayList<>();
        for (ShareMemberDescription m : members) ms.add(Map.of("client_id", m.clientId(), "host", m.host()));
        ctx.emit("describe_share_group", members.size() == 1, Map.of("group", group, "state",
                String.valueOf(d.groupState()), "coordinator", String.valueOf(AdminOps.addr(d.coordinator())), "members", ms));
    }
}
