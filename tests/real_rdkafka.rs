//! The real `kafka-edge` binary in front of real brokers (librdkafka's mock cluster with three
//! brokers, and tansu with its single node 111), driven by librdkafka through the rdkafka
//! crate: metadata, idempotent acks=all produce, consume, and a consumer group.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::Message;

const TIMEOUT: Duration = Duration::from_secs(20);

/// A child process killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port base under which `ids` have free ports.
fn free_base(ids: &[u16]) -> u16 {
    for _ in 0..100 {
        let base = free_port().saturating_sub(200).max(1024);
        if ids
            .iter()
            .all(|id| TcpListener::bind(("127.0.0.1", base + id)).is_ok())
        {
            return base;
        }
    }
    panic!("no free port base");
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + TIMEOUT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the gateway binary; returns it and its bootstrap address.
fn gateway(upstream: &str, port_base: u16) -> (Process, String) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_kafka-edge"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--advertised-host",
            "localhost",
        ])
        .args(["--broker-port-base", &port_base.to_string()])
        .args(upstream.split(',').flat_map(|s| ["--bootstrap-server", s]))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("kafka-edge binary runs");
    wait_for_port(port);
    (Process(child), format!("localhost:{port}"))
}

fn client(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("topic.metadata.refresh.interval.ms", "1000");
    config
}

/// Runs the whole scenario through the gateway at `bootstrap`; `upstream_ports` must never
/// appear in what the client is told.
fn scenario(bootstrap: &str, expected_brokers: &[(i32, u16)], upstream_ports: &[u16], topic: &str) {
    let producer: ThreadedProducer<DefaultProducerContext> = client(bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .unwrap();

    let metadata = producer.client().fetch_metadata(None, TIMEOUT).unwrap();
    let mut brokers: Vec<_> = metadata
        .brokers()
        .iter()
        .map(|b| (b.id(), b.host().to_owned(), b.port() as u16))
        .collect();
    brokers.sort();
    let want: Vec<_> = expected_brokers
        .iter()
        .map(|(id, port)| (*id, "localhost".to_owned(), *port))
        .collect();
    assert_eq!(brokers, want);
    assert!(brokers.iter().all(|b| !upstream_ports.contains(&b.2)));

    let values: Vec<String> = (0..200).map(|i| format!("{topic}-{i}")).collect();
    for value in &values {
        producer
            .send(
                BaseRecord::<str, str>::to(topic)
                    .key(value.as_str())
                    .payload(value.as_str()),
            )
            .unwrap();
    }
    producer.flush(TIMEOUT).unwrap();
    assert_eq!(producer.in_flight_count(), 0);

    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", format!("{topic}-group"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("max.poll.interval.ms", "8000")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < values.len() {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {}",
            seen.len(),
            values.len()
        );
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            seen.push(String::from_utf8(message.payload().unwrap().to_vec()).unwrap());
        }
    }
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    seen.sort();
    let mut want = values.clone();
    want.sort();
    assert_eq!(seen, want, "every produced message consumed exactly once");
    let committed = consumer.committed(TIMEOUT).unwrap();
    let total: i64 = committed
        .elements()
        .iter()
        .filter_map(|e| e.offset().to_raw())
        .sum();
    assert_eq!(
        total,
        values.len() as i64,
        "group offsets committed through the coordinator"
    );
}

#[test]
fn librdkafka_mock_cluster_of_three_through_the_gateway() {
    let cluster = MockCluster::new(3).unwrap();
    cluster.create_topic("orders", 4, 1).unwrap();
    let upstream = cluster.bootstrap_servers();
    let upstream_ports: Vec<u16> = upstream
        .split(',')
        .map(|a| a.rsplit(':').next().unwrap().parse().unwrap())
        .collect();
    let base = free_base(&[1, 2, 3]);
    let (_gateway, bootstrap) = gateway(&upstream, base);
    scenario(
        &bootstrap,
        &[(1, base + 1), (2, base + 2), (3, base + 3)],
        &upstream_ports,
        "orders",
    );
}

#[test]
fn tansu_node_111_through_the_gateway() {
    let port = free_port();
    let listener = format!("tcp://127.0.0.1:{port}");
    let _tansu = Process(
        Command::new("tansu")
            .args([
                "broker",
                "--listener-url",
                &listener,
                "--advertised-listener-url",
                &listener,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu is installed (`.ci/run` installs it)"),
    );
    wait_for_port(port);
    let base = free_base(&[111]);
    let (_gateway, bootstrap) = gateway(&format!("127.0.0.1:{port}"), base);

    // tansu does not auto-create topics: create one through the gateway's admin path.
    let admin: AdminClient<DefaultClientContext> = client(&bootstrap).create().unwrap();
    let topic = NewTopic::new("payments", 3, TopicReplication::Fixed(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let created = runtime
        .block_on(admin.create_topics([&topic], &AdminOptions::new()))
        .unwrap();
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");

    scenario(&bootstrap, &[(111, base + 111)], &[port], "payments");
}
