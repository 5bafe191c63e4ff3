//! The public keys JWT signatures are checked against: from PEM files (`PUBLIC KEY` or
//! `CERTIFICATE` blocks) or from a JWKS document (RFC 7517), as an identity provider publishes
//! them. Verification is ring's: RSA PKCS#1 v1.5 and PSS (2048 to 8192 bits), ECDSA P-256 and
//! P-384, Ed25519. Symmetric keys are never accepted: a gateway holding an HMAC secret could
//! forge the very tokens it checks.

use std::path::Path;

use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// base64url, with or without padding: JOSE forbids it, some encoders add it, and nothing
/// signed depends on it (signatures cover the encoded text).
pub(crate) const B64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_ED25519: &str = "1.3.101.112";
/// The shortest RSA modulus ring verifies with (2048 bits).
const RSA_MIN_BYTES: usize = 256;

/// A JWS signature algorithm the edge verifies (RFC 7518, RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

impl Algorithm {
    pub const ALL: [Algorithm; 9] = [
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Rs512,
        Algorithm::Ps256,
        Algorithm::Ps384,
        Algorithm::Ps512,
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::EdDsa,
    ];

    /// The `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The kind of key that verifies it.
    pub fn key_type(self) -> KeyType {
        match self {
            Algorithm::Rs256
            | Algorithm::Rs384
            | Algorithm::Rs512
            | Algorithm::Ps256
            | Algorithm::Ps384
            | Algorithm::Ps512 => KeyType::Rsa,
            Algorithm::Es256 => KeyType::P256,
            Algorithm::Es384 => KeyType::P384,
            Algorithm::EdDsa => KeyType::Ed25519,
        }
    }
}

/// The kind of a public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    P256,
    P384,
    Ed25519,
}

/// One public key, with what the key set says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationKey {
    pub kid: Option<String>,
    /// The only algorithm this key may verify, when the key set says so.
    pub alg: Option<Algorithm>,
    material: Material,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Material {
    /// Modulus and exponent, big-endian, no leading zeros.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed curve point (`04 || x || y`).
    Ec {
        curve: KeyType,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

impl VerificationKey {
    pub fn key_type(&self) -> KeyType {
        match &self.material {
            Material::Rsa { .. } => KeyType::Rsa,
            Material::Ec { curve, .. } => *curve,
            Material::Ed25519(_) => KeyType::Ed25519,
        }
    }

    /// Whether this key may verify `alg` at all.
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.key_type() == alg.key_type() && self.alg.is_none_or(|own| own == alg)
    }

    /// Whether `signature` is this key's signature of `message` under `alg`.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        if !self.fits(alg) {
            return false;
        }
        match &self.material {
            Material::Rsa { n, e } => {
                let params = match alg {
                    Algorithm::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Algorithm::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Algorithm::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Algorithm::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Algorithm::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                    Algorithm::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .is_ok()
            }
            Material::Ec { curve, point } => {
                let algorithm = match curve {
                    KeyType::P256 => &signature::ECDSA_P256_SHA256_FIXED,
                    _ => &signature::ECDSA_P384_SHA384_FIXED,
                };
                UnparsedPublicKey::new(algorithm, point)
                    .verify(message, signature)
                    .is_ok()
            }
            Material::Ed25519(key) => UnparsedPublicKey::new(&signature::ED25519, key)
                .verify(message, signature)
                .is_ok(),
        }
    }
}

/// Why no key can check a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyMiss {
    #[error("no configured key has kid {0:?}")]
    UnknownKid(String),
    #[error("key {kid:?} cannot verify {alg}", alg = .alg.name())]
    WrongKeyForAlgorithm { kid: String, alg: Algorithm },
    #[error("no configured key can verify {alg}", alg = .0.name())]
    NoKeyForAlgorithm(Algorithm),
}

/// The keys of a validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
    /// JWKS entries left out, and why (symmetric keys, encryption keys, unknown types): for
    /// a log line, since an identity provider's set often holds some.
    pub skipped: Vec<String>,
}

impl KeySet {
    pub fn keys(&self) -> &[VerificationKey] {
        &self.keys
    }

    /// The keys to try for a token: the one its `kid` names, or, without a `kid`, every key
    /// that fits its algorithm.
    pub fn candidates(
        &self,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<Vec<&VerificationKey>, KeyMiss> {
        match kid {
            Some(kid) => {
                let key = self
                    .keys
                    .iter()
                    .find(|k| k.kid.as_deref() == Some(kid))
                    .ok_or_else(|| KeyMiss::UnknownKid(printable(kid)))?;
                if !key.fits(alg) {
                    return Err(KeyMiss::WrongKeyForAlgorithm {
                        kid: printable(kid),
                        alg,
                    });
                }
                Ok(vec![key])
            }
            None => {
                let keys: Vec<_> = self.keys.iter().filter(|k| k.fits(alg)).collect();
                if keys.is_empty() {
                    return Err(KeyMiss::NoKeyForAlgorithm(alg));
                }
                Ok(keys)
            }
        }
    }

    /// A key set from a JWKS document. Every problem with a usable key is reported; keys
    /// that are not for signatures, or of a kind the edge does not verify, are skipped.
    pub fn from_jwks(json: &[u8]) -> Result<KeySet, Vec<String>> {
        let document: Value =
            serde_json::from_slice(json).map_err(|e| vec![format!("not a JWKS document: {e}")])?;
        let Some(entries) = document.get("keys").and_then(Value::as_array) else {
            return Err(vec!["not a JWKS document: no \"keys\" array".into()]);
        };
        let mut problems = Vec::new();
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let kid = entry.get("kid").and_then(Value::as_str);
            let name = match kid {
                Some(kid) => format!("key {:?}", printable(kid)),
                None => format!("key #{index}"),
            };
            match jwk(entry) {
                Ok(Some(key)) => keys.push(key),
                Ok(None) => skipped.push(name),
                Err(problem) => problems.push(format!("{name}: {problem}")),
            }
        }
        finish(keys, skipped, problems)
    }

    /// A key set from PEM files, each holding `PUBLIC KEY` or `CERTIFICATE` blocks; `kid`
    /// names the keys of a file for tokens that carry one.
    pub fn from_pem(files: &[(&Path, &[u8], Option<&str>)]) -> Result<KeySet, Vec<String>> {
        let mut problems = Vec::new();
        let mut keys = Vec::new();
        for (path, pem, kid) in files {
            let before = keys.len();
            for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
                let spki_key = match &block {
                    Ok(block) if block.label == "PUBLIC KEY" => spki(&block.contents),
                    Ok(block) if block.label == "CERTIFICATE" => {
                        x509_parser::parse_x509_certificate(&block.contents)
                            .map_err(|_| {
                                "a CERTIFICATE block is not an X.509 certificate".to_string()
                            })
                            .and_then(|(_, cert)| spki(cert.public_key().raw))
                    }
                    Ok(block) => Err(format!(
                        "a {:?} block: only PUBLIC KEY and CERTIFICATE blocks hold public keys",
                        block.label
                    )),
                    Err(e) => Err(format!("not PEM: {e}")),
                };
                match spki_key {
                    Ok(material) => keys.push(VerificationKey {
                        kid: kid.map(str::to_owned),
                        alg: None,
                        material,
                    }),
                    Err(problem) => problems.push(format!("{}: {problem}", path.display())),
                }
            }
            if keys.len() == before && problems.is_empty() {
                problems.push(format!("{}: no PEM block", path.display()));
            }
        }
        finish(keys, Vec::new(), problems)
    }
}

fn finish(
    keys: Vec<VerificationKey>,
    skipped: Vec<String>,
    mut problems: Vec<String>,
) -> Result<KeySet, Vec<String>> {
    for (i, key) in keys.iter().enumerate() {
        let Some(kid) = &key.kid else { continue };
        let same = |k: &VerificationKey| k.kid.as_ref() == Some(kid);
        if keys[..i].iter().any(same) && !keys[i + 1..].iter().any(same) {
            problems.push(format!(
                "kid {:?} names more than one key: a token could not say which",
                printable(kid)
            ));
        }
    }
    if keys.is_empty() && problems.is_empty() {
        problems.push("no key that verifies signatures".into());
    }
    if problems.is_empty() {
        Ok(KeySet { keys, skipped })
    } else {
        Err(problems)
    }
}

/// A key from a JWK (RFC 7517), or `None` for one the edge does not verify with.
fn jwk(entry: &Value) -> Result<Option<VerificationKey>, String> {
    let text = |name: &str| entry.get(name).and_then(Value::as_str);
    if text("use").is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    let alg = match text("alg") {
        None => None,
        Some(name) => match Algorithm::from_name(name) {
            Some(alg) => Some(alg),
            None => return Ok(None),
        },
    };
    let bytes = |name: &str| -> Result<Vec<u8>, String> {
        let value = text(name).ok_or(format!("no \"{name}\""))?;
        B64URL
            .decode(value)
            .map_err(|_| format!("\"{name}\" is not base64url"))
    };
    let material = match (text("kty"), text("crv")) {
        (Some("RSA"), _) => rsa(bytes("n")?, bytes("e")?)?,
        (Some("EC"), Some(crv @ ("P-256" | "P-384"))) => {
            let (curve, len) = match crv {
                "P-256" => (KeyType::P256, 32),
                _ => (KeyType::P384, 48),
            };
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != len || y.len() != len {
                return Err(format!("x and y of a {crv} key are {len} bytes each"));
            }
            let mut point = vec![4u8];
            point.extend(x);
            point.extend(y);
            Material::Ec { curve, point }
        }
        (Some("OKP"), Some("Ed25519")) => {
            let x = bytes("x")?;
            if x.len() != 32 {
                return Err("x of an Ed25519 key is 32 bytes".into());
            }
            Material::Ed25519(x)
        }
        _ => return Ok(None),
    };
    let key = VerificationKey {
        kid: text("kid").map(str::to_owned),
        alg,
        material,
    };
    if let Some(alg) = alg.filter(|alg| !key.fits(*alg)) {
        return Err(format!(
            "a {:?} key cannot verify {}",
            key.key_type(),
            alg.name()
        ));
    }
    Ok(Some(key))
}

fn rsa(n: Vec<u8>, e: Vec<u8>) -> Result<Material, String> {
    let strip = |bytes: &[u8]| {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        bytes[start..].to_vec()
    };
    let (n, e) = (strip(&n), strip(&e));
    if n.len() < RSA_MIN_BYTES {
        return Err(format!(
            "an RSA key of {} bits; 2048 or more are required",
            n.len() * 8
        ));
    }
    if e.is_empty() {
        return Err("an RSA key with a zero exponent".into());
    }
    Ok(Material::Rsa { n, e })
}

/// A key from a DER SubjectPublicKeyInfo.
fn spki(der: &[u8]) -> Result<Material, String> {
    let (_, info) = SubjectPublicKeyInfo::from_der(der)
        .map_err(|_| "a PUBLIC KEY block is not a SubjectPublicKeyInfo".to_string())?;
    let algorithm = info.algorithm.algorithm.to_id_string();
    match algorithm.as_str() {
        OID_RSA => match info.parsed() {
            Ok(PublicKey::RSA(key)) => rsa(key.modulus.to_vec(), key.exponent.to_vec()),
            _ => Err("an RSA key that does not parse".into()),
        },
        OID_EC => {
            let curve = info
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string());
            let point = info.subject_public_key.data.to_vec();
            match (curve.as_deref(), point.len(), point.first()) {
                (Some(OID_P256), 65, Some(4)) => Ok(Material::Ec {
                    curve: KeyType::P256,
                    point,
                }),
                (Some(OID_P384), 97, Some(4)) => Ok(Material::Ec {
                    curve: KeyType::P384,
                    point,
                }),
                _ => Err("an EC key that is not an uncompressed P-256 or P-384 point".into()),
            }
        }
        OID_ED25519 if info.subject_public_key.data.len() == 32 => {
            Ok(Material::Ed25519(info.subject_public_key.data.to_vec()))
        }
        other => Err(format!(
            "a key of algorithm {other}: only RSA, EC P-256/P-384 and Ed25519 keys verify tokens"
        )),
    }
}

/// Text from a token or key set, fit for a log line.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .take(100)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Keys and tokens made by PyJWT (testdata/pyjwt.py): an independent implementation.
    pub(crate) fn pyjwt() -> Value {
        serde_json::from_str(include_str!("testdata/pyjwt.json")).unwrap()
    }

    pub(crate) fn pyjwt_jwks() -> KeySet {
        KeySet::from_jwks(pyjwt()["jwks"].to_string().as_bytes()).unwrap()
    }

    #[test]
    fn jwks_keys_load_and_foreign_entries_are_skipped() {
        let set = pyjwt_jwks();
        let kinds: Vec<_> = set
            .keys()
            .iter()
            .map(|k| (k.kid.as_deref(), k.key_type()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (Some("rsa-1"), KeyType::Rsa),
                (Some("ec-256"), KeyType::P256),
                (Some("ec-384"), KeyType::P384),
                (Some("ed-1"), KeyType::Ed25519),
            ]
        );
        assert_eq!(set.skipped, vec!["key \"hmac\"", "key \"enc-1\""]);
    }

    #[test]
    fn pem_keys_load_from_public_keys_and_certificates() {
        let vectors = pyjwt();
        let pem = |kid: &str| vectors["pem"][kid].as_str().unwrap().to_owned();
        let (rsa, ec, ed) = (pem("rsa-1"), pem("ec-384"), pem("ed-1"));
        let both = format!("{rsa}{ec}");
        let set = KeySet::from_pem(&[
            (Path::new("both.pem"), both.as_bytes(), Some("k1")),
            (Path::new("ed.pem"), ed.as_bytes(), None),
        ])
        .unwrap_err();
        // Two keys under one kid is ambiguous.
        assert_eq!(
            set,
            vec!["kid \"k1\" names more than one key: a token could not say which".to_string()]
        );
        let set = KeySet::from_pem(&[
            (Path::new("both.pem"), both.as_bytes(), None),
            (Path::new("ed.pem"), ed.as_bytes(), Some("ed")),
        ])
        .unwrap();
        let jwks = pyjwt_jwks();
        let find = |kid: &str| {
            jwks.keys()
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .unwrap()
        };
        assert_eq!(set.keys()[0].material, find("rsa-1").material);
        assert_eq!(set.keys()[1].material, find("ec-384").material);
        assert_eq!(set.keys()[2].material, find("ed-1").material);

        let cert = rcgen::generate_simple_self_signed(vec!["idp".into()]).unwrap();
        let set =
            KeySet::from_pem(&[(Path::new("idp.crt"), cert.cert.pem().as_bytes(), None)]).unwrap();
        assert_eq!(set.keys()[0].key_type(), KeyType::P256);
    }

    #[test]
    fn bad_pem_files_say_why() {
        let private = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let problems = KeySet::from_pem(&[
            (Path::new("a.pem"), b"nothing here", None),
            (Path::new("b.pem"), private.as_bytes(), None),
        ])
        .unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0], "a.pem: no PEM block");
        assert!(
            problems[1].starts_with("b.pem: a \"PRIVATE KEY\" block"),
            "{problems:?}"
        );
    }

    #[test]
    fn bad_jwks_entries_are_reported_together() {
        let doc = r#"{"keys": [
            {"kty": "RSA", "kid": "short", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519"},
            {"kty": "OKP", "crv": "Ed25519", "x": "!!"},
            {"kty": "OKP", "kid": "mix", "crv": "Ed25519", "alg": "RS256",
             "x": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
            {"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA"}
        ]}"#;
        let problems = KeySet::from_jwks(doc.as_bytes()).unwrap_err();
        assert_eq!(
            problems,
            vec![
                "key \"short\": an RSA key of 24 bits; 2048 or more are required",
                "key \"ec\": x and y of a P-256 key are 32 bytes each",
                "key \"ed\": no \"x\"",
                "key #3: \"x\" is not base64url",
                "key \"mix\": a Ed25519 key cannot verify RS256",
            ]
        );
        assert_eq!(
            KeySet::from_jwks(br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#).unwrap_err(),
            vec!["no key that verifies signatures"]
        );
        assert!(KeySet::from_jwks(b"{}").unwrap_err()[0].contains("no \"keys\" array"));
        assert!(KeySet::from_jwks(b"[").unwrap_err()[0].starts_with("not a JWKS document"));
    }

    #[test]
    fn candidates_follow_kid_and_algorithm() {
        let set = pyjwt_jwks();
        assert_eq!(
            set.candidates(Algorithm::Rs256, Some("rsa-1"))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            set.candidates(Algorithm::Rs256, Some("nope")),
            Err(KeyMiss::UnknownKid("nope".into()))
        );
        assert_eq!(
            set.candidates(Algorithm::Es256, Some("rsa-1")),
            Err(KeyMiss::WrongKeyForAlgorithm {
                kid: "rsa-1".into(),
                alg: Algorithm::Es256
            })
        );
        let any_rsa = set.candidates(Algorithm::Ps512, None).unwrap();
        assert_eq!(any_rsa[0].kid.as_deref(), Some("rsa-1"));
        let only_ed = KeySet::from_jwks(
            pyjwt()["jwks"]["keys"]
                .as_array()
                .map(|keys| serde_json::json!({ "keys": [keys[3]] }).to_string())
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            only_ed.candidates(Algorithm::Es384, None),
            Err(KeyMiss::NoKeyForAlgorithm(Algorithm::Es384))
        );
    }
}
