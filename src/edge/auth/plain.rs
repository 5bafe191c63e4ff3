//! SASL PLAIN (RFC 4616), server side: one message, `[authzid] NUL authcid NUL passwd`,
//! checked against the stored SCRAM credential of the user. As with Kafka's broker, a client
//! may name an authorization identity only if it is its own user name.

use crate::edge::auth::credentials::{Credentials, PasswordRefusal};
use crate::edge::auth::sasl::{Authenticated, Mechanism, Refusal, Step};

const MESSAGE: &str = "PLAIN message";

/// The three fields of a PLAIN message.
#[derive(PartialEq, Eq)]
pub struct PlainMessage<'a> {
    /// Empty when the client names none.
    pub authzid: &'a str,
    pub username: &'a str,
    pub password: &'a [u8],
}

impl std::fmt::Debug for PlainMessage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainMessage")
            .field("authzid", &self.authzid)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Splits a PLAIN message into its fields: exactly two NULs, UTF-8 names, a user name and a
/// password that are not empty.
pub fn parse(message: &[u8]) -> Result<PlainMessage<'_>, Refusal> {
    let malformed = |detail| Refusal::Malformed {
        message: MESSAGE,
        detail,
    };
    let mut parts = message.splitn(3, |b| *b == 0);
    let (Some(authzid), Some(username), Some(password)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("not three NUL-separated fields"));
    };
    if password.contains(&0) {
        return Err(malformed("not three NUL-separated fields"));
    }
    let text = |bytes| std::str::from_utf8(bytes).map_err(|_| malformed("a name is not UTF-8"));
    let (authzid, username) = (text(authzid)?, text(username)?);
    if username.is_empty() {
        return Err(malformed("no user name"));
    }
    if password.is_empty() {
        return Err(malformed("no password"));
    }
    Ok(PlainMessage {
        authzid,
        username,
        password,
    })
}

/// Authenticates a PLAIN message. The password is checked before the authorization identity,
/// as Kafka does, so a refusal for the latter tells only a client that knew the password.
pub fn authenticate(message: &[u8], credentials: &Credentials) -> Result<Step, Refusal> {
    let plain = parse(message)?;
    credentials
        .verify_password(plain.username, plain.password)
        .map_err(|refusal| match refusal {
            PasswordRefusal::UnknownUser => Refusal::UnknownUser,
            PasswordRefusal::Mismatch => Refusal::BadCredentials,
        })?;
    if !plain.authzid.is_empty() && plain.authzid != plain.username {
        return Err(Refusal::AuthorizationId {
            authzid: plain.authzid.to_owned(),
            principal: plain.username.to_owned(),
        });
    }
    Ok(Step::Done {
        response: Vec::new(),
        authenticated: Authenticated {
            principal: plain.username.to_owned(),
            mechanism: Mechanism::Plain,
            expires_at_ms: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::scram::Hash;
    use crate::edge::auth::credentials::tests::file_salted;
    use crate::edge::auth::credentials::DecoySecret;

    fn credentials() -> Credentials {
        let text = file_salted(&[("alice", Hash::Sha512, "pencil")], b"0123456789abcdef");
        Credentials::parse(text.as_bytes(), DecoySecret::fixed([1; 32])).unwrap()
    }

    fn refusal(message: &[u8]) -> Refusal {
        authenticate(message, &credentials()).unwrap_err()
    }

    #[test]
    fn rfc_4616_messages_parse() {
        let with = parse(b"admin\0alice\0pencil").unwrap();
        assert_eq!(
            (with.authzid, with.username, with.password),
            ("admin", "alice", &b"pencil"[..])
        );
        let without = parse(b"\0alice\0pen\xffcil").unwrap();
        assert_eq!(without.authzid, "");
        // Passwords are bytes: only the names must be text.
        assert_eq!(without.password, b"pen\xffcil");
        assert!(!format!("{without:?}").contains("pen"));
    }

    #[test]
    fn the_right_password_logs_in_as_the_user() {
        for message in [&b"\0alice\0pencil"[..], b"alice\0alice\0pencil"] {
            let Step::Done {
                response,
                authenticated,
            } = authenticate(message, &credentials()).unwrap()
            else {
                panic!("PLAIN is one message");
            };
            assert!(response.is_empty());
            assert_eq!(authenticated.principal, "alice");
            assert_eq!(authenticated.mechanism, Mechanism::Plain);
            assert_eq!(authenticated.expires_at_ms, None);
        }
    }

    #[test]
    fn wrong_unknown_and_malformed_logins_are_refused() {
        assert_eq!(refusal(b"\0alice\0crayon"), Refusal::BadCredentials);
        assert_eq!(refusal(b"\0mallory\0pencil"), Refusal::UnknownUser);
        assert_eq!(
            refusal(b"bob\0alice\0pencil"),
            Refusal::AuthorizationId {
                authzid: "bob".into(),
                principal: "alice".into()
            }
        );
        // A different authzid with a wrong password is a wrong password.
        assert_eq!(refusal(b"bob\0alice\0crayon"), Refusal::BadCredentials);
        for (message, detail) in [
            (&b""[..], "not three NUL-separated fields"),
            (b"alice\0pencil", "not three NUL-separated fields"),
            (b"\0alice\0pen\0cil", "not three NUL-separated fields"),
            (b"\0\0pencil", "no user name"),
            (b"\0alice\0", "no password"),
            (b"\0al\xffice\0pencil", "a name is not UTF-8"),
            (b"\xff\0alice\0pencil", "a name is not UTF-8"),
        ] {
            assert_eq!(
                refusal(message),
                Refusal::Malformed {
                    message: MESSAGE,
                    detail
                },
                "{message:?}"
            );
        }
    }
}
