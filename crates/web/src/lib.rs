//! elevens-web: the pages the binary serves itself. Plain HTML, CSS and JavaScript with
//! hand-drawn SVG charts: no build step, no CDN, nothing fetched from elsewhere.

/// The 11.11 big screen, fed by `GET /v1/live` (server-sent events, one frame a second).
pub const SCREEN_HTML: &str = include_str!("../assets/screen.html");
