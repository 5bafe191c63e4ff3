//! SCRAM (RFC 5802) with the SHA-2 hashes of RFC 7677, client side: the messages of the
//! gateway's own login to brokers whose listeners require it. Pure: no I/O. The Kafka
//! exchange that carries these messages is in [`crate::cluster::sasl`].
//!
//! Only what Kafka uses: no channel binding (`n,,`, so `c=biws`), no authorization identity,
//! no SASLprep of the password (Kafka's own client sends its UTF-8 bytes as they are).
//!
//! The key derivations ([`Hash::keys`], [`Hash::sign`], [`xor`]) and the attribute splitter
//! ([`fields`]) are shared with the server side in [`crate::edge::auth`], so that both ends
//! compute the RFC's keys the same way.

use std::num::NonZeroU32;
use std::ops::RangeInclusive;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2};

/// Iteration counts accepted from a server. Fewer than RFC 7677's minimum of 4096 would make
/// the stored credentials cheap to attack; far more costs seconds of CPU per login, which a
/// hostile or misconfigured server could otherwise make the gateway pay at every refresh.
pub const ITERATIONS: RangeInclusive<u32> = 4096..=1_000_000;

/// The longest text of a server's own that an error repeats.
const MAX_QUOTED: usize = 200;

/// The hash a SCRAM mechanism is named after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    fn hmac(self) -> hmac::Algorithm {
        match self {
            Hash::Sha256 => hmac::HMAC_SHA256,
            Hash::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            Hash::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Hash::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            Hash::Sha256 => &digest::SHA256,
            Hash::Sha512 => &digest::SHA512,
        }
    }

    /// Bytes of the hash's output: the length of every key, proof and signature.
    pub fn output_len(self) -> usize {
        self.digest().output_len()
    }

    /// The keys RFC 5802 (section 3) derives from a password: the client key a login
    /// proves, and the stored and server keys a server keeps instead of the password.
    pub fn keys(self, password: &[u8], salt: &[u8], iterations: NonZeroU32) -> Keys {
        let mut salted = vec![0u8; self.output_len()];
        pbkdf2::derive(self.pbkdf2(), iterations, salt, password, &mut salted);
        let salted = hmac::Key::new(self.hmac(), &salted);
        let client_key = hmac::sign(&salted, b"Client Key").as_ref().to_vec();
        let stored_key = self.hash(&client_key);
        let server_key = hmac::sign(&salted, b"Server Key").as_ref().to_vec();
        Keys {
            client_key,
            stored_key,
            server_key,
        }
    }

    /// `HMAC(key, message)`: the ClientSignature (keyed by StoredKey) and the
    /// ServerSignature (keyed by ServerKey) of an AuthMessage.
    pub fn sign(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac(), key), message)
            .as_ref()
            .to_vec()
    }

    /// `H(data)`: StoredKey is the hash of ClientKey.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest(), data).as_ref().to_vec()
    }
}

/// The keys of one password, salt and iteration count. Its `Debug` shows none of them.
pub struct Keys {
    pub client_key: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

/// `a XOR b`, byte by byte: ClientProof from ClientKey and ClientSignature, and back.
pub fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// Why a server's SCRAM message cannot be used. Every variant is the server's doing: a
/// malformed message, a refusal, or proof that it does not hold our credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("the server's {message} is not UTF-8")]
    NotUtf8 { message: &'static str },
    #[error("the server's {message} has no `{attribute}=` attribute")]
    Missing {
        message: &'static str,
        attribute: char,
    },
    #[error("the server's {message} is not a list of `x=value` attributes")]
    Malformed { message: &'static str },
    #[error("the server-first-message asks for an extension this client does not know (m=)")]
    MandatoryExtension,
    #[error(
        "the server's nonce does not extend the one the gateway sent: a stale or foreign answer"
    )]
    Nonce,
    #[error("the `{attribute}=` attribute of the server's {message} is not base64")]
    Base64 {
        message: &'static str,
        attribute: char,
    },
    #[error("the server sent an empty salt")]
    EmptySalt,
    #[error("the server's iteration count `{text}` is not a number")]
    IterationsNotNumber { text: String },
    #[error(
        "the server's iteration count {count} is outside {}..={}",
        ITERATIONS.start(),
        ITERATIONS.end()
    )]
    Iterations { count: u32 },
    #[error("the server refused the login: {reason}")]
    Refused { reason: String },
    #[error("the server's signature is wrong: it does not hold this user's credentials")]
    ServerSignature,
}

/// The state after the client-first-message: what is needed to answer the server's first.
pub struct ClientFirst {
    hash: Hash,
    password: Vec<u8>,
    nonce: String,
    /// client-first-message-bare, part of the AuthMessage.
    bare: String,
}

/// The state after the client-final-message: what is needed to check the server's final.
pub struct ClientFinal {
    server_key: hmac::Key,
    auth_message: String,
}

impl std::fmt::Debug for ClientFinal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFinal").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ClientFirst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFirst")
            .field("hash", &self.hash)
            .field("bare", &self.bare)
            .finish_non_exhaustive()
    }
}

// === impl ClientFirst ===

impl ClientFirst {
    /// Starts a login. `nonce` must be printable ASCII without commas; see [`nonce`].
    pub fn new(hash: Hash, username: &str, password: &str, nonce: String) -> ClientFirst {
        let bare = format!("n={},r={nonce}", saslname(username));
        ClientFirst {
            hash,
            password: password.as_bytes().to_vec(),
            nonce,
            bare,
        }
    }

    /// The client-first-message: no channel binding, no authorization identity.
    pub fn message(&self) -> String {
        format!("n,,{}", self.bare)
    }

    /// Reads the server-first-message and returns the client-final-message, with the state
    /// that checks the server's final answer.
    pub fn answer(self, server_first: &[u8]) -> Result<(ClientFinal, String), ScramError> {
        const MESSAGE: &str = "server-first-message";
        let (server_first, attributes) = read(server_first, MESSAGE)?;
        if attributes.first().is_some_and(|(key, _)| *key == 'm') {
            return Err(ScramError::MandatoryExtension);
        }
        let required = |attribute| {
            find(&attributes, attribute).ok_or(ScramError::Missing {
                message: MESSAGE,
                attribute,
            })
        };
        let nonce = required('r')?;
        if nonce.len() <= self.nonce.len() || !nonce.starts_with(&self.nonce) {
            return Err(ScramError::Nonce);
        }
        let salt = BASE64
            .decode(required('s')?)
            .map_err(|_| ScramError::Base64 {
                message: MESSAGE,
                attribute: 's',
            })?;
        if salt.is_empty() {
            return Err(ScramError::EmptySalt);
        }
        let count_text = required('i')?;
        let count = count_text
            .parse::<u32>()
            .map_err(|_| ScramError::IterationsNotNumber {
                text: quoted(count_text),
            })?;
        if !ITERATIONS.contains(&count) {
            return Err(ScramError::Iterations { count });
        }
        let Some(iterations) = NonZeroU32::new(count) else {
            return Err(ScramError::Iterations { count });
        };

        let hash = self.hash;
        let keys = hash.keys(&self.password, &salt, iterations);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.bare);
        let client_signature = hash.sign(&keys.stored_key, auth_message.as_bytes());
        let proof = xor(&keys.client_key, &client_signature);
        let message = format!("{without_proof},p={}", BASE64.encode(proof));
        Ok((
            ClientFinal {
                server_key: hmac::Key::new(hash.hmac(), &keys.server_key),
                auth_message,
            },
            message,
        ))
    }
}

// === impl ClientFinal ===

impl ClientFinal {
    /// Checks the server-final-message: a refusal (`e=`) or the server's signature (`v=`),
    /// which proves the server holds this user's credentials. Compared in constant time.
    pub fn verify(&self, server_final: &[u8]) -> Result<(), ScramError> {
        const MESSAGE: &str = "server-final-message";
        let (_, attributes) = read(server_final, MESSAGE)?;
        let signature = find(&attributes, 'v').ok_or(ScramError::Missing {
            message: MESSAGE,
            attribute: 'v',
        })?;
        let signature = BASE64.decode(signature).map_err(|_| ScramError::Base64 {
            message: MESSAGE,
            attribute: 'v',
        })?;
        hmac::verify(&self.server_key, self.auth_message.as_bytes(), &signature)
            .map_err(|_| ScramError::ServerSignature)
    }
}

/// A fresh client nonce: 24 random bytes, base64 (printable, never a comma).
pub fn nonce() -> Result<String, ring::error::Unspecified> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 24];
    ring::rand::SystemRandom::new().fill(&mut bytes)?;
    Ok(BASE64.encode(bytes))
}

/// A user name as RFC 5802's saslname: `,` and `=` escaped.
fn saslname(username: &str) -> String {
    username.replace('=', "=3D").replace(',', "=2C")
}

/// A message's attributes, in order: `a=1,b=2` is `[('a', "1"), ('b', "2")]`.
type Attributes<'a> = Vec<(char, &'a str)>;

/// A server message as text and as attributes. An `e=` attribute anywhere in it is the
/// server's refusal.
fn read<'a>(
    message: &'a [u8],
    name: &'static str,
) -> Result<(&'a str, Attributes<'a>), ScramError> {
    let text = std::str::from_utf8(message).map_err(|_| ScramError::NotUtf8 { message: name })?;
    let attributes = attributes(text, name)?;
    match find(&attributes, 'e') {
        Some(reason) => Err(ScramError::Refused {
            reason: quoted(reason),
        }),
        None => Ok((text, attributes)),
    }
}

/// Splits a message into its attributes. RFC 5802 names them with one letter.
fn attributes<'a>(text: &'a str, message: &'static str) -> Result<Attributes<'a>, ScramError> {
    let malformed = ScramError::Malformed { message };
    fields(text)
        .ok_or(malformed.clone())?
        .into_iter()
        .map(|(key, value)| {
            let mut chars = key.chars();
            match (chars.next(), chars.next()) {
                (Some(key), None) => Ok((key, value)),
                _ => Err(malformed.clone()),
            }
        })
        .collect()
}

/// Splits a SCRAM message into its `key=value` fields, in order, or `None` when a part is
/// not one. Keys are ASCII letters: one in RFC 5802, several in the extensions Kafka adds
/// (`tokenauth=true`). Values may contain `=` (base64 padding).
pub fn fields(text: &str) -> Option<Vec<(&str, &str)>> {
    text.split(',')
        .map(|part| {
            let (key, value) = part.split_once('=')?;
            (!key.is_empty() && key.bytes().all(|b| b.is_ascii_alphabetic()))
                .then_some((key, value))
        })
        .collect()
}

fn find<'a>(attributes: &[(char, &'a str)], key: char) -> Option<&'a str> {
    attributes.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// A server's text, fit for a log line: printable and short.
fn quoted(text: &str) -> String {
    text.chars()
        .take(MAX_QUOTED)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677, section 3.
    const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_client() -> ClientFirst {
        ClientFirst::new(Hash::Sha256, "user", "pencil", NONCE.into())
    }

    fn first_error(server_first: &str) -> ScramError {
        match rfc_client().answer(server_first.as_bytes()) {
            Ok(_) => panic!("accepted {server_first:?}"),
            Err(e) => e,
        }
    }

    fn final_error(server_final: &[u8]) -> ScramError {
        let (last, _) = rfc_client().answer(SERVER_FIRST.as_bytes()).unwrap();
        last.verify(server_final).unwrap_err()
    }

    #[test]
    fn rfc_7677_test_vector() {
        let first = rfc_client();
        assert_eq!(first.message(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let (last, message) = first.answer(SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(message, CLIENT_FINAL);
        last.verify(SERVER_FINAL.as_bytes()).unwrap();
    }

    #[test]
    fn fields_take_kafka_extension_names_and_refuse_anything_else() {
        assert_eq!(
            fields("n=user,r=abc,tokenauth=true,p=a=="),
            Some(vec![
                ("n", "user"),
                ("r", "abc"),
                ("tokenauth", "true"),
                ("p", "a==")
            ])
        );
        for bad in ["", "n", "=x", "n=1,", "1=x", "n-1=x", "é=x"] {
            assert_eq!(fields(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn user_names_are_escaped() {
        let first = ClientFirst::new(Hash::Sha256, "a,b=c", "pw", "xyz".into());
        assert_eq!(first.message(), "n,,n=a=2Cb=3Dc,r=xyz");
    }

    #[test]
    fn nonces_are_fresh_and_comma_free() {
        let (a, b) = (nonce().unwrap(), nonce().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_graphic() && c != b','));
    }

    #[test]
    fn malformed_server_first_messages_are_refused() {
        let with = |nonce: &str, salt: &str, count: &str| format!("r={nonce},s={salt},i={count}");
        let ours = "rOprNGfwEbeRWgbNEkqOserver";
        let salt = "W22ZaJ0SNY7soEsUEjb6gQ==";
        let cases: Vec<(String, ScramError)> = vec![
            (
                format!("s={salt},i=4096"),
                ScramError::Missing {
                    message: "server-first-message",
                    attribute: 'r',
                },
            ),
            (
                format!("r={ours},i=4096"),
                ScramError::Missing {
                    message: "server-first-message",
                    attribute: 's',
                },
            ),
            (
                format!("r={ours},s={salt}"),
                ScramError::Missing {
                    message: "server-first-message",
                    attribute: 'i',
                },
            ),
            (with("someoneelse", salt, "4096"), ScramError::Nonce),
            // The server must add to our nonce, not merely echo it.
            (with(NONCE, salt, "4096"), ScramError::Nonce),
            (
                with(ours, "not base64!", "4096"),
                ScramError::Base64 {
                    message: "server-first-message",
                    attribute: 's',
                },
            ),
            (with(ours, "", "4096"), ScramError::EmptySalt),
            (
                with(ours, salt, "many"),
                ScramError::IterationsNotNumber {
                    text: "many".into(),
                },
            ),
            (
                with(ours, salt, "4095"),
                ScramError::Iterations { count: 4095 },
            ),
            (
                with(ours, salt, "1000001"),
                ScramError::Iterations { count: 1_000_001 },
            ),
            (
                format!("m=ext,{}", with(ours, salt, "4096")),
                ScramError::MandatoryExtension,
            ),
            (
                "e=unknown-user".into(),
                ScramError::Refused {
                    reason: "unknown-user".into(),
                },
            ),
            (
                "".into(),
                ScramError::Malformed {
                    message: "server-first-message",
                },
            ),
            (
                "r".into(),
                ScramError::Malformed {
                    message: "server-first-message",
                },
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(first_error(&message), expected, "{message:?}");
        }
        assert_eq!(
            rfc_client().answer(b"r=\xff").unwrap_err(),
            ScramError::NotUtf8 {
                message: "server-first-message"
            }
        );
    }

    #[test]
    fn malformed_server_final_messages_are_refused() {
        let missing_v = ScramError::Missing {
            message: "server-final-message",
            attribute: 'v',
        };
        assert_eq!(final_error(b"x=1"), missing_v);
        assert_eq!(
            final_error(b"v=***"),
            ScramError::Base64 {
                message: "server-final-message",
                attribute: 'v'
            }
        );
        assert_eq!(
            final_error(b"e=invalid-proof"),
            ScramError::Refused {
                reason: "invalid-proof".into()
            }
        );
        assert_eq!(
            final_error(b"\xc3"),
            ScramError::NotUtf8 {
                message: "server-final-message"
            }
        );
        // A signature of the right length and form, but not the server key's.
        let mut forged = BASE64
            .decode("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        forged[0] ^= 1;
        let forged = format!("v={}", BASE64.encode(forged));
        assert_eq!(final_error(forged.as_bytes()), ScramError::ServerSignature);
        assert_eq!(final_error(b"v="), ScramError::ServerSignature);
    }

    #[test]
    fn server_text_in_errors_is_printable_and_short() {
        let long = format!("e=bad\u{7}{}", "x".repeat(500));
        let ScramError::Refused { reason } = final_error(long.as_bytes()) else {
            panic!("not a refusal");
        };
        assert!(reason.starts_with("bad?x"));
        assert_eq!(reason.chars().count(), MAX_QUOTED);
    }

    /// SCRAM-SHA-512 has no published test vector: check the proof the way a server does
    /// (recover ClientKey from the proof, hash it, compare with StoredKey), and that our
    /// own server signature is accepted.
    #[test]
    fn sha512_proof_satisfies_a_server() {
        let salt = b"kafka-edge-salt";
        let first = ClientFirst::new(Hash::Sha512, "edge", "pencil", "abc".into());
        let server_first = format!("r=abcdef,s={},i=4096", BASE64.encode(salt));
        let (last, message) = first.answer(server_first.as_bytes()).unwrap();
        let proof = BASE64
            .decode(message.rsplit_once(",p=").unwrap().1)
            .unwrap();
        assert_eq!(proof.len(), 64);

        let mut salted = [0u8; 64];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA512,
            std::num::NonZeroU32::new(4096).unwrap(),
            salt,
            b"pencil",
            &mut salted,
        );
        let salted = hmac::Key::new(hmac::HMAC_SHA512, &salted);
        let stored_key =
            digest::digest(&digest::SHA512, hmac::sign(&salted, b"Client Key").as_ref());
        let without_proof = message.rsplit_once(",p=").unwrap().0;
        let auth_message = format!("n=edge,r=abc,{server_first},{without_proof}");
        let signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA512, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let client_key: Vec<u8> = proof
            .iter()
            .zip(signature.as_ref())
            .map(|(p, s)| p ^ s)
            .collect();
        assert_eq!(
            digest::digest(&digest::SHA512, &client_key).as_ref(),
            stored_key.as_ref()
        );

        let server_key = hmac::sign(&salted, b"Server Key");
        let server_signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA512, server_key.as_ref()),
            auth_message.as_bytes(),
        );
        last.verify(format!("v={}", BASE64.encode(server_signature)).as_bytes())
            .unwrap();
        // The SHA-256 vector's signature means nothing here.
        assert_eq!(
            last.verify(SERVER_FINAL.as_bytes()).unwrap_err(),
            ScramError::ServerSignature
        );
    }
}
