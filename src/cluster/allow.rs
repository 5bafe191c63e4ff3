//! The addresses brokers may have (`[upstream] allow`): networks, DNS suffixes and exact
//! names. When set, every address the gateway learns or dials must match one, so neither a
//! compromised broker nor anything else that shapes an answer can point the gateway at a
//! host outside the cluster's own network.

use std::net::IpAddr;

use ipnet::IpNet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList {
    networks: Vec<IpNet>,
    /// Lower-case, with the leading dot: `.kafka.svc.cluster.local`.
    suffixes: Vec<String>,
    /// Lower-case host names and IP literals allowed as they are.
    exact: Vec<String>,
}

impl AllowList {
    /// Reads the entries: `10.0.0.0/8` (a network), `.kafka.svc.cluster.local` (any name
    /// under that domain), `kafka-0.internal` or `10.1.2.3` (that host). Every entry that is
    /// none of these is a problem.
    pub fn parse(entries: &[String]) -> Result<AllowList, Vec<String>> {
        let mut list = AllowList {
            networks: Vec::new(),
            suffixes: Vec::new(),
            exact: Vec::new(),
        };
        let mut problems = Vec::new();
        for entry in entries {
            let text = entry.trim().trim_end_matches('.').to_ascii_lowercase();
            if text.contains('/') {
                match text.parse::<IpNet>() {
                    // A network written with host bits set is most likely a typo.
                    Ok(net) if net.trunc() == net => list.networks.push(net),
                    Ok(net) => problems.push(format!(
                        "upstream.allow: `{entry}` has host bits set; did you mean {}?",
                        net.trunc()
                    )),
                    Err(_) => problems.push(format!(
                        "upstream.allow: `{entry}` is not a network (such as 10.0.0.0/8)"
                    )),
                }
            } else if let Some(domain) = text.strip_prefix('.') {
                if is_dns_name(domain) {
                    list.suffixes.push(text.clone());
                } else {
                    problems.push(format!("upstream.allow: `{entry}` is not a DNS suffix"));
                }
            } else if text.parse::<IpAddr>().is_ok() || is_dns_name(&text) {
                list.exact.push(text);
            } else {
                problems.push(format!(
                    "upstream.allow: `{entry}` is not a network, a DNS suffix (.example.com) or a host"
                ));
            }
        }
        if problems.is_empty() {
            Ok(list)
        } else {
            Err(problems)
        }
    }

    /// Whether a broker host (a name, or an IP literal, IPv6 bracketed or not) is allowed.
    pub fn permits(&self, host: &str) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.networks.iter().any(|net| net.contains(&ip))
                || self.exact.iter().any(|e| e.parse::<IpAddr>() == Ok(ip));
        }
        self.exact.contains(&host)
            || self
                .suffixes
                .iter()
                .any(|suffix| host.ends_with(suffix.as_str()) && host.len() > suffix.len())
    }
}

fn is_dns_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn networks_suffixes_and_exact_hosts() {
        let allow = list(&[
            "10.0.0.0/8",
            "fd00::/8",
            ".kafka.svc.cluster.local",
            "Broker-7.Internal.",
        ]);
        for yes in [
            "10.1.2.3",
            "[fd00::1]",
            "fd12:3456::9",
            "kafka-0.kafka-headless.kafka.svc.cluster.local",
            "KAFKA-0.kafka.svc.cluster.local.",
            "broker-7.internal",
        ] {
            assert!(allow.permits(yes), "{yes}");
        }
        for no in [
            "11.0.0.1",
            "127.0.0.1",
            "::1",
            "kafka.svc.cluster.local",
            "evil.kafka.svc.cluster.local.attacker.example",
            "xkafka.svc.cluster.local",
            "broker-7.internal.example",
            "",
        ] {
            assert!(!allow.permits(no), "{no}");
        }
    }

    #[test]
    fn every_bad_entry_is_reported() {
        let problems = AllowList::parse(&[
            "10.0.0.1/8".to_string(),
            "10.0.0.0/33".to_string(),
            ".".to_string(),
            "not a host".to_string(),
        ])
        .unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("did you mean 10.0.0.0/8"));
    }
}
