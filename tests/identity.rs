//! Clients logging in at the gateway (`[client_auth]`) in front of a cluster with no SASL of
//! its own: the gateway answers ApiVersions, SaslHandshake and SaslAuthenticate itself, and
//! only a client that proved who it is gets its requests relayed. The client side of each
//! login is the gateway's own broker-login code (PLAIN, SCRAM), which speaks to a broker
//! exactly as Kafka clients do.

mod support;

use std::path::PathBuf;

use kafka_edge::cluster::sasl::{self, Mechanism, PasswordSource, SaslError, SaslSettings};
use kafka_edge::cluster::scram::Hash;
use kafka_edge::cluster::upstream::BrokerStream;
use kafka_edge::config::{File, Overrides};
use kafka_edge::edge::auth::credentials;
use kafka_protocol::messages::*;
use support::*;
use tokio::net::TcpStream;

const HOST: &str = "gw.identity.test";

/// A scratch directory with a credential file holding `alice` (SCRAM-SHA-512 and -256,
/// which PLAIN checks too), and a password file per test login.
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
            std::env::temp_dir().join(format!("kafka-edge-identity-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut file = None;
        for hash in [Hash::Sha512, Hash::Sha256] {
            let json = credentials::with_password(
                file.as_deref().map(str::as_bytes),
                "alice",
                hash,
                b"wonderland",
                4096,
                b"a salt of 16 bytes",
            )
            .unwrap();
            file = Some(json);
        }
        std::fs::write(dir.join("users.json"), file.unwrap()).unwrap();
        Files { dir }
    }

    fn password(&self, password: &str) -> PasswordSource {
        let path = self.dir.join(format!("password-{password}"));
        std::fs::write(&path, password).unwrap();
        PasswordSource::File(path)
    }

    fn config(&self, audit: bool) -> String {
        let mut toml = format!(
            "[client_auth]\nmechanisms = [\"SCRAM-SHA-512\", \"PLAIN\"]\ncredentials_file = \"{}\"\n",
            self.dir.join("users.json").display()
        );
        if audit {
            toml += &format!(
                "[audit]\nfile = \"{}\"\n",
                self.dir.join("audit.log").display()
            );
        }
        toml
    }

    fn audit(&self) -> String {
        std::fs::read_to_string(self.dir.join("audit.log")).unwrap_or_default()
    }
}

async fn gateway(cluster: &FakeCluster, toml: &str) -> Gateway {
    let file: File = toml::from_str(toml).unwrap();
    Gateway::start(
        file,
        Overrides {
            bootstrap_servers: vec![cluster.bootstrap()],
            broker_port_base: Some(free_port_base(&[1])),
            advertised_host: Some(HOST.into()),
            ..Overrides::default()
        },
        "127.0.0.1",
    )
    .await
}

/// Waits until the gateway has heard the cluster's API versions (its first refresh).
async fn ready(gw: &Gateway) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while http_get(gw.admin, "/readyz").await.0 != 200 {
        assert!(std::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn log_in(
    gw: &Gateway,
    mechanism: Mechanism,
    password: PasswordSource,
) -> (BrokerStream, Result<(), SaslError>) {
    let mut stream = BrokerStream::Plain(TcpStream::connect(gw.addr).await.unwrap());
    let settings = SaslSettings {
        mechanism,
        username: "alice".into(),
        password,
    };
    let outcome = sasl::authenticate(&mut stream, &settings, 1 << 20).await;
    (stream, outcome)
}

/// Metadata v12 over a logged-in connection.
async fn metadata_over(stream: &mut BrokerStream) -> MetadataResponse {
    let (correlation_id, request) = frame_of(ApiKey::Metadata, 12, &MetadataRequest::default());
    let answer = stream.call(&request, 1 << 20).await.unwrap();
    decode_response(ApiKey::Metadata, 12, correlation_id, answer)
}

fn frame_of<T: kafka_protocol::protocol::Encodable + kafka_protocol::protocol::HeaderVersion>(
    api: ApiKey,
    version: i16,
    body: &T,
) -> (i32, bytes::Bytes) {
    use bytes::BufMut;
    use kafka_protocol::protocol::Encodable;
    let mut out = bytes::BytesMut::new();
    out.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(77)
        .with_client_id(Some(kafka_protocol::protocol::StrBytes::from_static_str(
            "t",
        )))
        .encode(&mut out, T::header_version(version))
        .unwrap();
    body.encode(&mut out, version).unwrap();
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    (77, out.freeze())
}

#[tokio::test]
async fn clients_log_in_at_the_gateway_and_only_then_reach_the_cluster() {
    let files = Files::new("login");
    let cluster = FakeCluster::start(&[1], Quirk::None).await;
    let gw = gateway(&cluster, &files.config(true)).await;
    ready(&gw).await;

    for mechanism in [Mechanism::ScramSha512, Mechanism::Plain] {
        let (mut stream, outcome) = log_in(&gw, mechanism, files.password("wonderland")).await;
        outcome.unwrap_or_else(|e| panic!("{mechanism:?}: {e}"));
        let metadata = metadata_over(&mut stream).await;
        assert_eq!(metadata.brokers[0].host.as_str(), HOST);
        // `/connections` names who this client logged in as.
        let (_, listed) = http_get(gw.admin, "/connections").await;
        let listed: Vec<serde_json::Value> = serde_json::from_str(&listed).unwrap();
        let BrokerStream::Plain(tcp) = &stream else {
            unreachable!("logged in over plain TCP")
        };
        let local = tcp.local_addr().unwrap().to_string();
        let this = listed.iter().find(|c| c["client"] == local.as_str());
        assert_eq!(
            this.map(|c| &c["principal"]),
            Some(&"alice".into()),
            "{listed:?}"
        );
    }

    // A wrong password: refused with the broker's error, and the connection closes.
    let (mut stream, outcome) = log_in(&gw, Mechanism::ScramSha512, files.password("queen")).await;
    let refused = outcome.unwrap_err().to_string();
    assert!(refused.contains("SaslAuthenticationFailed"), "{refused}");
    let (_, request) = frame_of(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert!(stream.call(&request, 1 << 20).await.is_err(), "still open");
    let (_, outcome) = log_in(&gw, Mechanism::ScramSha256, files.password("wonderland")).await;
    assert!(
        outcome
            .unwrap_err()
            .to_string()
            .contains("does not offer SCRAM-SHA-256"),
        "a mechanism the listener does not offer"
    );

    // Nothing but a login before the login: closed, and the cluster never hears of it.
    let mut client = Client::connect(gw.addr).await.unwrap();
    client
        .send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    client.expect_closed().await;

    let (_, metrics) = http_get(gw.admin, "/metrics").await;
    for line in [
        "mechanism=\"SCRAM-SHA-512\",result=\"ok\"} 1",
        "mechanism=\"PLAIN\",result=\"ok\"} 1",
        "mechanism=\"SCRAM-SHA-512\",result=\"failed\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line} in:\n{metrics}");
    }
    // The audit log, one JSON line per login, the failed one with no password in it.
    let audit = files.audit();
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 3, "{audit}");
    assert!(lines
        .iter()
        .any(|l| l["decision"] == "allow" && l["principal"] == "alice"));
    assert!(lines.iter().any(|l| l["decision"] == "deny"));
    assert!(!audit.contains("queen") && !audit.contains("wonderland"));
}
