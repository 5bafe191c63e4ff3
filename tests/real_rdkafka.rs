//! The real `kafka-edge` binary in front of real brokers, driven by librdkafka through the
//! rdkafka crate: librdkafka's mock cluster with three brokers, and tansu with its single
//! node 111. Metadata, idempotent acks=all produce, consume and consumer groups; then the
//! durability cases: a broker going down and up, and the gateway itself restarted with
//! SIGTERM under load, lose and duplicate nothing.

mod support;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::DeliveryResult;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::Message;
use support::free_port_base;
use support::process::{free_port, GatewayProcess};

const TIMEOUT: Duration = Duration::from_secs(20);

/// A child process killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The gateway binary on `port` in front of `upstream`, advertising `localhost`.
fn gateway_on(port: u16, upstream: &str, port_base: u16) -> GatewayProcess {
    let mut args = vec![
        "--advertised-host".to_owned(),
        "localhost".to_owned(),
        "--broker-port-base".to_owned(),
        port_base.to_string(),
    ];
    for server in upstream.split(',') {
        args.extend(["--bootstrap-server".to_owned(), server.to_owned()]);
    }
    GatewayProcess::start(port, &args)
}

fn client(port: u16) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", format!("localhost:{port}"))
        .set("broker.address.family", "v4")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .set("reconnect.backoff.max.ms", "500");
    config
}

/// Counts what the broker acknowledged and what failed for good.
#[derive(Clone, Default)]
struct Deliveries {
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.ok.fetch_add(1, Ordering::SeqCst),
            Err(_) => self.failed.fetch_add(1, Ordering::SeqCst),
        };
    }
}

fn idempotent_producer(port: u16) -> (ThreadedProducer<Deliveries>, Deliveries) {
    let deliveries = Deliveries::default();
    let producer = client(port)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create_with_context(deliveries.clone())
        .unwrap();
    (producer, deliveries)
}

/// Sends the numbers in `range` as keys and values.
fn send(producer: &ThreadedProducer<Deliveries>, topic: &str, range: std::ops::Range<u32>) {
    for i in range {
        let text = i.to_string();
        let mut record = BaseRecord::to(topic).key(&text).payload(&text);
        // A full local queue means "wait", not "fail".
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
}

/// Waits for every send to be acknowledged and checks none failed.
fn flushed(producer: &ThreadedProducer<Deliveries>, deliveries: &Deliveries, count: usize) {
    producer.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(
        deliveries.failed.load(Ordering::SeqCst),
        0,
        "deliveries failed"
    );
    assert_eq!(
        deliveries.ok.load(Ordering::SeqCst),
        count,
        "deliveries acknowledged"
    );
}

fn group_consumer(port: u16, group: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = client(port)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("max.poll.interval.ms", "8000")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    consumer
}

/// Polls until `count` messages arrived, returning their values.
fn consume(consumer: &BaseConsumer, count: usize) -> Vec<u32> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < count {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {count}",
            seen.len()
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.unwrap();
            let text = std::str::from_utf8(message.payload().unwrap()).unwrap();
            seen.push(text.parse().unwrap());
        }
    }
    seen
}

/// Every number in `0..count` exactly once.
fn assert_exactly_once(mut seen: Vec<u32>, count: u32) {
    seen.sort_unstable();
    let distinct: BTreeSet<_> = seen.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        seen.len(),
        "duplicates in what was consumed"
    );
    assert_eq!(
        seen,
        (0..count).collect::<Vec<_>>(),
        "gaps in what was consumed"
    );
}

fn upstream_ports(upstream: &str) -> Vec<u16> {
    upstream
        .split(',')
        .map(|a| a.rsplit(':').next().unwrap().parse().unwrap())
        .collect()
}

/// Metadata, produce, consume and a consumer group through the gateway on `port`.
fn scenario(port: u16, expected_brokers: &[(i32, u16)], upstream_ports: &[u16], topic: &str) {
    let (producer, deliveries) = idempotent_producer(port);
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

    send(&producer, topic, 0..200);
    flushed(&producer, &deliveries, 200);

    let consumer = group_consumer(port, &format!("{topic}-group"), topic);
    assert_exactly_once(consume(&consumer, 200), 200);
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    let committed = consumer.committed(TIMEOUT).unwrap();
    let total: i64 = committed
        .elements()
        .iter()
        .filter_map(|e| e.offset().to_raw())
        .sum();
    assert_eq!(
        total, 200,
        "group offsets committed through the coordinator"
    );
}

#[test]
fn librdkafka_mock_cluster_of_three_through_the_gateway() {
    let cluster = MockCluster::new(3).unwrap();
    cluster.create_topic("orders", 4, 1).unwrap();
    let upstream = cluster.bootstrap_servers();
    let base = free_port_base(&[1, 2, 3]);
    let port = free_port();
    let _gateway = gateway_on(port, &upstream, base);
    scenario(
        port,
        &[(1, base + 1), (2, base + 2), (3, base + 3)],
        &upstream_ports(&upstream),
        "orders",
    );
}

#[test]
fn tansu_node_111_through_the_gateway() {
    let tansu_port = free_port();
    let listener = format!("tcp://127.0.0.1:{tansu_port}");
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
    let deadline = Instant::now() + TIMEOUT;
    while std::net::TcpStream::connect(("127.0.0.1", tansu_port)).is_err() {
        assert!(Instant::now() < deadline, "tansu did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let base = free_port_base(&[111]);
    let port = free_port();
    let _gateway = gateway_on(port, &format!("127.0.0.1:{tansu_port}"), base);

    // tansu does not auto-create topics: create one through the gateway's admin path.
    let admin: AdminClient<DefaultClientContext> = client(port).create().unwrap();
    let topic = NewTopic::new("payments", 3, TopicReplication::Fixed(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let created = runtime
        .block_on(admin.create_topics([&topic], &AdminOptions::new()))
        .unwrap();
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");

    scenario(port, &[(111, base + 111)], &[tansu_port], "payments");
}

#[test]
fn broker_down_and_up_loses_and_duplicates_nothing() {
    let cluster = MockCluster::new(3).unwrap();
    cluster.create_topic("sequence", 6, 1).unwrap();
    let base = free_port_base(&[1, 2, 3]);
    let port = free_port();
    let gateway = gateway_on(port, &cluster.bootstrap_servers(), base);
    let (producer, deliveries) = idempotent_producer(port);

    send(&producer, "sequence", 0..1000);
    producer.flush(TIMEOUT).unwrap();
    cluster.broker_down(2).unwrap();
    send(&producer, "sequence", 1000..2000);
    std::thread::sleep(Duration::from_millis(1500));
    cluster.broker_up(2).unwrap();
    send(&producer, "sequence", 2000..3000);
    flushed(&producer, &deliveries, 3000);

    let consumer = group_consumer(port, "sequence-readers", "sequence");
    assert_exactly_once(consume(&consumer, 3000), 3000);
    assert!(gateway.log().contains("broker.id=2"), "{}", gateway.log());
}

#[test]
fn gateway_restart_under_load_loses_and_duplicates_nothing() {
    let cluster = MockCluster::new(3).unwrap();
    cluster.create_topic("restart", 6, 1).unwrap();
    let upstream = cluster.bootstrap_servers();
    let base = free_port_base(&[1, 2, 3]);
    let port = free_port();
    let mut gateway = gateway_on(port, &upstream, base);
    let (producer, deliveries) = idempotent_producer(port);
    let producer = Arc::new(producer);

    // Produce steadily in the background while the gateway is replaced.
    let sender = {
        let producer = producer.clone();
        std::thread::spawn(move || {
            for chunk in 0..40u32 {
                send(&producer, "restart", chunk * 100..(chunk + 1) * 100);
                std::thread::sleep(Duration::from_millis(25));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let status = gateway.terminate(Duration::from_secs(15));
    assert!(status.success(), "exit status {status}");
    assert!(gateway.log().contains("shutting down"), "{}", gateway.log());
    // Default grace is 10 s; in-flight produce requests finish well within it.
    assert!(
        started.elapsed() < Duration::from_secs(11),
        "shutdown took {:?}",
        started.elapsed()
    );
    let replacement = gateway_on(port, &upstream, base);
    sender.join().unwrap();
    flushed(&producer, &deliveries, 4000);

    let consumer = group_consumer(port, "restart-readers", "restart");
    assert_exactly_once(consume(&consumer, 4000), 4000);
    drop(replacement);
}

#[test]
fn committed_offsets_survive_a_gateway_restart() {
    let cluster = MockCluster::new(3).unwrap();
    cluster.create_topic("offsets", 3, 1).unwrap();
    let upstream = cluster.bootstrap_servers();
    let base = free_port_base(&[1, 2, 3]);
    let port = free_port();
    let mut gateway = gateway_on(port, &upstream, base);
    let (producer, deliveries) = idempotent_producer(port);
    send(&producer, "offsets", 0..600);
    flushed(&producer, &deliveries, 600);

    let first = group_consumer(port, "offset-keepers", "offsets");
    let mut seen = consume(&first, 250);
    first.commit_consumer_state(CommitMode::Sync).unwrap();
    first.unsubscribe();
    drop(first);

    assert!(gateway.terminate(Duration::from_secs(15)).success());
    let _replacement = gateway_on(port, &upstream, base);
    let second = group_consumer(port, "offset-keepers", "offsets");
    let rest = 600 - seen.len();
    seen.extend(consume(&second, rest));
    // Nothing re-read (the second consumer starts at the committed offsets), nothing missed.
    assert_exactly_once(seen, 600);
    assert!(
        second.poll(Duration::from_millis(500)).is_none(),
        "more than was produced"
    );
}
