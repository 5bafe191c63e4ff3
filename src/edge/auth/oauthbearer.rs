//! SASL OAUTHBEARER (RFC 7628), server side, as Kafka's broker speaks it: the client's
//! initial response carries a bearer token (a JWT, checked by [`crate::edge::auth::jwt`]).
//! A good token ends the exchange with an empty answer. A bad one gets the RFC's error
//! answer, `{"status":"invalid_token"}`; the client acknowledges with a single %x01 and the
//! exchange fails with that same text as the error message, which is what Kafka clients show.
//!
//! Stricter than Kafka in one place: after the error answer, anything but %x01 fails too
//! (Kafka would read it as a fresh initial response), so one exchange checks one token.

use crate::edge::auth::jwt::{JwtError, Validator};
use crate::edge::auth::sasl::{split_gs2_header, Authenticated, Mechanism, Refusal, Step};

/// The error answer for a token that is not accepted (RFC 7628, section 3.2.2).
pub const INVALID_TOKEN: &str = r#"{"status":"invalid_token"}"#;
const MESSAGE: &str = "OAUTHBEARER initial response";

/// A parsed client initial response.
#[derive(PartialEq, Eq)]
pub struct InitialResponse<'a> {
    /// The authorization identity of the gs2 header, unescaped.
    pub authzid: Option<String>,
    /// The bearer token of `auth=Bearer <token>`.
    pub token: &'a str,
    /// The other key-value pairs (SASL extensions), in order.
    pub extensions: Vec<(&'a str, &'a str)>,
}

impl std::fmt::Debug for InitialResponse<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitialResponse")
            .field("authzid", &self.authzid)
            .field("extensions", &self.extensions)
            .finish_non_exhaustive()
    }
}

/// Parses `gs2-header %x01 *(key "=" value %x01) %x01` with an `auth` pair.
pub fn parse_initial_response(message: &[u8]) -> Result<InitialResponse<'_>, Refusal> {
    let bad = |detail| Refusal::Malformed {
        message: MESSAGE,
        detail,
    };
    let text = std::str::from_utf8(message).map_err(|_| bad("not UTF-8"))?;
    let (gs2, rest) = split_gs2_header(text, MESSAGE)?;
    let framing = bad("the key-value pairs are not framed by %x01");
    let body = rest
        .strip_prefix('\u{1}')
        .and_then(|r| r.strip_suffix('\u{1}'))
        .ok_or(framing.clone())?;
    // Each pair ends with %x01; the message's own %x01 follows the last.
    let pairs: Vec<&str> = match body {
        "" => Vec::new(),
        _ => body
            .strip_suffix('\u{1}')
            .ok_or(framing)?
            .split('\u{1}')
            .collect(),
    };
    let mut token = None;
    let mut extensions = Vec::new();
    for pair in pairs {
        let (key, value) = pair.split_once('=').ok_or(bad("a pair is not key=value"))?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(bad("a key is not letters"));
        }
        if value.is_empty()
            || !value
                .bytes()
                .all(|b| matches!(b, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n'))
        {
            return Err(bad("a value is not printable"));
        }
        if key == "auth" {
            if token
                .replace(bearer(value).ok_or(bad("auth is not \"Bearer <token>\""))?)
                .is_some()
            {
                return Err(bad("auth appears twice"));
            }
        } else if extensions.iter().any(|(k, _)| *k == key) {
            return Err(bad("a key appears twice"));
        } else {
            extensions.push((key, value));
        }
    }
    Ok(InitialResponse {
        authzid: gs2.authzid,
        token: token.ok_or(bad("no auth pair"))?,
        extensions,
    })
}

/// The token of an `auth` value: the scheme `Bearer` in any case, spaces, then RFC 6750's
/// b64token (`1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let valid = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    valid.then_some(token)
}

/// One OAUTHBEARER exchange.
#[derive(Debug, Default)]
pub struct OAuthBearerServer {
    state: State,
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Initial,
    /// The error answer went out; the client owes %x01.
    Refused(JwtError),
    Finished,
}

impl OAuthBearerServer {
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    pub fn finish(&mut self) {
        self.state = State::Finished;
    }

    /// Reads the client's next message with the keys and settings of `validator`, at
    /// `now_ms`.
    pub fn step(
        &mut self,
        message: &[u8],
        validator: &Validator<'_>,
        now_ms: u64,
    ) -> Result<Step, Refusal> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Initial => {}
            // Whatever the client says, the token was bad.
            State::Refused(error) => return Err(Refusal::InvalidToken(error)),
            State::Finished => return Err(Refusal::Finished),
        }
        let response = parse_initial_response(message)?;
        let token = match validator.validate(response.token, now_ms) {
            Ok(token) => token,
            Err(error) => {
                self.state = State::Refused(error);
                return Ok(Step::Continue(INVALID_TOKEN.as_bytes().to_vec()));
            }
        };
        if let Some(authzid) = response.authzid.filter(|a| *a != token.principal) {
            return Err(Refusal::AuthorizationId {
                authzid,
                principal: token.principal,
            });
        }
        Ok(Step::Done {
            response: Vec::new(),
            authenticated: Authenticated {
                principal: token.principal,
                mechanism: Mechanism::OAuthBearer,
                expires_at_ms: Some(token.expires_at_ms),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::auth::jwt::tests::{settings, NOW_MS};
    use crate::edge::auth::keys::tests::{pyjwt, pyjwt_jwks};
    use crate::edge::auth::keys::KeySet;

    fn token() -> String {
        pyjwt()["tokens"]["RS256"].as_str().unwrap().to_owned()
    }

    fn initial(authzid: &str, token: &str) -> Vec<u8> {
        format!("n,{authzid},\x01host=broker\x01port=9092\x01auth=Bearer {token}\x01\x01")
            .into_bytes()
    }

    fn run(keys: &KeySet, messages: &[&[u8]]) -> Vec<Result<Step, Refusal>> {
        let settings = settings();
        let validator = Validator {
            keys,
            settings: &settings,
        };
        let mut server = OAuthBearerServer::default();
        messages
            .iter()
            .map(|m| server.step(m, &validator, NOW_MS))
            .collect()
    }

    #[test]
    fn a_valid_token_logs_in_until_it_expires() {
        let keys = pyjwt_jwks();
        let results = run(&keys, &[&initial("", &token()), b"\x01"]);
        assert_eq!(
            results[0],
            Ok(Step::Done {
                response: Vec::new(),
                authenticated: Authenticated {
                    principal: "alice".into(),
                    mechanism: Mechanism::OAuthBearer,
                    expires_at_ms: Some(1_767_229_200_000),
                }
            })
        );
        assert_eq!(results[1], Err(Refusal::Finished));
        // Naming oneself as authorization identity is allowed; anyone else is not.
        assert!(run(&keys, &[&initial("a=alice", &token())])[0].is_ok());
        assert_eq!(
            run(&keys, &[&initial("a=bob", &token())])[0],
            Err(Refusal::AuthorizationId {
                authzid: "bob".into(),
                principal: "alice".into()
            })
        );
    }

    #[test]
    fn a_bad_token_gets_the_error_answer_then_fails_on_the_acknowledgement() {
        let keys = pyjwt_jwks();
        let mut forged = token();
        forged.push_str("AAAA");
        for ack in [&b"\x01"[..], &initial("", &token())] {
            let results = run(&keys, &[&initial("", &forged), ack]);
            assert_eq!(
                results[0],
                Ok(Step::Continue(INVALID_TOKEN.as_bytes().to_vec()))
            );
            // A second token in the same exchange is not tried.
            assert_eq!(
                results[1],
                Err(Refusal::InvalidToken(JwtError::BadSignature))
            );
        }
        // Keys that do not know the token's kid: the same answer.
        let other = KeySet::from_jwks(br#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"x","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#).unwrap();
        let results = run(&other, &[&initial("", &token()), b"\x01"]);
        assert_eq!(
            results[0],
            Ok(Step::Continue(INVALID_TOKEN.as_bytes().to_vec()))
        );
        assert!(matches!(
            results[1],
            Err(Refusal::InvalidToken(JwtError::Key(_)))
        ));
    }

    #[test]
    fn initial_responses_parse_as_kafka_sends_them() {
        let message = b"n,a=a=2Cb=3D,\x01auth=bearer   abc.def-_~+/==\x01traceId=x y\x01\x01";
        let parsed = parse_initial_response(message).unwrap();
        assert_eq!(parsed.authzid.as_deref(), Some("a,b="));
        assert_eq!(parsed.token, "abc.def-_~+/==");
        assert_eq!(parsed.extensions, vec![("traceId", "x y")]);
        assert!(!format!("{parsed:?}").contains("abc.def"));

        let bad = |detail| Refusal::Malformed {
            message: MESSAGE,
            detail,
        };
        for (message, expected) in [
            (
                &b"p=tls-unique,,\x01auth=Bearer x\x01\x01"[..],
                Refusal::ChannelBinding,
            ),
            (b"", bad("no gs2 header")),
            (
                b"q,,\x01auth=Bearer x\x01\x01",
                bad("the gs2 header's channel binding flag is not n, y or p="),
            ),
            (
                b"n,x=y,\x01auth=Bearer x\x01\x01",
                bad("the authorization identity is not a=saslname"),
            ),
            (
                b"n,a=b=2,\x01auth=Bearer x\x01\x01",
                bad("the authorization identity is not a=saslname"),
            ),
            (
                b"n,,auth=Bearer x\x01\x01",
                bad("the key-value pairs are not framed by %x01"),
            ),
            (
                b"n,,\x01auth=Bearer x\x01",
                bad("the key-value pairs are not framed by %x01"),
            ),
            (b"n,,\x01\x01", bad("no auth pair")),
            (
                b"n,,\x01auth=Bearer x\x01\x01\x01",
                bad("a pair is not key=value"),
            ),
            (
                b"n,,\x01a1=v\x01auth=Bearer x\x01\x01",
                bad("a key is not letters"),
            ),
            (
                b"n,,\x01k=\x01auth=Bearer x\x01\x01",
                bad("a value is not printable"),
            ),
            (
                b"n,,\x01k=\x7f\x01auth=Bearer x\x01\x01",
                bad("a value is not printable"),
            ),
            (
                b"n,,\x01auth=Basic x\x01\x01",
                bad("auth is not \"Bearer <token>\""),
            ),
            (
                b"n,,\x01auth=Bearer\x01\x01",
                bad("auth is not \"Bearer <token>\""),
            ),
            (
                b"n,,\x01auth=Bearer a b\x01\x01",
                bad("auth is not \"Bearer <token>\""),
            ),
            (
                b"n,,\x01auth=Bearer ==\x01\x01",
                bad("auth is not \"Bearer <token>\""),
            ),
            (
                b"n,,\x01auth=Bearer x\x01auth=Bearer y\x01\x01",
                bad("auth appears twice"),
            ),
            (
                b"n,,\x01k=1\x01k=2\x01auth=Bearer y\x01\x01",
                bad("a key appears twice"),
            ),
            (b"n,,\x01k=1\x01\x01", bad("no auth pair")),
            (b"n,,\x01auth=Bearer \xff\x01\x01", bad("not UTF-8")),
        ] {
            assert_eq!(
                parse_initial_response(message),
                Err(expected),
                "{message:?}"
            );
        }
    }
}
