//! The audit log: one JSON line per authentication and per denial, in a file of its own,
//! apart from the operational log, for a SIEM to collect. [`line()`] formats (pure); an
//! [`AuditLog`] writes lines from a bounded queue on a thread of its own, so the data path
//! never waits on a disk: when the queue is full the line is dropped and counted, and the
//! count is logged with the next line that fits.
//!
//! ```json
//! {"ts":"2026-01-01T00:00:00.000Z","event":"authentication","principal":"alice",
//!  "client":"10.0.0.7:51234","mechanism":"SCRAM-SHA-512","decision":"allow","reason":"ok"}
//! {"ts":"2026-01-01T00:00:01.250Z","event":"denial","principal":"alice",
//!  "client":"10.0.0.7:51234","api":"Produce","resource":"topic:team-b.orders",
//!  "operation":"write","decision":"deny","reason":"resource_not_granted","error_code":29}
//! ```

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::json;

use crate::edge::auth::policy::{Operation, Resource};
use crate::edge::auth::resources::Target;
use crate::edge::auth::verdict::topic_id_text;

/// Something worth a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A login, accepted or refused. `principal` is who the client claimed to be when it
    /// was refused, if it got that far.
    Authentication {
        principal: Option<&'a str>,
        client: SocketAddr,
        mechanism: &'a str,
        allowed: bool,
        /// `ok`, or the refusal's code ([`crate::edge::auth::sasl::Refusal::code`]).
        reason: &'a str,
    },
    /// A request, or an entry of one, the policy refused.
    Denial {
        principal: &'a str,
        client: SocketAddr,
        api: &'a str,
        operation: Operation,
        /// What was refused: a resource, or a topic id the gateway has no name for.
        target: Target<'a>,
        /// [`crate::edge::auth::policy::DenyReason::code`], `unmapped_topic_id`,
        /// `unknown_resource_type`, `null_name`, or why the request closed the connection
        /// ([`crate::edge::auth::verdict::Refusal::code`], `not_logged_in`).
        reason: &'a str,
        /// The error the gateway answered with; `None` when it closed the connection
        /// instead (a request with no answer to refuse it by, as a broker closes).
        error_code: Option<i16>,
    },
}

/// The fields of a line, in the order they are written.
#[derive(Serialize)]
struct Line<'a> {
    ts: String,
    event: &'static str,
    principal: Option<&'a str>,
    client: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mechanism: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation: Option<&'static str>,
    decision: &'static str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<i16>,
}

/// One audit line, newline included.
pub fn line(event: &Event<'_>, at: SystemTime) -> String {
    let ts = rfc3339(at);
    let line = match event {
        Event::Authentication {
            principal,
            client,
            mechanism,
            allowed,
            reason,
        } => Line {
            ts,
            event: "authentication",
            principal: *principal,
            client: client.to_string(),
            mechanism: Some(mechanism),
            api: None,
            resource: None,
            operation: None,
            decision: decision(*allowed),
            reason,
            error_code: None,
        },
        Event::Denial {
            principal,
            client,
            api,
            operation,
            target,
            reason,
            error_code,
        } => Line {
            ts,
            event: "denial",
            principal: Some(principal),
            client: client.to_string(),
            mechanism: None,
            api: Some(api),
            resource: Some(target_text(target)),
            operation: Some(operation.name()),
            decision: decision(false),
            reason,
            error_code: *error_code,
        },
    };
    // serde_json escapes control characters, so a name cannot forge a line.
    let mut text = serde_json::to_string(&line).unwrap_or_default();
    text.push('\n');
    text
}

fn decision(allowed: bool) -> &'static str {
    if allowed {
        "allow"
    } else {
        "deny"
    }
}

fn target_text(target: &Target<'_>) -> String {
    match target {
        Target::Resource(resource) => resource_text(resource),
        Target::UnknownTopicId(id) => format!("topic_id:{}", topic_id_text(id)),
        Target::UnknownResourceType(t) => format!("config_resource_type:{t}"),
        Target::Null => "null".into(),
    }
}

fn resource_text(resource: &Resource<'_>) -> String {
    match resource {
        Resource::Topic(name) => format!("topic:{name}"),
        Resource::Group(name) => format!("group:{name}"),
        Resource::TransactionalId(name) => format!("transactional_id:{name}"),
        Resource::Cluster => "cluster".into(),
        Resource::AnyTopic => "topic:*".into(),
    }
}

/// UTC, milliseconds, `Z`: what SIEMs parse without a format hint.
fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days that are not negative).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// An open audit log. Dropping it lets the writer finish the queue and stop.
pub struct AuditLog {
    queue: SyncSender<String>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (appends to) `path` and starts the writer thread; `capacity` lines may wait.
    pub fn open(path: &Path, capacity: usize) -> std::io::Result<AuditLog> {
        let file = append(path)?;
        let (queue, lines) = mpsc::sync_channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            path: path.to_owned(),
            out: BufWriter::new(file),
            dropped: dropped.clone(),
            reported: 0,
        };
        std::thread::Builder::new()
            .name("kafka-edge-audit".into())
            .spawn(move || writer.run(lines))?;
        Ok(AuditLog { queue, dropped })
    }

    /// Queues a line; never blocks. A full queue drops it and counts it.
    pub fn record(&self, line: String) {
        match self.queue.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Lines dropped so far: for a metric.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

struct Writer {
    path: PathBuf,
    out: BufWriter<File>,
    dropped: Arc<AtomicU64>,
    /// Drops already written into the log.
    reported: u64,
}

impl Writer {
    fn run(mut self, lines: Receiver<String>) {
        while let Ok(line) = lines.recv() {
            self.write(&line);
            // Flush when the queue is empty: lines reach the file within one write of
            // being recorded, and bursts are written in one go.
            while let Ok(line) = lines.try_recv() {
                self.write(&line);
            }
            if let Err(e) = self.out.flush() {
                tracing::warn!(path = %self.path.display(), "audit log: cannot write: {e}");
            }
            self.reopen_if_moved();
        }
        let _ = self.out.flush();
    }

    fn write(&mut self, line: &str) {
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > self.reported {
            let note = json!({
                "ts": rfc3339(SystemTime::now()),
                "event": "audit_lines_dropped",
                "count": dropped - self.reported,
            });
            let _ = writeln!(self.out, "{note}");
            self.reported = dropped;
        }
        if let Err(e) = self.out.write_all(line.as_bytes()) {
            tracing::warn!(path = %self.path.display(), "audit log: cannot write: {e}");
        }
    }

    /// After logrotate moves the file away, lines go to a new file at the path.
    fn reopen_if_moved(&mut self) {
        use std::os::unix::fs::MetadataExt;
        let current = self.out.get_ref().metadata().ok();
        let at_path = std::fs::metadata(&self.path).ok();
        let same = match (&current, &at_path) {
            (Some(a), Some(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        if !same {
            match append(&self.path) {
                Ok(file) => self.out = BufWriter::new(file),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), "audit log: cannot reopen: {e}")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn client() -> SocketAddr {
        "10.0.0.7:51234".parse().unwrap()
    }

    #[test]
    fn lines_are_one_json_object_each() {
        let at = UNIX_EPOCH + Duration::from_millis(1_767_225_600_123);
        let login = line(
            &Event::Authentication {
                principal: Some("alice"),
                client: client(),
                mechanism: "SCRAM-SHA-512",
                allowed: true,
                reason: "ok",
            },
            at,
        );
        assert_eq!(
            login,
            "{\"ts\":\"2026-01-01T00:00:00.123Z\",\"event\":\"authentication\",\"principal\":\"alice\",\"client\":\"10.0.0.7:51234\",\"mechanism\":\"SCRAM-SHA-512\",\"decision\":\"allow\",\"reason\":\"ok\"}\n"
        );
        let denial = line(
            &Event::Denial {
                principal: "alice\n{\"forged\":1}",
                client: client(),
                api: "Produce",
                operation: Operation::Write,
                target: Target::Resource(Resource::Topic("team-b.orders")),
                reason: "resource_not_granted",
                error_code: Some(29),
            },
            at,
        );
        assert_eq!(denial.matches('\n').count(), 1, "{denial}");
        let parsed: Value = serde_json::from_str(&denial).unwrap();
        assert_eq!(parsed["principal"], "alice\n{\"forged\":1}");
        assert_eq!(parsed["resource"], "topic:team-b.orders");
        assert_eq!(parsed["operation"], "write");
        assert_eq!(parsed["decision"], "deny");
        assert_eq!(parsed["error_code"], 29);
        let unmapped = line(
            &Event::Denial {
                principal: "alice",
                client: client(),
                api: "Fetch",
                operation: Operation::Read,
                target: Target::UnknownTopicId([0xfb; 16]),
                reason: "unmapped_topic_id",
                error_code: None,
            },
            at,
        );
        let parsed: Value = serde_json::from_str(&unmapped).unwrap();
        assert_eq!(parsed["resource"], "topic_id:-_v7-_v7-_v7-_v7-_v7-w");
        assert!(parsed.get("error_code").is_none(), "closed, not answered");
        let unknown = line(
            &Event::Authentication {
                principal: None,
                client: client(),
                mechanism: "PLAIN",
                allowed: false,
                reason: "malformed",
            },
            at,
        );
        assert!(unknown.contains("\"principal\":null"), "{unknown}");
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let at = |secs: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59.000Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00.000Z");
        assert_eq!(at(1_709_210_096), "2024-02-29T12:34:56.000Z");
    }

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("kafka-edge-audit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn wait_for(path: &Path, lines: usize) -> String {
        for _ in 0..500 {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.lines().count() >= lines {
                return text;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{} never had {lines} lines", path.display());
    }

    #[test]
    fn the_writer_appends_and_follows_a_rotation() {
        let dir = temp("rotate");
        let path = dir.join("audit.log");
        std::fs::write(&path, "earlier\n").unwrap();
        let log = AuditLog::open(&path, 16).unwrap();
        log.record("one\n".into());
        assert_eq!(wait_for(&path, 2), "earlier\none\n");
        std::fs::rename(&path, dir.join("audit.log.1")).unwrap();
        // The first line after the move still lands in the moved file; the writer then
        // notices and opens a new one.
        log.record("two\n".into());
        wait_for(&dir.join("audit.log.1"), 3);
        log.record("three\n".into());
        assert_eq!(wait_for(&path, 1), "three\n");
        assert_eq!(log.dropped(), 0);
        drop(log);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let dir = temp("full");
        let path = dir.join("audit.log");
        let log = AuditLog::open(&path, 1).unwrap();
        let started = std::time::Instant::now();
        for i in 0..100_000 {
            log.record(format!("{i}\n"));
        }
        // 100k records never wait on the disk.
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(log.dropped() > 0, "a queue of one kept up with 100k lines");
        // The next line that fits carries the count of those dropped before it.
        let mut recorded = 100_000;
        loop {
            recorded += 1;
            let before = log.dropped();
            log.record("last\n".into());
            if log.dropped() == before {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(log);
        let mut text = String::new();
        for _ in 0..500 {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.ends_with("last\n") {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(text.ends_with("last\n"), "{text:.200}");
        let notes: u64 = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["event"] == "audit_lines_dropped")
            .map(|v| v["count"].as_u64().unwrap())
            .sum();
        let written = text
            .lines()
            .filter(|l| !l.contains("audit_lines_dropped"))
            .count() as u64;
        // Every line is either in the file or counted as dropped.
        assert_eq!(
            written + notes,
            recorded,
            "{notes} dropped, {written} written"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
