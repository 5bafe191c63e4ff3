//! Live reconfiguration: a changed configuration file reaches new connections while open
//! ones go on. In process (the library's `run_reloading` watching a directory laid out and
//! updated the way Kubernetes updates a ConfigMap volume: a `..data` symbolic link swapped
//! to a new directory) and against the binary (SIGHUP, restart-only settings, a bad file,
//! the log level).

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_edge::config::{File, Overrides};
use kafka_edge::{Config, Listeners, Reloads};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use support::process::{free_port, GatewayProcess};
use support::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};

/// A configuration directory as the kubelet keeps a ConfigMap volume: `kafka-edge.toml` is a
/// link to `..data/kafka-edge.toml`, and `..data` a link to the current version's
/// directory, swapped in one rename.
struct ConfigDir {
    dir: PathBuf,
    version: u32,
}

impl ConfigDir {
    fn new(name: &str) -> ConfigDir {
        let dir =
            std::env::temp_dir().join(format!("kafka-edge-reload-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink("..data/kafka-edge.toml", dir.join("kafka-edge.toml")).unwrap();
        ConfigDir { dir, version: 0 }
    }

    fn path(&self) -> PathBuf {
        self.dir.join("kafka-edge.toml")
    }

    /// Publishes a new version of the file, as the kubelet does.
    fn write(&mut self, toml: &str) {
        self.version += 1;
        let version = format!("..v{}", self.version);
        std::fs::create_dir(self.dir.join(&version)).unwrap();
        std::fs::write(self.dir.join(&version).join("kafka-edge.toml"), toml).unwrap();
        std::os::unix::fs::symlink(&version, self.dir.join("..data_tmp")).unwrap();
        std::fs::rename(self.dir.join("..data_tmp"), self.dir.join("..data")).unwrap();
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The library serving with reloads from `dir`, in front of `cluster`; stops when dropped.
struct Reloading {
    addr: SocketAddr,
    admin: SocketAddr,
    /// Asks for a reload now, as SIGHUP does for the binary.
    asked: Arc<Notify>,
    _stop: oneshot::Sender<()>,
}

impl Reloading {
    async fn start(cluster: &FakeCluster, dir: &ConfigDir) -> Reloading {
        Reloading::start_for(cluster.bootstrap(), dir).await
    }

    /// In front of the cluster at `bootstrap`.
    async fn start_for(bootstrap_server: String, dir: &ConfigDir) -> Reloading {
        let bootstrap = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (addr, admin_addr) = (bootstrap.local_addr().unwrap(), admin.local_addr().unwrap());
        let path = dir.path();
        let overrides = Overrides {
            bootstrap_servers: vec![bootstrap_server],
            listen: Some(addr.to_string()),
            ..Overrides::default()
        };
        let load = move || Config::resolve(File::load(&path)?, overrides.clone());
        let config = load().unwrap();
        let asked = Arc::new(Notify::new());
        let reloads = Reloads {
            load: Box::new(load),
            watch: Some(dir.path()),
            check_every: Duration::from_millis(100),
            asked: asked.clone(),
            apply: Box::new(|_| {}),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let listeners = Listeners {
            bootstrap,
            admin: Some(admin),
        };
        tokio::spawn(kafka_edge::run_reloading(
            listeners,
            config,
            reloads,
            async move {
                let _ = stopped.await;
            },
        ));
        let gw = Reloading {
            addr,
            admin: admin_addr,
            asked,
            _stop: stop,
        };
        gw.until("the cluster answered", |m| {
            sample(m, "kafka_edge_ready") == Some(1.0)
        })
        .await;
        gw
    }

    async fn metrics(&self) -> String {
        http_get(self.admin, "/metrics").await.1
    }

    /// Waits until `/metrics` satisfies `done`.
    async fn until(&self, what: &str, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let metrics = self.metrics().await;
            if done(&metrics) {
                return;
            }
            assert!(Instant::now() < deadline, "never {what}:\n{metrics}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for `n` reloads with `result`.
    async fn reloaded(&self, result: &str, n: u32) {
        let series = format!("kafka_edge_reloads_total{{result=\"{result}\"}}");
        self.until(&format!("{n} reload(s) {result}"), |m| {
            sample(m, &series) >= Some(f64::from(n))
        })
        .await;
    }
}

/// The value of one series in the text format.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The ports a Metadata answer from `addr` names, by node id.
async fn metadata_ports(addr: impl tokio::net::ToSocketAddrs) -> Vec<(i32, i32)> {
    let (_, answer) = metadata(addr, 12).await;
    let mut ports: Vec<(i32, i32)> = answer
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.port))
        .collect();
    ports.sort_unstable();
    ports
}

async fn refused(port: u16) -> bool {
    matches!(
        TcpStream::connect(("127.0.0.1", port)).await,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

fn produce(records: &[u8]) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(bytes::Bytes::copy_from_slice(records))),
            ])])
}

/// Produces on one connection until `stop`, checking that every answer is the receipt of
/// what was sent (the fake broker answers with the records' length and digest); returns
/// how many were acknowledged, or the first failure.
async fn keep_producing(
    port: u16,
    acknowledged: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Result<u64, String> {
    let mut client = Client::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let records = format!("record {n}").into_bytes();
        let (_, answer): (_, ProduceResponse) = client
            .call(ApiKey::Produce, 9, &produce(&records))
            .await
            .map_err(|e| format!("produce {n}: {e}"))?;
        let partition = &answer.responses[0].partition_responses[0];
        if partition.base_offset != records.len() as i64
            || partition.log_append_time_ms != digest(&records)
        {
            return Err(format!("produce {n}: the answer is not its receipt"));
        }
        n += 1;
        acknowledged.store(n, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(n)
}

async fn until_count(count: &AtomicU64, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while count.load(Ordering::Relaxed) < at_least {
        assert!(
            Instant::now() < deadline,
            "the producer stalled at {}",
            count.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Two port bases far enough apart that their brokers' ports never overlap.
fn two_port_bases() -> (u16, u16) {
    let first = free_port_base(&[1, 2]);
    loop {
        let second = free_port_base(&[1, 2]);
        if second.abs_diff(first) > 2 {
            return (first, second);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_port_plan_moves_brokers_while_a_client_keeps_producing() {
    let cluster = FakeCluster::start(&[1, 2], Quirk::None).await;
    let (old, new) = two_port_bases();
    let mut dir = ConfigDir::new("plan");
    dir.write(&format!("[brokers]\nport_base = {old}\n"));
    let gw = Reloading::start(&cluster, &dir).await;
    let before = metadata_ports(gw.addr).await;
    assert_eq!(before, [(1, i32::from(old) + 1), (2, i32::from(old) + 2)]);

    // A client on broker 1's port produces throughout.
    let acknowledged = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = tokio::spawn(keep_producing(old + 1, acknowledged.clone(), stop.clone()));
    until_count(&acknowledged, 20).await;

    let reloading = Instant::now();
    dir.write(&format!("[brokers]\nport_base = {new}\n"));
    gw.reloaded("ok", 1).await;
    let at_reload = acknowledged.load(Ordering::Relaxed);
    let took = reloading.elapsed();

    // New Metadata answers name the new ports, which serve; the old ports are closed.
    let after = metadata_ports(gw.addr).await;
    assert_eq!(after, [(1, i32::from(new) + 1), (2, i32::from(new) + 2)]);
    assert_eq!(
        metadata_ports(("127.0.0.1", new + 2)).await,
        after,
        "broker 2 answers on its new port"
    );
    for port in [old + 1, old + 2] {
        assert!(refused(port).await, "old port {port} still open");
    }

    // The producer never noticed.
    until_count(&acknowledged, at_reload + 20).await;
    let listed = http_get(gw.admin, "/connections").await.1;
    stop.store(true, Ordering::Relaxed);
    let produced = producer.await.unwrap().expect("the producer went on");
    assert!(listed.contains("\"route\":\"broker-1\""), "{listed}");
    println!(
        "port plan {old} -> {new}: reload seen after {took:?}; Metadata {before:?} -> {after:?}; \
         old ports {} and {} refused; the producer on {} kept going: {produced} produces \
         acknowledged, {at_reload} before the reload was seen, none failed",
        old + 1,
        old + 2,
        old + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_keeps_the_running_configuration() {
    let cluster = FakeCluster::start(&[1, 2], Quirk::None).await;
    let (base, _) = two_port_bases();
    let mut dir = ConfigDir::new("invalid");
    dir.write(&format!("[brokers]\nport_base = {base}\n"));
    let gw = Reloading::start(&cluster, &dir).await;
    let ports = metadata_ports(gw.addr).await;

    // Not TOML; then TOML that says something impossible besides a new plan.
    dir.write("[brokers\n");
    gw.reloaded("error", 1).await;
    dir.write(&format!(
        "[brokers]\nport_base = {}\n[gateway]\nbuffer_bytes = 1\n",
        base + 3
    ));
    gw.reloaded("error", 2).await;
    assert_eq!(
        metadata_ports(gw.addr).await,
        ports,
        "the plan did not change"
    );
    let ok = "kafka_edge_reloads_total{result=\"ok\"}";
    assert_eq!(sample(&gw.metrics().await, ok), Some(0.0));

    // Fixed, it applies.
    dir.write(&format!("[brokers]\nport_base = {}\n", base + 3));
    gw.reloaded("ok", 1).await;
    assert_eq!(metadata_ports(gw.addr).await[0].1, i32::from(base) + 4);
    // Asked to (as SIGHUP asks the binary), it reads the file again.
    let before = sample(&gw.metrics().await, ok).unwrap_or_default();
    gw.asked.notify_one();
    gw.reloaded("ok", before as u32 + 1).await;
}

/// A connection that got its Metadata answer, or `None` when the gateway closed it.
async fn open(addr: SocketAddr) -> Option<Client> {
    let mut client = Client::connect(addr).await.unwrap();
    let answer: std::io::Result<(_, MetadataResponse)> = client
        .call(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    answer.ok().map(|_| client)
}

/// A lower connection limit closes nothing and admits no one until enough have left; a
/// higher one admits at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_limit_follows_the_file() {
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let base = free_port_base(&[1]);
    let mut dir = ConfigDir::new("limit");
    let file = |limit: u32| {
        format!("[gateway]\nmax_connections = {limit}\n[brokers]\nport_base = {base}\n")
    };
    dir.write(&file(2));
    let gw = Reloading::start(&cluster, &dir).await;
    let a = open(gw.addr).await.expect("first of 2");
    let b = open(gw.addr).await.expect("second of 2");
    assert!(open(gw.addr).await.is_none(), "a third is refused at 2");

    dir.write(&file(3));
    gw.reloaded("ok", 1).await;
    let c = open(gw.addr).await.expect("a third at 3");

    dir.write(&file(1));
    gw.reloaded("ok", 2).await;
    for (name, mut client) in [("a", a), ("b", b)] {
        let answer: std::io::Result<(_, MetadataResponse)> = client
            .call(ApiKey::Metadata, 12, &MetadataRequest::default())
            .await;
        assert!(answer.is_ok(), "{name} still open at 1");
        drop(client);
    }
    // Two left, one is open: still at the limit.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        open(gw.addr).await.is_none(),
        "refused while 1 of 1 is open"
    );
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if open(gw.addr).await.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "never admitted again at 1");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A broker whose address a new `[upstream] allow` leaves out loses its port; the others
/// keep theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outside_a_new_allow_list_loses_its_port() {
    let cluster = FakeCluster::start(&[1, 2], Quirk::None).await;
    // Broker 2 is reported by name: the same socket, an address the allow-list can tell.
    for broker in cluster.advertised.lock().unwrap().iter_mut() {
        if broker.0 == 2 {
            broker.1 = "localhost".into();
        }
    }
    let base = free_port_base(&[1, 2]);
    let mut dir = ConfigDir::new("allow");
    dir.write(&format!("[brokers]\nport_base = {base}\n"));
    let gw = Reloading::start(&cluster, &dir).await;
    assert_eq!(metadata_ports(("127.0.0.1", base + 2)).await.len(), 2);

    dir.write(&format!(
        "[brokers]\nport_base = {base}\n[upstream]\nallow = [\"127.0.0.0/8\"]\n"
    ));
    gw.reloaded("ok", 1).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !refused(base + 2).await {
        assert!(Instant::now() < deadline, "broker 2's port is still open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Broker 1 still serves (a Metadata answer, which names broker 2, would not pass).
    let mut client = Client::connect(("127.0.0.1", base + 1)).await.unwrap();
    let answer: std::io::Result<(_, ProduceResponse)> = client
        .call(ApiKey::Produce, 9, &produce(b"still here"))
        .await;
    assert!(answer.is_ok(), "broker 1 no longer serves: {answer:?}");
}

/// TLS to brokers follows its files: a broker CA replaced under the running gateway (the
/// configuration file untouched) is the one new broker connections are checked against.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_upstream_tls_files_are_read_again() {
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    // A TLS "cluster": a gateway with a certificate of `ours` in front of the fake one.
    let (ours, stranger) = (
        pki::Pki::new("reload-ours"),
        pki::Pki::new("reload-stranger"),
    );
    let tls_front = Gateway::start(
        toml::from_str(&ours.toml("")).unwrap(),
        Overrides {
            bootstrap_servers: vec![cluster.bootstrap()],
            advertised_host: Some("localhost".into()),
            broker_port_base: Some(free_port_base(&[1])),
            ..Overrides::default()
        },
        "127.0.0.1",
    )
    .await;
    let mut dir = ConfigDir::new("upstream-tls");
    let ca = dir.dir.join("brokers-ca.pem");
    let trust = |pki: &pki::Pki| {
        let next = ca.with_extension("next");
        std::fs::copy(pki.dir.join("ca.pem"), &next).unwrap();
        std::fs::rename(&next, &ca).unwrap();
    };
    trust(&ours);
    let base = free_port_base(&[1]);
    dir.write(&format!(
        "[brokers]\nport_base = {base}\n[upstream.tls]\nca = \"{}\"\n",
        ca.display()
    ));
    let gw = Reloading::start_for(format!("localhost:{}", tls_front.addr.port()), &dir).await;
    assert_eq!(metadata_ports(gw.addr).await, [(1, i32::from(base) + 1)]);

    trust(&stranger);
    gw.reloaded("ok", 1).await;
    let mut client = Client::connect(gw.addr).await.unwrap();
    client
        .send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    client.expect_closed().await;

    trust(&ours);
    gw.reloaded("ok", 2).await;
    assert_eq!(metadata_ports(gw.addr).await, [(1, i32::from(base) + 1)]);
}

// === the binary ===

fn hang_up(gw: &GatewayProcess) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &gw.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A configuration file the binary is started with, replaced whole (a new file renamed over
/// it, as editors and configuration tools do) so that it is never seen half-written.
struct PlainFile(PathBuf);

impl PlainFile {
    fn new(name: &str, toml: &str) -> PlainFile {
        let path = std::env::temp_dir().join(format!(
            "kafka-edge-reload-{}-{name}.toml",
            std::process::id()
        ));
        let file = PlainFile(path);
        file.replace(toml);
        file
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn replace(&self, toml: &str) {
        let next = self.0.with_extension("next");
        std::fs::write(&next, toml).unwrap();
        std::fs::rename(&next, &self.0).unwrap();
    }
}

impl Drop for PlainFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// How many lines of the log contain `needle`.
fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reloads_on_sighup_and_names_what_needs_a_restart() {
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let (base, other) = two_port_bases();
    let toml = |base: u16, gateway: &str, log: &str| {
        format!(
            "[gateway]\nthreads = 2\n{gateway}\n\
             [upstream]\nbootstrap_servers = [\"{}\"]\n\
             [brokers]\nport_base = {base}\n[log]\nlevel = \"{log}\"\n",
            cluster.bootstrap()
        )
    };
    let file = PlainFile::new("sighup", &toml(base, "", "info"));
    let gw = GatewayProcess::start(
        free_port(),
        &["--config".into(), file.path().display().to_string()],
    );
    gw.expect_log("serving broker");
    assert_eq!(
        metadata_ports(gw.addr.as_str()).await,
        [(1, i32::from(base) + 1)]
    );
    assert_eq!(count(&gw.log(), "DEBUG"), 0, "{}", gw.log());

    // SIGHUP with the file as it was: the watcher has nothing to see, the signal reloads.
    hang_up(&gw);
    gw.expect_log("configuration reloaded (asked to): nothing changed");

    // A bad file: every problem logged, the running configuration kept.
    file.replace(&toml(
        other,
        "buffer_bytes = 1\nidle_timeout_ms = 1",
        "info",
    ));
    gw.expect_log("configuration not reloaded: gateway.idle_timeout_ms must be at least 100");
    let log = gw.log();
    assert_eq!(
        count(&log, "the running one stays: 2 problem(s)"),
        1,
        "{log}"
    );
    assert_eq!(
        count(
            &log,
            "configuration not reloaded: gateway.buffer_bytes 1 is outside"
        ),
        1,
        "{log}"
    );
    assert_eq!(
        metadata_ports(gw.addr.as_str()).await,
        [(1, i32::from(base) + 1)]
    );

    // Settings that need a restart (threads, an admin endpoint) beside a new port plan and a
    // finer log level, which apply.
    let admin = free_port();
    let gateway = format!("threads = 3\n[admin]\nlisten = \"127.0.0.1:{admin}\"");
    file.replace(&toml(other, "", "debug").replace("threads = 2\n", &format!("{gateway}\n")));
    gw.expect_log("new connections get: brokers.port_base, log.level");
    let log = gw.log();
    assert_eq!(
        count(
            &log,
            "configuration changes that need a restart, not applied: gateway.threads, admin.listen"
        ),
        1,
        "one line names what waits for a restart:\n{log}"
    );
    assert_eq!(
        metadata_ports(gw.addr.as_str()).await,
        [(1, i32::from(other) + 1)]
    );
    assert!(
        refused(admin).await,
        "the admin endpoint waits for a restart"
    );
    gw.expect_log("DEBUG");
    let log = gw.log();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("configuration"))
        .collect();
    println!(
        "binary: port_base {base} -> (refused file) -> {other}; what it logged:\n{}",
        said.join("\n")
    );
}
