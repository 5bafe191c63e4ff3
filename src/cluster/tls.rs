//! TLS from the gateway to the brokers: the CA that signed their certificates, an optional
//! client certificate for brokers that require mutual TLS, and the name check.

use std::io;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::{client, TlsConnector};

use crate::config::UpstreamTlsSettings;
use crate::tls::{certificates, private_key, TlsError};

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
