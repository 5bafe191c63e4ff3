//! The configuration reference as the binary prints it: the checked-in `docs/configuration.md`
//! and `config/kafka-edge.toml` are exactly what `kafka-edge config reference` and
//! `kafka-edge config example` print, so neither can go stale; and every flag the reference
//! names is one the binary takes.

use std::path::Path;
use std::process::Command;

use kafka_edge::config::reference::SECTIONS;

fn kafka_edge(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kafka-edge"))
        .args(args)
        .output()
        .expect("the kafka-edge binary runs");
    assert!(out.status.success(), "kafka-edge {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn the_checked_in_reference_is_what_the_binary_prints() {
    for (path, command) in [
        ("docs/configuration.md", "reference"),
        ("config/kafka-edge.toml", "example"),
    ] {
        let printed = kafka_edge(&["config", command]);
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        let checked_in = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            checked_in == printed,
            "{path} is stale: run `cargo run -- config {command} > {path}`"
        );
    }
}

#[test]
fn every_flag_the_reference_names_is_one_the_binary_takes() {
    let help = kafka_edge(&["--help"]);
    let flags: Vec<&str> = SECTIONS
        .iter()
        .flat_map(|section| section.keys.iter().filter_map(|key| key.flag))
        .collect();
    assert!(flags.len() >= 5, "{flags:?}");
    for flag in flags {
        assert!(
            help.split_whitespace().any(|word| word == flag),
            "no {flag} in --help:\n{help}"
        );
    }
}
