//! The PROXY protocol (versions 1 and 2), as load balancers send it ahead of a connection's
//! own bytes, so that logs name the real client rather than the balancer.
//!
//! The header is read with `peek` first: in `optional` mode a connection without one loses
//! none of its bytes. A Kafka frame can never look like either signature: both would read
//! as a size prefix above 200 MB.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

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
    Malformed(&'static str),
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
            return Err(ProxyError::Malformed("v1 line longer than 107 bytes"));
        }
        line.push(stream.read_u8().await?);
    }
    parse_v1(&line[..line.len() - 2])
}

fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
    let text =
        std::str::from_utf8(line).map_err(|_| ProxyError::Malformed("v1 line is not ASCII"))?;
    let fields: Vec<&str> = text.split(' ').collect();
    match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(None),
        ["PROXY", family @ ("TCP4" | "TCP6"), source, _destination, source_port, _destination_port] =>
        {
            let ip: IpAddr = source
                .parse()
                .map_err(|_| ProxyError::Malformed("v1 source address"))?;
            if (*family == "TCP4") != ip.is_ipv4() {
                return Err(ProxyError::Malformed(
                    "v1 address does not match its family",
                ));
            }
            let port = source_port
                .parse()
                .map_err(|_| ProxyError::Malformed("v1 source port"))?;
            Ok(Some(SocketAddr::new(ip, port)))
        }
        _ => Err(ProxyError::Malformed("v1 line has the wrong fields")),
    }
}

async fn read_v2(stream: &mut TcpStream) -> Result<Option<SocketAddr>, ProxyError> {
    let mut fixed = [0u8; 16];
    stream.read_exact(&mut fixed).await?;
    let len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    let mut rest = vec![0u8; len];
    stream.read_exact(&mut rest).await?;
    parse_v2(fixed[12], fixed[13], &rest)
}

fn parse_v2(
    version_command: u8,
    family: u8,
    addresses: &[u8],
) -> Result<Option<SocketAddr>, ProxyError> {
    if version_command >> 4 != 2 {
        return Err(ProxyError::Malformed("v2 version is not 2"));
    }
    match version_command & 0x0f {
        0 => return Ok(None), // LOCAL: the balancer's own health check
        1 => {}
        _ => {
            return Err(ProxyError::Malformed(
                "v2 command is neither LOCAL nor PROXY",
            ))
        }
    }
    let need = |n: usize| {
        if addresses.len() < n {
            Err(ProxyError::Malformed(
                "v2 addresses shorter than their family needs",
            ))
        } else {
            Ok(())
        }
    };
    match family >> 4 {
        1 => {
            need(12)?;
            let ip = Ipv4Addr::new(addresses[0], addresses[1], addresses[2], addresses[3]);
            let port = u16::from_be_bytes([addresses[8], addresses[9]]);
            Ok(Some(SocketAddr::new(IpAddr::V4(ip), port)))
        }
        2 => {
            need(36)?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&addresses[..16]);
            let port = u16::from_be_bytes([addresses[32], addresses[33]]);
            Ok(Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(octets)),
                port,
            )))
        }
        // UNSPEC or UNIX: no client address to report.
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_lines() {
        assert_eq!(
            parse_v1(b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 9092").unwrap(),
            Some("203.0.113.7:51234".parse().unwrap())
        );
        assert_eq!(
            parse_v1(b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 9092").unwrap(),
            Some("[2001:db8::7]:40000".parse().unwrap())
        );
        assert_eq!(parse_v1(b"PROXY UNKNOWN").unwrap(), None);
        for bad in [
            &b"PROXY TCP4 2001:db8::7 1.2.3.4 1 2"[..],
            b"PROXY TCP4 1.2.3.4",
            b"PROXY TCP4 x y 1 2",
        ] {
            assert!(parse_v1(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn v2_blocks() {
        let v4 = [198, 51, 100, 9, 10, 0, 0, 1, 0xc0, 0x01, 0x23, 0x84];
        assert_eq!(
            parse_v2(0x21, 0x11, &v4).unwrap(),
            Some("198.51.100.9:49153".parse().unwrap())
        );
        assert_eq!(parse_v2(0x20, 0x11, &v4).unwrap(), None, "LOCAL");
        assert!(parse_v2(0x21, 0x11, &v4[..6]).is_err());
        assert!(parse_v2(0x11, 0x11, &v4).is_err());
        assert_eq!(parse_v2(0x21, 0x31, &[0; 216]).unwrap(), None, "UNIX");
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
