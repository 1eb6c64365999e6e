//! The security headers on every answer (pages, scripts, style sheets, JSON, errors): one tower
//! layer around the whole router, so no handler can forget them.
//!
//! The pages the binary serves (the console, the big screen) load only their own scripts and
//! style sheets and talk only to this origin, so their policy is strict: no inline script or
//! style, no other origin, no framing by anyone (a page holding an admin key in its session
//! storage must never sit in another site's frame: clickjacking). The JSON answers carry the
//! same headers: an answer opened as a document runs nothing and frames nothing.
//!
//! No `Strict-Transport-Security`: the server speaks plain HTTP behind the operator's TLS
//! terminator, which is where that header belongs.

use axum::http::HeaderValue;
use axum::response::Response;

/// The pages' Content-Security-Policy: this origin's scripts, styles, images and connections
/// only, no plugins, no `<base>`, no form posted elsewhere, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self'; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// Each header and its value, as every answer carries them.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    // For browsers that predate `frame-ancestors`.
    ("x-frame-options", "DENY"),
    // A JSON answer is never sniffed into HTML or script.
    ("x-content-type-options", "nosniff"),
    // Addresses (and a key someone put in a query) never leave in a Referer.
    ("referrer-policy", "no-referrer"),
    // No window opened from elsewhere keeps a handle on the console.
    ("cross-origin-opener-policy", "same-origin"),
    // No other site loads these answers as its script, style or image.
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
];

/// Sets [`SECURITY_HEADERS`] on an answer that does not set them itself: the router's
/// outer layer (`axum::middleware::map_response`).
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.entry(*name).or_insert(HeaderValue::from_static(value));
    }
    response
}
