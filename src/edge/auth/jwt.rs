//! JWT access tokens (RFC 7519) in JWS compact form (RFC 7515), checked as Kafka's broker
//! checks OAUTHBEARER tokens (its `OAuthBearerValidatorCallbackHandler`): a signature by a
//! configured key, `exp` and `iat` required, `nbf`, `iss` and `aud` checked, the principal
//! from a configurable claim (default `sub`), a clock skew (default 30 s).
//!
//! ring and our own JOSE parsing rather than the `jsonwebtoken` crate: its current versions
//! sign and verify with aws-lc-rs (needs cmake) or RustCrypto's `rsa`, not with the ring the
//! gateway already builds on, and need a newer Rust than the crate's minimum. What a gateway
//! needs is small: compact JWS, a fixed set of asymmetric algorithms, a handful of claims.
//!
//! Refused before any key is tried: `alg: none`, HMAC algorithms (there are no secrets to
//! check them with, and the classic attack verifies an HS256 token with a public key as the
//! secret), unknown algorithms, a `kid` no key has, and any `crit` header (RFC 7515, 4.1.11:
//! an extension the edge does not understand must not be ignored). Claims are read only
//! after the signature verifies.

use base64::Engine;
use serde_json::{Map, Value};

use crate::edge::auth::keys::{printable, Algorithm, KeyMiss, KeySet, B64URL};

/// The longest token read: identity providers' access tokens are a few KiB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Kafka's default clock skew (`sasl.oauthbearer.clock.skew.seconds`).
pub const DEFAULT_CLOCK_SKEW_S: u64 = 30;
/// Kafka's default principal claim (`sasl.oauthbearer.sub.claim.name`).
pub const DEFAULT_PRINCIPAL_CLAIM: &str = "sub";

/// What a token must say to be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// The `iss` a token must carry, when set.
    pub issuer: Option<String>,
    /// A token's `aud` must name at least one of these. Required: a token minted for
    /// another service must not open the cluster.
    pub audiences: Vec<String>,
    pub clock_skew_s: u64,
    /// The claim whose string value is the principal.
    pub principal_claim: String,
}

/// A validator: settings and the current keys.
#[derive(Debug, Clone, Copy)]
pub struct Validator<'a> {
    pub keys: &'a KeySet,
    pub settings: &'a JwtSettings,
}

/// What an accepted token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidToken {
    pub principal: String,
    /// `exp`, in milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
}

/// Why a token was refused. Logged and audited; the client is told only `invalid_token`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is {len} bytes, over the limit of {MAX_TOKEN_BYTES}")]
    TooLong { len: usize },
    #[error("not a JWS in compact form (three base64url parts)")]
    NotCompact,
    #[error("the {part} is not base64url")]
    Base64 { part: &'static str },
    #[error("the {part} is not a JSON object")]
    Json { part: &'static str },
    #[error("the header has no \"alg\"")]
    NoAlgorithm,
    #[error("alg \"none\": unsigned tokens are never accepted")]
    Unsigned,
    #[error("alg {0:?}: HMAC tokens are never accepted")]
    Hmac(String),
    #[error("alg {0:?} is not one the edge verifies")]
    UnsupportedAlgorithm(String),
    #[error("the header has a \"crit\" extension, which the edge does not implement")]
    Critical,
    #[error("the header's \"kid\" is not a string")]
    BadKid,
    #[error("{0}")]
    Key(KeyMiss),
    #[error("the signature does not verify with any configured key")]
    BadSignature,
    #[error("no {0:?} claim")]
    MissingClaim(&'static str),
    #[error("the {0:?} claim is not a number of seconds")]
    BadTime(&'static str),
    #[error("expired at {exp_s} (now {now_s}, skew {skew_s} s)")]
    Expired { exp_s: u64, now_s: u64, skew_s: u64 },
    #[error("not valid before {nbf_s} (now {now_s}, skew {skew_s} s)")]
    NotYetValid { nbf_s: u64, now_s: u64, skew_s: u64 },
    #[error("issued in the future, at {iat_s} (now {now_s}, skew {skew_s} s)")]
    IssuedInFuture { iat_s: u64, now_s: u64, skew_s: u64 },
    #[error("issuer {found:?} is not the configured one")]
    Issuer { found: String },
    #[error("audience {found:?} names none of the configured ones")]
    Audience { found: Vec<String> },
    #[error("the principal claim {claim:?} is missing or not a non-empty string")]
    Principal { claim: String },
}

/// A token split and its header read, its signature not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jws<'a> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a str,
    /// The payload, still base64url: decoded only once the signature holds.
    pub payload: &'a str,
    pub signature: Vec<u8>,
}

/// Splits a compact JWS and reads its header.
pub fn parse(token: &str) -> Result<Jws<'_>, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::TooLong { len: token.len() });
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::NotCompact);
    };
    let signing_input = &token[..header.len() + 1 + payload.len()];
    let header = object(header, "header")?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg,
        _ => return Err(JwtError::NoAlgorithm),
    };
    let alg = match Algorithm::from_name(alg) {
        Some(alg) => alg,
        None if alg.eq_ignore_ascii_case("none") => return Err(JwtError::Unsigned),
        None if alg.starts_with("HS") => return Err(JwtError::Hmac(printable(alg))),
        None => return Err(JwtError::UnsupportedAlgorithm(printable(alg))),
    };
    if header.contains_key("crit") {
        return Err(JwtError::Critical);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(JwtError::BadKid),
    };
    let signature = B64URL
        .decode(signature)
        .map_err(|_| JwtError::Base64 { part: "signature" })?;
    Ok(Jws {
        alg,
        kid,
        signing_input,
        payload,
        signature,
    })
}

fn object(part: &str, name: &'static str) -> Result<Map<String, Value>, JwtError> {
    let bytes = B64URL
        .decode(part)
        .map_err(|_| JwtError::Base64 { part: name })?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Json { part: name }),
    }
}

impl Validator<'_> {
    /// Checks a token at `now_ms` (milliseconds since the Unix epoch).
    pub fn validate(&self, token: &str, now_ms: u64) -> Result<ValidToken, JwtError> {
        let jws = parse(token)?;
        let keys = self
            .keys
            .candidates(jws.alg, jws.kid.as_deref())
            .map_err(JwtError::Key)?;
        let input = jws.signing_input.as_bytes();
        if !keys
            .iter()
            .any(|key| key.verify(jws.alg, input, &jws.signature))
        {
            return Err(JwtError::BadSignature);
        }
        let claims = object(jws.payload, "payload")?;
        self.check_claims(&claims, now_ms)
    }

    fn check_claims(
        &self,
        claims: &Map<String, Value>,
        now_ms: u64,
    ) -> Result<ValidToken, JwtError> {
        let settings = self.settings;
        let skew_s = settings.clock_skew_s;
        let now_s = now_ms / 1000;
        let exp_ms = time(claims, "exp")?.ok_or(JwtError::MissingClaim("exp"))?;
        let exp_s = exp_ms / 1000;
        if now_ms >= exp_ms.saturating_add(skew_s.saturating_mul(1000)) {
            return Err(JwtError::Expired {
                exp_s,
                now_s,
                skew_s,
            });
        }
        let iat_ms = time(claims, "iat")?.ok_or(JwtError::MissingClaim("iat"))?;
        if iat_ms > now_ms.saturating_add(skew_s.saturating_mul(1000)) {
            return Err(JwtError::IssuedInFuture {
                iat_s: iat_ms / 1000,
                now_s,
                skew_s,
            });
        }
        if let Some(nbf_ms) = time(claims, "nbf")? {
            if nbf_ms > now_ms.saturating_add(skew_s.saturating_mul(1000)) {
                return Err(JwtError::NotYetValid {
                    nbf_s: nbf_ms / 1000,
                    now_s,
                    skew_s,
                });
            }
        }
        if let Some(issuer) = &settings.issuer {
            match claims.get("iss") {
                Some(Value::String(iss)) if iss == issuer => {}
                Some(Value::String(iss)) => {
                    return Err(JwtError::Issuer {
                        found: printable(iss),
                    })
                }
                _ => return Err(JwtError::MissingClaim("iss")),
            }
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(aud)) => vec![aud],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => return Err(JwtError::MissingClaim("aud")),
        };
        if !audiences
            .iter()
            .any(|aud| settings.audiences.iter().any(|a| a == aud))
        {
            return Err(JwtError::Audience {
                found: audiences.iter().take(10).map(|a| printable(a)).collect(),
            });
        }
        let principal = match claims.get(&settings.principal_claim) {
            Some(Value::String(name)) if !name.trim().is_empty() => name.trim().to_owned(),
            _ => {
                return Err(JwtError::Principal {
                    claim: settings.principal_claim.clone(),
                })
            }
        };
        Ok(ValidToken {
            principal,
            expires_at_ms: exp_ms,
        })
    }
}

/// A NumericDate claim (seconds since the epoch, possibly fractional) in milliseconds.
fn time(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, JwtError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let bad = JwtError::BadTime(name);
    if let Some(seconds) = value.as_u64() {
        return Ok(Some(seconds.saturating_mul(1000)));
    }
    match value.as_f64() {
        Some(seconds) if seconds.is_finite() && seconds >= 0.0 => {
            // Saturates: a date past u64 milliseconds is as good as never.
            Ok(Some((seconds * 1000.0) as u64))
        }
        _ => Err(bad),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::json;

    use super::*;
    use crate::edge::auth::keys::tests::{pyjwt, pyjwt_jwks};

    /// 2026-01-01T00:30:00Z, inside the PyJWT vectors' hour.
    pub(crate) const NOW_MS: u64 = 1_767_227_400_000;

    /// What the PyJWT vectors' claims satisfy.
    pub(crate) fn settings() -> JwtSettings {
        JwtSettings {
            issuer: Some("https://idp.example.com".into()),
            audiences: vec!["kafka-edge".into()],
            clock_skew_s: DEFAULT_CLOCK_SKEW_S,
            principal_claim: DEFAULT_PRINCIPAL_CLAIM.into(),
        }
    }

    #[test]
    fn every_algorithm_verifies_tokens_of_an_independent_implementation() {
        let vectors = pyjwt();
        let keys = pyjwt_jwks();
        let settings = settings();
        let validator = Validator {
            keys: &keys,
            settings: &settings,
        };
        let tokens = vectors["tokens"].as_object().unwrap();
        assert_eq!(tokens.len(), Algorithm::ALL.len());
        for (alg, token) in tokens {
            let token = token.as_str().unwrap();
            assert_eq!(parse(token).unwrap().alg.name(), alg);
            let valid = validator
                .validate(token, NOW_MS)
                .unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(valid.principal, "alice");
            assert_eq!(valid.expires_at_ms, 1_767_229_200_000);

            // Any changed signature byte fails.
            let (head, signature) = token.rsplit_once('.').unwrap();
            let mut bytes = B64URL.decode(signature).unwrap();
            bytes[7] ^= 0x20;
            let forged = format!(
                "{head}.{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
            );
            assert_eq!(
                validator.validate(&forged, NOW_MS),
                Err(JwtError::BadSignature),
                "{alg}"
            );
        }
    }

    #[test]
    fn pem_keys_verify_too_and_another_claim_can_name_the_principal() {
        let vectors = pyjwt();
        let pem = vectors["pem"]["ec-256"].as_str().unwrap();
        let keys = KeySet::from_pem(&[(
            std::path::Path::new("ec.pem"),
            pem.as_bytes(),
            Some("ec-256"),
        )])
        .unwrap();
        let mut settings = settings();
        settings.principal_claim = "preferred_username".into();
        let validator = Validator {
            keys: &keys,
            settings: &settings,
        };
        let token = vectors["tokens"]["ES256"].as_str().unwrap();
        assert_eq!(
            validator.validate(token, NOW_MS).unwrap().principal,
            "alice.a"
        );
        // That key cannot check the RSA token: its kid is unknown here.
        let rsa = vectors["tokens"]["RS256"].as_str().unwrap();
        assert_eq!(
            validator.validate(rsa, NOW_MS),
            Err(JwtError::Key(KeyMiss::UnknownKid("rsa-1".into())))
        );
    }

    /// Tokens signed here with fresh keys, to vary headers and claims at will.
    struct Signer {
        ec: EcdsaKeyPair,
        ed: Ed25519KeyPair,
        keys: KeySet,
    }

    impl Signer {
        fn new() -> Signer {
            let rng = SystemRandom::new();
            let ec_pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let ec =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, ec_pkcs8.as_ref(), &rng)
                    .unwrap();
            let ed_pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            let ed = Ed25519KeyPair::from_pkcs8(ed_pkcs8.as_ref()).unwrap();
            let point = ec.public_key().as_ref();
            let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            let jwks = json!({"keys": [
                {"kty": "EC", "crv": "P-256", "kid": "ec", "x": b64(&point[1..33]), "y": b64(&point[33..])},
                {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(ed.public_key().as_ref())},
            ]});
            let keys = KeySet::from_jwks(jwks.to_string().as_bytes()).unwrap();
            Signer { ec, ed, keys }
        }

        fn sign(&self, header: Value, claims: Value) -> String {
            let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            let input = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims.to_string().as_bytes())
            );
            let signature = match header["alg"].as_str() {
                Some("EdDSA") => self.ed.sign(input.as_bytes()).as_ref().to_vec(),
                _ => self
                    .ec
                    .sign(&SystemRandom::new(), input.as_bytes())
                    .unwrap()
                    .as_ref()
                    .to_vec(),
            };
            format!("{input}.{}", b64(&signature))
        }

        fn check(&self, header: Value, claims: Value) -> Result<ValidToken, JwtError> {
            let settings = settings();
            Validator {
                keys: &self.keys,
                settings: &settings,
            }
            .validate(&self.sign(header, claims), NOW_MS)
        }
    }

    fn claims() -> Value {
        json!({"iss": "https://idp.example.com", "aud": "kafka-edge", "sub": "bob",
               "iat": NOW_MS / 1000 - 60, "exp": NOW_MS / 1000 + 600})
    }

    fn with(mut claims: Value, key: &str, value: Value) -> Value {
        match value {
            Value::Null => {
                claims.as_object_mut().unwrap().remove(key);
            }
            value => claims[key] = value,
        }
        claims
    }

    #[test]
    fn claims_are_checked_as_kafka_does() {
        let signer = Signer::new();
        let es = json!({"alg": "ES256", "kid": "ec"});
        let now_s = NOW_MS / 1000;
        let ok = signer.check(es.clone(), claims()).unwrap();
        assert_eq!(ok.principal, "bob");
        assert_eq!(ok.expires_at_ms, (now_s + 600) * 1000);
        // No kid: every key that fits the algorithm is tried.
        assert_eq!(
            signer
                .check(json!({"alg": "EdDSA"}), claims())
                .unwrap()
                .principal,
            "bob"
        );

        let cases = [
            (
                with(claims(), "exp", json!(now_s - 31)),
                JwtError::Expired {
                    exp_s: now_s - 31,
                    now_s,
                    skew_s: 30,
                },
            ),
            (
                with(claims(), "exp", Value::Null),
                JwtError::MissingClaim("exp"),
            ),
            (
                with(claims(), "exp", json!("soon")),
                JwtError::BadTime("exp"),
            ),
            (with(claims(), "exp", json!(-5)), JwtError::BadTime("exp")),
            (
                with(claims(), "iat", Value::Null),
                JwtError::MissingClaim("iat"),
            ),
            (
                with(claims(), "iat", json!(now_s + 31)),
                JwtError::IssuedInFuture {
                    iat_s: now_s + 31,
                    now_s,
                    skew_s: 30,
                },
            ),
            (
                with(claims(), "nbf", json!(now_s + 31)),
                JwtError::NotYetValid {
                    nbf_s: now_s + 31,
                    now_s,
                    skew_s: 30,
                },
            ),
            (
                with(claims(), "iss", json!("https://evil.example.com")),
                JwtError::Issuer {
                    found: "https://evil.example.com".into(),
                },
            ),
            (
                with(claims(), "iss", Value::Null),
                JwtError::MissingClaim("iss"),
            ),
            (
                with(claims(), "aud", json!(["a", "b"])),
                JwtError::Audience {
                    found: vec!["a".into(), "b".into()],
                },
            ),
            (
                with(claims(), "aud", Value::Null),
                JwtError::MissingClaim("aud"),
            ),
            (
                with(claims(), "sub", json!("  ")),
                JwtError::Principal {
                    claim: "sub".into(),
                },
            ),
            (
                with(claims(), "sub", json!(42)),
                JwtError::Principal {
                    claim: "sub".into(),
                },
            ),
        ];
        for (claims, expected) in cases {
            assert_eq!(
                signer.check(es.clone(), claims.clone()),
                Err(expected),
                "{claims}"
            );
        }
        // Within the skew, and fractional dates, are fine; an audience list needs one match.
        for claims in [
            with(claims(), "exp", json!(now_s - 29)),
            with(claims(), "iat", json!(now_s + 29)),
            with(claims(), "nbf", json!(now_s + 29)),
            with(claims(), "exp", json!(now_s as f64 + 0.5)),
            with(claims(), "aud", json!(["x", "kafka-edge"])),
        ] {
            assert!(signer.check(es.clone(), claims.clone()).is_ok(), "{claims}");
        }
    }

    #[test]
    fn dangerous_headers_are_refused_before_any_key() {
        let signer = Signer::new();
        let cases = [
            (json!({"alg": "none"}), JwtError::Unsigned),
            (json!({"alg": "NONE"}), JwtError::Unsigned),
            (
                json!({"alg": "HS256", "kid": "ec"}),
                JwtError::Hmac("HS256".into()),
            ),
            (
                json!({"alg": "ES512"}),
                JwtError::UnsupportedAlgorithm("ES512".into()),
            ),
            (json!({"kid": "ec"}), JwtError::NoAlgorithm),
            (
                json!({"alg": "ES256", "kid": "ec", "crit": ["exp"]}),
                JwtError::Critical,
            ),
            (json!({"alg": "ES256", "kid": 7}), JwtError::BadKid),
            (
                json!({"alg": "ES256", "kid": "other"}),
                JwtError::Key(KeyMiss::UnknownKid("other".into())),
            ),
            (
                json!({"alg": "ES256", "kid": "ed"}),
                JwtError::Key(KeyMiss::WrongKeyForAlgorithm {
                    kid: "ed".into(),
                    alg: Algorithm::Es256,
                }),
            ),
            (
                json!({"alg": "RS256"}),
                JwtError::Key(KeyMiss::NoKeyForAlgorithm(Algorithm::Rs256)),
            ),
        ];
        for (header, expected) in cases {
            assert_eq!(
                signer.check(header.clone(), claims()),
                Err(expected),
                "{header}"
            );
        }
        // An EdDSA signature presented as ES256 by the Ed25519 key's kid never verifies.
        let token = signer.sign(json!({"alg": "EdDSA", "kid": "ed"}), claims());
        let (_, rest) = token.split_once('.').unwrap();
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let relabelled = format!("{}.{rest}", b64(br#"{"alg":"ES256"}"#));
        let settings = settings();
        let validator = Validator {
            keys: &signer.keys,
            settings: &settings,
        };
        assert_eq!(
            validator.validate(&relabelled, NOW_MS),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let signer = Signer::new();
        let settings = settings();
        let validator = Validator {
            keys: &signer.keys,
            settings: &settings,
        };
        let good = signer.sign(json!({"alg": "ES256", "kid": "ec"}), claims());
        let (head, signature) = good.rsplit_once('.').unwrap();
        let (header, payload) = head.split_once('.').unwrap();
        let cases = [
            ("".to_string(), JwtError::NotCompact),
            ("a.b".into(), JwtError::NotCompact),
            (format!("{good}.extra.parts"), JwtError::NotCompact),
            (
                format!("*.{payload}.{signature}"),
                JwtError::Base64 { part: "header" },
            ),
            (
                format!("WzFd.{payload}.{signature}"),
                JwtError::Json { part: "header" },
            ),
            (
                format!("{header}.{payload}.***"),
                JwtError::Base64 { part: "signature" },
            ),
            (
                "x".repeat(MAX_TOKEN_BYTES + 1),
                JwtError::TooLong {
                    len: MAX_TOKEN_BYTES + 1,
                },
            ),
        ];
        for (token, expected) in cases {
            assert_eq!(
                validator.validate(&token, NOW_MS),
                Err(expected),
                "{token:.40}"
            );
        }
        // A payload that is not JSON, correctly signed: refused, after the signature.
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let input = format!("{header}.{}", b64(b"not json"));
        let sig = signer
            .ec
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        let token = format!("{input}.{}", b64(sig.as_ref()));
        assert_eq!(
            validator.validate(&token, NOW_MS),
            Err(JwtError::Json { part: "payload" })
        );
    }
}
