//! Every request's id, its access-log line and its HTTP series, in one middleware around all
//! the others (so a request refused at the door is logged and counted too).
//!
//! - The id is the client's `X-Request-Id` when it is one ([`REQUEST_ID_BYTES_MAX`] visible ASCII
//!   characters at most), else a new one; the answer carries it back.
//! - One line per request on the `elevens::access` target, at `info`: id, method, path, route,
//!   status, duration. `RUST_LOG=info,elevens::access=off` turns it off.
//! - `elevens_http_requests_total{route,method,status}` and
//!   `elevens_http_request_duration_seconds{route,method}`. The route is the matched template
//!   (`/v1/orders/{id}`), never the raw path, so an unknown path cannot add a series.

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// The header a request's id comes in and goes back in.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The longest request id taken from a client, in bytes; a longer one is replaced.
pub const REQUEST_ID_BYTES_MAX: usize = 128;
/// The route label of a request that matched no route (404s, probes of random paths).
const UNMATCHED: &str = "unmatched";

pub async fn observe(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = match request.headers().get(REQUEST_ID_HEADER) {
        Some(given) if acceptable(given) => given.clone(),
        _ => {
            let id = new_id();
            request.headers_mut().insert(REQUEST_ID_HEADER, id.clone());
            id
        }
    };
    let method = method_label(request.method());
    let route: Option<Arc<str>> = request.extensions().get::<MatchedPath>().map(|m| Arc::from(m.as_str()));
    let path = tracing::enabled!(target: "elevens::access", tracing::Level::INFO)
        .then(|| request.uri().path().to_owned());
    let mut response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status();
    let route_label: metrics::SharedString = match &route {
        Some(route) => route.clone().into(),
        None => UNMATCHED.into(),
    };
    metrics::counter!("elevens_http_requests_total", "route" => route_label.clone(), "method" => method,
        "status" => status_label(status.as_u16()))
    .increment(1);
    metrics::histogram!("elevens_http_request_duration_seconds", "route" => route_label, "method" => method)
        .record(elapsed.as_secs_f64());
    if let Some(path) = path {
        tracing::info!(
            target: "elevens::access",
            request_id = id.to_str().unwrap_or_default(),
            method,
            path,
            route = route.as_deref().unwrap_or(UNMATCHED),
            status = status.as_u16(),
            duration_us = elapsed.as_micros() as u64,
            "request"
        );
    }
    response.headers_mut().insert(REQUEST_ID_HEADER, id);
    response
}

/// A client's id is kept if it is short and printable (it goes into logs and headers as is).
fn acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= REQUEST_ID_BYTES_MAX && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// A new id: this process's random prefix and a counter, unique across restarts without a
/// random draw per request.
fn new_id() -> HeaderValue {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = *PREFIX.get_or_init(rand::random);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    HeaderValue::try_from(format!("{prefix:08x}-{n:x}")).expect("hex digits and a dash are a valid header")
}

/// The method as a label: the standard ones by name, anything else as one label.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The status code as a label, without an allocation for the common ones.
fn status_label(code: u16) -> metrics::SharedString {
    const COMMON: [(u16, &str); 16] = [
        (200, "200"),
        (201, "201"),
        (202, "202"),
        (204, "204"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (409, "409"),
        (410, "410"),
        (413, "413"),
        (422, "422"),
        (429, "429"),
        (500, "500"),
        (503, "503"),
    ];
    match COMMON.iter().find(|(c, _)| *c == code) {
        Some((_, label)) => (*label).into(),
        None => code.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_id_is_kept_only_when_short_and_printable() {
        assert!(acceptable(&HeaderValue::from_static("abc-123")));
        assert!(!acceptable(&HeaderValue::from_static("")));
        assert!(!acceptable(&HeaderValue::from_static("has space")));
        assert!(!acceptable(&HeaderValue::try_from("x".repeat(REQUEST_ID_BYTES_MAX + 1)).unwrap()));
        assert!(acceptable(&HeaderValue::try_from("x".repeat(REQUEST_ID_BYTES_MAX)).unwrap()));
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert!(acceptable(&a));
    }

    #[test]
    fn status_labels_are_the_codes() {
        for code in [200, 201, 404, 429, 503, 418, 599] {
            assert_eq!(status_label(code).as_ref(), code.to_string());
        }
    }
}
