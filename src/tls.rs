//! Client-facing TLS: the certificate chain and key from PEM files, optional client
//! certificate authentication, and the handshake itself, run inside each connection's task
//! under a timeout. In SNI mode the handshake also picks the route: the client's server name
//! is read from its hello before the handshake goes on.
//!
//! rustls speaks TLS 1.2 and 1.3 only, with modern cipher suites: there is nothing older to
//! switch off.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{Acceptor, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{LazyConfigAcceptor, TlsAcceptor};

use crate::config::TlsSettings;
use crate::route::{Route, SniNames};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} from {path}: {reason}")]
    Load {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("TLS configuration rejected: {0}")]
    Config(String),
    #[error("TLS handshake did not finish within {0:?}")]
    HandshakeTimeout(Duration),
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
    #[error("client sent no TLS server name (SNI); this port needs one to choose a broker")]
    NoServerName,
    #[error("client asked for TLS server name {name:?}, which names no route here")]
    UnknownName { name: String },
    #[error("client asked for broker {node_id}, which the cluster has not reported")]
    UnknownNode { node_id: i32 },
}

/// The client-facing TLS of a running gateway.
pub struct ClientTls {
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
    /// SNI mode: the route comes from the server name, not from the port.
    sni: Option<SniNames>,
}

impl ClientTls {
    /// Reads the certificate chain, key and client CA named in the settings.
    pub fn load(settings: &TlsSettings, sni: Option<SniNames>) -> Result<ClientTls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match &settings.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in certificates(path, "client CA certificates")? {
                    roots
                        .add(cert)
                        .map_err(|e| TlsError::Config(e.to_string()))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| TlsError::Config(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let chain = certificates(&settings.cert, "a certificate chain")?;
        let key = PrivateKeyDer::from_pem_file(&settings.key).map_err(|e| TlsError::Load {
            what: "a private key",
            path: settings.key.display().to_string(),
            reason: e.to_string(),
        })?;
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(ClientTls {
            config: Arc::new(config),
            handshake_timeout: settings.handshake_timeout,
            sni,
        })
    }

    /// Completes the server side of the handshake on a fresh client connection, and says
    /// which route it is for: the listener's in port mode, the server name's in SNI mode,
    /// where a broker name counts only for a node the cluster has reported (`known`).
    pub async fn accept(
        &self,
        tcp: TcpStream,
        route: Route,
        known: impl Fn(i32) -> bool,
    ) -> Result<(TlsStream<TcpStream>, Route), TlsError> {
        let handshake = async {
            let Some(names) = &self.sni else {
                let stream = TlsAcceptor::from(self.config.clone())
                    .accept(tcp)
                    .await
                    .map_err(TlsError::Handshake)?;
                return Ok((stream, route));
            };
            let start = LazyConfigAcceptor::new(Acceptor::default(), tcp)
                .await
                .map_err(TlsError::Handshake)?;
            let name = start
                .client_hello()
                .server_name()
                .ok_or(TlsError::NoServerName)?
                .to_owned();
            let route = names.route(&name).ok_or(TlsError::UnknownName { name })?;
            if let Route::Broker(node_id) = route {
                if !known(node_id) {
                    return Err(TlsError::UnknownNode { node_id });
                }
            }
            let stream = start
                .into_stream(self.config.clone())
                .await
                .map_err(TlsError::Handshake)?;
            Ok((stream, route))
        };
        tokio::time::timeout(self.handshake_timeout, handshake)
            .await
            .map_err(|_| TlsError::HandshakeTimeout(self.handshake_timeout))?
    }
}

/// Every certificate in a PEM file; an empty file is an error, not an empty list.
fn certificates(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let failed = |reason: String| TlsError::Load {
        what,
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| failed(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(e.to_string()))?;
    if certs.is_empty() {
        return Err(failed("no CERTIFICATE block".into()));
    }
    Ok(certs)
}
