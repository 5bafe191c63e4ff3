//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), server side: client-first in,
//! server-first out; client-final in, server-final out and the principal.
//!
//! As Kafka's broker: no channel binding (`n` or `y` gs2 flags, never `p=`), an
//! authorization identity only if it is the user's own name, user names without SASLprep.
//! Stricter than Kafka where the RFC asks for it: a mandatory extension (`m=`) is refused, the
//! channel-binding attribute must repeat the gs2 header, the client-final nonce must be this
//! exchange's exactly. Kafka's `tokenauth` extension (delegation tokens) is refused: the edge
//! holds no tokens, and one issued by the cluster names an upstream identity, not a client.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::cluster::scram::{fields, xor, Hash};
use crate::edge::auth::credentials::{Credentials, Lookup, ScramCredential};
use crate::edge::auth::sasl::{
    split_gs2_header, unescape_saslname, Authenticated, Mechanism, Refusal, Step,
};

const CLIENT_FIRST: &str = "SCRAM client-first-message";
const CLIENT_FINAL: &str = "SCRAM client-final-message";

/// A parsed client-first-message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst<'a> {
    /// `n,,` or `y,a=name,`: repeated, base64, in the client-final's `c=`.
    pub gs2_header: &'a str,
    /// The authorization identity, unescaped.
    pub authzid: Option<String>,
    /// The user name, unescaped.
    pub username: String,
    pub nonce: &'a str,
    /// client-first-message-bare: the start of the AuthMessage.
    pub bare: &'a str,
    /// Whether the client asked for a delegation token login (`tokenauth=true`).
    pub token_auth: bool,
}

/// A parsed client-final-message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFinal<'a> {
    pub channel_binding: Vec<u8>,
    pub nonce: &'a str,
    /// client-final-message-without-proof: the end of the AuthMessage.
    pub without_proof: &'a str,
    pub proof: Vec<u8>,
}

fn malformed(message: &'static str, detail: &'static str) -> Refusal {
    Refusal::Malformed { message, detail }
}

/// Parses a client-first-message:
/// `gs2-cbind-flag "," [ "a=" saslname ] "," "n=" saslname ",r=" nonce *("," ext "=" value)`.
pub fn parse_client_first(message: &[u8]) -> Result<ClientFirst<'_>, Refusal> {
    let bad = |detail| malformed(CLIENT_FIRST, detail);
    let text = std::str::from_utf8(message).map_err(|_| bad("not UTF-8"))?;
    let (gs2, bare) = split_gs2_header(text, CLIENT_FIRST)?;
    let attributes = fields(bare).ok_or(bad("not a list of key=value attributes"))?;
    if attributes.first().is_some_and(|(key, _)| *key == "m") {
        return Err(Refusal::MandatoryExtension);
    }
    let username = match attributes.first() {
        Some(("n", name)) => {
            unescape_saslname(name).ok_or(bad("the user name is not a saslname"))?
        }
        _ => return Err(bad("the first attribute is not n=")),
    };
    let nonce = match attributes.get(1) {
        Some(("r", nonce)) if is_nonce(nonce) => *nonce,
        Some(("r", _)) => return Err(bad("the nonce is not printable ASCII")),
        _ => return Err(bad("the second attribute is not r=")),
    };
    let token_auth = attributes[2..]
        .iter()
        .any(|(key, value)| *key == "tokenauth" && value.eq_ignore_ascii_case("true"));
    Ok(ClientFirst {
        gs2_header: gs2.text,
        authzid: gs2.authzid,
        username,
        nonce,
        bare,
        token_auth,
    })
}

/// Parses a client-final-message: `c=` base64 `,r=` nonce `*("," ext "=" value) ",p="` base64.
pub fn parse_client_final(message: &[u8]) -> Result<ClientFinal<'_>, Refusal> {
    let bad = |detail| malformed(CLIENT_FINAL, detail);
    let text = std::str::from_utf8(message).map_err(|_| bad("not UTF-8"))?;
    let attributes = fields(text).ok_or(bad("not a list of key=value attributes"))?;
    let channel_binding = match attributes.first() {
        Some(("c", value)) => BASE64
            .decode(value)
            .map_err(|_| bad("the channel binding is not base64"))?,
        _ => return Err(bad("the first attribute is not c=")),
    };
    let nonce = match attributes.get(1) {
        Some(("r", nonce)) if is_nonce(nonce) => *nonce,
        Some(("r", _)) => return Err(bad("the nonce is not printable ASCII")),
        _ => return Err(bad("the second attribute is not r=")),
    };
    let proof = match attributes.last() {
        Some(("p", proof)) if attributes.len() > 2 => BASE64
            .decode(proof)
            .map_err(|_| bad("the proof is not base64"))?,
        _ => return Err(bad("the last attribute is not p=")),
    };
    let (without_proof, _) = text.rsplit_once(',').ok_or(bad("no proof"))?;
    Ok(ClientFinal {
        channel_binding,
        nonce,
        without_proof,
        proof,
    })
}

/// RFC 5802's `printable`: ASCII from `!` to `~` but `,`, at least one.
fn is_nonce(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// One SCRAM exchange.
pub struct ScramServer {
    hash: Hash,
    state: State,
}

enum State {
    First { server_nonce: String },
    Final(Box<Pending>),
    Finished,
}

/// What the client-final is checked against.
struct Pending {
    gs2_header: String,
    /// Client nonce and server nonce.
    nonce: String,
    /// client-first-message-bare "," server-first-message.
    auth_prefix: String,
    username: String,
    credential: ScramCredential,
    known: bool,
}

impl std::fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::First { .. } => "awaiting client-first",
            State::Final(_) => "awaiting client-final",
            State::Finished => "finished",
        };
        f.debug_struct("ScramServer")
            .field("hash", &self.hash)
            .field("state", &state)
            .finish()
    }
}

impl ScramServer {
    /// `server_nonce`: fresh random printable text without commas, for this exchange alone
    /// ([`crate::cluster::scram::nonce`]). A client-final of another exchange carries another
    /// nonce, so it cannot be replayed here.
    pub fn new(hash: Hash, server_nonce: String) -> ScramServer {
        ScramServer {
            hash,
            state: State::First { server_nonce },
        }
    }

    pub fn hash(&self) -> Hash {
        self.hash
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    pub fn finish(&mut self) {
        self.state = State::Finished;
    }

    /// Reads the client's next message. Any refusal ends the exchange.
    pub fn step(&mut self, message: &[u8], credentials: &Credentials) -> Result<Step, Refusal> {
        let state = std::mem::replace(&mut self.state, State::Finished);
        match state {
            State::First { server_nonce } => {
                let (pending, server_first) =
                    self.client_first(message, &server_nonce, credentials)?;
                self.state = State::Final(Box::new(pending));
                Ok(Step::Continue(server_first.into_bytes()))
            }
            State::Final(pending) => self.client_final(message, &pending),
            State::Finished => Err(Refusal::Finished),
        }
    }

    fn client_first(
        &self,
        message: &[u8],
        server_nonce: &str,
        credentials: &Credentials,
    ) -> Result<(Pending, String), Refusal> {
        let first = parse_client_first(message)?;
        if first.token_auth {
            return Err(Refusal::TokenAuth);
        }
        if let Some(authzid) = first.authzid.filter(|a| *a != first.username) {
            return Err(Refusal::AuthorizationId {
                authzid,
                principal: first.username,
            });
        }
        let lookup = credentials.scram(&first.username, self.hash);
        let known = matches!(lookup, Lookup::Known(_));
        let credential = lookup.credential().clone();
        let nonce = format!("{}{server_nonce}", first.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        Ok((
            Pending {
                gs2_header: first.gs2_header.to_owned(),
                nonce,
                auth_prefix: format!("{},{server_first}", first.bare),
                username: first.username,
                credential,
                known,
            },
            server_first,
        ))
    }

    fn client_final(&self, message: &[u8], pending: &Pending) -> Result<Step, Refusal> {
        let last = parse_client_final(message)?;
        if last.channel_binding != pending.gs2_header.as_bytes() {
            return Err(Refusal::ChannelBindingMismatch);
        }
        if last.nonce != pending.nonce {
            return Err(Refusal::Nonce);
        }
        let hash = self.hash;
        let credential = &pending.credential;
        let auth_message = format!("{},{}", pending.auth_prefix, last.without_proof);
        let client_signature = hash.sign(&credential.stored_key, auth_message.as_bytes());
        // A proof of the wrong length is compared like any other, and fails like any other.
        let client_key = xor(&last.proof, &client_signature);
        let proven = last.proof.len() == client_signature.len()
            && bool::from(hash.hash(&client_key).ct_eq(&credential.stored_key));
        match (pending.known, proven) {
            (false, _) => Err(Refusal::UnknownUser),
            (true, false) => Err(Refusal::BadCredentials),
            (true, true) => {
                let signature = hash.sign(&credential.server_key, auth_message.as_bytes());
                Ok(Step::Done {
                    response: format!("v={}", BASE64.encode(signature)).into_bytes(),
                    authenticated: Authenticated {
                        principal: pending.username.clone(),
                        mechanism: Mechanism::Scram(hash),
                        expires_at_ms: None,
                    },
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::cluster::scram::ClientFirst as Client;
    use crate::edge::auth::credentials::tests::file_salted;
    use crate::edge::auth::credentials::DecoySecret;

    /// RFC 7677, section 3.
    const CLIENT_FIRST_RFC: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_NONCE_RFC: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const SERVER_FIRST_RFC: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL_RFC: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL_RFC: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn credentials(users: &[(&str, Hash, &str)]) -> Credentials {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let text = file_salted(users, &salt);
        Credentials::parse(text.as_bytes(), DecoySecret::fixed([3; 32])).unwrap()
    }

    fn rfc_credentials() -> Credentials {
        credentials(&[("user", Hash::Sha256, "pencil")])
    }

    fn continue_bytes(step: Step) -> Vec<u8> {
        match step {
            Step::Continue(bytes) => bytes,
            Step::Done { .. } => panic!("finished early"),
        }
    }

    #[test]
    fn rfc_7677_test_vector() {
        let creds = rfc_credentials();
        let mut server = ScramServer::new(Hash::Sha256, SERVER_NONCE_RFC.into());
        let first = continue_bytes(server.step(CLIENT_FIRST_RFC.as_bytes(), &creds).unwrap());
        assert_eq!(String::from_utf8(first).unwrap(), SERVER_FIRST_RFC);
        let Step::Done {
            response,
            authenticated,
        } = server.step(CLIENT_FINAL_RFC.as_bytes(), &creds).unwrap()
        else {
            panic!("not finished");
        };
        assert_eq!(String::from_utf8(response).unwrap(), SERVER_FINAL_RFC);
        assert_eq!(authenticated.principal, "user");
        assert_eq!(authenticated.mechanism, Mechanism::Scram(Hash::Sha256));
        assert!(server.is_finished());
        assert_eq!(
            server
                .step(CLIENT_FINAL_RFC.as_bytes(), &creds)
                .unwrap_err(),
            Refusal::Finished
        );
    }

    /// The gateway's own SCRAM client (cluster::scram) logs in, and accepts the server's
    /// signature.
    fn login(
        creds: &Credentials,
        hash: Hash,
        user: &str,
        password: &str,
    ) -> Result<String, Refusal> {
        let client = Client::new(hash, user, password, "clientnonce".into());
        let mut server = ScramServer::new(hash, "servernonce".into());
        let server_first = continue_bytes(server.step(client.message().as_bytes(), creds)?);
        let (check, client_final) = client.answer(&server_first).unwrap();
        match server.step(client_final.as_bytes(), creds)? {
            Step::Done {
                response,
                authenticated,
            } => {
                check.verify(&response).unwrap();
                Ok(authenticated.principal)
            }
            Step::Continue(_) => panic!("SCRAM has two client messages"),
        }
    }

    #[test]
    fn both_hashes_log_in_with_the_gateway_client() {
        let creds = credentials(&[
            ("alice", Hash::Sha512, "pencil"),
            ("a,b=c", Hash::Sha256, "crayon"),
        ]);
        assert_eq!(
            login(&creds, Hash::Sha512, "alice", "pencil").unwrap(),
            "alice"
        );
        // Escaped names are unescaped before the lookup.
        assert_eq!(
            login(&creds, Hash::Sha256, "a,b=c", "crayon").unwrap(),
            "a,b=c"
        );
        assert_eq!(
            login(&creds, Hash::Sha512, "alice", "crayon"),
            Err(Refusal::BadCredentials)
        );
        // A credential for the other hash does not count.
        assert_eq!(
            login(&creds, Hash::Sha256, "alice", "pencil"),
            Err(Refusal::UnknownUser)
        );
        assert_eq!(
            login(&creds, Hash::Sha512, "mallory", "pencil"),
            Err(Refusal::UnknownUser)
        );
    }

    #[test]
    fn unknown_users_get_a_server_first_like_anyone_else() {
        let creds = rfc_credentials();
        let mut server = ScramServer::new(Hash::Sha256, "s".into());
        let first = continue_bytes(server.step(b"n,,n=nobody,r=abc", &creds).unwrap());
        let text = String::from_utf8(first).unwrap();
        assert!(text.starts_with("r=abcs,s="), "{text}");
        assert!(text.ends_with(",i=8192"), "{text}");
    }

    #[test]
    fn a_client_final_replayed_into_another_exchange_fails() {
        let creds = rfc_credentials();
        // Session 1 is the RFC's; session 2 draws another server nonce.
        let mut other = ScramServer::new(Hash::Sha256, "another-server-nonce".into());
        continue_bytes(other.step(CLIENT_FIRST_RFC.as_bytes(), &creds).unwrap());
        assert_eq!(
            other.step(CLIENT_FINAL_RFC.as_bytes(), &creds).unwrap_err(),
            Refusal::Nonce
        );
        assert!(other.is_finished());
    }

    #[test]
    fn tampered_client_finals_fail() {
        let creds = rfc_credentials();
        let run = |client_final: &str| {
            let mut server = ScramServer::new(Hash::Sha256, SERVER_NONCE_RFC.into());
            continue_bytes(server.step(CLIENT_FIRST_RFC.as_bytes(), &creds).unwrap());
            server.step(client_final.as_bytes(), &creds).unwrap_err()
        };
        let with_proof = |proof: &str| {
            format!("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p={proof}")
        };
        assert_eq!(
            run(&with_proof("eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")),
            Refusal::BadCredentials
        );
        // Short proofs, empty proofs.
        assert_eq!(run(&with_proof("dHzb")), Refusal::BadCredentials);
        assert_eq!(run(&with_proof("")), Refusal::BadCredentials);
        // Channel binding that is not the gs2 header (base64 of "y,,").
        assert_eq!(
            run("c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
            Refusal::ChannelBindingMismatch
        );
        // An extension between nonce and proof changes the AuthMessage: the proof no longer
        // matches.
        assert_eq!(
            run("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,x=1,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
            Refusal::BadCredentials
        );
        assert_eq!(
            run("c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
            Refusal::Nonce
        );
    }

    #[test]
    fn client_first_messages_parse_as_the_rfc_says() {
        let first = parse_client_first(b"y,a=a=2Cb,n=a=2Cb,r=xyz,tokenauth=TRUE,foo=bar").unwrap();
        assert_eq!(first.gs2_header, "y,a=a=2Cb,");
        assert_eq!(first.authzid.as_deref(), Some("a,b"));
        assert_eq!(first.username, "a,b");
        assert_eq!(first.nonce, "xyz");
        assert_eq!(first.bare, "n=a=2Cb,r=xyz,tokenauth=TRUE,foo=bar");
        assert!(first.token_auth);
        assert!(
            !parse_client_first(b"n,,n=u,r=x,tokenauth=false")
                .unwrap()
                .token_auth
        );

        let bad = |detail| malformed(CLIENT_FIRST, detail);
        for (message, expected) in [
            (&b"p=tls-unique,,n=u,r=x"[..], Refusal::ChannelBinding),
            (b"n,,m=ext,n=u,r=x", Refusal::MandatoryExtension),
            (b"", bad("no gs2 header")),
            (b"n,", bad("no gs2 header")),
            (
                b"x,,n=u,r=x",
                bad("the gs2 header's channel binding flag is not n, y or p="),
            ),
            (
                b"n,b=u,n=u,r=x",
                bad("the authorization identity is not a=saslname"),
            ),
            (
                b"n,a=,n=u,r=x",
                bad("the authorization identity is not a=saslname"),
            ),
            (b"n,,", bad("not a list of key=value attributes")),
            (b"n,,r=x,n=u", bad("the first attribute is not n=")),
            (b"n,,n=u=2X,r=x", bad("the user name is not a saslname")),
            (b"n,,n=u=2,r=x", bad("the user name is not a saslname")),
            (b"n,,n=,r=x", bad("the user name is not a saslname")),
            (b"n,,n=u", bad("the second attribute is not r=")),
            (b"n,,n=u,r=", bad("the nonce is not printable ASCII")),
            (b"n,,n=u,r=a b", bad("the nonce is not printable ASCII")),
            (b"n,,n=u\xff,r=x", bad("not UTF-8")),
        ] {
            assert_eq!(parse_client_first(message), Err(expected), "{message:?}");
        }
    }

    #[test]
    fn refusals_at_the_first_message() {
        let creds = rfc_credentials();
        let first = |message: &[u8]| {
            ScramServer::new(Hash::Sha256, "s".into())
                .step(message, &creds)
                .unwrap_err()
        };
        assert_eq!(first(b"n,,n=user,r=x,tokenauth=true"), Refusal::TokenAuth);
        assert_eq!(
            first(b"n,a=admin,n=user,r=x"),
            Refusal::AuthorizationId {
                authzid: "admin".into(),
                principal: "user".into()
            }
        );
        // Naming oneself is fine.
        let mut server = ScramServer::new(Hash::Sha256, "s".into());
        assert!(server.step(b"n,a=user,n=user,r=x", &creds).is_ok());
    }

    #[test]
    fn client_final_messages_parse_as_the_rfc_says() {
        let last = parse_client_final(b"c=biws,r=abc,ext=1,p=AAAA").unwrap();
        assert_eq!(last.channel_binding, b"n,,");
        assert_eq!(last.nonce, "abc");
        assert_eq!(last.without_proof, "c=biws,r=abc,ext=1");
        assert_eq!(last.proof, [0, 0, 0]);
        let bad = |detail| malformed(CLIENT_FINAL, detail);
        for (message, expected) in [
            (&b""[..], bad("not a list of key=value attributes")),
            (b"r=abc,c=biws,p=AAAA", bad("the first attribute is not c=")),
            (
                b"c=b!ws,r=abc,p=AAAA",
                bad("the channel binding is not base64"),
            ),
            (b"c=biws,p=AAAA", bad("the second attribute is not r=")),
            (b"c=biws,r=,p=AAAA", bad("the nonce is not printable ASCII")),
            (b"c=biws,r=abc", bad("the last attribute is not p=")),
            (
                b"c=biws,r=abc,p=AAAA,x=1",
                bad("the last attribute is not p="),
            ),
            (b"c=biws,r=abc,p=AA*A", bad("the proof is not base64")),
            (b"c=biws,r=\xff,p=AAAA", bad("not UTF-8")),
        ] {
            assert_eq!(parse_client_final(message), Err(expected), "{message:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Any user name and password log in with the right password and only with it,
        /// and any single changed byte of the client-final is refused.
        #[test]
        fn logins_succeed_exactly_with_the_password(
            user in "[^\\p{Cc}]{1,20}",
            password in "[a-zA-Z0-9 !-~]{1,20}",
            other in "[a-zA-Z0-9]{1,20}",
            flip in any::<prop::sample::Index>(),
            sha512 in any::<bool>(),
        ) {
            let hash = if sha512 { Hash::Sha512 } else { Hash::Sha256 };
            let creds = credentials(&[(user.as_str(), hash, password.as_str())]);
            prop_assert_eq!(login(&creds, hash, &user, &password), Ok(user.clone()));
            if other != password {
                prop_assert_eq!(login(&creds, hash, &user, &other), Err(Refusal::BadCredentials));
            }

            let client = Client::new(hash, &user, &password, "clientnonce".into());
            let mut server = ScramServer::new(hash, "servernonce".into());
            let server_first = continue_bytes(server.step(client.message().as_bytes(), &creds).unwrap());
            let (_, client_final) = client.answer(&server_first).unwrap();
            let mut tampered = client_final.into_bytes();
            let at = flip.index(tampered.len());
            tampered[at] ^= 0x01;
            prop_assert!(server.step(&tampered, &creds).is_err());
        }
    }
}
