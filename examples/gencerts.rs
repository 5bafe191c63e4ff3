//! Writes a throwaway PKI for the real-client TLS tests: a CA, a server certificate for the
//! given names, and a client certificate, as PEM files. Nothing it writes is committed.
//!
//!     cargo run --example gencerts -- OUT_DIR NAME [NAME ...] [client=USER ...]
//!
//! Names that parse as IP addresses become IP subject alternative names; `*.domain` works.
//! Files: ca.pem, server.pem (leaf then CA), server.key, client.pem, client.key, and for
//! each `client=USER` a client-USER.pem and client-USER.key whose subject reads
//! `OU=clients,CN=USER` in RFC 2253 (what the mutual-TLS principal rules of the tests map).

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .ok_or("usage: gencerts OUT_DIR NAME [NAME ...]")?,
    );
    let (users, names): (Vec<String>, Vec<String>) =
        args.partition(|arg| arg.starts_with("client="));
    if names.is_empty() {
        return Err("give at least one server name".into());
    }
    std::fs::create_dir_all(&out)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kafka-edge test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let server_key = KeyPair::generate()?;
    let server = CertificateParams::new(names)?.signed_by(&server_key, &ca)?;
    let client_key = KeyPair::generate()?;
    let client = CertificateParams::new(vec!["kafka-edge-test-client".to_owned()])?
        .signed_by(&client_key, &ca)?;
    std::fs::write(out.join("ca.pem"), ca.pem())?;
    std::fs::write(
        out.join("server.pem"),
        format!("{}{}", server.pem(), ca.pem()),
    )?;
    std::fs::write(out.join("server.key"), server_key.serialize_pem())?;
    std::fs::write(out.join("client.pem"), client.pem())?;
    std::fs::write(out.join("client.key"), client_key.serialize_pem())?;
    for user in users.iter().map(|arg| &arg["client=".len()..]) {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationalUnitName, "clients");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, user);
        let cert = params.signed_by(&key, &ca)?;
        std::fs::write(out.join(format!("client-{user}.pem")), cert.pem())?;
        std::fs::write(out.join(format!("client-{user}.key")), key.serialize_pem())?;
    }
    Ok(())
}
