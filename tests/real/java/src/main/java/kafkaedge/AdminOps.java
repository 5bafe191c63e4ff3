package kafkaedge;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.QuorumInfo;
import org.apache.kafka.clients.admin.RaftVoterEndpoint;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.ElectionNotNeededException;

/**
 * The Admin API through one bootstrap: every answer that names brokers is printed with its host:port
 * so the test can check it names only the gateway.
 */
final class AdminOps {
    private AdminOps() {}

    static <T> T get(KafkaFuture<T> f) throws Exception {
        return f.get(60, TimeUnit.SECONDS);
    }

    /**
     * An Admin call retried while the broker it asked does not know the new topic yet (metadata
     * reaches brokers at their own pace; seen against 3.9 brokers right after CreateTopics).
     */
    static <T> T settled(java.util.concurrent.Callable<KafkaFuture<T>> call) throws Exception {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (true) {
            try {
                return get(call.call());
            } catch (java.util.concurrent.ExecutionException e) {
                boolean unknown = e.getCause() instanceof org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
                if (!unknown || System.nanoTime() > deadline) throw e;
                Thread.sleep(100);
            }
        }
    }

    static String addr(Node n) {
        return n == null ? null : n.id() + "@" + n.host() + ":" + n.port();
    }

    static void run(Main.Ctx ctx) throws Exception {
        try (Admin admin = Admin.create(ctx.props())) {
            cluster(ctx, admin);
            String topic = ctx.topic("t");
            Basic.createTopics(ctx, 6, topic);
            describeTopic(ctx, admin, topic, "describe_topics");
            configs(ctx, admin, topic);
            deleteRecords(ctx, admin, topic);
            groups(ctx, admin, topic);
            elect(ctx, admin, topic);
            reassign(ctx, admin, topic);
            // Done when the controller committed the deletion (brokers learn of it a little later).
            get(admin.deleteTopics(List.of(topic)).all());
            ctx.emit("delete_topics", true, Map.of("topic", topic));
        }
    }

    static void cluster(Main.Ctx ctx, Admin admin) throws Exception {
        DescribeClusterResult dc = admin.describeCluster();
        List<String> nodes = new ArrayList<>();
        for (Node n : get(dc.nodes())) nodes.add(addr(n));
        nodes.sort(null);
        ctx.emit("describe_cluster", !nodes.isEmpty(), Map.of(
                "cluster_id", get(dc.clusterId()), "nodes", nodes, "controller", String.valueOf(addr(get(dc.controller())))));
        try {
            QuorumInfo q = get(admin.describeMetadataQuorum().quorumInfo());
            List<String> endpoints = new ArrayList<>();
            for (QuorumInfo.Node n : q.nodes().values()) {
                for (RaftVoterEndpoint e : n.endpoints()) endpoints.add(n.nodeId() + "@" + e.host() + ":" + e.port());
            }
            List<Integer> voters = new ArrayList<>();
            for (QuorumInfo.ReplicaState r : q.voters()) voters.add(r.replicaId());
            ctx.emit("describe_quorum", q.leaderId() >= 0, Map.of("leader", q.leaderId(), "voters", voters,
                    "endpoints", endpoints));
        } catch (Exception e) {
            ctx.fail("describe_quorum", e);
        }
    }

    static TopicDescription describeTopic(Main.Ctx ctx, Admin admin, String topic, String op) throws Exception {
        TopicDescription d = settled(() -> admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
        List<Map<String, Object>> parts = new ArrayList<>();
        for (TopicPartitionInfo p : d.partitions()) {
            List<Integer> replicas = new ArrayList<>();
            for (Node n : p.replicas()) replicas.add(n.id());
            parts.add(Map.of("partition", p.partition(), "leader", String.valueOf(addr(p.leader())), "replicas", replicas));
        }
        ctx.emit(op, d.partitions().size() == 6, Map.of("topic", topic, "partitions", parts));
        return d;
    }

    static void configs(Main.Ctx ctx, Admin admin, String topic) throws Exception {
        ConfigResource tr = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config tc = settled(() -> admin.describeConfigs(List.of(tr)).all()).get(tr);
        ctx.emit("describe_configs_topic", tc.get("cleanup.policy") != null,
                Map.of("entries", tc.entries().size(), "cleanup.policy", tc.get("cleanup.policy").value()));
        int broker = get(admin.describeCluster().nodes()).iterator().next().id();
        ConfigResource br = new ConfigResource(ConfigResource.Type.BROKER, String.valueOf(broker));
        Config bc = get(admin.describeConfigs(List.of(br)).all()).get(br);
        Map<String, Object> named = new TreeMap<>();
        for (String key : List.of("advertised.listeners", "listeners", "controller.quorum.voters",
                "controller.quorum.bootstrap.servers")) {
            var e = bc.get(key);
            named.put(key, e == null ? "(absent)" : String.valueOf(e.value()));
        }
        ctx.emit("describe_configs_broker", bc.entries().size() > 50,
                Map.of("broker", broker, "entries", bc.entries().size(), "address_entries", named));
    }

    static void deleteRecords(Main.Ctx ctx, Admin admin, String topic) throws Exception {
        TopicPartition p0 = new TopicPartition(topic, 0);
        try (KafkaProducer<String, String> p = Basic.producer(ctx)) {
            for (int i = 0; i < 10; i++) {
                p.send(new org.apache.kafka.clients.producer.ProducerRecord<>(topic, 0, "k", "v" + i));
            }
            p.flush();
        }
        long low = settled(() -> admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(5))).lowWatermarks().get(p0))
                .lowWatermark();
        ctx.emit("delete_records", low == 5, Map.of("low_watermark", low));
    }

    /** A classic and a consumer-protocol group, each with a live member, then listed and described. */
    @SuppressWarnings({"deprecation", "removal"}) // listConsumerGroups(), state(): the 3.9 client lacks their successors
    static void groups(Main.Ctx ctx, Admin admin, String topic) throws Exception {
        Map<String, KafkaConsumer<String, String>> members = new LinkedHashMap<>();
        try {
            for (String protocol : List.of("classic", "consumer")) {
                String group = ctx.topic("g-" + protocol);
                KafkaConsumer<String, String> c = Basic.consumer(ctx, "group.protocol", protocol, "group.id", group,
                        "auto.offset.reset", "earliest", "enable.auto.commit", "false", "client.id", group + "-m");
                c.subscribe(List.of(topic));
                members.put(group, c);
            }
            // Both members poll until each has its assignment and has committed once.
            long deadline = System.nanoTime() + 60_000_000_000L;
            Set<String> ready = new java.util.HashSet<>();
            while (ready.size() < members.size() && System.nanoTime() < deadline) {
                for (var e : members.entrySet()) {
                    e.getValue().poll(java.time.Duration.ofMillis(100));
                    if (!e.getValue().assignment().isEmpty()) {
                        e.getValue().commitSync();
                        ready.add(e.getKey());
                    }
                }
            }
            Collection<ConsumerGroupListing> listed = get(admin.listConsumerGroups().all());
            Set<String> ids = new java.util.TreeSet<>();
            for (ConsumerGroupListing l : listed) ids.add(l.groupId());
            ctx.emit("list_consumer_groups", ids.containsAll(members.keySet()), Map.of("groups", ids));
            Map<String, ConsumerGroupDescription> described = get(admin.describeConsumerGroups(members.keySet()).all());
            for (ConsumerGroupDescription d : described.values()) {
                List<Map<String, Object>> ms = new ArrayList<>();
                for (MemberDescription m : d.members()) {
                    ms.add(Map.of("client_id", m.clientId(), "host", m.host(),
                            "partitions", m.assignment().topicPartitions().size()));
                }
                ctx.emit("describe_consumer_group", d.members().size() == 1, Map.of("group", d.groupId(),
                        "type", String.valueOf(d.type()), "state", String.valueOf(d.state()),
                        "coordinator", String.valueOf(addr(d.coordinator())), "members", ms));
            }
        } finally {
            for (KafkaConsumer<String, String> c : members.values()) c.close();
        }
        // The classic group is empty now: its offsets can be altered.
        String group = ctx.topic("g-classic");
        TopicPartition p0 = new TopicPartition(topic, 0);
        get(admin.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(7))).all());
        Map<TopicPartition, OffsetAndMetadata> now = get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        long offset = now.containsKey(p0) ? now.get(p0).offset() : -1;
        ctx.emit("alter_consumer_group_offsets", offset == 7, Map.of("group", group, "offset", offset));
    }

    static void elect(Main.Ctx ctx, Admin admin, String topic) throws Exception {
        Set<TopicPartition> parts = new java.util.HashSet<>();
        for (int i = 0; i < 6; i++) parts.add(new TopicPartition(topic, i));
        Map<TopicPartition, Optional<Throwable>> res = get(admin.electLeaders(ElectionType.PREFERRED, parts).partitions());
        Map<String, Object> out = new TreeMap<>();
        boolean ok = true;
        for (var e : res.entrySet()) {
            Throwable t = e.getValue().orElse(null);
            out.put(String.valueOf(e.getKey().partition()), t == null ? "elected" : t.getClass().getSimpleName());
            ok &= t == null || t instanceof ElectionNotNeededException;
        }
        ctx.emit("elect_leaders", ok && res.size() == 6, Map.of("results", out));
    }

    /** Partition 0's replica list rotated by one, then a preferred election makes its new head the leader. */
    static void reassign(Main.Ctx ctx, Admin admin, String topic) throws Exception {
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicDescription d = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
        List<Integer> replicas = new ArrayList<>();
        for (Node n : d.partitions().get(0).replicas()) replicas.add(n.id());
        List<Integer> target = new ArrayList<>(replicas.subList(1, replicas.size()));
        target.add(replicas.get(0));
        get(admin.alterPartitionReassignments(Map.of(p0, Optional.of(new NewPartitionReassignment(target)))).all());
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (!get(admin.listPartitionReassignments().reassignments()).isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        // The new head of the replica list becomes leader by a preferred election, once it is in sync.
        TopicDescription after;
        Node leader;
        do {
            get(admin.electLeaders(ElectionType.PREFERRED, Set.of(p0)).partitions());
            after = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
            leader = after.partitions().get(0).leader();
            if (leader != null && leader.id() == target.get(0)) break;
            Thread.sleep(200);
        } while (System.nanoTime() < deadline);
        describeTopic(ctx, admin, topic, "describe_topics_after_reassign");
        List<Integer> now = new ArrayList<>();
        for (Node n : after.partitions().get(0).replicas()) now.add(n.id());
        ctx.emit("alter_partition_reassignments", now.equals(target) && leader != null && leader.id() == target.get(0),
                Map.of("before", replicas, "after", now, "leader", String.valueOf(addr(leader))));
    }
}
