//! A minimal WebDriver client for the browser tests (the big screen's, the console's): headless
//! Chromium driven by Debian's `chromedriver`. Where either is absent a test's browser part is
//! skipped, saying so, unless `ELEVENS_BROWSER=1` requires it.

use base64::Engine as _;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A minimal WebDriver client: just what the test needs.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
}

impl Browser {
    pub async fn start() -> Option<Browser> {
        let driver_path = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let browser_path = ["/usr/bin/chromium", "/usr/lib/chromium/chromium"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let (Some(driver_path), Some(browser_path)) = (driver_path, browser_path) else {
            assert!(
                std::env::var("ELEVENS_BROWSER").is_err(),
                "ELEVENS_BROWSER=1 but no chromium/chromedriver"
            );
            eprintln!("SKIPPED: the browser part (install chromium and chromium-driver to run it)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"}, "goog:chromeOptions": {
            "binary": browser_path,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1920,1080", "--hide-scrollbars"]}}}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session =
            created["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}"));
        Some(Browser { http, session: format!("{base}/session/{session}"), driver })
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply: Value = request.send().await.unwrap().json().await.unwrap();
        reply["value"].clone()
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    pub async fn run(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": []}))).await
    }

    pub async fn text(&self, css: &str) -> String {
        let found = self
            .call(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css})))
            .await;
        let Some(element) = found.as_object().and_then(|o| o.values().next()).and_then(Value::as_str) else {
            return String::new();
        };
        self.call(reqwest::Method::GET, &format!("/element/{element}/text"), None)
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Opens `url` in the window.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    /// Sizes the window so that the page's viewport is `width`×`height` CSS pixels. The window's
    /// frame is measured, not assumed, and measured again after the resize: a window narrower
    /// than the browser's minimum keeps its outer width, so the frame read there is not the
    /// frame at the next size.
    pub async fn viewport(&self, width: i64, height: i64) {
        for _ in 0..3 {
            let inner = self.run("return [innerWidth, innerHeight, outerWidth, outerHeight];").await;
            let n = |i: usize| inner[i].as_i64().unwrap_or(0);
            if (n(0), n(1)) == (width, height) {
                return;
            }
            let rect = json!({"width": width + n(2) - n(0), "height": height + n(3) - n(1)});
            self.call(reqwest::Method::POST, "/window/rect", Some(rect)).await;
        }
    }

    fn element_id(found: &Value) -> Option<String> {
        found.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).map(str::to_owned)
    }

    /// Waits up to 10 s for `css` to match, and returns the element's WebDriver id.
    pub async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .call(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css})))
                .await;
            if let Some(id) = Self::element_id(&found) {
                return id;
            }
            assert!(Instant::now() < deadline, "nothing matches {css}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types `text` into the field `css` (cleared first), as a person would.
    pub async fn fill(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{id}/clear"), Some(json!({}))).await;
        self.call(reqwest::Method::POST, &format!("/element/{id}/value"), Some(json!({"text": text}))).await;
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({}))).await;
    }

    /// Waits up to 10 s for `condition` (a script's body) to return a truthy value, and returns it.
    pub async fn until(&self, condition: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let value = self.run(condition).await;
            if !(value.is_null() || value == json!(false) || value == json!("") || value == json!([])) {
                return value;
            }
            let page = self.run("return document.body ? document.body.innerText.slice(0, 2000) : ''").await;
            assert!(Instant::now() < deadline, "never true: {condition}\nthe page: {page}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Browser {
    /// The Content-Security-Policy violations the browser logged since the last call (its
    /// console's "Refused to ..." errors).
    pub async fn policy_violations(&self) -> Vec<String> {
        let log = self.call(reqwest::Method::POST, "/se/log", Some(json!({"type": "browser"}))).await;
        let entries = log.as_array().unwrap_or_else(|| panic!("no browser log: {log}"));
        entries
            .iter()
            .filter_map(|e| e["message"].as_str())
            .filter(|m| m.contains("Content Security Policy") || m.contains("Refused to"))
            .map(str::to_owned)
            .collect()
    }

    /// The address of the document in the page's first frame (`iframe`), read from inside it:
    /// a frame the framed page refused holds the browser's error page instead.
    pub async fn framed_location(&self) -> String {
        let frame = self.find("iframe").await;
        let reference = json!({"id": {"element-6066-11e4-a52e-4f735466cecf": frame}});
        self.call(reqwest::Method::POST, "/frame", Some(reference)).await;
        let location = self.run("return location.href + ' ' + document.title").await;
        self.call(reqwest::Method::POST, "/frame/parent", Some(json!({}))).await;
        location.as_str().unwrap_or_default().to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Saves the viewport as `$CARGO_TARGET_TMPDIR/<name>`.
pub async fn screenshot(browser: &Browser, name: &str) {
    let png = browser.call(reqwest::Method::GET, "/screenshot", None).await;
    let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, &bytes).unwrap();
    eprintln!("screenshot: {}", path.display());
}
