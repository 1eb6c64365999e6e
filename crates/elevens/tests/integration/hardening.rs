//! Defects of the second hardening round (issue 34), found from outside against `elevens serve`,
//! each pinned by a test named after it.

use crate::harness::{Server, BIN};
use serde_json::json;

#[tokio::test]
async fn webhooks_reach_the_inside_of_the_network_ssrf() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]); // the default: public addresses only
    let (merchant, _) = server.marketplace(1, 100).await;
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let inside = [
        format!("http://[::ffff:0.0.0.0]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://[::]:{port}/"),
        format!("http://0.0.0.0:{port}/"),
        format!("http://0x7f.1:{port}/"),
        format!("http://2130706433:{port}/"),
        "http://100.100.100.200/latest/meta-data/".to_owned(), // Alibaba Cloud's metadata
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fd00:ec2::254]/latest/meta-data/".to_owned(),
        "http://168.63.129.16/".to_owned(),
        "http://[64:ff9b::7f00:1]/".to_owned(),
        // A name of this machine: resolved at creation, refused for its address.
        format!("http://localhost:{port}/"),
    ];
    for (i, url) in inside.iter().enumerate() {
        let (status, body) =
            server.post("/v1/webhooks", &merchant, &format!("ssrf-{i}"), json!({ "url": url })).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("private_url")), "{url}: {body}");
    }
    let (status, hooks) = server.get("/v1/webhooks", &merchant).await;
    assert_eq!((status, hooks.as_array().map(Vec::len)), (200, Some(0)), "{hooks}");
    // A public address is accepted (delivery resolves and judges it again each time).
    let (status, body) =
        server.post("/v1/webhooks", &merchant, "ssrf-ok", json!({"url": "http://93.184.216.34/hook"})).await;
    assert_eq!(status, 201, "{body}");
}

/// The headers a scanner expects, on every kind of answer.
fn assert_security_headers(what: &str, headers: &reqwest::header::HeaderMap) {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let csp = get("content-security-policy");
    for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"]
    {
        assert!(csp.contains(directive), "{what}: no {directive} in {csp:?}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{what}: {csp}");
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("referrer-policy"), "no-referrer", "{what}");
}

#[tokio::test]
async fn the_console_and_the_big_screen_can_be_framed_and_sniffed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = reqwest::Client::new();
    for path in [
        "/console",
        "/console/app.js",
        "/console/console.css",
        "/screen",
        "/screen/screen.js",
        "/screen/screen.css",
        "/screen/uplot.js",
        "/v1/openapi.json",
        "/v1/merchants",  // 401, JSON
        "/no/such/route", // 404, JSON
    ] {
        let response = http.get(format!("{}{path}", server.base)).send().await.unwrap();
        assert!(response.status().as_u16() < 500, "{path}");
        assert_security_headers(path, response.headers());
    }
    let response =
        http.get(format!("{}/v1/merchants", server.base)).bearer_auth(&server.admin).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_security_headers("an authorised JSON answer", response.headers());
    // No inline script or style is left in the pages for the policy to refuse.
    for page in ["/console", "/screen"] {
        let html = http.get(format!("{}{page}", server.base)).send().await.unwrap().text().await.unwrap();
        assert!(
            !html.contains("<script>") && !html.contains("<style>") && !html.contains("style=\""),
            "{page}"
        );
    }
}

/// A page on another origin (this test's own server) that frames `target`.
async fn framing_page(target: String) -> String {
    let app = axum::Router::new()
        .route(
            "/frame",
            axum::routing::get(move || {
                let page = format!("<!doctype html><title>framer</title><iframe src=\"{target}\"></iframe>");
                async move { axum::response::Html(page) }
            }),
        )
        .route("/framed", axum::routing::get(|| async { axum::response::Html("<title>framable</title>ok") }));
    crate::harness::serve_on_loopback(app).await
}

#[tokio::test]
async fn the_console_and_the_big_screen_can_be_framed_and_sniffed_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let Some(browser) = crate::browser::Browser::start().await else { return };
    // The control: a page without the headers is framed, and read from inside its frame.
    let control = framing_page(String::new()).await;
    let framer = framing_page(format!("{control}/framed")).await;
    browser.goto(&format!("{framer}/frame")).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let framed = browser.framed_location().await;
    assert!(framed.ends_with("/framed framable"), "the control page was not framed: {framed}");
    for page in ["/console", "/screen"] {
        let framer = framing_page(format!("{}{page}", server.base)).await;
        browser.goto(&format!("{framer}/frame")).await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        // Refused: the frame holds the browser's error page, not the page (nor nothing).
        let framed = browser.framed_location().await;
        assert!(framed.starts_with("chrome-error://"), "{page} was framed: {framed:?}");
    }
    // The refusals above are logged as violations too: cleared before the pages are used,
    // which must trip none (no inline script or style is left in them).
    browser.policy_violations().await;
    browser.goto(&format!("{}/screen?key={}", server.base, server.admin)).await;
    browser.until("return document.querySelector('#skus tr') !== null").await;
    browser.goto(&format!("{}/console", server.base)).await;
    browser.until("return document.querySelector('#key') !== null").await;
    let violations = browser.policy_violations().await;
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn a_mistyped_variable_is_ignored_in_silence() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (name, value) in [
        ("ELEVENS_HTTP_CONNECTIONS_MAX", "5"), // one underscore where two are needed
        ("ELEVENS_HTTP__CONECTIONS_MAX", "5"), // a key that does not exist
        ("ELEVENS_DAT", "/tmp/x"),             // a flag's variable misspelt
    ] {
        let output = std::process::Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .env(name, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name} started the server");
        let key = name.rsplit("__").next().unwrap().to_ascii_lowercase();
        assert!(stderr.contains(name) || stderr.contains(&key), "{name} is not named: {stderr}");
        assert!(!data.exists(), "{name}: the data directory was created before the refusal");
    }
}

/// A node still recovering (here a replicated one whose NATS servers do not answer yet) had its
/// port open and held every request until it served: clients and the failover bench waited out
/// their timeouts (3 s) on it instead of trying another node. It now refuses connections until it
/// serves.
#[test]
fn a_recovering_node_holds_connections_instead_of_refusing_them() {
    let dir = tempfile::tempdir().unwrap();
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (port, nats) = (free(), free());
    let listen = format!("127.0.0.1:{port}");
    let mut recovering = std::process::Command::new(BIN)
        .args(["serve", "--listen", &listen, "--data"])
        .arg(dir.path().join("data"))
        .args(["--journal", &format!("nats://127.0.0.1:{nats}"), "--replicas", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    assert!(recovering.try_wait().unwrap().is_none(), "the node should still be waiting for NATS");
    let connected =
        std::net::TcpStream::connect_timeout(&listen.parse().unwrap(), std::time::Duration::from_secs(1));
    assert_eq!(
        connected.map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "a connection was accepted by a node that cannot answer it"
    );
    recovering.kill().unwrap();
    recovering.wait().unwrap();
}
