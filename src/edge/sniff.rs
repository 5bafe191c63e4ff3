//! A connection's first bytes tell a client that speaks the wrong protocol for its port, so
//! the log can name the mistake and its fix instead of "frame size 369295617 exceeds the
//! limit" (which is what a TLS ClientHello reads as, taken for a Kafka size prefix: the most
//! common confusion users of Kafka proxies report).
//!
//! A Kafka client's first frame is small, so its size prefix starts with a zero byte; TLS,
//! HTTP and the PROXY protocol all start with bytes a Kafka frame never does. Nothing here
//! reads past the first few bytes, and nothing is consumed: the session reads the same bytes.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

/// A way of speaking to the wrong port, or of failing before the first Kafka byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mistake {
    TlsToPlaintext,
    PlaintextToTls,
    Http,
    HttpToTls,
    ProxyHeaderUnexpected,
    ProxyHeaderMissing,
    ProxyHeaderMalformed,
    SaslHandshakeV0,
    TlsHandshake,
    NotLoggedIn,
}

impl Mistake {
    pub const ALL: [Mistake; 10] = [
        Mistake::TlsToPlaintext,
        Mistake::PlaintextToTls,
        Mistake::Http,
        Mistake::HttpToTls,
        Mistake::ProxyHeaderUnexpected,
        Mistake::ProxyHeaderMissing,
        Mistake::ProxyHeaderMalformed,
        Mistake::SaslHandshakeV0,
        Mistake::TlsHandshake,
        Mistake::NotLoggedIn,
    ];

    /// The metric label.
    pub fn kind(self) -> &'static str {
        match self {
            Mistake::TlsToPlaintext => "tls_to_plaintext",
            Mistake::PlaintextToTls => "plaintext_to_tls",
            Mistake::Http => "http",
            Mistake::HttpToTls => "http_to_tls",
            Mistake::ProxyHeaderUnexpected => "proxy_header_unexpected",
            Mistake::ProxyHeaderMissing => "proxy_header_missing",
            Mistake::ProxyHeaderMalformed => "proxy_header_malformed",
            Mistake::SaslHandshakeV0 => "sasl_handshake_v0",
            Mistake::TlsHandshake => "tls_handshake",
            Mistake::NotLoggedIn => "not_logged_in",
        }
    }

    /// What happened and what fixes it, as the log says it after "client ADDR ".
    pub fn explain(self) -> &'static str {
        match self {
            Mistake::TlsToPlaintext => "spoke TLS to a plaintext listener: set security.protocol=PLAINTEXT (or SASL_PLAINTEXT) on the client, or enable [tls] on the gateway",
            Mistake::PlaintextToTls => "spoke plaintext Kafka to a TLS listener: set security.protocol=SSL (or SASL_SSL) on the client",
            Mistake::Http => "sent HTTP to a Kafka listener: point Kafka clients here, and HTTP tools at the admin endpoint ([admin] listen)",
            Mistake::HttpToTls => "sent plain HTTP to a TLS Kafka listener: point Kafka clients here with security.protocol=SSL, and HTTP tools at the admin endpoint ([admin] listen)",
            Mistake::ProxyHeaderUnexpected => "sent a PROXY protocol header, but gateway.proxy_protocol is off: set it to \"optional\" or \"required\", or stop the load balancer from sending one",
            Mistake::ProxyHeaderMissing => "sent no PROXY protocol header, which gateway.proxy_protocol = \"required\" demands: enable the PROXY protocol on the load balancer, or set \"optional\"",
            Mistake::ProxyHeaderMalformed => "sent a malformed PROXY protocol header: check the load balancer's PROXY protocol settings",
            Mistake::SaslHandshakeV0 => "sent SaslHandshake v0, after which SASL tokens travel outside Kafka framing; the gateway relays SaslHandshake v1 with SaslAuthenticate (every Kafka client since 1.0): upgrade the client",
            Mistake::TlsHandshake => "failed the TLS handshake",
            Mistake::NotLoggedIn => "sent a request before logging in: clients log in at this gateway; set security.protocol=SASL_PLAINTEXT (or SASL_SSL) and sasl.mechanism on the client",
        }
    }
}

/// What the first bytes say so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    /// Nothing against the listener's protocol.
    Fine,
    /// A mistake, certainly.
    Mistake(Mistake),
    /// These bytes begin something else than the listener's protocol, but too few are here
    /// to tell what.
    NeedMore,
}

/// The bytes worth a look: enough for the longest signature below.
pub const SNIFF_BYTES: usize = 16;

const PROXY_V1: &[u8] = b"PROXY ";
const PROXY_V2: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
const HTTP: [&[u8]; 10] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
    b"PRI * HTTP/2",
];
/// A TLS record carrying a handshake: content type 22, then the major version 3.
const TLS_HANDSHAKE: &[u8] = &[0x16, 0x03];

/// Whether `first` starts with `signature`; `None` while it is still a prefix of it.
fn starts(first: &[u8], signature: &[u8]) -> Option<bool> {
    if first.len() >= signature.len() {
        Some(first.starts_with(signature))
    } else if signature.starts_with(first) {
        None
    } else {
        Some(false)
    }
}

/// Looks for each signature; the first certain match wins, and an undecided prefix asks
/// for more bytes.
fn find(first: &[u8], signatures: &[(&[u8], Mistake)]) -> Sniff {
    let mut undecided = false;
    for (signature, mistake) in signatures {
        match starts(first, signature) {
            Some(true) => return Sniff::Mistake(*mistake),
            Some(false) => {}
            None => undecided = true,
        }
    }
    if undecided {
        Sniff::NeedMore
    } else {
        Sniff::Fine
    }
}

fn signatures(http: Mistake) -> Vec<(&'static [u8], Mistake)> {
    let mut all = vec![
        (PROXY_V1, Mistake::ProxyHeaderUnexpected),
        (PROXY_V2, Mistake::ProxyHeaderUnexpected),
    ];
    all.extend(HTTP.iter().map(|method| (*method, http)));
    all
}

/// The first bytes on a plaintext Kafka listener.
pub fn plaintext(first: &[u8]) -> Sniff {
    match first.first() {
        None => Sniff::NeedMore,
        // A size prefix under 16 MiB: the start of every first Kafka request.
        Some(0) => Sniff::Fine,
        Some(_) => {
            let mut all = signatures(Mistake::Http);
            all.push((TLS_HANDSHAKE, Mistake::TlsToPlaintext));
            find(first, &all)
        }
    }
}

/// The first bytes on a TLS listener.
pub fn tls(first: &[u8]) -> Sniff {
    match first.first() {
        None => Sniff::NeedMore,
        Some(0x16) => Sniff::Fine,
        Some(0) => Sniff::Mistake(Mistake::PlaintextToTls),
        Some(_) => find(first, &signatures(Mistake::HttpToTls)),
    }
}

/// What a fresh connection sent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Bytes that may well be the listener's protocol (or a closed connection, which the
    /// session will find out about).
    Fine,
    /// Nothing at all within the limit.
    Nothing,
}

/// Peeks at a fresh connection's first bytes, without consuming them, until `judge` decides
/// or `limit` runs out.
pub async fn first_bytes(
    stream: &TcpStream,
    judge: fn(&[u8]) -> Sniff,
    limit: Duration,
) -> Result<Heard, Mistake> {
    let mut seen = 0;
    let look = peek_until(stream, |first| {
        seen = first.len();
        match judge(first) {
            Sniff::NeedMore if first.len() < SNIFF_BYTES => None,
            Sniff::NeedMore => Some(Sniff::Fine),
            verdict => Some(verdict),
        }
    });
    match tokio::time::timeout(limit, look).await {
        Ok(Ok(Some(Sniff::Mistake(mistake)))) => Err(mistake),
        // Closed or failed before a byte: nothing to judge; the session finds out.
        Ok(_) => Ok(Heard::Fine),
        // Some bytes, undecided: the session judges them as they are.
        Err(_) if seen > 0 => Ok(Heard::Fine),
        Err(_) => Ok(Heard::Nothing),
    }
}

/// Peeks at the first bytes of a connection (up to [`SNIFF_BYTES`]) until `decide` makes
/// something of them; `None` when the connection closed first. Peeking again returns the same
/// bytes at once until more arrive, so while the bytes there are undecided it backs off,
/// from a millisecond up to a quarter of a second: a client that sends one byte and stops
/// costs a few dozen wake-ups, not thousands. Senders in good faith send their first bytes
/// in one segment and never wait here.
pub async fn peek_until<T>(
    stream: &TcpStream,
    mut decide: impl FnMut(&[u8]) -> Option<T>,
) -> std::io::Result<Option<T>> {
    let mut first = [0u8; SNIFF_BYTES];
    let mut seen = 0;
    let mut pause = Duration::from_millis(1);
    loop {
        let n = stream.peek(&mut first).await?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(decided) = decide(&first[..n]) {
            return Ok(Some(decided));
        }
        if n == seen {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
        seen = n;
    }
}

/// The log line for a mistake, with the client's address up front.
pub fn describe(mistake: Mistake, client: SocketAddr) -> String {
    format!("client {} {}", client.ip(), mistake.explain())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT_HELLO: &[u8] = &[0x16, 0x03, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0xfc, 0x03];
    const API_VERSIONS: &[u8] = &[0, 0, 0, 0x21, 0, 0x12, 0, 3, 0, 0, 0, 1];

    #[test]
    fn plaintext_listener_tells_tls_http_and_proxy_headers_from_kafka() {
        assert_eq!(plaintext(API_VERSIONS), Sniff::Fine);
        assert_eq!(
            plaintext(CLIENT_HELLO),
            Sniff::Mistake(Mistake::TlsToPlaintext)
        );
        assert_eq!(
            plaintext(b"GET /metrics HTTP/1.1\r\n"),
            Sniff::Mistake(Mistake::Http)
        );
        assert_eq!(
            plaintext(b"PRI * HTTP/2.0\r\n"),
            Sniff::Mistake(Mistake::Http)
        );
        assert_eq!(
            plaintext(b"PROXY TCP4 1.2.3.4"),
            Sniff::Mistake(Mistake::ProxyHeaderUnexpected)
        );
        assert_eq!(
            plaintext(b"\r\n\r\n\0\r\nQUIT\n\x21\x11"),
            Sniff::Mistake(Mistake::ProxyHeaderUnexpected)
        );
        // Something else entirely: left to the frame check.
        assert_eq!(plaintext(b"\x7fELF"), Sniff::Fine);
    }

    #[test]
    fn tls_listener_tells_plaintext_kafka_and_http() {
        assert_eq!(tls(CLIENT_HELLO), Sniff::Fine);
        assert_eq!(tls(API_VERSIONS), Sniff::Mistake(Mistake::PlaintextToTls));
        assert_eq!(tls(b"GET / HTTP/1.1"), Sniff::Mistake(Mistake::HttpToTls));
        assert_eq!(
            tls(b"PROXY TCP4 "),
            Sniff::Mistake(Mistake::ProxyHeaderUnexpected)
        );
    }

    #[test]
    fn every_prefix_of_a_signature_waits_and_the_whole_decides() {
        for whole in [CLIENT_HELLO, b"GET / HTTP/1.1".as_slice(), b"PROXY TCP4 "] {
            for cut in 1..whole.len() {
                let verdict = plaintext(&whole[..cut]);
                if verdict != Sniff::NeedMore {
                    // Decided early only once the signature itself is complete.
                    assert!(matches!(verdict, Sniff::Mistake(_)), "{whole:?} at {cut}");
                }
            }
            assert!(matches!(plaintext(whole), Sniff::Mistake(_)));
        }
        assert_eq!(plaintext(&[]), Sniff::NeedMore);
        assert_eq!(plaintext(b"GE"), Sniff::NeedMore);
        assert_eq!(tls(b"\r\n"), Sniff::NeedMore);
    }

    #[test]
    fn every_mistake_has_a_distinct_label() {
        let mut kinds: Vec<_> = Mistake::ALL.iter().map(|m| m.kind()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), Mistake::ALL.len());
    }
}
