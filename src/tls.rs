//! Client-facing TLS: the certificate chain and key from PEM files, optional client
//! certificate authentication, and the handshake itself, run inside each connection's task
//! under a timeout.
//!
//! rustls speaks TLS 1.2 and 1.3 only, with modern cipher suites: there is nothing older to
//! switch off.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsSettings;
use crate::route::Route;

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
}

/// The client-facing TLS of a running gateway.
pub struct ClientTls {
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
}

impl ClientTls {
    /// Reads the certificate chain, key and client CA named in the settings.
    pub fn load(settings: &TlsSettings) -> Result<ClientTls, TlsError> {
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
            acceptor: TlsAcceptor::from(Arc::new(config)),
            handshake_timeout: settings.handshake_timeout,
        })
    }

    /// Completes the server side of the handshake on a fresh client connection.
    pub async fn accept(
        &self,
        tcp: TcpStream,
        route: Route,
    ) -> Result<(TlsStream<TcpStream>, Route), TlsError> {
        let stream = tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(tcp))
            .await
            .map_err(|_| TlsError::HandshakeTimeout(self.handshake_timeout))?
            .map_err(TlsError::Handshake)?;
        Ok((stream, route))
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
