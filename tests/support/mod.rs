//! An in-process fake Kafka cluster built on kafka-protocol, a raw protocol client, and a
//! helper that runs the gateway library in front of them.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod conversation;
pub mod pki;
pub mod process;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_edge::config::{File, Overrides};
use kafka_edge::Config;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponseTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

pub const TIMEOUT: Duration = Duration::from_secs(5);

/// What every fake broker reports as the cluster: node id -> (host, port).
pub type Advertised = Arc<Mutex<Vec<(i32, String, u16)>>>;

/// How a fake broker misbehaves, for failure tests.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Quirk {
    #[default]
    None,
    /// Answers with a correlation id one higher than asked.
    WrongCorrelationId,
    /// Appends a byte to Metadata responses, as librdkafka's mock does at v13.
    TrailingByte,
    /// Answers every Fetch with a response of this many record bytes.
    BigFetch(usize),
    /// Reads requests and never answers.
    Silent,
    /// Sends half of each response, then resets the connection.
    ResetMidResponse,
    /// Answers Produce with acks=0 too, as librdkafka's mock and tansu do.
    AnswersAcksZero,
    /// Requires a SASL PLAIN login as PLAIN_USER / PLAIN_PASSWORD, as a broker's SASL
    /// listener does: offers PLAIN and SCRAM-SHA-256, refuses other credentials with
    /// SASL_AUTHENTICATION_FAILED, and closes the connection at any other request before
    /// the login (ApiVersions excepted).
    RequiresPlain,
}

/// The credentials a `Quirk::RequiresPlain` broker accepts.
pub const PLAIN_USER: &str = "edge";
pub const PLAIN_PASSWORD: &str = "pencil";
const OFFERED: [&str; 2] = ["PLAIN", "SCRAM-SHA-256"];

/// One fake broker: answers ApiVersions, Metadata, FindCoordinator, DescribeCluster, Produce
/// and Fetch. Its `name` is sent as the cluster id, so a test can tell who answered.
pub struct FakeBroker {
    pub node_id: i32,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl FakeBroker {
    pub async fn start(node_id: i32, name: &str, cluster: Advertised, quirk: Quirk) -> FakeBroker {
        FakeBroker::start_on(0, node_id, name, cluster, quirk).await
    }

    /// Starts on a given port (0 for any).
    pub async fn start_on(
        port: u16,
        node_id: i32,
        name: &str,
        cluster: Advertised,
        quirk: Quirk,
    ) -> FakeBroker {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, mut stopped) = oneshot::channel();
        let name = name.to_owned();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    accepted = listener.accept() => {
                        let (socket, _) = accepted.unwrap();
                        tokio::spawn(serve(socket, node_id, name.clone(), cluster.clone(), quirk));
                    }
                }
            }
        });
        FakeBroker {
            node_id,
            addr,
            stop: Some(stop),
        }
    }
}

async fn serve(
    mut socket: TcpStream,
    node_id: i32,
    name: String,
    cluster: Advertised,
    quirk: Quirk,
) {
    let mut logged_in = false;
    loop {
        let Ok(size) = socket.read_i32().await else {
            return;
        };
        let mut body = vec![0; size as usize];
        if socket.read_exact(&mut body).await.is_err() {
            return;
        }
        if quirk == Quirk::Silent {
            continue;
        }
        let mut body = Bytes::from(body);
        let raw_key = i16::from_be_bytes([body[0], body[1]]);
        let Ok(api_key) = ApiKey::try_from(raw_key) else {
            // An API this fake does not know: answer with the bare v0 header, echoing the
            // correlation id, so a test can see the request went through both ways.
            let correlation_id = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
            let mut out = BytesMut::new();
            out.put_i32(4);
            out.put_i32(correlation_id);
            if socket.write_all(&out).await.is_err() {
                return;
            }
            continue;
        };
        let version = i16::from_be_bytes([body[2], body[3]]);
        let header =
            RequestHeader::decode(&mut body, api_key.request_header_version(version)).unwrap();
        let before_login = !matches!(
            api_key,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        );
        if quirk == Quirk::RequiresPlain && !logged_in && before_login {
            // As Kafka's SASL listeners do: no answer, the connection closes.
            return;
        }
        let mut correlation_id = header.correlation_id;
        if quirk == Quirk::WrongCorrelationId {
            correlation_id += 1;
        }
        let response_version = if api_key == ApiKey::ApiVersions {
            0
        } else {
            api_key.response_header_version(version)
        };
        let mut out = BytesMut::new();
        out.put_i32(0);
        ResponseHeader::default()
            .with_correlation_id(correlation_id)
            .encode(&mut out, response_version)
            .unwrap();
        match api_key {
            ApiKey::ApiVersions => api_versions(quirk).encode(&mut out, version).unwrap(),
            ApiKey::Metadata => {
                metadata_of(&name, &cluster)
                    .encode(&mut out, version)
                    .unwrap();
                if quirk == Quirk::TrailingByte {
                    out.put_u8(0);
                }
            }
            ApiKey::FindCoordinator => {
                let mut response = FindCoordinatorResponse::default();
                if version < 4 {
                    response = response
                        .with_node_id(BrokerId(node_id))
                        .with_host(host_of(&cluster, node_id))
                        .with_port(port_of(&cluster, node_id));
                } else {
                    response = response.with_coordinators(vec![Coordinator::default()
                        .with_key(StrBytes::from_static_str("group"))
                        .with_node_id(BrokerId(node_id))
                        .with_host(host_of(&cluster, node_id))
                        .with_port(port_of(&cluster, node_id))]);
                }
                response.encode(&mut out, version).unwrap();
            }
            ApiKey::DescribeCluster => {
                let brokers = cluster
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(id, host, port)| {
                        describe_cluster_response::DescribeClusterBroker::default()
                            .with_broker_id(BrokerId(*id))
                            .with_host(StrBytes::from_string(host.clone()))
                            .with_port(i32::from(*port))
                    })
                    .collect();
                DescribeClusterResponse::default()
                    .with_cluster_id(StrBytes::from_string(name.clone()))
                    .with_brokers(brokers)
                    .encode(&mut out, version)
                    .unwrap();
            }
            ApiKey::Produce => {
                let request = ProduceRequest::decode(&mut body, version).unwrap();
                if request.acks == 0 && quirk != Quirk::AnswersAcksZero {
                    continue;
                }
                produce_receipt(&request).encode(&mut out, version).unwrap();
            }
            ApiKey::Fetch => {
                let records = match quirk {
                    // A repeated pattern: fast to build even unoptimised, and not all one byte.
                    Quirk::BigFetch(n) => Bytes::from(b"kafka-edge-bytes".repeat(n / 16)),
                    _ => Bytes::new(),
                };
                FetchResponse::default()
                    .with_responses(vec![fetch_response::FetchableTopicResponse::default()
                        .with_partitions(vec![
                            fetch_response::PartitionData::default().with_records(Some(records))
                        ])])
                    .encode(&mut out, version)
                    .unwrap();
            }
            ApiKey::SaslHandshake if quirk == Quirk::RequiresPlain => {
                let request = SaslHandshakeRequest::decode(&mut body, version).unwrap();
                let offered = OFFERED.contains(&request.mechanism.as_str());
                SaslHandshakeResponse::default()
                    .with_error_code(if offered { 0 } else { 33 })
                    .with_mechanisms(OFFERED.map(StrBytes::from_static_str).to_vec())
                    .encode(&mut out, version)
                    .unwrap();
            }
            ApiKey::SaslAuthenticate if quirk == Quirk::RequiresPlain => {
                let request = SaslAuthenticateRequest::decode(&mut body, version).unwrap();
                let expected = format!("\0{PLAIN_USER}\0{PLAIN_PASSWORD}");
                logged_in = request.auth_bytes == expected.as_bytes();
                let mut response = SaslAuthenticateResponse::default();
                if !logged_in {
                    response = response.with_error_code(58).with_error_message(Some(
                        StrBytes::from_static_str("Invalid username or password"),
                    ));
                }
                response.encode(&mut out, version).unwrap();
            }
            ApiKey::DescribeConfigs => {
                // A broker's own configuration names its address, as Kafka's does.
                let listener = format!(
                    "PLAINTEXT://{}:{}",
                    host_of(&cluster, node_id),
                    port_of(&cluster, node_id)
                );
                let config = |name: &str, value: &str| {
                    describe_configs_response::DescribeConfigsResourceResult::default()
                        .with_name(StrBytes::from_string(name.to_owned()))
                        .with_value(Some(StrBytes::from_string(value.to_owned())))
                };
                DescribeConfigsResponse::default()
                    .with_results(vec![
                        describe_configs_response::DescribeConfigsResult::default()
                            .with_resource_type(4)
                            .with_resource_name(StrBytes::from_string(node_id.to_string()))
                            .with_configs(vec![
                                config("advertised.listeners", &listener),
                                config("log.retention.hours", "168"),
                            ]),
                    ])
                    .encode(&mut out, version)
                    .unwrap();
            }
            ApiKey::SaslHandshake => {
                let request = SaslHandshakeRequest::decode(&mut body, version).unwrap();
                SaslHandshakeResponse::default()
                    .with_mechanisms(vec![
                        request.mechanism,
                        StrBytes::from_static_str("SCRAM-SHA-256"),
                    ])
                    .encode(&mut out, version)
                    .unwrap();
            }
            ApiKey::SaslAuthenticate => {
                // Answers with the client's bytes reversed: anything the gateway changed
                // on the way in or out would show.
                let request = SaslAuthenticateRequest::decode(&mut body, version).unwrap();
                let mut answer = request.auth_bytes.to_vec();
                answer.reverse();
                SaslAuthenticateResponse::default()
                    .with_auth_bytes(Bytes::from(answer))
                    .with_session_lifetime_ms(3_600_000)
                    .encode(&mut out, version)
                    .unwrap();
            }
            other => panic!("fake broker got unexpected {other:?}"),
        }
        let size = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&size.to_be_bytes());
        if quirk == Quirk::ResetMidResponse {
            let _ = socket.write_all(&out[..out.len() / 2]).await;
            let _ = socket.set_zero_linger();
            return;
        }
        if socket.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// Answers a Produce with, for each partition, the length of the records it got (as the base
/// offset) and a digest of them (as the append time), so a test can tell whether every byte
/// arrived as sent.
fn produce_receipt(request: &ProduceRequest) -> ProduceResponse {
    let topics = request
        .topic_data
        .iter()
        .map(|topic| {
            let partitions = topic
                .partition_data
                .iter()
                .map(|p| {
                    let records = p.records.as_deref().unwrap_or_default();
                    produce_response::PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_base_offset(records.len() as i64)
                        .with_log_append_time_ms(digest(records))
                })
                .collect();
            produce_response::TopicProduceResponse::default()
                .with_name(topic.name.clone())
                .with_partition_responses(partitions)
        })
        .collect();
    ProduceResponse::default().with_responses(topics)
}

/// A digest of `bytes` that any change, reordering or loss would alter.
pub fn digest(bytes: &[u8]) -> i64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish() as i64
}

fn host_of(cluster: &Advertised, node_id: i32) -> StrBytes {
    let cluster = cluster.lock().unwrap();
    StrBytes::from_string(cluster.iter().find(|b| b.0 == node_id).unwrap().1.clone())
}

fn port_of(cluster: &Advertised, node_id: i32) -> i32 {
    i32::from(
        cluster
            .lock()
            .unwrap()
            .iter()
            .find(|b| b.0 == node_id)
            .unwrap()
            .2,
    )
}

fn api_versions(quirk: Quirk) -> ApiVersionsResponse {
    let entry = |api: ApiKey, min: i16, max: i16| {
        ApiVersion::default()
            .with_api_key(api as i16)
            .with_min_version(min)
            .with_max_version(max)
    };
    let mut response = ApiVersionsResponse::default().with_api_keys(vec![
        entry(ApiKey::Produce, 3, 11),
        entry(ApiKey::Fetch, 4, 17),
        entry(ApiKey::Metadata, 0, 12),
        entry(ApiKey::FindCoordinator, 0, 6),
        entry(ApiKey::ApiVersions, 0, 4),
        entry(ApiKey::DescribeCluster, 0, 1),
        entry(ApiKey::DescribeConfigs, 0, 4),
        entry(ApiKey::Vote, 0, 1),
    ]);
    if quirk == Quirk::RequiresPlain {
        response.api_keys.push(entry(ApiKey::SaslHandshake, 0, 1));
        response
            .api_keys
            .push(entry(ApiKey::SaslAuthenticate, 0, 2));
    }
    response
}

fn metadata_of(name: &str, cluster: &Advertised) -> MetadataResponse {
    let brokers = cluster
        .lock()
        .unwrap()
        .iter()
        .map(|(id, host, port)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(*id))
                .with_host(StrBytes::from_string(host.clone()))
                .with_port(i32::from(*port))
        })
        .collect();
    MetadataResponse::default()
        .with_cluster_id(Some(StrBytes::from_string(name.to_owned())))
        .with_brokers(brokers)
        .with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("t"))))])
}

/// A cluster of fake brokers that advertise their real loopback addresses.
pub struct FakeCluster {
    pub advertised: Advertised,
    pub brokers: Vec<FakeBroker>,
}

impl FakeCluster {
    pub async fn start(node_ids: &[i32], quirk: Quirk) -> FakeCluster {
        let mut cluster = FakeCluster {
            advertised: Advertised::default(),
            brokers: Vec::new(),
        };
        for &id in node_ids {
            cluster.add(id, &format!("broker-{id}"), quirk).await;
        }
        cluster
    }

    /// Starts a broker and makes every broker report it (replacing an old one of that id).
    pub async fn add(&mut self, node_id: i32, name: &str, quirk: Quirk) -> SocketAddr {
        let broker = FakeBroker::start(node_id, name, self.advertised.clone(), quirk).await;
        let addr = broker.addr;
        let mut advertised = self.advertised.lock().unwrap();
        advertised.retain(|b| b.0 != node_id);
        advertised.push((node_id, addr.ip().to_string(), addr.port()));
        self.brokers.push(broker);
        addr
    }

    pub fn bootstrap(&self) -> String {
        self.brokers[0].addr.to_string()
    }

    /// Every upstream port, to check that none of them reaches a client.
    pub fn upstream_ports(&self) -> Vec<u16> {
        self.brokers.iter().map(|b| b.addr.port()).collect()
    }
}

/// A port base under which every given node id has a free port on 127.0.0.1. The base
/// rule's whole block (10,000 ports by default) stays below the ephemeral ports (32768 and
/// up on Linux) that test listeners bind, so a plan never collides with its own bootstrap or
/// admin port.
pub fn free_port_base(node_ids: &[i32]) -> u16 {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
    let mut x = seed;
    for _ in 0..1000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let base = 12000 + (x % 10700) as u16;
        if node_ids
            .iter()
            .all(|id| std::net::TcpListener::bind(("127.0.0.1", base + *id as u16)).is_ok())
        {
            return base;
        }
    }
    panic!("no free port base");
}

/// A gateway running in this process; stops when dropped.
pub struct Gateway {
    pub addr: SocketAddr,
    /// The admin endpoint (/livez, /readyz, /metrics).
    pub admin: SocketAddr,
    pub config: Config,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<Result<(), kafka_edge::gateway::StartError>>>,
}

impl Gateway {
    pub async fn start(file: File, overrides: Overrides, listen_ip: &str) -> Gateway {
        let listener = TcpListener::bind((listen_ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admin_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = admin_listener.local_addr().unwrap();
        let config = Config::resolve(
            file,
            Overrides {
                listen: Some(addr.to_string()),
                ..overrides
            },
        )
        .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let listeners = kafka_edge::Listeners {
            bootstrap: listener,
            admin: Some(admin_listener),
        };
        let task = tokio::spawn(kafka_edge::run(listeners, config.clone(), async move {
            let _ = stopped.await;
        }));
        Gateway {
            addr,
            admin,
            config,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Gateway with default settings in front of `cluster`, broker ports from `port_base`.
    pub async fn front(cluster: &FakeCluster, port_base: u16) -> Gateway {
        Gateway::start(
            File::default(),
            Overrides {
                bootstrap_servers: vec![cluster.bootstrap()],
                broker_port_base: Some(port_base),
                ..Overrides::default()
            },
            "127.0.0.1",
        )
        .await
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// GETs `path` from an admin endpoint; returns the status code and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: admin\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A raw Kafka client: sends typed requests, returns raw and decoded responses.
pub struct Client {
    pub stream: TcpStream,
    next_correlation_id: i32,
}

impl Client {
    pub async fn connect(addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<Client> {
        let stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr)).await??;
        Ok(Client {
            stream,
            next_correlation_id: 1,
        })
    }

    /// Connects with a small, fixed receive buffer (which turns off the kernel's autotuning),
    /// so a client that stops reading fills up after a few kilobytes.
    pub async fn connect_small_window(addr: SocketAddr) -> std::io::Result<Client> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(4096)?;
        let stream = tokio::time::timeout(TIMEOUT, socket.connect(addr)).await??;
        Ok(Client {
            stream,
            next_correlation_id: 1,
        })
    }

    /// Encodes a request frame without sending it.
    pub fn frame<T: Encodable + HeaderVersion>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &T,
    ) -> (i32, Bytes) {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let mut out = BytesMut::new();
        out.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("test")))
            .encode(&mut out, T::header_version(version))
            .unwrap();
        body.encode(&mut out, version).unwrap();
        let size = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&size.to_be_bytes());
        (correlation_id, out.freeze())
    }

    /// Sends a request header with no body, at any version, even one no library can encode.
    pub async fn send_bare(&mut self, api_key: i16, version: i16) -> i32 {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let mut out = BytesMut::new();
        out.put_i32(10);
        out.put_i16(api_key);
        out.put_i16(version);
        out.put_i32(correlation_id);
        out.put_i16(-1);
        self.stream.write_all(&out).await.unwrap();
        correlation_id
    }

    pub async fn send<T: Encodable + HeaderVersion>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &T,
    ) -> i32 {
        let (correlation_id, frame) = self.frame(api, version, body);
        self.stream.write_all(&frame).await.unwrap();
        correlation_id
    }

    /// Reads one whole response frame (size prefix included), or the error that ended the stream.
    pub async fn read_frame(&mut self) -> std::io::Result<Bytes> {
        let size = tokio::time::timeout(TIMEOUT, self.stream.read_i32()).await??;
        let mut frame = BytesMut::with_capacity(4 + size as usize);
        frame.put_i32(size);
        frame.resize(4 + size as usize, 0);
        tokio::time::timeout(TIMEOUT, self.stream.read_exact(&mut frame[4..])).await??;
        Ok(frame.freeze())
    }

    /// Sends a request and decodes its response, checking the correlation id.
    pub async fn call<Req, Resp>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &Req,
    ) -> std::io::Result<(Bytes, Resp)>
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable,
    {
        let correlation_id = self.send(api, version, body).await;
        let frame = self.read_frame().await?;
        Ok((
            frame.clone(),
            decode_response(api, version, correlation_id, frame),
        ))
    }

    /// Waits for the gateway to close this connection; fails if it answers instead.
    pub async fn expect_closed(&mut self) {
        let mut byte = [0u8; 1];
        match tokio::time::timeout(TIMEOUT, self.stream.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(_)) => panic!("expected the connection to close, got data"),
            Err(_) => panic!("connection still open after {TIMEOUT:?}"),
        }
    }
}

pub fn decode_response<Resp: Decodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    frame: Bytes,
) -> Resp {
    let mut body = frame.slice(4..);
    let header_version = if api == ApiKey::ApiVersions {
        0
    } else {
        api.response_header_version(version)
    };
    let header = ResponseHeader::decode(&mut body, header_version).unwrap();
    assert_eq!(header.correlation_id, correlation_id);
    let response = Resp::decode(&mut body, version).unwrap();
    assert_eq!(body.remaining(), 0, "response decodes exactly");
    response
}

/// Metadata at `version` through `addr`.
pub async fn metadata(
    addr: impl tokio::net::ToSocketAddrs,
    version: i16,
) -> (Bytes, MetadataResponse) {
    let mut client = Client::connect(addr).await.unwrap();
    client
        .call(
            ApiKey::Metadata,
            version,
            &MetadataRequest::default().with_topics(None),
        )
        .await
        .unwrap()
}

/// Asserts no byte sequence of `needle` (as text) occurs in `haystack`.
pub fn assert_absent(haystack: &[u8], needle: &str) {
    assert!(
        !haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes()),
        "found {needle:?} in what the client received"
    );
}
