//! DescribeConfigs (key 32): a broker's configuration names addresses inside the cluster
//! (`advertised.listeners`, `listeners`, the controller quorum, ZooKeeper). An admin client
//! asking through the gateway would read them in plain text. Their values, and those of
//! their synonyms, are withheld the way Kafka withholds a password: value null,
//! `is_sensitive` true. Every other configuration passes as it came.

use super::wire::Walk;
use super::Failure;

/// Configurations whose values are addresses inside the cluster.
const ADDRESS_CONFIGS: [&[u8]; 9] = [
    b"advertised.listeners",
    b"listeners",
    b"advertised.host.name",
    b"host.name",
    b"advertised.port",
    b"port",
    b"controller.quorum.voters",
    b"controller.quorum.bootstrap.servers",
    b"zookeeper.connect",
];

fn names_an_address(name: Option<&[u8]>) -> bool {
    name.is_some_and(|name| ADDRESS_CONFIGS.contains(&name))
}

pub(super) fn rewrite(walk: &mut Walk<'_>, version: i16) -> Result<(), Failure> {
    walk.i32()?; // throttle time
    for _ in 0..walk.array()? {
        walk.i16()?; // error code
        walk.string()?; // error message
        walk.i8()?; // resource type
        walk.string()?; // resource name
        for _ in 0..walk.array()? {
            let withhold = names_an_address(walk.string()?);
            let value = walk.string_field()?;
            walk.i8()?; // read only
            walk.i8()?; // config source
            let sensitive = walk.byte_field()?;
            if withhold {
                walk.set_null(&value);
                walk.set_byte(&sensitive, 1);
            }
            for _ in 0..walk.array()? {
                let withhold = names_an_address(walk.string()?);
                let value = walk.string_field()?;
                if withhold {
                    walk.set_null(&value);
                }
                walk.i8()?; // source
                walk.flexible_tags()?;
            }
            if version >= 3 {
                walk.i8()?; // config type
                walk.string()?; // documentation
            }
            walk.flexible_tags()?;
        }
        walk.flexible_tags()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Rewrite;
    use kafka_protocol::messages::describe_configs_response::*;
    use kafka_protocol::messages::DescribeConfigsResponse;
    use kafka_protocol::protocol::Message;

    const INTERNAL: &str = "PLAINTEXT://10.213.7.2:9092";

    fn entry(name: &str, value: &str) -> DescribeConfigsResourceResult {
        DescribeConfigsResourceResult::default()
            .with_name(s(name))
            .with_value(Some(s(value)))
            .with_config_source(2)
            .with_synonyms(vec![DescribeConfigsSynonym::default()
                .with_name(s(name))
                .with_value(Some(s(value)))
                .with_source(4)])
            .with_documentation(Some(s("doc")))
    }

    fn response() -> DescribeConfigsResponse {
        DescribeConfigsResponse::default().with_results(vec![DescribeConfigsResult::default()
            .with_resource_type(4)
            .with_resource_name(s("1"))
            .with_configs(vec![
                entry("advertised.listeners", INTERNAL),
                entry("log.retention.hours", "168"),
                entry("controller.quorum.voters", "1@10.213.7.9:9093"),
            ])])
    }

    #[test]
    fn addresses_are_withheld_as_sensitive_and_the_rest_passes_at_every_version() {
        for version in DescribeConfigsResponse::VERSIONS.min..=DescribeConfigsResponse::VERSIONS.max
        {
            let book = Book::default();
            let out = round_trip(Rewrite::DescribeConfigs, version, &response(), &book).unwrap();
            let configs = &out.results[0].configs;
            for hidden in [&configs[0], &configs[2]] {
                assert_eq!(hidden.value, None, "v{version}");
                assert!(hidden.is_sensitive, "v{version}");
                assert_eq!(hidden.synonyms[0].value, None, "v{version}");
                assert_eq!(hidden.synonyms[0].source, 4, "v{version}");
            }
            let kept = &configs[1];
            assert_eq!(kept.value.as_deref(), Some("168"), "v{version}");
            assert!(!kept.is_sensitive);
            assert_eq!(kept.synonyms[0].value.as_deref(), Some("168"));
            if version >= 3 {
                assert_eq!(kept.documentation.as_deref(), Some("doc"));
            }
        }
    }

    #[test]
    fn topic_configs_come_back_as_the_same_bytes() {
        let topic =
            DescribeConfigsResponse::default().with_results(vec![DescribeConfigsResult::default()
                .with_resource_type(2)
                .with_resource_name(s("orders"))
                .with_configs(vec![entry("retention.ms", "604800000")])]);
        for version in DescribeConfigsResponse::VERSIONS.min..=DescribeConfigsResponse::VERSIONS.max
        {
            let original = frame(Rewrite::DescribeConfigs, version, 7, &topic);
            let out = super::super::response(
                Rewrite::DescribeConfigs,
                version,
                original.clone(),
                &Book::default(),
            )
            .unwrap();
            assert_eq!(out, original, "v{version}");
        }
    }
}
