//! What client-facing and broker-facing TLS share: reading certificates and keys from PEM
//! files, and the errors either side can end with.
//!
//! rustls speaks TLS 1.2 and 1.3 only, with modern cipher suites: there is nothing older to
//! switch off.

use std::io;
use std::path::Path;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

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

/// Every certificate in a PEM file; an empty file is an error, not an empty list.
pub(crate) fn certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
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

pub(crate) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Load {
        what: "a private key",
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}
