//! The admin endpoint: `/livez`, `/readyz` and `/metrics` over plain HTTP/1.1, on its own
//! listener (loopback by default). Three fixed GET routes need no HTTP library: each
//! connection gets one answer and is closed.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::gateway::Gateway;

/// A request line and headers larger than this are not a health probe or a scrape.
const MAX_REQUEST: usize = 8 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);

/// Serves admin requests until shutdown.
pub async fn serve(listener: TcpListener, gw: Arc<Gateway>) {
    loop {
        let accepted = tokio::select! {
            _ = gw.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((socket, _)) => {
                let gw = gw.clone();
                tokio::spawn(async move {
                    if let Err(e) = tokio::time::timeout(TIMEOUT, answer(socket, &gw))
                        .await
                        .unwrap_or_else(|_| {
                            Err(std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "admin request too slow",
                            ))
                        })
                    {
                        tracing::debug!("admin request failed: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("admin accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(mut socket: TcpStream, gw: &Gateway) -> std::io::Result<()> {
    let mut request = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut chunk).await?;
        if n == 0 || request.len() + n > MAX_REQUEST {
            return Ok(());
        }
        request.extend_from_slice(&chunk[..n]);
    }
    let line = request.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let (status, content_type, body) = match (method, path) {
        (b"GET", b"/livez") => ("200 OK", "text/plain", "ok\n".to_owned()),
        (b"GET", b"/readyz") if gw.is_ready() => ("200 OK", "text/plain", "ready\n".to_owned()),
        (b"GET", b"/readyz") => (
            "503 Service Unavailable",
            "text/plain",
            if gw.shutdown.is_cancelled() {
                "draining\n"
            } else {
                "cluster not reached yet\n"
            }
            .to_owned(),
        ),
        (b"GET", b"/metrics") => ("200 OK", "text/plain; version=0.0.4", gw.metrics.render()),
        (b"GET", _) => (
            "404 Not Found",
            "text/plain",
            "try /livez, /readyz or /metrics\n".to_owned(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_owned(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(body.as_bytes()).await?;
    socket.shutdown().await
}
