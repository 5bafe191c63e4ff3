//! The binary's edge: a configuration that cannot work stops it before it serves anything,
//! with exit code 64 and one line that names every problem.

use std::process::Command;

#[test]
fn a_colliding_port_plan_exits_64_naming_every_problem() {
    let config = std::env::temp_dir().join(format!("kafka-edge-cli-{}.toml", std::process::id()));
    std::fs::write(
        &config,
        "[gateway]\nlisten = \"127.0.0.1:9092\"\n\
         [upstream]\nbootstrap_servers = [\"10.0.0.1:9092\"]\n\
         [brokers]\nport_base = 19000\nports = { \"1\" = 9092, \"7\" = 19500 }\n\
         [admin]\nlisten = \"127.0.0.1:19002\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kafka-edge"))
        .args(["--config", &config.display().to_string()])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&config);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    for problem in [
        "the bootstrap port (gateway.listen) and brokers.ports both claim port 9092",
        "the admin port (admin.listen) and brokers.port_base both claim port 19002",
        "brokers.ports and brokers.port_base both claim port 19500 (port 19500: node 7 by brokers.ports and node 500 by brokers.port_base)",
    ] {
        assert!(lines[0].contains(problem), "missing {problem:?} in {stderr}");
    }
}
