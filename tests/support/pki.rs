//! A throwaway certificate authority: a server certificate for `localhost` and
//! `*.kafka.test`, a client certificate, the files a gateway's `[tls]` reads, and client
//! connectors that trust it.

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsConnector;

pub struct Pki {
    pub dir: PathBuf,
    ca: CertificateDer<'static>,
    client_cert: CertificateDer<'static>,
    client_key: String,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Pki {
    pub fn new(tag: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("kafka-edge-tls-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        // One certificate for port mode (localhost) and SNI mode (a wildcard for the domain).
        let server =
            CertificateParams::new(vec!["localhost".to_owned(), "*.kafka.test".to_owned()])
                .unwrap()
                .signed_by(&server_key, &ca)
                .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client = CertificateParams::new(vec!["client.test".to_owned()])
            .unwrap()
            .signed_by(&client_key, &ca)
            .unwrap();
        // The chain file holds the leaf and its issuer, as deployments usually ship it.
        std::fs::write(
            dir.join("server.pem"),
            format!("{}{}", server.pem(), ca.pem()),
        )
        .unwrap();
        std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Pki {
            dir,
            ca: ca.der().clone(),
            client_cert: client.der().clone(),
            client_key: client_key.serialize_pem(),
        }
    }

    pub fn toml(&self, extra: &str) -> String {
        format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n{extra}\n",
            self.dir.join("server.pem").display(),
            self.dir.join("server.key").display()
        )
    }

    pub fn connector(&self, with_client_cert: bool) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = if with_client_cert {
            use rustls::pki_types::pem::PemObject;
            let key = PrivateKeyDer::from_pem_slice(self.client_key.as_bytes()).unwrap();
            builder
                .with_client_auth_cert(vec![self.client_cert.clone()], key)
                .unwrap()
        } else {
            builder.with_no_client_auth()
        };
        TlsConnector::from(Arc::new(config))
    }
}
