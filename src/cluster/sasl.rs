//! The gateway's own SASL login, for brokers whose listeners require authentication before
//! they answer a Metadata request. Used only on the connections the gateway opens for itself
//! (discovery, `diagnose`); client sessions are passed through byte for byte, and clients
//! authenticate end to end with the broker.
//!
//! The exchange, on the connection that then carries the gateway's request: ApiVersions (to
//! pick the SaslAuthenticate version), SaslHandshake v1 naming the mechanism, then the
//! mechanism's messages inside SaslAuthenticate requests (KIP-152 framing).

use std::path::PathBuf;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::ResponseError;

use crate::cluster::scram::{self, ClientFirst, ScramError};
use crate::cluster::upstream::{BrokerStream, CallError};
use crate::proxy::frame;

/// The SaslAuthenticate version the gateway prefers; older brokers get their highest.
const AUTHENTICATE_VERSION: i16 = 2;
/// The mechanism name a detection handshake asks for: no broker offers it, so the broker
/// answers with the mechanisms it does offer and no login starts.
const PROBE_MECHANISM: &str = "kafka-edge-probe";
const CLIENT_ID: &str = "kafka-edge";
/// Correlation ids of the login's requests, clear of the 1 that the gateway's own requests
/// use, so that a capture reads unambiguously.
const FIRST_CORRELATION_ID: i32 = 101;

/// A SASL mechanism the gateway can log in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    pub const ALL: [Mechanism; 3] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
    ];

    /// The name brokers know it by.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism of a name, in any case.
    pub fn parse(name: &str) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// Where the password is kept. Read at every login, so that a rotated secret file is used
/// without a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    File(PathBuf),
    /// The name of an environment variable.
    Env(String),
}

/// A password. Its `Debug` never shows it, so no log line or panic message can.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    fn expose(&self) -> &str {
        &self.0
    }

    /// PLAIN separates the user and the password with NUL: neither may hold one.
    pub fn contains_nul(&self) -> bool {
        self.0.contains('\0')
    }
}

impl PasswordSource {
    /// The password, without trailing line breaks (secret files and `echo` often end in
    /// one). Errors name the source, never its contents.
    pub fn read(&self) -> Result<Password, String> {
        let text = match self {
            PasswordSource::File(path) => std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "upstream.sasl.password_file {}: cannot read it: {e}",
                    path.display()
                )
            })?,
            PasswordSource::Env(name) => std::env::var(name).map_err(|e| {
                format!("upstream.sasl.password_env: environment variable {name}: {e}")
            })?,
        };
        let password = text.trim_end_matches(['\n', '\r']);
        if password.is_empty() {
            return Err(format!("{}: the password is empty", self.describe()));
        }
        Ok(Password(password.to_owned()))
    }

    /// The configuration key and its value, for error messages.
    pub fn describe(&self) -> String {
        match self {
            PasswordSource::File(path) => {
                format!("upstream.sasl.password_file {}", path.display())
            }
            PasswordSource::Env(name) => format!("upstream.sasl.password_env {name}"),
        }
    }
}

/// How the gateway logs in to brokers, from `[upstream.sasl]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslSettings {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: PasswordSource,
}

/// Why the gateway's own login failed. The password never appears in these.
#[derive(Debug, thiserror::Error)]
pub enum SaslError {
    #[error("{0}")]
    Password(String),
    #[error("cannot draw a SCRAM nonce from the system's random source")]
    Random,
    #[error("the SCRAM key derivation did not finish: {0}")]
    Interrupted(String),
    // Fields named `error`, not `source`: the message already says it, and a source would
    // make error chains say it twice.
    #[error("{api:?} request: {error}")]
    Call { api: ApiKey, error: CallError },
    #[error("the broker closed the connection at the SaslHandshake for {mechanism}, as brokers that do not offer it may: {error}")]
    HandshakeClosed {
        mechanism: &'static str,
        error: CallError,
    },
    #[error("cannot decode the {api:?} answer: {reason}")]
    Decode { api: ApiKey, reason: String },
    #[error("the broker does not offer SaslHandshake v1 and SaslAuthenticate (KIP-152, Kafka 1.0 and later), which the gateway's login needs")]
    TooOld,
    #[error("the broker's listener does not use SASL (SaslHandshake: IllegalSaslState): remove [upstream.sasl], or point upstream.bootstrap_servers at a SASL listener")]
    NotSasl,
    #[error("the broker does not offer {mechanism} (upstream.sasl.mechanism); it offers: {}", offered_list(.offered))]
    Mechanism {
        mechanism: &'static str,
        offered: Vec<String>,
    },
    #[error("SaslHandshake answered {error}")]
    Handshake { error: ResponseError },
    #[error("the broker refused the login of user {username:?} with {mechanism}: {error}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Refused {
        username: String,
        mechanism: &'static str,
        error: ResponseError,
        message: Option<String>,
    },
    #[error("{mechanism} login of user {username:?}: {error}")]
    Scram {
        username: String,
        mechanism: &'static str,
        error: ScramError,
    },
}

fn offered_list(offered: &[String]) -> String {
    if offered.is_empty() {
        "(none listed)".into()
    } else {
        offered.join(", ")
    }
}

/// Logs in on `stream`, which then carries the gateway's own requests as that user.
pub async fn authenticate(
    stream: &mut BrokerStream,
    settings: &SaslSettings,
    max_frame: usize,
) -> Result<(), SaslError> {
    let password = settings.password.read().map_err(SaslError::Password)?;
    let mut login = Login {
        stream,
        max_frame,
        correlation_id: FIRST_CORRELATION_ID,
        settings,
        authenticate_version: AUTHENTICATE_VERSION,
    };
    login.authenticate_version = login.versions().await?;
    login.handshake().await?;
    match settings.mechanism {
        Mechanism::Plain => {
            // RFC 4616: no authorization identity, the user, the password. The server says
            // nothing back but its verdict.
            let token = format!("\0{}\0{}", settings.username, password.expose());
            login.step(Bytes::from(token)).await?;
        }
        Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
            let hash = match settings.mechanism {
                Mechanism::ScramSha512 => scram::Hash::Sha512,
                _ => scram::Hash::Sha256,
            };
            let nonce = scram::nonce().map_err(|_| SaslError::Random)?;
            let first = ClientFirst::new(hash, &settings.username, password.expose(), nonce);
            let server_first = login.step(Bytes::from(first.message())).await?;
            // PBKDF2 at the server's iteration count can take a while (up to a second or so
            // at the highest count accepted): off the runtime that runs the accept loops.
            let (last, message) = tokio::task::spawn_blocking(move || first.answer(&server_first))
                .await
                .map_err(|e| SaslError::Interrupted(e.to_string()))?
                .map_err(|e| login.scram_error(e))?;
            let server_final = login.step(Bytes::from(message)).await?;
            last.verify(&server_final)
                .map_err(|e| login.scram_error(e))?;
        }
    }
    Ok(())
}

/// Whether the broker behind `stream` wants a SASL login: it answers a SaslHandshake for a
/// mechanism nobody offers with the list of those it does offer (tansu echoes the name it
/// was asked for: left out). `None` when it answers otherwise, or not at all.
pub async fn requires_login(stream: &mut BrokerStream, max_frame: usize) -> Option<Vec<String>> {
    let request = handshake_request(PROBE_MECHANISM, FIRST_CORRELATION_ID);
    let answer = stream.call(&request, max_frame).await.ok()?;
    let response: SaslHandshakeResponse =
        decode(&answer, ApiKey::SaslHandshake, 1, FIRST_CORRELATION_ID).ok()?;
    let unsupported = ResponseError::UnsupportedSaslMechanism.code();
    if response.error_code != 0 && response.error_code != unsupported {
        return None;
    }
    Some(
        response
            .mechanisms
            .iter()
            .map(|m| m.to_string())
            .filter(|m| m != PROBE_MECHANISM)
            .collect(),
    )
}

/// One login in progress: the connection and the next correlation id.
struct Login<'a> {
    stream: &'a mut BrokerStream,
    max_frame: usize,
    correlation_id: i32,
    settings: &'a SaslSettings,
    authenticate_version: i16,
}

// === impl Login ===

impl Login<'_> {
    /// Sends one request and returns the whole answer frame.
    async fn call(&mut self, api: ApiKey, request: Bytes) -> Result<Bytes, SaslError> {
        self.correlation_id += 1;
        self.stream
            .call(&request, self.max_frame)
            .await
            .map_err(|error| match api {
                ApiKey::SaslHandshake => SaslError::HandshakeClosed {
                    mechanism: self.settings.mechanism.name(),
                    error,
                },
                _ => SaslError::Call { api, error },
            })
    }

    /// The SaslAuthenticate version to use: ours, or the broker's highest if lower.
    async fn versions(&mut self) -> Result<i16, SaslError> {
        let id = self.correlation_id;
        let mut out = frame::begin(64);
        let encoded = header(ApiKey::ApiVersions, 0, id)
            .encode(&mut out, ApiKey::ApiVersions.request_header_version(0))
            .and_then(|_| ApiVersionsRequest::default().encode(&mut out, 0));
        debug_assert!(encoded.is_ok());
        let answer = self.call(ApiKey::ApiVersions, frame::seal(out)).await?;
        let response: ApiVersionsResponse = decode(&answer, ApiKey::ApiVersions, 0, id)?;
        authenticate_version(&response)
    }

    async fn handshake(&mut self) -> Result<(), SaslError> {
        let id = self.correlation_id;
        let mechanism = self.settings.mechanism.name();
        let request = handshake_request(mechanism, id);
        let answer = self.call(ApiKey::SaslHandshake, request).await?;
        let response: SaslHandshakeResponse = decode(&answer, ApiKey::SaslHandshake, 1, id)?;
        check_handshake(&response, mechanism)
    }

    /// One SaslAuthenticate round: our bytes out, the server's bytes back.
    async fn step(&mut self, token: Bytes) -> Result<Bytes, SaslError> {
        let id = self.correlation_id;
        let version = self.authenticate_version;
        let mut out = frame::begin(64 + token.len());
        let encoded = header(ApiKey::SaslAuthenticate, version, id)
            .encode(
                &mut out,
                ApiKey::SaslAuthenticate.request_header_version(version),
            )
            .and_then(|_| {
                SaslAuthenticateRequest::default()
                    .with_auth_bytes(token)
                    .encode(&mut out, version)
            });
        debug_assert!(encoded.is_ok());
        let answer = self
            .call(ApiKey::SaslAuthenticate, frame::seal(out))
            .await?;
        let response: SaslAuthenticateResponse =
            decode(&answer, ApiKey::SaslAuthenticate, version, id)?;
        check_authenticate(response, self.settings)
    }

    fn scram_error(&self, error: ScramError) -> SaslError {
        SaslError::Scram {
            username: self.settings.username.clone(),
            mechanism: self.settings.mechanism.name(),
            error,
        }
    }
}

fn header(api: ApiKey, version: i16, correlation_id: i32) -> RequestHeader {
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)))
}

fn handshake_request(mechanism: &str, correlation_id: i32) -> Bytes {
    let mut out = frame::begin(64);
    // Fixed types at a version both support: this cannot fail.
    let encoded = header(ApiKey::SaslHandshake, 1, correlation_id)
        .encode(&mut out, ApiKey::SaslHandshake.request_header_version(1))
        .and_then(|_| {
            SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_string(mechanism.to_owned()))
                .encode(&mut out, 1)
        });
    debug_assert!(encoded.is_ok());
    frame::seal(out)
}

/// Decodes a whole answer frame: the header must echo `correlation_id`, and the body must
/// use every byte of the frame.
fn decode<T: Decodable>(
    frame: &Bytes,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
) -> Result<T, SaslError> {
    let failed = |reason: String| SaslError::Decode { api, reason };
    let mut body = frame.slice(frame::SIZE_PREFIX.min(frame.len())..);
    let header = ResponseHeader::decode(&mut body, api.response_header_version(version))
        .map_err(|e| failed(e.to_string()))?;
    if header.correlation_id != correlation_id {
        return Err(failed(format!(
            "correlation id {} where {correlation_id} was sent",
            header.correlation_id
        )));
    }
    let response = T::decode(&mut body, version).map_err(|e| failed(e.to_string()))?;
    if !body.is_empty() {
        return Err(failed(format!("{} bytes left over", body.len())));
    }
    Ok(response)
}

/// The SaslAuthenticate version both sides speak, once the broker also offers SaslHandshake
/// v1: without it, SASL bytes would travel unframed (before KIP-152), which this login
/// does not speak.
fn authenticate_version(response: &ApiVersionsResponse) -> Result<i16, SaslError> {
    if let Some(error) = ResponseError::try_from_code(response.error_code) {
        return Err(SaslError::Decode {
            api: ApiKey::ApiVersions,
            reason: error.to_string(),
        });
    }
    let max = |api: ApiKey| {
        response
            .api_keys
            .iter()
            .find(|k| k.api_key == api as i16)
            .map(|k| k.max_version)
    };
    match (max(ApiKey::SaslHandshake), max(ApiKey::SaslAuthenticate)) {
        (Some(handshake), Some(authenticate)) if handshake >= 1 && authenticate >= 0 => {
            Ok(authenticate.min(AUTHENTICATE_VERSION))
        }
        _ => Err(SaslError::TooOld),
    }
}

fn check_handshake(
    response: &SaslHandshakeResponse,
    mechanism: &'static str,
) -> Result<(), SaslError> {
    let offered = || response.mechanisms.iter().map(|m| m.to_string()).collect();
    match ResponseError::try_from_code(response.error_code) {
        None if response.mechanisms.iter().any(|m| m.as_str() == mechanism) => Ok(()),
        None | Some(ResponseError::UnsupportedSaslMechanism) => Err(SaslError::Mechanism {
            mechanism,
            offered: offered(),
        }),
        Some(ResponseError::IllegalSaslState) => Err(SaslError::NotSasl),
        Some(error) => Err(SaslError::Handshake { error }),
    }
}

fn check_authenticate(
    response: SaslAuthenticateResponse,
    settings: &SaslSettings,
) -> Result<Bytes, SaslError> {
    match ResponseError::try_from_code(response.error_code) {
        None => Ok(response.auth_bytes),
        Some(error) => Err(SaslError::Refused {
            username: settings.username.clone(),
            mechanism: settings.mechanism.name(),
            error,
            message: response.error_message.map(|m| m.to_string()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::api_versions_response::ApiVersion;

    use super::*;

    fn settings() -> SaslSettings {
        SaslSettings {
            mechanism: Mechanism::ScramSha256,
            username: "edge".into(),
            password: PasswordSource::Env("UNUSED".into()),
        }
    }

    fn names(list: &[&'static str]) -> Vec<StrBytes> {
        list.iter().map(|m| StrBytes::from_static_str(m)).collect()
    }

    #[test]
    fn mechanisms_parse_in_any_case() {
        assert_eq!(
            Mechanism::parse("scram-sha-512"),
            Some(Mechanism::ScramSha512)
        );
        assert_eq!(Mechanism::parse("PLAIN"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::parse("GSSAPI"), None);
    }

    #[test]
    fn passwords_never_show_in_debug() {
        let password = Password("hunter2".into());
        assert!(!format!("{password:?}").contains("hunter2"));
    }

    #[test]
    fn handshake_needs_our_mechanism_among_those_offered() {
        let answer = |code: i16, list: &[&'static str]| {
            SaslHandshakeResponse::default()
                .with_error_code(code)
                .with_mechanisms(names(list))
        };
        check_handshake(&answer(0, &["PLAIN", "SCRAM-SHA-256"]), "SCRAM-SHA-256").unwrap();
        let err =
            check_handshake(&answer(33, &["PLAIN", "SCRAM-SHA-512"]), "SCRAM-SHA-256").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the broker does not offer SCRAM-SHA-256 (upstream.sasl.mechanism); it offers: PLAIN, SCRAM-SHA-512"
        );
        // No error code, but not offered either: still refused.
        let err = check_handshake(&answer(0, &["PLAIN"]), "SCRAM-SHA-256").unwrap_err();
        assert!(matches!(err, SaslError::Mechanism { .. }), "{err}");
        let err = check_handshake(&answer(34, &[]), "PLAIN").unwrap_err();
        assert!(matches!(err, SaslError::NotSasl), "{err}");
        let err = check_handshake(&answer(-1, &[]), "PLAIN").unwrap_err();
        assert!(err.to_string().contains("UnknownServerError"), "{err}");
    }

    #[test]
    fn refusals_name_the_user_mechanism_and_broker_message() {
        let refused = SaslAuthenticateResponse::default()
            .with_error_code(58)
            .with_error_message(Some(StrBytes::from_static_str("Invalid credentials")));
        let err = check_authenticate(refused, &settings()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the broker refused the login of user \"edge\" with SCRAM-SHA-256: SaslAuthenticationFailed: Invalid credentials"
        );
        let ok = SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from_static(b"x"));
        assert_eq!(check_authenticate(ok, &settings()).unwrap(), "x");
    }

    #[test]
    fn authenticate_version_follows_the_broker() {
        let with = |handshake: Option<i16>, authenticate: Option<i16>| {
            let mut keys = vec![];
            if let Some(v) = handshake {
                keys.push(ApiVersion::default().with_api_key(17).with_max_version(v));
            }
            if let Some(v) = authenticate {
                keys.push(ApiVersion::default().with_api_key(36).with_max_version(v));
            }
            ApiVersionsResponse::default().with_api_keys(keys)
        };
        assert_eq!(authenticate_version(&with(Some(1), Some(2))).unwrap(), 2);
        assert_eq!(authenticate_version(&with(Some(1), Some(5))).unwrap(), 2);
        assert_eq!(authenticate_version(&with(Some(1), Some(0))).unwrap(), 0);
        for old in [
            with(Some(0), Some(0)),
            with(Some(1), None),
            with(None, None),
        ] {
            assert!(matches!(authenticate_version(&old), Err(SaslError::TooOld)));
        }
    }

    #[test]
    fn answers_must_match_and_fill_their_frame() {
        let encode = |correlation_id: i32, extra: &[u8]| {
            let mut out = frame::begin(64);
            ResponseHeader::default()
                .with_correlation_id(correlation_id)
                .encode(&mut out, 0)
                .unwrap();
            SaslHandshakeResponse::default()
                .with_mechanisms(names(&["PLAIN"]))
                .encode(&mut out, 1)
                .unwrap();
            out.extend_from_slice(extra);
            frame::seal(out)
        };
        let ok: SaslHandshakeResponse =
            decode(&encode(7, b""), ApiKey::SaslHandshake, 1, 7).unwrap();
        assert_eq!(ok.mechanisms, names(&["PLAIN"]));
        let wrong = decode::<SaslHandshakeResponse>(&encode(8, b""), ApiKey::SaslHandshake, 1, 7);
        assert!(wrong.unwrap_err().to_string().contains("correlation id 8"));
        let long = decode::<SaslHandshakeResponse>(&encode(7, b"!"), ApiKey::SaslHandshake, 1, 7);
        assert!(long.unwrap_err().to_string().contains("1 bytes left over"));
        // Every truncation is an error, never a panic.
        let whole = encode(7, b"");
        for cut in 0..whole.len() {
            assert!(decode::<SaslHandshakeResponse>(
                &whole.slice(..cut),
                ApiKey::SaslHandshake,
                1,
                7
            )
            .is_err());
        }
    }
}
