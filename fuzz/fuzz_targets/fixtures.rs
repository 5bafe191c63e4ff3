//! What the SASL fuzz targets check against: a credential file and a JWT key set whose
//! private keys nobody has. Included by each target (`#[path]`), not a target itself.
#![allow(dead_code)]

use std::sync::OnceLock;

use kafka_edge::cluster::scram::Hash;
use kafka_edge::edge::auth::credentials::{with_password, Credentials, DecoySecret};
use kafka_edge::edge::auth::jwt::JwtSettings;
use kafka_edge::edge::auth::keys::KeySet;

/// 2026-01-01T00:00:00Z.
pub const NOW_MS: u64 = 1_767_225_600_000;

/// User `user`, password `pencil`, SCRAM-SHA-256.
pub fn credentials() -> &'static Credentials {
    static CREDENTIALS: OnceLock<Credentials> = OnceLock::new();
    CREDENTIALS.get_or_init(|| {
        let text = with_password(None, "user", Hash::Sha256, b"pencil", 4096, b"0123456789abcdef")
            .expect("a valid credential");
        Credentials::parse(text.as_bytes(), DecoySecret::fixed([9; 32])).expect("a valid file")
    })
}

/// RFC 8037's Ed25519 example key and RFC 7515's P-256 example key.
const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

pub fn keys() -> &'static (KeySet, JwtSettings) {
    static KEYS: OnceLock<(KeySet, JwtSettings)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let keys = KeySet::from_jwks(JWKS.as_bytes()).expect("a valid JWKS");
        let settings = JwtSettings {
            issuer: None,
            audiences: vec!["kafka".into()],
            clock_skew_s: 30,
            principal_claim: "sub".into(),
        };
        (keys, settings)
    })
}
