//! The PROXY protocol (versions 1 and 2), as load balancers send it ahead of a connection's
//! own bytes, so that logs name the real client rather than the balancer.
//!
//! The header is read with `peek` first: in `optional` mode a connection without one loses
//! none of its bytes. A Kafka frame can never look like either signature: both would read
//! as a size prefix above 200 MB.

use std::net::SocketAddr;

use ppp::{v1, v2};

use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::edge::sniff::peek_until;

/// Whether client listeners expect a PROXY protocol header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Off,
    /// Read a header when there is one; take the connection as it is otherwise.
    Optional,
    /// Refuse connections that do not start with a header.
    Required,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no PROXY protocol header, and the listener requires one")]
    Missing,
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(String),
    #[error("i/o while reading the PROXY protocol header: {0}")]
    Io(#[from] std::io::Error),
}

const V1_PREFIX: &[u8] = b"PROXY ";
/// A version 1 line is at most 107 bytes, CRLF included.
const V1_MAX: usize = 107;
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// Reads a PROXY header if the mode asks for one; returns the client address it carries
/// (`None` without a header, or for a LOCAL/UNKNOWN one: the socket's own peer stands).
pub async fn read_header(
    stream: &mut TcpStream,
    mode: Mode,
) -> Result<Option<SocketAddr>, ProxyError> {
    if mode == Mode::Off {
        return Ok(None);
    }
    // Peek until the bytes there tell a header from a frame. A balancer sends its header in
    // one segment, so this rarely waits; the caller bounds it with a timeout.
    let kind = peek_until(stream, classify)
        .await?
        .unwrap_or(Kind::NotAHeader);
    match kind {
        Kind::V1 => read_v1(stream).await,
        Kind::V2 => read_v2(stream).await,
        Kind::NotAHeader if mode == Mode::Required => Err(ProxyError::Missing),
        Kind::NotAHeader => Ok(None),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    V1,
    V2,
    NotAHeader,
}

/// What the first bytes are, once there are enough of them to tell.
fn classify(bytes: &[u8]) -> Option<Kind> {
    let could_be = |signature: &[u8]| bytes.iter().zip(signature).all(|(a, b)| a == b);
    match (could_be(V1_PREFIX), could_be(V2_SIGNATURE)) {
        (true, _) if bytes.len() >= V1_PREFIX.len() => Some(Kind::V1),
        (_, true) if bytes.len() >= V2_SIGNATURE.len() => Some(Kind::V2),
        (false, false) => Some(Kind::NotAHeader),
        _ => None,
    }
}

async fn read_v1(stream: &mut TcpStream) -> Result<Option<SocketAddr>, ProxyError> {
    let mut line = Vec::with_capacity(V1_MAX);
    while !line.ends_with(b"\r\n") {
        if line.len() >= V1_MAX {
            return Err(ProxyError::Malformed(
                "v1 line longer than 107 bytes".into(),
            ));
        }
        line.push(stream.read_u8().await?);
    }
    parse_v1(&line)
}

/// A whole version 1 line, CRLF included. Parsing is `ppp`'s: a maintained parser of both
/// versions with its own tests and fuzzing; what stays here is reading exactly the header's
/// bytes off the socket, which it leaves to its caller.
fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
    let header =
        v1::Header::try_from(line).map_err(|e| ProxyError::Malformed(format!("v1: {e}")))?;
    Ok(match header.addresses {
        v1::Addresses::Tcp4(a) => Some(SocketAddr::new(a.source_address.into(), a.source_port)),
        v1::Addresses::Tcp6(a) => Some(SocketAddr::new(a.source_address.into(), a.source_port)),
        v1::Addresses::Unknown => None,
    })
}

async fn read_v2(stream: &mut TcpStream) -> Result<Option<SocketAddr>, ProxyError> {
    let mut header = vec![0u8; 16];
    stream.read_exact(&mut header).await?;
    let len = usize::from(u16::from_be_bytes([header[14], header[15]]));
    header.resize(16 + len, 0);
    stream.read_exact(&mut header[16..]).await?;
    parse_v2(&header)
}

/// A whole version 2 header, signature included.
fn parse_v2(bytes: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
    let header =
        v2::Header::try_from(bytes).map_err(|e| ProxyError::Malformed(format!("v2: {e}")))?;
    if header.command == v2::Command::Local {
        return Ok(None); // the balancer's own health check
    }
    Ok(match header.addresses {
        v2::Addresses::IPv4(a) => Some(SocketAddr::new(a.source_address.into(), a.source_port)),
        v2::Addresses::IPv6(a) => Some(SocketAddr::new(a.source_address.into(), a.source_port)),
        // UNSPEC or UNIX: no client address to report.
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_lines() {
        assert_eq!(
            parse_v1(b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 9092\r\n").unwrap(),
            Some("203.0.113.7:51234".parse().unwrap())
        );
        assert_eq!(
            parse_v1(b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 9092\r\n").unwrap(),
            Some("[2001:db8::7]:40000".parse().unwrap())
        );
        assert_eq!(parse_v1(b"PROXY UNKNOWN\r\n").unwrap(), None);
        for bad in [
            &b"PROXY TCP4 2001:db8::7 1.2.3.4 1 2\r\n"[..],
            b"PROXY TCP4 1.2.3.4\r\n",
            b"PROXY TCP4 x y 1 2\r\n",
        ] {
            assert!(parse_v1(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    /// A v2 header: signature, version and command, family, length, then `addresses`.
    fn v2(version_command: u8, family: u8, addresses: &[u8]) -> Vec<u8> {
        let mut header = V2_SIGNATURE.to_vec();
        header.extend([version_command, family]);
        header.extend((addresses.len() as u16).to_be_bytes());
        header.extend(addresses);
        header
    }

    #[test]
    fn v2_blocks() {
        let v4 = [198, 51, 100, 9, 10, 0, 0, 1, 0xc0, 0x01, 0x23, 0x84];
        assert_eq!(
            parse_v2(&v2(0x21, 0x11, &v4)).unwrap(),
            Some("198.51.100.9:49153".parse().unwrap())
        );
        assert_eq!(parse_v2(&v2(0x20, 0x11, &v4)).unwrap(), None, "LOCAL");
        assert!(parse_v2(&v2(0x21, 0x11, &v4[..6])).is_err());
        assert!(parse_v2(&v2(0x11, 0x11, &v4)).is_err());
        assert_eq!(parse_v2(&v2(0x21, 0x31, &[0; 216])).unwrap(), None, "UNIX");
    }
    #[test]
    fn kafka_frames_are_never_headers() {
        assert_eq!(classify(&[0, 0, 0, 42, 0, 18]), Some(Kind::NotAHeader));
        assert_eq!(classify(b"PRO"), None);
        assert_eq!(classify(b"PROXY "), Some(Kind::V1));
        assert_eq!(classify(b"\r\n\r\n"), None);
        assert_eq!(classify(V2_SIGNATURE), Some(Kind::V2));
    }
}
