//! The admin endpoint on its own listener (loopback by default), served by hyper:
//!
//! - `/livez`: 200 while the process serves at all;
//! - `/readyz`: 200 once the cluster answered and until shutdown begins, 503 otherwise;
//! - `/metrics`: the Prometheus text format, or OpenMetrics when the scraper's `Accept`
//!   prefers it;
//! - `/connections`: the open client connections as JSON, the first question during an
//!   incident.
//!
//! Each answers GET and HEAD; another method gets 405 with `Allow`, another path 404, and a
//! query string is ignored. One request per connection: the answer closes it, so an idle
//! or slow client holds nothing past the header timeout, and a scrape costs one connect.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::gateway::Gateway;
use crate::ops::metrics::Format;

/// How long a request may take to arrive and its answer to be taken.
const TIMEOUT: Duration = Duration::from_secs(5);
const PATHS: [&str; 4] = ["/livez", "/readyz", "/metrics", "/connections"];
const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

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
                    let service = service_fn(move |request| {
                        let answer = answer(&request, &gw);
                        async move { Ok::<_, Infallible>(answer) }
                    });
                    let connection = http1::Builder::new()
                        .keep_alive(false)
                        .timer(TokioTimer::new())
                        .header_read_timeout(TIMEOUT)
                        .serve_connection(TokioIo::new(socket), service);
                    match tokio::time::timeout(TIMEOUT, connection).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::debug!("admin request failed: {e}"),
                        Err(_) => tracing::debug!("admin request too slow; closed"),
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

fn answer<B>(request: &Request<B>, gw: &Gateway) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if !PATHS.contains(&path) {
        return reply(
            StatusCode::NOT_FOUND,
            TEXT,
            "try /livez, /readyz, /metrics or /connections\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "GET or HEAD only\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match path {
        "/readyz" if gw.is_ready() => reply(StatusCode::OK, TEXT, "ready\n"),
        "/readyz" if gw.shutdown.is_cancelled() => {
            reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, "draining\n")
        }
        "/readyz" => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            TEXT,
            "cluster not reached yet\n",
        ),
        "/metrics" => {
            let accept = request
                .headers()
                .get_all(ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok());
            let format = negotiate(accept);
            reply(
                StatusCode::OK,
                format.content_type(),
                gw.metrics.render(format),
            )
        }
        "/connections" => match serde_json::to_string(&gw.metrics.connections().snapshot()) {
            Ok(json) => reply(StatusCode::OK, JSON, json + "\n"),
            Err(e) => reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                TEXT,
                format!("cannot list connections: {e}\n"),
            ),
        },
        _ => reply(StatusCode::OK, TEXT, "ok\n"),
    }
}

/// A whole answer. The length is set here, not left to hyper, so that HEAD reports the
/// length GET would send.
fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let body = body.into();
    let mut response = Response::new(Full::new(body.clone()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    response
}

/// OpenMetrics when the `Accept` values rank it at least as high as the text format
/// (Prometheus asks for both, OpenMetrics first); the text format otherwise, and when
/// there is no `Accept` at all.
fn negotiate<'a>(accept: impl Iterator<Item = &'a str>) -> Format {
    let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
    for range in accept.flat_map(|v| v.split(',')) {
        let mut params = range.split(';').map(str::trim);
        let media = params.next().unwrap_or_default().to_ascii_lowercase();
        let q = params
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(1.0), |(_, v)| v.trim().parse::<f32>().ok())
            .unwrap_or(0.0);
        match media.as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(q),
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    if openmetrics > 0.0 && openmetrics >= text {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(accept: &[&str]) -> Format {
        negotiate(accept.iter().copied())
    }

    #[test]
    fn negotiates_the_format_from_accept() {
        // What Prometheus 2 and 3 send, curl, and a browser.
        assert_eq!(
            format(&["application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"]),
            Format::OpenMetrics
        );
        assert_eq!(
            format(&["application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"]),
            Format::OpenMetrics
        );
        assert_eq!(format(&["*/*"]), Format::Text);
        assert_eq!(format(&[]), Format::Text);
        assert_eq!(
            format(&["text/html,application/xhtml+xml,*/*;q=0.8"]),
            Format::Text
        );
        assert_eq!(
            format(&["application/openmetrics-text"]),
            Format::OpenMetrics
        );
        assert_eq!(
            format(&["Application/OpenMetrics-Text ; Q=1"]),
            Format::OpenMetrics
        );
        // Ranked lower than the text format, refused, or with a q that is not a number.
        assert_eq!(
            format(&["text/plain;q=0.9", "application/openmetrics-text;q=0.5"]),
            Format::Text
        );
        assert_eq!(format(&["application/openmetrics-text;q=0"]), Format::Text);
        assert_eq!(format(&["application/openmetrics-text;q=x"]), Format::Text);
    }
}
