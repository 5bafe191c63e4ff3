//! `kafka-edge demo`, the README's first command, run as a user would: the binary's own mock
//! cluster behind the gateway, and its client listing brokers, producing and consuming
//! through it. Nothing else runs the demo, so nothing else would notice it broke.
#![cfg(feature = "demo")]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A base port with base+1..=3 free on 127.0.0.1, for the demo's three brokers, and base-1
/// free for the bootstrap port: below the base rule's block of ports, which the gateway
/// checks at startup, and whose 10,000 ports stay below the ephemeral range.
fn free_base() -> u16 {
    let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
    let start = 12001 + (std::process::id() % 10000) as u16;
    (start..22700)
        .chain(12001..start)
        .find(|base| free(base - 1) && (1..=3).all(|i| free(base + i)))
        .expect("a free block of ports")
}

#[test]
fn demo_lists_produces_and_consumes_through_the_gateway() {
    let base = free_base();
    let listen = format!("127.0.0.1:{}", base - 1);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kafka-edge"))
        .args([
            "demo",
            "--listen",
            &listen,
            "--broker-port-base",
            &base.to_string(),
        ])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the kafka-edge binary runs");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut log = Vec::new();
    let done = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let finished = line.contains("demo: try") || line.contains("demo check failed");
                log.push(line);
                if finished {
                    break true;
                }
            }
            // The process ended (its stderr closed) or the time ran out.
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let log = log.join("\n");
    assert!(done, "the demo never finished its check:\n{log}");
    assert!(!log.contains("demo check failed"), "{log}");
    for n in 1..=3 {
        let seen = format!("demo client sees broker {n} at 127.0.0.1:{}", base + n);
        assert!(log.contains(&seen), "missing {seen:?} in:\n{log}");
    }
    assert_eq!(log.matches("demo client consumed").count(), 5, "{log}");
}
