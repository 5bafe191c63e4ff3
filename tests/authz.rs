//! Authorization at the edge, end to end in process: clients log in at the gateway (SCRAM),
//! and a two-team policy decides their requests. What a principal may do reaches the fake
//! cluster; what it may not is answered by the gateway with the error a broker gives, and
//! never reaches the cluster (the fake broker panics, closing the connection, on the group,
//! transaction and ACL requests it does not serve, so a forwarded refusal would show as a
//! closed connection). Every refusal is an audit line and a count.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_edge::cluster::sasl::{self, Mechanism, PasswordSource, SaslSettings};
use kafka_edge::cluster::scram::Hash;
use kafka_edge::cluster::upstream::BrokerStream;
use kafka_edge::config::{File, Overrides};
use kafka_edge::edge::auth::credentials;
use kafka_edge::{Config, Listeners, Reloads};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};

const HOST: &str = "gw.authz.test";
const PASSWORD: &[u8] = b"correct horse";

/// A scratch directory with the credentials of `alice` (team A), `bob` (team B) and `ops`.
struct Files {
    dir: PathBuf,
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Files {
    fn new(tag: &str) -> Files {
        let dir =
            std::env::temp_dir().join(format!("kafka-edge-authz-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut file: Option<String> = None;
        for user in ["alice", "bob", "ops"] {
            file = Some(
                credentials::with_password(
                    file.as_deref().map(str::as_bytes),
                    user,
                    Hash::Sha512,
                    PASSWORD,
                    4096,
                    b"a salt of 16 bytes",
                )
                .unwrap(),
            );
        }
        std::fs::write(dir.join("users.json"), file.unwrap()).unwrap();
        std::fs::write(dir.join("password"), PASSWORD).unwrap();
        Files { dir }
    }

    fn config(&self) -> String {
        self.config_granting_alice("team-a.*")
    }

    /// The configuration, `alice` granted topics, groups and transactional ids `alice_has`.
    fn config_granting_alice(&self, alice_has: &str) -> String {
        format!(
            r#"
[client_auth]
mechanisms = ["SCRAM-SHA-512"]
credentials_file = "{users}"

[[policy.grants]]
principals = ["alice"]
operations = ["read", "write", "describe"]
topics = ["{alice_has}"]
groups = ["{alice_has}"]
transactional_ids = ["{alice_has}"]

[[policy.grants]]
principals = ["bob"]
operations = ["read", "write", "describe"]
topics = ["team-b.*", "t"]
groups = ["team-b.*"]
transactional_ids = ["team-b.*"]

[audit]
file = "{audit}"
"#,
            users = self.dir.join("users.json").display(),
            audit = self.dir.join("audit.log").display(),
        )
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

async fn gateway(cluster: &FakeCluster, toml: &str) -> Gateway {
    let file: File = toml::from_str(toml).unwrap();
    let gw = Gateway::start(
        file,
        Overrides {
            bootstrap_servers: vec![cluster.bootstrap()],
            broker_port_base: Some(free_port_base(&[1])),
            advertised_host: Some(HOST.into()),
            ..Overrides::default()
        },
        "127.0.0.1",
    )
    .await;
    // Ready once it has heard the cluster's API versions, which logins need.
    let deadline = std::time::Instant::now() + TIMEOUT;
    while http_get(gw.admin, "/readyz").await.0 != 200 {
        assert!(std::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    gw
}

/// A connection logged in at the gateway at `addr` as `user`.
async fn log_in(addr: SocketAddr, files: &Files, user: &str) -> BrokerStream {
    let mut stream = BrokerStream::Plain(TcpStream::connect(addr).await.unwrap());
    let settings = SaslSettings {
        mechanism: Mechanism::ScramSha512,
        username: user.into(),
        password: PasswordSource::File(files.dir.join("password")),
    };
    sasl::authenticate(&mut stream, &settings, 1 << 20)
        .await
        .unwrap_or_else(|e| panic!("{user} logs in: {e}"));
    stream
}

fn frame<T: Encodable + HeaderVersion>(api: ApiKey, version: i16, id: i32, body: &T) -> Bytes {
    use bytes::BufMut;
    let mut out = bytes::BytesMut::new();
    out.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(id)
        .with_client_id(Some(StrBytes::from_static_str("authz-test")))
        .encode(&mut out, T::header_version(version))
        .unwrap();
    body.encode(&mut out, version).unwrap();
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out.freeze()
}

/// Sends one request and decodes its answer.
async fn call<Req, Resp>(stream: &mut BrokerStream, api: ApiKey, version: i16, body: &Req) -> Resp
where
    Req: Encodable + HeaderVersion,
    Resp: kafka_protocol::protocol::Decodable,
{
    let answer = stream
        .call(&frame(api, version, 41, body), 1 << 20)
        .await
        .unwrap_or_else(|e| panic!("{api:?} was answered: {e}"));
    decode_response(api, version, 41, answer)
}

fn produce(acks: i16, topic: &str) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from_static(b"seven bytes")))])])
}

fn topics_of(metadata: &MetadataResponse) -> Vec<String> {
    metadata
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect()
}

#[tokio::test]
async fn each_team_reaches_its_own_topics_groups_and_transactions_only() {
    let files = Files::new("teams");
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let gw = gateway(&cluster, &files.config()).await;
    let mut alice = log_in(gw.addr, &files, "alice").await;

    // Its own topic: forwarded, and the fake broker's receipt says it got all seven bytes.
    let own: ProduceResponse = call(
        &mut alice,
        ApiKey::Produce,
        9,
        &produce(-1, "team-a.orders"),
    )
    .await;
    let receipt = &own.responses[0].partition_responses[0];
    assert_eq!((receipt.error_code, receipt.base_offset), (0, 11));

    // Another team's topic: refused by the gateway.
    let other: ProduceResponse = call(
        &mut alice,
        ApiKey::Produce,
        9,
        &produce(-1, "team-b.orders"),
    )
    .await;
    assert_eq!(other.responses[0].name.as_str(), "team-b.orders");
    assert_eq!(
        other.responses[0].partition_responses[0].error_code, 29,
        "TOPIC_AUTHORIZATION_FAILED"
    );

    // Another team's consumer group.
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("team-b.readers")))
        .with_session_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"));
    let joined: JoinGroupResponse = call(&mut alice, ApiKey::JoinGroup, 9, &join).await;
    assert_eq!(joined.error_code, 30, "GROUP_AUTHORIZATION_FAILED");

    // Another team's transactional id.
    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str(
            "team-b.payments-tx",
        ))))
        .with_transaction_timeout_ms(60_000);
    let inited: InitProducerIdResponse = call(&mut alice, ApiKey::InitProducerId, 5, &init).await;
    assert_eq!(
        inited.error_code, 53,
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
    );

    // An operation on the cluster itself, without cluster_admin.
    let acl = CreateAclsRequest::default().with_creations(vec![
        create_acls_request::AclCreation::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("team-b.orders"))
            .with_resource_pattern_type(3)
            .with_principal(StrBytes::from_static_str("User:alice"))
            .with_host(StrBytes::from_static_str("*"))
            .with_operation(2)
            .with_permission_type(3),
    ]);
    let created: CreateAclsResponse = call(&mut alice, ApiKey::CreateAcls, 3, &acl).await;
    assert_eq!(
        created.results[0].error_code, 31,
        "CLUSTER_AUTHORIZATION_FAILED"
    );

    // The connection is still in step: its own topic again.
    let again: ProduceResponse = call(
        &mut alice,
        ApiKey::Produce,
        9,
        &produce(-1, "team-a.orders"),
    )
    .await;
    assert_eq!(again.responses[0].partition_responses[0].error_code, 0);

    // Metadata lists what each principal may describe: the cluster's one topic, "t", is
    // bob's, not alice's; the brokers are the gateway's either way.
    let all = MetadataRequest::default().with_topics(None);
    let seen_by_alice: MetadataResponse = call(&mut alice, ApiKey::Metadata, 12, &all).await;
    assert_eq!(topics_of(&seen_by_alice), Vec::<String>::new());
    assert_eq!(seen_by_alice.brokers[0].host.as_str(), HOST);
    let mut bob = log_in(gw.addr, &files, "bob").await;
    let seen_by_bob: MetadataResponse = call(&mut bob, ApiKey::Metadata, 12, &all).await;
    assert_eq!(topics_of(&seen_by_bob), ["t"]);
    assert_eq!(seen_by_bob.brokers[0].host.as_str(), HOST);

    // An acks=0 Produce gets no answer to refuse it by: the gateway closes the connection,
    // as a broker does.
    let BrokerStream::Plain(tcp) = &mut bob else {
        panic!("a plain connection")
    };
    tcp.write_all(&frame(ApiKey::Produce, 9, 50, &produce(0, "team-a.orders")))
        .await
        .unwrap();
    let after = frame(ApiKey::Metadata, 12, 51, &all);
    assert!(bob.call(&after, 1 << 20).await.is_err(), "still open");

    // One audit line per refusal, naming who, from where, what and why (written by a thread
    // of its own: waited for).
    let deadline = std::time::Instant::now() + TIMEOUT;
    let lines = loop {
        let lines: Vec<_> = files
            .audit()
            .into_iter()
            .filter(|l| l["event"] == "denial")
            .collect();
        if lines.len() >= 5 || std::time::Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let denials: Vec<(String, String, String, Option<i64>)> = lines
        .iter()
        .map(|l| {
            assert!(
                l["client"].as_str().unwrap().starts_with("127.0.0.1:"),
                "{l}"
            );
            assert_eq!(l["decision"], "deny");
            (
                l["principal"].as_str().unwrap().to_owned(),
                l["api"].as_str().unwrap().to_owned(),
                l["resource"].as_str().unwrap().to_owned(),
                l["error_code"].as_i64(),
            )
        })
        .collect();
    let expected = [
        ("alice", "Produce", "topic:team-b.orders", Some(29)),
        ("alice", "JoinGroup", "group:team-b.readers", Some(30)),
        (
            "alice",
            "InitProducerId",
            "transactional_id:team-b.payments-tx",
            Some(53),
        ),
        ("alice", "CreateAcls", "cluster", Some(31)),
        ("bob", "Produce", "topic:team-a.orders", None),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(p, a, r, e)| (p.to_string(), a.to_string(), r.to_string(), *e))
        .collect();
    assert_eq!(denials, expected);

    let (_, metrics) = http_get(gw.admin, "/metrics").await;
    for line in [
        "kafka_edge_authorization_denials_total{api=\"Produce\",resource=\"topic\"} 2",
        "kafka_edge_authorization_denials_total{api=\"JoinGroup\",resource=\"group\"} 1",
        "kafka_edge_authorization_denials_total{api=\"InitProducerId\",resource=\"transactional_id\"} 1",
        "kafka_edge_authorization_denials_total{api=\"CreateAcls\",resource=\"cluster\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line} in:\n{metrics}");
    }
    gw.stop().await;
}

/// Produces one batch to `topic` and gives the partition's error code.
async fn produce_error(stream: &mut BrokerStream, topic: &str) -> i16 {
    let r: ProduceResponse = call(stream, ApiKey::Produce, 9, &produce(-1, topic)).await;
    r.responses[0].partition_responses[0].error_code
}

#[tokio::test]
async fn a_reloaded_policy_applies_to_new_connections_while_open_ones_keep_theirs() {
    let files = Files::new("reload");
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let path = files.dir.join("kafka-edge.toml");
    std::fs::write(&path, files.config_granting_alice("team-a.*")).unwrap();
    let bootstrap = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, admin_addr) = (bootstrap.local_addr().unwrap(), admin.local_addr().unwrap());
    let overrides = Overrides {
        bootstrap_servers: vec![cluster.bootstrap()],
        listen: Some(addr.to_string()),
        broker_port_base: Some(free_port_base(&[1])),
        advertised_host: Some(HOST.into()),
        ..Overrides::default()
    };
    let load = {
        let path = path.clone();
        move || Config::resolve(File::load(&path)?, overrides.clone())
    };
    let config = load().unwrap();
    let asked = Arc::new(Notify::new());
    let reloads = Reloads {
        load: Box::new(load),
        watch: None,
        check_every: Duration::from_secs(3600),
        asked: asked.clone(),
        apply: Box::new(|_| {}),
    };
    let (_stop, stopped) = oneshot::channel::<()>();
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
    let deadline = std::time::Instant::now() + TIMEOUT;
    while http_get(admin_addr, "/readyz").await.0 != 200 {
        assert!(std::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut before = log_in(addr, &files, "alice").await;
    assert_eq!(produce_error(&mut before, "team-a.orders").await, 0);
    assert_eq!(produce_error(&mut before, "team-c.orders").await, 29);

    // Alice moves from team A to team C.
    std::fs::write(&path, files.config_granting_alice("team-c.*")).unwrap();
    asked.notify_one();
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let (_, metrics) = http_get(admin_addr, "/metrics").await;
        if metrics.contains("kafka_edge_reloads_total{result=\"ok\"} 1") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never reloaded:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The open connection keeps the rules it was admitted under; a new one has the new.
    assert_eq!(produce_error(&mut before, "team-a.orders").await, 0);
    assert_eq!(produce_error(&mut before, "team-c.orders").await, 29);
    let mut after = log_in(addr, &files, "alice").await;
    assert_eq!(produce_error(&mut after, "team-a.orders").await, 29);
    assert_eq!(produce_error(&mut after, "team-c.orders").await, 0);
}
