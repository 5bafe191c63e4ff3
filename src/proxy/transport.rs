//! How a session holds a connection: split into a reading and a writing half, one for each
//! pump. A plain TCP connection splits into tokio's owned halves, which take no lock and keep
//! the socket within reach, so the bytes of a large frame can move from socket to socket
//! without entering user space (see [`crate::proxy::splice`]). Anything else (TLS, in-memory
//! streams) splits with `tokio::io::split` and keeps its bytes in user space.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// A connection a session can split into its two halves.
pub trait Connection {
    /// What sits on top of the socket when it is not plain TCP.
    type Layered: AsyncRead + AsyncWrite;
    fn into_halves(self) -> (Reader<Self::Layered>, Writer<Self::Layered>);
}

/// The reading half of a connection.
pub enum Reader<T> {
    Tcp(OwnedReadHalf),
    Layered(ReadHalf<T>),
}

/// The writing half of a connection.
pub enum Writer<T> {
    Tcp(OwnedWriteHalf),
    Layered(WriteHalf<T>),
}

impl<T> Reader<T> {
    /// The TCP socket under this half, when nothing sits between it and the bytes.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Reader::Tcp(half) => Some(half.as_ref()),
            Reader::Layered(_) => None,
        }
    }
}

impl<T> Writer<T> {
    /// The TCP socket under this half, when nothing sits between it and the bytes.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Writer::Tcp(half) => Some(half.as_ref()),
            Writer::Layered(_) => None,
        }
    }
}

/// Splits a plain socket into halves that show it.
pub fn plain<T>(tcp: TcpStream) -> (Reader<T>, Writer<T>) {
    let (rd, wr) = tcp.into_split();
    (Reader::Tcp(rd), Writer::Tcp(wr))
}

/// Splits a layered stream; its halves never show a socket.
pub fn layered<T: AsyncRead + AsyncWrite>(stream: T) -> (Reader<T>, Writer<T>) {
    let (rd, wr) = tokio::io::split(stream);
    (Reader::Layered(rd), Writer::Layered(wr))
}

impl Connection for TcpStream {
    /// Never used: a plain socket always splits into its own halves.
    type Layered = TcpStream;

    fn into_halves(self) -> (Reader<TcpStream>, Writer<TcpStream>) {
        plain(self)
    }
}

impl Connection for tokio_rustls::server::TlsStream<TcpStream> {
    type Layered = Self;

    fn into_halves(self) -> (Reader<Self>, Writer<Self>) {
        layered(self)
    }
}

impl Connection for tokio::io::DuplexStream {
    type Layered = Self;

    fn into_halves(self) -> (Reader<Self>, Writer<Self>) {
        layered(self)
    }
}

impl<T: AsyncRead> AsyncRead for Reader<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Reader::Tcp(half) => Pin::new(half).poll_read(cx, buf),
            Reader::Layered(half) => Pin::new(half).poll_read(cx, buf),
        }
    }
}

impl<T: AsyncWrite> AsyncWrite for Writer<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Writer::Tcp(half) => Pin::new(half).poll_write(cx, buf),
            Writer::Layered(half) => Pin::new(half).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Writer::Tcp(half) => Pin::new(half).poll_flush(cx),
            Writer::Layered(half) => Pin::new(half).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Writer::Tcp(half) => Pin::new(half).poll_shutdown(cx),
            Writer::Layered(half) => Pin::new(half).poll_shutdown(cx),
        }
    }
}
