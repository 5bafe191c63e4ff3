//! Client-facing TLS: the certificate chain and key from PEM files, optional client
//! certificate authentication, and the handshake itself, run inside each connection's task
//! under a timeout. In SNI mode the handshake also picks the route: the client's server name
//! is read from its hello before the handshake goes on.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::server::{Acceptor, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{LazyConfigAcceptor, TlsAcceptor};

use crate::cluster::route::{Route, SniNames};
use crate::config::TlsSettings;
use crate::tls::{certificates, private_key, TlsError};

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

    /// How long a client may take over its handshake (and, before it, its first bytes).
    pub fn handshake_timeout(&self) -> Duration {
        self.settings.handshake_timeout
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
