//! Client-facing TLS: the certificate chain and key from PEM files, optional client
//! certificate authentication, and the handshake itself, run inside each connection's task
//! under a timeout. In SNI mode the handshake also picks the route: the client's server name
//! is read from its hello before the handshake goes on.
//!
//! rustls speaks TLS 1.2 and 1.3 only, with modern cipher suites: there is nothing older to
//! switch off.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{Acceptor, WebPkiClientVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{client, LazyConfigAcceptor, TlsAcceptor, TlsConnector};

use crate::config::{TlsSettings, UpstreamTlsSettings};
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
    settings: TlsSettings,
    /// Swapped whole when the files change; a handshake in progress or a connection already
    /// made keeps the configuration it started with.
    config: RwLock<Arc<ServerConfig>>,
    /// What the files looked like when `config` was read from them.
    loaded: Mutex<Option<Fingerprint>>,
    /// SNI mode: the route comes from the server name, not from the port.
    sni: Option<SniNames>,
}

/// Size and modification time of each TLS file: enough to notice a rotation, including the
/// symlink swap of a Kubernetes secret volume (metadata follows the link).
type Fingerprint = Vec<Option<(u64, SystemTime)>>;

impl ClientTls {
    /// Reads the certificate chain, key and client CA named in the settings.
    pub fn load(settings: &TlsSettings, sni: Option<SniNames>) -> Result<ClientTls, TlsError> {
        let fingerprint = fingerprint(settings);
        Ok(ClientTls {
            config: RwLock::new(Arc::new(server_config(settings)?)),
            loaded: Mutex::new(Some(fingerprint)),
            settings: settings.clone(),
            sni,
        })
    }

    /// Re-reads the files if they changed since they were last read successfully. New
    /// handshakes use the new certificate; existing connections are not touched. A failed
    /// read keeps the old configuration and is tried again at the next check.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = fingerprint(&self.settings);
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if loaded.as_ref() == Some(&now) {
            return Ok(false);
        }
        let config = server_config(&self.settings)?;
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
        *loaded = Some(now);
        Ok(true)
    }

    /// How often the files are checked for a rotation.
    pub fn reload_check(&self) -> Duration {
        self.settings.reload_check
    }

    fn current(&self) -> Arc<ServerConfig> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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
                let stream = TlsAcceptor::from(self.current())
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
                .into_stream(self.current())
                .await
                .map_err(TlsError::Handshake)?;
            Ok((stream, route))
        };
        let limit = self.settings.handshake_timeout;
        tokio::time::timeout(limit, handshake)
            .await
            .map_err(|_| TlsError::HandshakeTimeout(limit))?
    }
}

/// The server configuration the settings' files describe.
fn server_config(settings: &TlsSettings) -> Result<ServerConfig, TlsError> {
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
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let chain = certificates(&settings.cert, "a certificate chain")?;
    let key = private_key(&settings.key)?;
    builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))
}

fn fingerprint(settings: &TlsSettings) -> Fingerprint {
    [
        Some(&settings.cert),
        Some(&settings.key),
        settings.client_ca.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.len(), meta.modified().ok()?))
    })
    .collect()
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

/// TLS from the gateway to the brokers.
pub struct UpstreamTls {
    connector: TlsConnector,
}

impl UpstreamTls {
    /// Reads the CA bundle and the optional client certificate.
    pub fn load(settings: &UpstreamTlsSettings) -> Result<UpstreamTls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in certificates(&settings.ca, "broker CA certificates")? {
            roots
                .add(cert)
                .map_err(|e| TlsError::Config(e.to_string()))?;
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let verifier: Arc<dyn ServerCertVerifier> = if settings.verify_hostname {
            webpki
        } else {
            tracing::warn!(
                "upstream.tls.verify_hostname = false: broker certificates are checked against the CA \
                 but not against the broker's name; anyone with a certificate from that CA can pose as any broker"
            );
            Arc::new(AnyNameFromCa(webpki))
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &settings.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    certificates(cert, "a client certificate chain")?,
                    private_key(key)?,
                )
                .map_err(|e| TlsError::Config(e.to_string()))?,
        };
        Ok(UpstreamTls {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// Runs the client side of the handshake with a broker dialled as `host`.
    pub async fn connect(
        &self,
        tcp: TcpStream,
        host: &str,
    ) -> io::Result<client::TlsStream<TcpStream>> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.connector.connect(name, tcp).await
    }
}

/// Verifies a broker's chain against the CA but accepts any name in it: the explicit opt-out
/// for clusters whose certificates do not name the addresses brokers advertise.
#[derive(Debug)]
struct AnyNameFromCa(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyNameFromCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Load {
        what: "a private key",
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}
