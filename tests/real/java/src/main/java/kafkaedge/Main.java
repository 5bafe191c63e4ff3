package kafkaedge;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * The Java client of the real-client rings: runs named scenarios against one bootstrap address
 * and prints one JSON line per operation, {"client", "scenario", "op", "ok", ...}, so the Python
 * tests can assert what the client got (see tests/real/java/README.md).
 *
 * <pre>java -cp 'jar:libs/*' kafkaedge.Main --bootstrap H:P --prefix P [--config k=v]... [--seconds S] SCENARIO...</pre>
 *
 * A scenario that throws prints {"op": "scenario", "ok": false, "error": ...} and the others still
 * run; the exit code is 1 when any operation failed.
 */
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        String bootstrap = null;
        String prefix = "java";
        int seconds = 60;
        Properties common = new Properties();
        List<String> scenarios = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--bootstrap" -> bootstrap = args[++i];
                case "--prefix" -> prefix = args[++i];
                case "--seconds" -> seconds = Integer.parseInt(args[++i]);
                case "--config" -> {
                    String[] kv = args[++i].split("=", 2);
                    common.put(kv[0], kv[1]);
                }
                default -> scenarios.add(args[i]);
            }
        }
        if (bootstrap == null || scenarios.isEmpty()) {
            System.err.println("usage: Main --bootstrap H:P [--prefix P] [--config k=v]... SCENARIO...");
            System.exit(2);
        }
        common.put("bootstrap.servers", bootstrap);
        Ctx ctx = new Ctx("java-" + clientVersion(), prefix, common);
        for (String name : scenarios) {
            ctx.scenario = name;
            long start = System.nanoTime();
            int failuresBefore = ctx.failures;
            try {
                switch (name) {
                    case "produce" -> Basic.produceConsume(ctx);
                    case "txn" -> Txn.run(ctx);
                    case "group-classic" -> Groups.run(ctx, "classic");
                    case "group-consumer" -> Groups.run(ctx, "consumer");
                    case "admin" -> AdminOps.run(ctx);
                    case "share" -> Share.run(ctx);
                    case "streams" -> StreamsEos.run(ctx);
                    case "churn" -> Churn.run(ctx, seconds);
                    default -> throw new IllegalArgumentException("unknown scenario " + name);
                }
                int failed = ctx.failures - failuresBefore;
                ctx.emit("scenario", failed == 0, Map.of("seconds", (System.nanoTime() - start) / 1e9, "failed_ops", failed));
            } catch (Throwable e) {
                ctx.fail("scenario", e);
            }
        }
        System.out.flush();
        // Streams and client threads may linger; the verdict is in the lines printed.
        Runtime.getRuntime().halt(ctx.failures > 0 ? 1 : 0);
    }

    /** The kafka-clients version on the classpath (its jar's kafka/kafka-version.properties). */
    static String clientVersion() {
        Properties p = new Properties();
        try (var in = org.apache.kafka.clients.producer.KafkaProducer.class.getResourceAsStream("/kafka/kafka-version.properties")) {
            if (in != null) p.load(in);
        } catch (java.io.IOException e) {
            return "unknown";
        }
        return p.getProperty("version", "unknown");
    }

    /** What every scenario shares: the client's name, a topic prefix, common settings, the output. */
    static final class Ctx {
        final String client;
        final String prefix;
        final Properties common;
        String scenario;
        int failures;

        Ctx(String client, String prefix, Properties common) {
            this.client = client;
            this.prefix = prefix;
            this.common = common;
        }

        Properties props(Object... kv) {
            Properties p = new Properties();
            p.putAll(common);
            for (int i = 0; i < kv.length; i += 2) p.put(kv[i], String.valueOf(kv[i + 1]));
            return p;
        }

        String topic(String suffix) {
            return prefix + "-" + scenario + "-" + suffix;
        }

        synchronized void emit(String op, boolean ok, Map<String, ?> fields) {
            Map<String, Object> line = new LinkedHashMap<>();
            line.put("client", client);
            line.put("scenario", scenario);
            line.put("op", op);
            line.put("ok", ok);
            line.putAll(fields);
            if (!ok) failures++;
            System.out.println(Json.write(line));
            System.out.flush();
        }

        void fail(String op, Throwable e) {
            Map<String, Object> f = new LinkedHashMap<>();
            f.put("error", e.getClass().getName() + ": " + e.getMessage());
            // Every cause: a client's own wrapper ("Failed to create new KafkaAdminClient")
            // says least of all.
            StringBuilder causes = new StringBuilder();
            for (Throwable c = e.getCause(); c != null && causes.length() < 2000; c = c.getCause()) {
                if (causes.length() > 0) causes.append(" <- ");
                causes.append(c.getClass().getName()).append(": ").append(c.getMessage());
            }
            if (causes.length() > 0) f.put("cause", causes.toString());
            emit(op, false, f);
        }
    }
}
