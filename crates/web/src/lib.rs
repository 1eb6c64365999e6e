//! elevens-web: the pages the binary serves itself. Plain HTML, CSS and JavaScript, with uPlot
//! (vendored, MIT) for the charts: no build step, no CDN, nothing fetched from elsewhere.

/// The 11.11 big screen, fed by `GET /v1/live` (server-sent events, one frame a second).
pub const SCREEN_HTML: &str = include_str!("../assets/screen.html");
/// The screen's script and style sheet: files of their own, as the pages' Content-Security-Policy
/// runs no inline script and applies no inline style.
pub const SCREEN_JS: &str = include_str!("../assets/screen.js");
pub const SCREEN_CSS: &str = include_str!("../assets/screen.css");

/// uPlot 1.6.32's script and style sheet, as its npm package ships them (`assets/vendor/uplot`).
pub const UPLOT_JS: &str = include_str!("../assets/vendor/uplot/uPlot.iife.min.js");
pub const UPLOT_CSS: &str = include_str!("../assets/vendor/uplot/uPlot.min.css");

/// The console for merchants and operators: one page, signed in with an API key kept in session
/// storage, driving the public API (`assets/console.html`, `assets/console.js`).
pub const CONSOLE_HTML: &str = include_str!("../assets/console.html");
pub const CONSOLE_JS: &str = include_str!("../assets/console.js");
/// The console's words in Simplified Chinese (`assets/console-zh.js`), loaded before its script.
pub const CONSOLE_ZH_JS: &str = include_str!("../assets/console-zh.js");
pub const CONSOLE_CSS: &str = include_str!("../assets/console.css");
