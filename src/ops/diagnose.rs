//! `kafka-edge diagnose`: what the gateway would do with this configuration, seen from here.
//! It asks the cluster for its brokers and API versions the way the gateway does, checks
//! that each broker answers, and prints the map clients would be given, without serving.

use std::fmt;

use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};
use tokio_util::sync::CancellationToken;

use crate::cluster::discovery::{self, DiscoveryError};
use crate::cluster::route::host_port;
use crate::cluster::upstream;
use crate::config::Config;
use crate::gateway::{Gateway, StartError};
use crate::proxy::frame;
use crate::rewrite::api_versions;

#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cannot read the cluster's metadata")]
    Metadata(#[from] DiscoveryError),
}

/// One broker as the cluster reports it and as clients would see it.
#[derive(Debug)]
pub struct BrokerLine {
    pub node_id: i32,
    pub upstream: String,
    /// Where clients would be sent, or why this node cannot be served.
    pub advertised: Result<String, String>,
    /// Whether the gateway can connect to it from here.
    pub reachable: Result<(), String>,
}

#[derive(Debug)]
pub struct Report {
    pub cluster_id: Option<String>,
    pub brokers: Vec<BrokerLine>,
    /// `(api key, min, max)` the gateway would offer, or why they could not be read.
    pub api_versions: Result<Vec<(i16, i16, i16)>, String>,
    pub bootstrap: String,
    pub tls: bool,
    /// Whether the brokers require a SASL login (the gateway has one configured for itself):
    /// then clients need their own.
    pub sasl: bool,
}

impl Report {
    /// Whether every broker can be served and reached.
    pub fn healthy(&self) -> bool {
        self.brokers
            .iter()
            .all(|b| b.advertised.is_ok() && b.reachable.is_ok())
    }
}

pub async fn diagnose(config: Config) -> Result<Report, DiagnoseError> {
    let tls = config.tls.is_some();
    let sasl = config.upstream_sasl.is_some();
    let bootstrap = config.plan.bootstrap_address();
    let gw = Gateway::new(config, CancellationToken::new())?;
    let view = discovery::fetch(&gw).await?;
    let mut brokers = Vec::new();
    for (node_id, host, port) in view.brokers {
        let upstream = host_port(&host, port);
        brokers.push(BrokerLine {
            node_id,
            advertised: gw
                .config()
                .plan
                .advertise(node_id)
                .map(|(host, port)| host_port(&host, port))
                .map_err(|e| e.to_string()),
            reachable: upstream::probe(&gw, &upstream).await,
            upstream,
        });
    }
    brokers.sort_by_key(|b| b.node_id);
    Ok(Report {
        cluster_id: view.cluster_id,
        brokers,
        api_versions: api_versions(&gw).await,
        bootstrap,
        tls,
        sasl,
    })
}

/// ApiVersions v0 from a bootstrap server, narrowed to what the gateway offers.
async fn api_versions(gw: &Gateway) -> Result<Vec<(i16, i16, i16)>, String> {
    let (mut stream, _) = upstream::dial_bootstrap(gw)
        .await
        .map_err(|e| e.to_string())?;
    let mut request = frame::begin(64);
    RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(0)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("kafka-edge-diagnose")))
        .encode(&mut request, 1)
        .and_then(|_| ApiVersionsRequest::default().encode(&mut request, 0))
        .map_err(|e| e.to_string())?;
    let request = frame::seal(request);
    let call = stream.call(&request, gw.config().max_frame_bytes);
    let whole = tokio::time::timeout(gw.config().connect_timeout * 2, call)
        .await
        .map_err(|_| "no answer".to_owned())?
        .map_err(|e| e.to_string())?;
    api_versions::offered(&whole).map_err(|e| e.to_string())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "cluster id: {}",
            self.cluster_id.as_deref().unwrap_or("(not reported)")
        )?;
        writeln!(f, "\nbrokers:")?;
        writeln!(
            f,
            "  {:>8}  {:<32} {:<36} reachable from here",
            "node id", "upstream", "clients are told"
        )?;
        for b in &self.brokers {
            let advertised = match &b.advertised {
                Ok(a) => a.clone(),
                Err(e) => format!("NOT SERVED: {e}"),
            };
            let reachable = match &b.reachable {
                Ok(()) => "yes".to_owned(),
                Err(e) => format!("NO: {e}"),
            };
            writeln!(
                f,
                "  {:>8}  {:<32} {:<36} {reachable}",
                b.node_id, b.upstream, advertised
            )?;
        }
        writeln!(
            f,
            "\nAPI versions offered to clients (broker's range, capped by the gateway):"
        )?;
        match &self.api_versions {
            Ok(ranges) => {
                for (key, min, max) in ranges {
                    let name = ApiKey::try_from(*key)
                        .map_or_else(|_| "unknown".to_owned(), |k| format!("{k:?}"));
                    writeln!(f, "  {key:>5} {name:<32} {min}-{max}")?;
                }
            }
            Err(e) => writeln!(f, "  could not be read: {e}")?,
        }
        writeln!(f, "\nclient configuration:")?;
        writeln!(f, "  bootstrap.servers={}", self.bootstrap)?;
        let protocol = match (self.sasl, self.tls) {
            (false, false) => "PLAINTEXT",
            (false, true) => "SSL",
            (true, false) => "SASL_PLAINTEXT",
            (true, true) => "SASL_SSL",
        };
        writeln!(f, "  security.protocol={protocol}")?;
        if self.tls {
            writeln!(f, "  ssl.ca.location=<the CA that signed tls.cert>")?;
        }
        if self.sasl {
            // The gateway passes clients' logins through to the brokers untouched.
            writeln!(
                f,
                "  sasl.mechanism, sasl.username, sasl.password=<the client's own, as the brokers know them>"
            )?;
        }
        Ok(())
    }
}
