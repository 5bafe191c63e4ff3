//! The users clients log in as: a JSON file of salted SCRAM credentials (RFC 5802: salt,
//! iteration count, StoredKey, ServerKey), per user and mechanism, never a password.
//!
//! JSON rather than TOML: the file is written by `kafka-edge credentials add` and by whatever
//! provisions Kubernetes Secrets (jq, a script, an operator), not by hand; a tool rewriting
//! TOML would silently drop an operator's comments, and JSON round-trips exactly.
//!
//! One credential serves both password mechanisms: SCRAM proves knowledge of it in the
//! exchange, and a PLAIN login is checked by deriving the SCRAM keys from the presented
//! password with the stored salt and iterations, then comparing StoredKey in constant time.
//!
//! ```json
//! { "version": 1,
//!   "users": { "alice": { "SCRAM-SHA-512": { "salt": "base64", "iterations": 8192,
//!                                            "stored_key": "base64", "server_key": "base64" } } } }
//! ```

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::cluster::scram::{Hash, ITERATIONS};
use crate::edge::auth::sasl::Mechanism;
use crate::edge::auth::watch::{LoadError, Watched};

/// The file format version this code reads and writes.
const VERSION: u32 = 1;
/// Iterations of new credentials: twice RFC 7677's minimum, so a stolen file costs twice as
/// much to attack, for a few milliseconds of CPU per login.
pub const DEFAULT_ITERATIONS: u32 = 8192;
/// Bytes of salt in new credentials (and in the decoys of unknown users).
pub const SALT_LEN: usize = 24;

/// What one user's password derives to, for one hash.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub iterations: NonZeroU32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// The credential a SCRAM exchange goes on with. An unknown user gets a decoy, the same for
/// every attempt, so that the exchange looks the same as for a real one up to the proof,
/// which can never match: a client cannot learn which users exist (RFC 5802, section 9).
#[derive(Debug)]
pub enum Lookup<'a> {
    Known(&'a ScramCredential),
    Unknown(ScramCredential),
}

impl Lookup<'_> {
    pub fn credential(&self) -> &ScramCredential {
        match self {
            Lookup::Known(credential) => credential,
            Lookup::Unknown(decoy) => decoy,
        }
    }
}

/// Why a PLAIN password was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordRefusal {
    UnknownUser,
    Mismatch,
}

/// A secret that makes decoy credentials unpredictable to clients and stable across logins.
#[derive(Clone)]
pub struct DecoySecret([u8; 32]);

impl DecoySecret {
    pub fn random() -> Result<DecoySecret, ring::error::Unspecified> {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; 32];
        ring::rand::SystemRandom::new().fill(&mut bytes)?;
        Ok(DecoySecret(bytes))
    }

    /// A fixed secret, for tests and fuzzing: decoys are then predictable.
    pub fn fixed(bytes: [u8; 32]) -> DecoySecret {
        DecoySecret(bytes)
    }
}

/// The users of a credential file.
pub struct Credentials {
    users: BTreeMap<String, User>,
    decoy: DecoySecret,
}

#[derive(Default)]
struct User {
    sha256: Option<ScramCredential>,
    sha512: Option<ScramCredential>,
}

impl User {
    fn get(&self, hash: Hash) -> Option<&ScramCredential> {
        match hash {
            Hash::Sha256 => self.sha256.as_ref(),
            Hash::Sha512 => self.sha512.as_ref(),
        }
    }

    fn slot(&mut self, hash: Hash) -> &mut Option<ScramCredential> {
        match hash {
            Hash::Sha256 => &mut self.sha256,
            Hash::Sha512 => &mut self.sha512,
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

/// The file as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    version: u32,
    /// User name -> mechanism name -> credential. A map of names, not a struct, so that an
    /// unknown mechanism is reported by name rather than as a parse error.
    users: BTreeMap<String, BTreeMap<String, StoredFormat>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredFormat {
    salt: String,
    iterations: u32,
    stored_key: String,
    server_key: String,
}

/// Why a credential cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("; "))]
pub struct CredentialError {
    pub problems: Vec<String>,
}

impl Credentials {
    /// Reads a credential file, reporting every problem in it.
    pub fn parse(json: &[u8], decoy: DecoySecret) -> Result<Credentials, Vec<String>> {
        let file = read_format(json)?;
        let users = check(&file)?;
        Ok(Credentials { users, decoy })
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The credential a SCRAM exchange for `user` goes on with.
    pub fn scram(&self, user: &str, hash: Hash) -> Lookup<'_> {
        match self.users.get(user).and_then(|u| u.get(hash)) {
            Some(credential) => Lookup::Known(credential),
            None => Lookup::Unknown(self.decoy_for(user, hash)),
        }
    }

    /// Checks a PLAIN login against the user's stored SCRAM credential (SHA-512 when there
    /// is one, else SHA-256). An unknown user costs the same key derivation as a known one.
    pub fn verify_password(&self, user: &str, password: &[u8]) -> Result<(), PasswordRefusal> {
        let known = self.users.get(user).and_then(|u| {
            u.sha512
                .as_ref()
                .map(|c| (Hash::Sha512, c))
                .or(u.sha256.as_ref().map(|c| (Hash::Sha256, c)))
        });
        let (hash, credential, refusal) = match known {
            Some((hash, credential)) => (hash, credential.clone(), PasswordRefusal::Mismatch),
            None => (
                Hash::Sha512,
                self.decoy_for(user, Hash::Sha512),
                PasswordRefusal::UnknownUser,
            ),
        };
        let keys = hash.keys(password, &credential.salt, credential.iterations);
        let same = bool::from(keys.stored_key.ct_eq(&credential.stored_key));
        if same && known.is_some() {
            Ok(())
        } else {
            Err(refusal)
        }
    }

    fn decoy_for(&self, user: &str, hash: Hash) -> ScramCredential {
        let mechanism = Mechanism::Scram(hash).name();
        let derive = |purpose: &str| {
            hash.sign(
                &self.decoy.0,
                format!("{purpose}\0{mechanism}\0{user}").as_bytes(),
            )
        };
        let mut salt = derive("salt");
        salt.truncate(SALT_LEN);
        ScramCredential {
            salt,
            iterations: NonZeroU32::new(DEFAULT_ITERATIONS).unwrap_or(NonZeroU32::MIN),
            stored_key: derive("stored"),
            server_key: derive("server"),
        }
    }
}

/// Sets `user`'s credential for `hash` to one derived from `password`, in the credential
/// file `existing` (or a new one), keeping every other entry. Returns the new file. Refuses
/// to touch a file that has problems, listing them all.
pub fn with_password(
    existing: Option<&[u8]>,
    user: &str,
    hash: Hash,
    password: &[u8],
    iterations: u32,
    salt: &[u8],
) -> Result<String, CredentialError> {
    let mut problems = Vec::new();
    let mut file = match existing {
        Some(json) => match read_format(json) {
            Ok(file) => {
                if let Err(found) = check(&file) {
                    problems.extend(found);
                }
                file
            }
            Err(found) => return Err(CredentialError { problems: found }),
        },
        None => FileFormat {
            version: VERSION,
            users: BTreeMap::new(),
        },
    };
    check_user_name(user, &mut problems);
    if password.is_empty() {
        problems.push("the password is empty".into());
    }
    if password.contains(&0) {
        problems.push("the password contains a NUL character, which PLAIN cannot carry".into());
    }
    let count = match NonZeroU32::new(iterations).filter(|n| ITERATIONS.contains(&n.get())) {
        Some(count) => Some(count),
        None => {
            problems.push(format!(
                "iterations {iterations} is outside {}..={}",
                ITERATIONS.start(),
                ITERATIONS.end()
            ));
            None
        }
    };
    if salt.len() < 16 {
        problems.push(format!(
            "a salt of {} bytes is too short (16 or more)",
            salt.len()
        ));
    }
    let Some(count) = count.filter(|_| problems.is_empty()) else {
        return Err(CredentialError { problems });
    };
    let keys = hash.keys(password, salt, count);
    file.users.entry(user.to_owned()).or_default().insert(
        Mechanism::Scram(hash).name().to_owned(),
        StoredFormat {
            salt: BASE64.encode(salt),
            iterations,
            stored_key: BASE64.encode(&keys.stored_key),
            server_key: BASE64.encode(&keys.server_key),
        },
    );
    serde_json::to_string_pretty(&file)
        .map(|mut text| {
            text.push('\n');
            text
        })
        .map_err(|e| CredentialError {
            problems: vec![e.to_string()],
        })
}

/// The watched credential file of a listener, re-read when it changes.
pub type CredentialStore = Watched<Credentials>;

/// Opens a credential file. The decoy secret is drawn once, so an unknown user's decoy
/// stays the same across reloads.
pub fn open(path: PathBuf) -> Result<CredentialStore, LoadError> {
    let decoy = DecoySecret::random().map_err(|_| LoadError {
        problems: vec!["cannot draw a secret from the system's random source".into()],
    })?;
    Watched::load(
        vec![path],
        Box::new(move |files| {
            let mut problems = Vec::new();
            let mut parsed = None;
            for (path, bytes) in files {
                match Credentials::parse(bytes, decoy.clone()) {
                    Ok(credentials) => parsed = Some(credentials),
                    Err(found) => problems.extend(
                        found
                            .into_iter()
                            .map(|p| format!("credential file {}: {p}", path.display())),
                    ),
                }
            }
            match parsed {
                Some(credentials) if problems.is_empty() => Ok(credentials),
                _ => Err(problems),
            }
        }),
    )
}

fn read_format(json: &[u8]) -> Result<FileFormat, Vec<String>> {
    serde_json::from_slice(json).map_err(|e| vec![format!("not a credential file: {e}")])
}

/// Every problem of a file as written, or its users.
fn check(file: &FileFormat) -> Result<BTreeMap<String, User>, Vec<String>> {
    let mut problems = Vec::new();
    if file.version != VERSION {
        problems.push(format!(
            "version {} is not one this gateway reads ({VERSION})",
            file.version
        ));
    }
    let mut users = BTreeMap::new();
    for (name, entries) in &file.users {
        let mut user_problems = Vec::new();
        check_user_name(name, &mut user_problems);
        if entries.is_empty() {
            user_problems.push("no credential".into());
        }
        let mut user = User::default();
        for (mechanism, stored) in entries {
            match Mechanism::from_name(mechanism) {
                Some(Mechanism::Scram(hash)) => match decode(stored, hash) {
                    Ok(credential) => *user.slot(hash) = Some(credential),
                    Err(found) => {
                        user_problems.extend(found.into_iter().map(|p| format!("{mechanism}: {p}")))
                    }
                },
                _ => user_problems.push(format!(
                    "{mechanism:?} is not SCRAM-SHA-256 or SCRAM-SHA-512"
                )),
            }
        }
        problems.extend(
            user_problems
                .into_iter()
                .map(|p| format!("user {:?}: {p}", printable(name))),
        );
        users.insert(name.clone(), user);
    }
    if problems.is_empty() {
        Ok(users)
    } else {
        Err(problems)
    }
}

fn decode(stored: &StoredFormat, hash: Hash) -> Result<ScramCredential, Vec<String>> {
    let mut problems = Vec::new();
    let mut bytes = |field: &str, text: &str, len: Option<usize>| match BASE64.decode(text) {
        Ok(bytes) if bytes.is_empty() => {
            problems.push(format!("{field} is empty"));
            None
        }
        Ok(bytes) => match len {
            Some(len) if bytes.len() != len => {
                problems.push(format!(
                    "{field} is {} bytes, not the hash's {len}",
                    bytes.len()
                ));
                None
            }
            _ => Some(bytes),
        },
        Err(_) => {
            problems.push(format!("{field} is not base64"));
            None
        }
    };
    let salt = bytes("salt", &stored.salt, None);
    let stored_key = bytes("stored_key", &stored.stored_key, Some(hash.output_len()));
    let server_key = bytes("server_key", &stored.server_key, Some(hash.output_len()));
    let iterations = NonZeroU32::new(stored.iterations).filter(|n| ITERATIONS.contains(&n.get()));
    if iterations.is_none() {
        problems.push(format!(
            "iterations {} is outside {}..={}",
            stored.iterations,
            ITERATIONS.start(),
            ITERATIONS.end()
        ));
    }
    match (salt, iterations, stored_key, server_key) {
        (Some(salt), Some(iterations), Some(stored_key), Some(server_key)) => Ok(ScramCredential {
            salt,
            iterations,
            stored_key,
            server_key,
        }),
        _ => Err(problems),
    }
}

/// A user name must be one a client can send: PLAIN separates fields with NUL, and control
/// characters would forge log and audit lines.
fn check_user_name(name: &str, problems: &mut Vec<String>) {
    if name.is_empty() {
        problems.push("a user name is empty".into());
    } else if name.chars().any(char::is_control) {
        problems.push(format!(
            "user name {:?} contains control characters",
            printable(name)
        ));
    }
}

fn printable(text: &str) -> String {
    text.chars()
        .take(100)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const SALT: &[u8] = b"0123456789abcdefghij";

    fn decoy() -> DecoySecret {
        DecoySecret::fixed([7; 32])
    }

    fn file_with(users: &[(&str, Hash, &str)]) -> String {
        file_salted(users, SALT)
    }

    /// A credential file of `(user, hash, password)`, every credential with `salt` and 4096
    /// iterations.
    pub(crate) fn file_salted(users: &[(&str, Hash, &str)], salt: &[u8]) -> String {
        let mut text: Option<String> = None;
        for (user, hash, password) in users {
            let existing = text.as_deref().map(str::as_bytes);
            text = Some(
                with_password(existing, user, *hash, password.as_bytes(), 4096, salt).unwrap(),
            );
        }
        text.unwrap()
    }

    #[test]
    fn generated_files_hold_no_password_and_parse_back() {
        let text = file_with(&[
            ("alice", Hash::Sha512, "pencil"),
            ("alice", Hash::Sha256, "pencil"),
            ("bob", Hash::Sha256, "hunter2"),
        ]);
        assert!(!text.contains("pencil") && !text.contains("hunter2"));
        assert!(text.contains("\"SCRAM-SHA-512\""), "{text}");
        let credentials = Credentials::parse(text.as_bytes(), decoy()).unwrap();
        assert_eq!(credentials.len(), 2);
        let Lookup::Known(alice) = credentials.scram("alice", Hash::Sha256) else {
            panic!("alice has a SHA-256 credential");
        };
        assert_eq!(alice.salt, SALT);
        assert_eq!(alice.iterations.get(), 4096);
        // The stored keys are RFC 5802's, recomputed independently.
        let keys = Hash::Sha256.keys(b"pencil", SALT, alice.iterations);
        assert_eq!(alice.stored_key, keys.stored_key);
        assert_eq!(alice.server_key, keys.server_key);
    }

    /// What Kafka 4.4's own ScramFormatter derives for the same password, salt and count
    /// (ScramCredentialUtils.credentialToString, run with kafka-clients-4.4.0.jar): a file
    /// made here holds the keys a broker would store.
    #[test]
    fn keys_match_kafka_brokers_own() {
        let salt = b"kafka-edge-salt-0123";
        for (hash, stored, server) in [
            (
                Hash::Sha256,
                "D51gBWNG1w/En8V6NLsVraWxEof6jWlonTaWtO+Dp7Y=",
                "eNsNq7gngdfuLSF0+xJuslv6jQr5fC/i/28kshSRAQI=",
            ),
            (
                Hash::Sha512,
                "tQNaaClhboNfH9RmhWYhpHJtFOYIKS+FhVJf5EQTQ40XR56g1XybPFNN1nynoM9FtXkdl+uvsjvRNo30nNqpLQ==",
                "im6rTGfW9+5ticQJpz7NwBYv0RiisJj2Qd6K/eD49wx0fBCiiMo1dmX1ooKP+YqXdETqKEr3ecGZd+LN0zP5yw==",
            ),
        ] {
            let text = with_password(None, "alice", hash, b"pencil", 4096, salt).unwrap();
            let file: serde_json::Value = serde_json::from_str(&text).unwrap();
            let entry = &file["users"]["alice"][Mechanism::Scram(hash).name()];
            assert_eq!(entry["salt"], "a2Fma2EtZWRnZS1zYWx0LTAxMjM=");
            assert_eq!(entry["stored_key"], stored);
            assert_eq!(entry["server_key"], server);
        }
    }

    #[test]
    fn plain_passwords_check_against_the_scram_credential() {
        let text = file_with(&[
            ("alice", Hash::Sha512, "pencil"),
            ("bob", Hash::Sha256, "pw"),
        ]);
        let credentials = Credentials::parse(text.as_bytes(), decoy()).unwrap();
        assert_eq!(credentials.verify_password("alice", b"pencil"), Ok(()));
        assert_eq!(credentials.verify_password("bob", b"pw"), Ok(()));
        assert_eq!(
            credentials.verify_password("alice", b"pencil "),
            Err(PasswordRefusal::Mismatch)
        );
        assert_eq!(
            credentials.verify_password("alice", b"pw"),
            Err(PasswordRefusal::Mismatch)
        );
        assert_eq!(
            credentials.verify_password("carol", b"pencil"),
            Err(PasswordRefusal::UnknownUser)
        );
    }

    #[test]
    fn unknown_users_get_stable_decoys_that_look_real() {
        let text = file_with(&[("alice", Hash::Sha256, "pencil")]);
        let credentials = Credentials::parse(text.as_bytes(), decoy()).unwrap();
        let first = credentials.scram("mallory", Hash::Sha256);
        let again = credentials.scram("mallory", Hash::Sha256);
        assert!(matches!(first, Lookup::Unknown(_)));
        assert_eq!(first.credential(), again.credential());
        assert_eq!(first.credential().salt.len(), SALT_LEN);
        assert_eq!(first.credential().stored_key.len(), 32);
        assert_ne!(
            first.credential().salt,
            credentials.scram("eve", Hash::Sha256).credential().salt
        );
        // A known user without a credential for this hash is unknown for it.
        assert!(matches!(
            credentials.scram("alice", Hash::Sha512),
            Lookup::Unknown(_)
        ));
        // Another secret (another gateway, or a restart) gives other decoys.
        let other = Credentials::parse(text.as_bytes(), DecoySecret::fixed([8; 32])).unwrap();
        assert_ne!(
            other.scram("mallory", Hash::Sha256).credential().salt,
            first.credential().salt
        );
    }

    #[test]
    fn every_problem_of_a_file_is_reported() {
        let text = r#"{
          "version": 2,
          "users": {
            "": { "SCRAM-SHA-256": { "salt": "c2FsdA==", "iterations": 4096,
                  "stored_key": "AAAA", "server_key": "!!" } },
            "bob": {},
            "eve": { "PLAIN": { "salt": "", "iterations": 1, "stored_key": "", "server_key": "" } },
            "tab\tuser": { "SCRAM-SHA-512": { "salt": "", "iterations": 10, "stored_key": "", "server_key": "" } }
          }
        }"#;
        let problems = Credentials::parse(text.as_bytes(), decoy()).unwrap_err();
        let all = problems.join("\n");
        for expected in [
            "version 2 is not one this gateway reads (1)",
            "user \"\": a user name is empty",
            "user \"\": SCRAM-SHA-256: stored_key is 3 bytes, not the hash's 32",
            "user \"\": SCRAM-SHA-256: server_key is not base64",
            "user \"bob\": no credential",
            "user \"eve\": \"PLAIN\" is not SCRAM-SHA-256 or SCRAM-SHA-512",
            "user \"tab?user\": user name \"tab?user\" contains control characters",
            "user \"tab?user\": SCRAM-SHA-512: salt is empty",
            "user \"tab?user\": SCRAM-SHA-512: iterations 10 is outside 4096..=1000000",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert_eq!(problems.len(), 11, "{all}");
        for bad in [
            &b"not json"[..],
            b"{}",
            br#"{"version":1,"users":{},"extra":1}"#,
        ] {
            let problems = Credentials::parse(bad, decoy()).unwrap_err();
            assert!(
                problems[0].starts_with("not a credential file"),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn the_generator_refuses_bad_input_and_bad_files() {
        let err = with_password(None, "", Hash::Sha256, b"", 100, b"short").unwrap_err();
        assert_eq!(err.problems.len(), 4, "{err}");
        let err = with_password(None, "a", Hash::Sha256, b"p\0w", 4096, SALT).unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
        let broken = br#"{"version":1,"users":{"x":{}}}"#;
        let err = with_password(Some(broken), "a", Hash::Sha256, b"pw", 4096, SALT).unwrap_err();
        assert_eq!(err.problems, vec!["user \"x\": no credential".to_string()]);
        let err = with_password(Some(b"[]"), "a", Hash::Sha256, b"pw", 4096, SALT).unwrap_err();
        assert!(
            err.to_string().starts_with("not a credential file"),
            "{err}"
        );
    }

    #[test]
    fn replacing_a_credential_keeps_the_others() {
        let text = file_with(&[("alice", Hash::Sha256, "old"), ("bob", Hash::Sha256, "pw")]);
        let text = with_password(
            Some(text.as_bytes()),
            "alice",
            Hash::Sha256,
            b"new",
            4096,
            SALT,
        )
        .unwrap();
        let credentials = Credentials::parse(text.as_bytes(), decoy()).unwrap();
        assert_eq!(credentials.verify_password("alice", b"new"), Ok(()));
        assert_eq!(
            credentials.verify_password("alice", b"old"),
            Err(PasswordRefusal::Mismatch)
        );
        assert_eq!(credentials.verify_password("bob", b"pw"), Ok(()));
    }

    #[test]
    fn the_store_reloads_a_rewritten_file() {
        let dir = std::env::temp_dir().join(format!("kafka-edge-creds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users.json");
        std::fs::write(&path, file_with(&[("alice", Hash::Sha256, "pencil")])).unwrap();
        let store = open(path.clone()).unwrap();
        assert_eq!(store.current().verify_password("alice", b"pencil"), Ok(()));
        let decoy_before = store
            .current()
            .scram("zed", Hash::Sha256)
            .credential()
            .clone();

        std::fs::write(
            &path,
            file_with(&[
                ("alice", Hash::Sha256, "crayon"),
                ("bob", Hash::Sha256, "pw"),
            ]),
        )
        .unwrap();
        assert!(store.reload_if_changed().unwrap());
        assert_eq!(store.current().verify_password("alice", b"crayon"), Ok(()));
        assert_eq!(store.current().len(), 2);
        // The decoys survive reloads.
        assert_eq!(
            store.current().scram("zed", Hash::Sha256).credential(),
            &decoy_before
        );

        std::fs::write(&path, "{\"version\": 1").unwrap();
        let err = store.reload_if_changed().unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "credential file {}: not a credential file",
                path.display()
            )),
            "{err}"
        );
        assert_eq!(store.current().verify_password("alice", b"crayon"), Ok(()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
