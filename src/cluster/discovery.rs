//! The gateway asks the cluster for its brokers itself, at startup and then periodically.
//!
//! Clients learn brokers through the gateway anyway, but a replica that has never relayed a
//! Metadata response would otherwise have no broker listeners: a client that bootstrapped
//! through another replica behind the same load balancer would find the broker ports closed.
//! Asking the cluster directly opens them everywhere, and notices moved brokers sooner.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, MetadataRequest, RequestHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::cluster::sasl::{self, SaslError};
use crate::cluster::upstream::{self, CallError, UpstreamError};
use crate::edge::versions::{self, ClusterVersions};
use crate::gateway::Gateway;
use crate::proxy::frame;
use crate::rewrite::api_versions;
use crate::rewrite::metadata::{self, ClusterView};
use crate::rewrite::AddressBook;

/// Metadata v4: served by every broker since Kafka 1.0, and able to ask for brokers alone
/// (an empty topic list) without auto-creating anything.
const METADATA_VERSION: i16 = 4;
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error(transparent)]
    Connect(#[from] UpstreamError),
    #[error("asking {addr}: {reason}")]
    Call { addr: String, reason: CallError },
    #[error("cannot log in to {addr}: {error}")]
    Login { addr: String, error: SaslError },
    #[error("{addr} closed the connection at the Metadata request and answers SASL handshakes: its listener requires authentication; configure [upstream.sasl] for the gateway's own requests{}", offers(.offered))]
    LoginRequired { addr: String, offered: Vec<String> },
    #[error("{addr} did not answer within {REPLY_TIMEOUT:?}")]
    Timeout { addr: String },
    #[error("cannot decode the Metadata answer from {addr}: {reason}")]
    Decode { addr: String, reason: String },
}

fn offers(mechanisms: &[String]) -> String {
    if mechanisms.is_empty() {
        String::new()
    } else {
        format!(" (the broker offers: {})", mechanisms.join(", "))
    }
}

/// Refreshes the broker table until shutdown.
pub async fn run(gw: Arc<Gateway>) {
    let mut healthy = None;
    let mut unserved = Vec::new();
    loop {
        match refresh(&gw).await {
            Ok(refreshed) => {
                gw.metrics.set_ready(true);
                if healthy != Some(true) {
                    tracing::info!(brokers = refreshed.brokers, "cluster metadata received");
                }
                healthy = Some(true);
                // Said when it changes, not at every refresh.
                if refreshed.unserved != unserved {
                    for problem in &refreshed.unserved {
                        tracing::error!(side = "gateway", "broker not served: {problem}");
                    }
                    unserved = refreshed.unserved;
                }
            }
            Err(e) => {
                // Said once per change of state, not at every retry.
                if healthy != Some(false) {
                    tracing::warn!(side = "broker", "cannot read cluster metadata: {e}");
                }
                healthy = Some(false);
            }
        }
        tokio::select! {
            _ = gw.shutdown.cancelled() => return,
            _ = tokio::time::sleep(gw.config().metadata_refresh) => {}
        }
    }
}

/// What one refresh found.
#[derive(Debug)]
pub struct Refreshed {
    /// Brokers the cluster reported.
    pub brokers: usize,
    /// Why some of them are not served (no port for the node id, outside upstream.allow, a
    /// port that cannot be bound); the rest are.
    pub unserved: Vec<String>,
}

/// Asks one bootstrap server for the broker list, learns every broker in it that can be
/// served, and retires those the cluster has stopped reporting.
pub async fn refresh(gw: &Gateway) -> Result<Refreshed, DiscoveryError> {
    let view = fetch(gw).await?;
    let unserved = view
        .brokers
        .iter()
        .filter_map(|(node_id, host, port)| gw.learn(*node_id, host, *port).err())
        .map(|e| e.to_string())
        .collect();
    let reported: Vec<i32> = view.brokers.iter().map(|(id, _, _)| *id).collect();
    gw.retire_unreported(&reported);
    Ok(Refreshed {
        brokers: reported.len(),
        unserved,
    })
}

/// The cluster's own answer to a Metadata request for brokers only, from one bootstrap
/// server. Read with the rewrite's bounds-checked walk: nothing is allocated from a count the
/// broker sent before its bytes are there.
pub async fn fetch(gw: &Gateway) -> Result<ClusterView, DiscoveryError> {
    let (mut stream, addr) = upstream::dial_bootstrap(gw).await?;
    let max_frame = gw.config().max_frame_bytes;
    let ask = async {
        if let Some(settings) = &gw.config().upstream_sasl {
            sasl::authenticate(&mut stream, settings, max_frame)
                .await
                .map_err(|error| DiscoveryError::Login {
                    addr: addr.clone(),
                    error,
                })?;
        }
        if gw.edge_auth().is_some() {
            // The edge answers ApiVersions itself for clients that log in at the gateway:
            // with the cluster's versions, as of this refresh.
            let answer = stream
                .call(&versions_request(), max_frame)
                .await
                .map_err(|reason| DiscoveryError::Call {
                    addr: addr.clone(),
                    reason,
                })?;
            let rewritten = api_versions::rewrite(&answer, versions::CLUSTER_VERSION)
                .and_then(|rewritten| ClusterVersions::read(&rewritten))
                .map_err(|e| DiscoveryError::Decode {
                    addr: addr.clone(),
                    reason: format!("ApiVersions: {e}"),
                })?;
            gw.set_cluster_versions(rewritten);
        }
        stream
            .call(&request(), max_frame)
            .await
            .map_err(|reason| DiscoveryError::Call {
                addr: addr.clone(),
                reason,
            })
    };
    let answer = tokio::time::timeout(REPLY_TIMEOUT, ask)
        .await
        .map_err(|_| DiscoveryError::Timeout { addr: addr.clone() })?;
    let whole = match answer {
        Err(DiscoveryError::Call { addr, reason }) if gw.config().upstream_sasl.is_none() => {
            return Err(explain(gw, addr, reason).await);
        }
        other => other?,
    };
    metadata::view(&whole, METADATA_VERSION).map_err(|e| DiscoveryError::Decode {
        addr,
        reason: e.to_string(),
    })
}

/// A broker whose listener requires SASL closes the connection at a Metadata request sent
/// before a login, which reads like any other broken connection. Asked again, on a new
/// connection, whether it wants a login, such a broker says so; then that is the error.
async fn explain(gw: &Gateway, addr: String, reason: CallError) -> DiscoveryError {
    let look = async {
        let mut stream = upstream::redial_bootstrap(gw, &addr).await?;
        sasl::requires_login(&mut stream, gw.config().max_frame_bytes).await
    };
    match tokio::time::timeout(REPLY_TIMEOUT, look).await {
        Ok(Some(offered)) => DiscoveryError::LoginRequired { addr, offered },
        _ => DiscoveryError::Call { addr, reason },
    }
}

/// ApiVersions at the version whose answer the edge answers clients from.
fn versions_request() -> Bytes {
    let version = versions::CLUSTER_VERSION;
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(version)
        .with_correlation_id(2)
        .with_client_id(Some(StrBytes::from_static_str("kafka-edge")));
    let body = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("kafka-edge"))
        .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
    let mut out = frame::begin(64);
    // Fixed values encoded at a version both types support: this cannot fail.
    let encoded = header
        .encode(
            &mut out,
            ApiKey::ApiVersions.request_header_version(version),
        )
        .and_then(|_| body.encode(&mut out, version));
    debug_assert!(encoded.is_ok());
    frame::seal(out)
}

fn request() -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(METADATA_VERSION)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("kafka-edge")));
    // An empty topic list asks for brokers only.
    let body = MetadataRequest::default()
        .with_topics(Some(Vec::new()))
        .with_allow_auto_topic_creation(false);
    let mut out = frame::begin(64);
    // Fixed values encoded at a version both types support: this cannot fail.
    let encoded = header
        .encode(
            &mut out,
            ApiKey::Metadata.request_header_version(METADATA_VERSION),
        )
        .and_then(|_| body.encode(&mut out, METADATA_VERSION));
    debug_assert!(encoded.is_ok());
    frame::seal(out)
}
