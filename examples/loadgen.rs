//! The librdkafka load generator of the end-to-end benchmark (`scripts/bench-e2e`).
//!
//! One binary, several modes, each run as a separate process so that `/proc` can tell broker,
//! proxy and client CPU apart:
//!
//! - `fill`: writes whole batches of about 1 MB to every partition of a topic.
//! - `produce`, `consume`, `latency`: the workloads. Each prints one JSON line with
//!   what it moved, how long it took, and the CPU ticks and memory of every `--watch`ed process
//!   (and itself) over exactly the measured window, so client start-up is never counted.
//!
//! Build: `cargo build --release --example loadgen` (librdkafka is compiled in by rdkafka-sys,
//! without TLS). `scripts/bench-e2e` builds this same file against librdkafka with OpenSSL in a
//! cache directory, so that TLS targets can be measured (`--set security.protocol=ssl`).

use std::ffi::CString;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(about = "kafka-edge end-to-end benchmark: the librdkafka load generator")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Fill every partition of a topic with whole ~1 MB batches.
    Fill(FillArgs),
    /// Produce as fast as possible for a while (acks=1, big batches, no compression).
    Produce(ProduceArgs),
    /// Read a filled topic over and over for a while.
    Consume(ConsumeArgs),
    /// Produce one message at a time and time each delivery.
    Latency(LatencyArgs),
}

#[derive(Args)]
struct Common {
    #[arg(long)]
    bootstrap: String,
    #[arg(long)]
    topic: String,
    /// `NAME=PID`: report CPU ticks and memory of this process over the measured window.
    #[arg(long = "watch")]
    watch: Vec<String>,
    /// `KEY=VALUE`: one more librdkafka setting (TLS: `security.protocol=ssl`,
    /// `ssl.ca.location=FILE`). Repeatable.
    #[arg(long = "set")]
    set: Vec<String>,
}

impl Common {
    /// The `--set` settings after the mode's own, so a run can override any of them.
    fn settings<'a>(&'a self, own: &[(&'a str, String)]) -> anyhow::Result<Vec<(&'a str, String)>> {
        let mut out = own.to_vec();
        for kv in &self.set {
            let (k, v) = kv.split_once('=').context("--set KEY=VALUE")?;
            out.push((k, v.to_owned()));
        }
        Ok(out)
    }
}

#[derive(Args)]
struct FillArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 1024)]
    record_bytes: usize,
    /// Records per batch (one batch per partition per pass; 900 x 1 KiB is about 0.93 MB).
    #[arg(long, default_value_t = 900)]
    records_per_batch: usize,
    /// Batches per partition.
    #[arg(long, default_value_t = 4)]
    batches: usize,
    /// Fill only partitions 0, N, 2N, ... (with N = the broker count: one broker's partitions).
    #[arg(long, default_value_t = 1)]
    every: i32,
}

#[derive(Args)]
struct ProduceArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 1024)]
    record_bytes: usize,
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    #[arg(long, default_value_t = 5)]
    linger_ms: u32,
    #[arg(long, default_value_t = 1_000_000)]
    batch_bytes: usize,
}

#[derive(Args)]
struct ConsumeArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
}

#[derive(Args)]
struct LatencyArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 100)]
    record_bytes: usize,
    #[arg(long, default_value_t = 2000)]
    count: usize,
    #[arg(long, default_value_t = 200)]
    warmup: usize,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.mode {
        Mode::Fill(args) => fill(args),
        Mode::Produce(args) => produce(args),
        Mode::Consume(args) => consume(args),
        Mode::Latency(args) => latency(args),
    };
    if let Err(e) = result {
        eprintln!("loadgen: {e:#}");
        std::process::exit(1);
    }
}

// === /proc ===

/// CPU ticks (utime + stime, all threads) and memory of one process at one moment.
#[derive(Clone, Copy, Default)]
struct ProcSample {
    ticks: u64,
    rss_kib: u64,
    hwm_kib: u64,
}

fn sample(pid: &str) -> ProcSample {
    let mut s = ProcSample::default();
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Fields after the command name (which may hold spaces): state is field 3, so utime
        // (field 14) and stime (15) are at indexes 11 and 12.
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            s.ticks = num(11) + num(12);
        }
    }
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        for line in status.lines() {
            let kib = |l: &str| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            if line.starts_with("VmRSS:") {
                s.rss_kib = kib(line);
            } else if line.starts_with("VmHWM:") {
                s.hwm_kib = kib(line);
            }
        }
    }
    s
}

/// Busy and total CPU ticks of the whole machine (all cores), from /proc/stat.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = f.iter().take(8).sum();
    // idle and iowait are fields 4 and 5.
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// The watched processes (and this one, as `loadgen`), sampled at the start of a window.
struct Window {
    pids: Vec<(String, String)>,
    start: Vec<ProcSample>,
    machine: (u64, u64),
    at: Instant,
}

impl Window {
    fn open(watch: &[String]) -> anyhow::Result<Window> {
        let mut pids = vec![("loadgen".to_owned(), "self".to_owned())];
        for w in watch {
            let (name, pid) = w.split_once('=').context("--watch NAME=PID")?;
            pids.push((name.to_owned(), pid.to_owned()));
        }
        let start = pids.iter().map(|(_, pid)| sample(pid)).collect();
        Ok(Window {
            pids,
            start,
            machine: machine_ticks(),
            at: Instant::now(),
        })
    }

    /// Closes the window: `"elapsed_s": .., "machine": {..}, "procs": {name: {..}}` as JSON
    /// members. `machine` is every process on the box, so what the others on a shared
    /// machine took shows up too.
    fn close(self) -> String {
        let elapsed = self.at.elapsed().as_secs_f64();
        let (busy, total) = machine_ticks();
        let mut out = format!(
            "\"elapsed_s\": {elapsed:.6}, \"machine\": {{\"busy_ticks\": {}, \"total_ticks\": {}}}, \"procs\": {{",
            busy.saturating_sub(self.machine.0),
            total.saturating_sub(self.machine.1)
        );
        for (i, ((name, pid), start)) in self.pids.iter().zip(&self.start).enumerate() {
            let end = sample(pid);
            let _ = write!(
                out,
                "{}\"{name}\": {{\"ticks\": {}, \"rss_kib_start\": {}, \"rss_kib_end\": {}, \"hwm_kib_end\": {}}}",
                if i > 0 { ", " } else { "" },
                end.ticks.saturating_sub(start.ticks),
                start.rss_kib,
                end.rss_kib,
                end.hwm_kib
            );
        }
        out.push('}');
        out
    }
}

// === producing ===

/// A producer on librdkafka's own produce call. rdkafka's `BaseProducer::send` copies every
/// payload and builds a C string of the topic per record, and its `poll` and `flush` always
/// wait out their whole timeout (up to 100 ms): costs a load generator must not add to what it
/// measures. Here a record points at one static payload (no copy, never freed), and delivery
/// reports are taken straight off the main queue the moment they arrive.
struct RawProducer {
    rkt: *mut rdkafka_sys::rd_kafka_topic_t,
    queue: *mut rdkafka_sys::rd_kafka_queue_t,
    // Owns the rd_kafka_t; dropped only after `Drop::drop` has released the topic and queue.
    inner: BaseProducer,
    sent: u64,
    ok: u64,
    failed: u64,
    last_error: Option<String>,
}

impl RawProducer {
    fn new(bootstrap: &str, topic: &str, extra: &[(&str, String)]) -> anyhow::Result<RawProducer> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", bootstrap)
            .set("acks", "1")
            .set("compression.type", "none")
            .set("enable.idempotence", "false");
        for (k, v) in extra {
            cfg.set(*k, v);
        }
        let inner: BaseProducer = cfg.create()?;
        let name = CString::new(topic)?;
        let rk = inner.client().native_ptr();
        // SAFETY: `rk` is alive for as long as `inner`, which outlives both handles (Drop).
        let (rkt, queue) = unsafe {
            (
                rdkafka_sys::rd_kafka_topic_new(rk, name.as_ptr(), std::ptr::null_mut()),
                rdkafka_sys::rd_kafka_queue_get_main(rk),
            )
        };
        if rkt.is_null() || queue.is_null() {
            bail!("cannot open topic {topic}");
        }
        Ok(RawProducer {
            rkt,
            queue,
            inner,
            sent: 0,
            ok: 0,
            failed: 0,
            last_error: None,
        })
    }

    fn partitions(&self, topic: &str) -> anyhow::Result<i32> {
        partitions(self.inner.client(), topic)
    }

    /// Enqueues one record, serving delivery reports while librdkafka's queue is full.
    fn send(&mut self, partition: i32, value: &'static [u8]) -> anyhow::Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            // SAFETY: flags 0: librdkafka neither copies nor frees the payload, which is
            // 'static and never written.
            let r = unsafe {
                rdkafka_sys::rd_kafka_produce(
                    self.rkt,
                    partition,
                    0,
                    value.as_ptr() as *mut std::ffi::c_void,
                    value.len(),
                    std::ptr::null(),
                    0,
                    std::ptr::null_mut(),
                )
            };
            if r == 0 {
                self.sent += 1;
                return Ok(());
            }
            // SAFETY: reads librdkafka's thread-local last error.
            let err = unsafe { rdkafka_sys::rd_kafka_last_error() };
            if err != rdkafka_sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__QUEUE_FULL {
                bail!("produce: {:?}", RDKafkaErrorCode::from(err));
            }
            if Instant::now() > deadline {
                bail!("producer queue full for {TIMEOUT:?}");
            }
            self.poll(1);
        }
    }

    /// Waits up to `timeout_ms` for one event, and counts the delivery reports it carries.
    fn poll(&mut self, timeout_ms: i32) {
        // SAFETY: the queue is alive; each event is destroyed once, after its messages (which
        // it owns) have been read.
        unsafe {
            let ev = rdkafka_sys::rd_kafka_queue_poll(self.queue, timeout_ms);
            if ev.is_null() {
                return;
            }
            if rdkafka_sys::rd_kafka_event_type(ev) == rdkafka_sys::RD_KAFKA_EVENT_DR {
                loop {
                    let m = rdkafka_sys::rd_kafka_event_message_next(ev);
                    if m.is_null() {
                        break;
                    }
                    let err = (*m).err;
                    if err == rdkafka_sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                        self.ok += 1;
                    } else {
                        self.failed += 1;
                        self.last_error = Some(format!("{:?}", RDKafkaErrorCode::from(err)));
                    }
                }
            }
            rdkafka_sys::rd_kafka_event_destroy(ev);
        }
    }

    fn settled(&self) -> u64 {
        self.ok + self.failed
    }

    /// Waits for every record sent so far to be delivered (or to fail).
    fn flush(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.settled() < self.sent {
            if Instant::now() > deadline {
                bail!(
                    "{} records undelivered after 60 s",
                    self.sent - self.settled()
                );
            }
            self.poll(10);
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.sent -= self.settled();
        self.ok = 0;
        self.failed = 0;
    }

    fn error(&self) -> String {
        self.last_error.clone().unwrap_or_default()
    }
}

impl Drop for RawProducer {
    fn drop(&mut self) {
        // SAFETY: both were created in `new` and are destroyed once, before `inner`.
        unsafe {
            rdkafka_sys::rd_kafka_topic_destroy(self.rkt);
            rdkafka_sys::rd_kafka_queue_destroy(self.queue);
        }
    }
}

/// Bytes that do not compress (compression is off anyway), the same in every run. Leaked:
/// librdkafka points at them until the process ends.
fn payload(len: usize) -> &'static [u8] {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let v: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    Box::leak(v.into_boxed_slice())
}

fn partitions(
    client: &rdkafka::client::Client<impl ClientContext>,
    topic: &str,
) -> anyhow::Result<i32> {
    let md = client.fetch_metadata(Some(topic), TIMEOUT)?;
    let t = md.topics().first().context("no topic in metadata")?;
    if let Some(e) = t.error() {
        bail!("topic {topic}: {e:?}");
    }
    Ok(t.partitions().len() as i32)
}

fn fill(args: FillArgs) -> anyhow::Result<()> {
    let c = &args.common;
    // One flush per pass, and a linger longer than a pass takes to enqueue: each partition
    // gets exactly one batch of `records_per_batch` records per pass.
    let mut p = RawProducer::new(
        &c.bootstrap,
        &c.topic,
        &c.settings(&[
            ("linger.ms", "300".into()),
            ("batch.size", "1000000".into()),
            ("batch.num.messages", "1000000".into()),
            ("queue.buffering.max.messages", "0".into()),
            ("queue.buffering.max.kbytes", "1048576".into()),
        ])?,
    )?;
    let parts = p.partitions(&c.topic)?;
    let value = payload(args.record_bytes);
    let step = args.every.max(1) as usize;
    for _ in 0..args.batches {
        for part in (0..parts).step_by(step) {
            for _ in 0..args.records_per_batch {
                p.send(part, value)?;
            }
        }
        p.flush()?;
    }
    if p.failed > 0 {
        bail!("{} records failed: {}", p.failed, p.error());
    }
    println!(
        "{{\"mode\": \"fill\", \"partitions\": {parts}, \"records\": {}}}",
        p.ok
    );
    Ok(())
}

fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    let c = &args.common;
    let mut p = RawProducer::new(
        &c.bootstrap,
        &c.topic,
        &c.settings(&[
            ("linger.ms", args.linger_ms.to_string()),
            ("batch.size", args.batch_bytes.to_string()),
            ("batch.num.messages", "1000000".into()),
            ("queue.buffering.max.messages", "0".into()),
            ("queue.buffering.max.kbytes", "131072".into()),
        ])?,
    )?;
    let parts = p.partitions(&c.topic)?;
    let value = payload(args.record_bytes);
    // Warm up: a connection to every partition's leader before the clock starts.
    for part in 0..parts {
        p.send(part, value)?;
    }
    p.flush()?;
    p.reset();

    // Each partition gets about one batch's worth in a row, so batches fill up.
    let per_batch = (args.batch_bytes * 9 / 10 / (args.record_bytes + 16)).max(1) as u64;
    let run_for = Duration::from_secs_f64(args.seconds);
    let window = Window::open(&c.watch)?;
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < run_for {
        for _ in 0..256 {
            let part = ((n / per_batch) % parts as u64) as i32;
            p.send(part, value)?;
            n += 1;
        }
        p.poll(0);
    }
    p.flush()?;
    let closed = window.close();
    println!(
        "{{\"mode\": \"produce\", \"records\": {}, \"failed\": {}, \"bytes\": {}, \"error\": {:?}, {closed}}}",
        p.ok,
        p.failed,
        p.ok * args.record_bytes as u64,
        p.error(),
    );
    Ok(())
}

// === consuming ===

struct Plain;

impl ClientContext for Plain {}

impl ConsumerContext for Plain {}

fn consumer(bootstrap: &str, extra: &[(&str, String)]) -> anyhow::Result<BaseConsumer<Plain>> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("group.id", "kafka-edge-bench")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true");
    for (k, v) in extra {
        cfg.set(*k, v);
    }
    Ok(cfg.create_with_context(Plain)?)
}

/// Assigns every partition of the topic from its first offset; returns those offsets.
fn assign_all(c: &BaseConsumer<Plain>, topic: &str) -> anyhow::Result<Vec<i64>> {
    let parts = partitions(c.client(), topic)?;
    let mut low = Vec::new();
    let mut tpl = TopicPartitionList::new();
    for p in 0..parts {
        let (l, h) = c.fetch_watermarks(topic, p, TIMEOUT)?;
        if h <= l {
            bail!("{topic}/{p} is empty: fill it first");
        }
        low.push(l);
        tpl.add_partition_offset(topic, p, Offset::Offset(l))?;
    }
    c.assign(&tpl)?;
    Ok(low)
}

/// The consumer's queue, read in batches. rdkafka's `BaseConsumer::poll` hands out one
/// message per call and reads the clock on each; a batch call per up to 4,096 messages keeps
/// the load generator's own work per message small.
struct ConsumerQueue {
    raw: *mut rdkafka_sys::rd_kafka_queue_t,
    batch: Vec<*mut rdkafka_sys::rd_kafka_message_t>,
}

/// What one batch held.
#[derive(Default)]
struct Batch {
    records: u64,
    bytes: u64,
    /// Partitions that reached their end.
    at_end: Vec<i32>,
}

impl ConsumerQueue {
    fn of(consumer: &BaseConsumer<Plain>) -> ConsumerQueue {
        // SAFETY: the handle is alive; the queue reference is released in Drop, and the
        // consumer outlives this value in every caller.
        let raw =
            unsafe { rdkafka_sys::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
        ConsumerQueue {
            raw,
            batch: vec![std::ptr::null_mut(); 4096],
        }
    }

    fn next(&mut self, timeout_ms: i32) -> anyhow::Result<Batch> {
        let mut out = Batch::default();
        // SAFETY: `batch` has room for the count passed; each returned message is read, then
        // destroyed exactly once.
        unsafe {
            let n = rdkafka_sys::rd_kafka_consume_batch_queue(
                self.raw,
                timeout_ms,
                self.batch.as_mut_ptr(),
                self.batch.len(),
            );
            if n < 0 {
                bail!("consume_batch_queue failed");
            }
            let mut failure = None;
            for &m in &self.batch[..n as usize] {
                match (*m).err {
                    rdkafka_sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => {
                        out.records += 1;
                        out.bytes += (*m).len as u64;
                    }
                    rdkafka_sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF => {
                        out.at_end.push((*m).partition)
                    }
                    err => failure = Some(RDKafkaErrorCode::from(err)),
                }
                rdkafka_sys::rd_kafka_message_destroy(m);
            }
            if let Some(err) = failure {
                bail!("consume: {err:?}");
            }
        }
        Ok(out)
    }
}

impl Drop for ConsumerQueue {
    fn drop(&mut self) {
        // SAFETY: obtained in `of`, released once.
        unsafe { rdkafka_sys::rd_kafka_queue_destroy(self.raw) }
    }
}

fn consume(args: ConsumeArgs) -> anyhow::Result<()> {
    let c = &args.common;
    let consumer = consumer(
        &c.bootstrap,
        &c.settings(&[("fetch.wait.max.ms", "10".into())])?,
    )?;
    let low = assign_all(&consumer, &c.topic)?;
    let mut queue = ConsumerQueue::of(&consumer);
    let run_for = Duration::from_secs_f64(args.seconds);
    let mut bytes: u64 = 0;
    let mut records: u64 = 0;
    let mut rewinds: u64 = 0;
    let mut window = None;
    let mut start = Instant::now();
    let give_up = Instant::now() + TIMEOUT;
    // The clock starts with the first record, so connecting is never counted. A partition
    // that reaches its end goes back to its start at once: reading the same filled topic again
    // is how a run lasts without filling gigabytes first (the broker serves it from page cache).
    loop {
        if window.is_some() && start.elapsed() >= run_for {
            break;
        }
        if window.is_none() && Instant::now() > give_up {
            bail!("no record within {TIMEOUT:?}");
        }
        let batch = queue.next(100)?;
        if window.is_none() && batch.records > 0 {
            // The first batch opens the window and is not counted.
            window = Some(Window::open(&c.watch)?);
            start = Instant::now();
        } else {
            bytes += batch.bytes;
            records += batch.records;
        }
        for p in batch.at_end {
            consumer.seek(&c.topic, p, Offset::Offset(low[p as usize]), Duration::ZERO)?;
            rewinds += 1;
        }
    }
    let window = window.context("no window")?;
    drop(queue);
    println!(
        "{{\"mode\": \"consume\", \"records\": {records}, \"bytes\": {bytes}, \"rewinds\": {rewinds}, {}}}",
        window.close()
    );
    Ok(())
}

// === latency ===

fn latency(args: LatencyArgs) -> anyhow::Result<()> {
    let c = &args.common;
    let mut p = RawProducer::new(
        &c.bootstrap,
        &c.topic,
        &c.settings(&[
            ("linger.ms", "0".into()),
            ("socket.nagle.disable", "true".into()),
        ])?,
    )?;
    let _ = p.partitions(&c.topic)?;
    let value = payload(args.record_bytes);
    let mut samples = Vec::with_capacity(args.count);
    let mut window = None;
    for i in 0..args.warmup + args.count {
        if i == args.warmup {
            window = Some(Window::open(&c.watch)?);
        }
        let t0 = Instant::now();
        p.send(0, value)?;
        while p.settled() < p.sent {
            if t0.elapsed() > TIMEOUT {
                bail!("no delivery report within {TIMEOUT:?}");
            }
            p.poll(100);
        }
        if i >= args.warmup {
            samples.push(t0.elapsed().as_nanos() as u64);
        }
    }
    if p.failed > 0 {
        bail!("{} deliveries failed: {}", p.failed, p.error());
    }
    samples.sort_unstable();
    let pct = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    let mean = samples.iter().sum::<u64>() as f64 / samples.len() as f64 / 1000.0;
    let window = window.context("no window")?;
    println!(
        "{{\"mode\": \"latency\", \"records\": {}, \"p50_us\": {:.1}, \"p90_us\": {:.1}, \"p99_us\": {:.1}, \"max_us\": {:.1}, \"mean_us\": {mean:.1}, {}}}",
        samples.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0),
        window.close()
    );
    Ok(())
}
