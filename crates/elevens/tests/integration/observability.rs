//! What an SRE sees: request ids, the access log (JSON or plain text, never colour codes into a
//! file), the HTTP and business series on `/metrics`, and the Grafana dashboard's queries.

use crate::harness::{sku, Server};
use serde_json::{json, Value};
use std::process::Stdio;

/// The dashboard in the repository, read as its users import it.
const DASHBOARD: &str = include_str!("../../../../deploy/grafana/elevens.json");
/// Where every series is described.
const TELEMETRY: &str = include_str!("../../../http/src/telemetry.rs");

/// A server with the access log on, its stderr in `log`.
fn logged(dir: &std::path::Path, log: &std::path::Path, format: &str) -> Server {
    let stderr = std::fs::File::create(log).unwrap();
    Server::start_with(dir, &["--log-format", format], &[("RUST_LOG", "info")], Stdio::from(stderr))
}

async fn scrape(server: &Server) -> String {
    server.http.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn requests_carry_ids_into_a_json_access_log_and_onto_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let mut server = logged(&dir.path().join("data"), &log, "json");
    let (merchant, _) = server.marketplace(1, 1_000_000).await;
    let sku_id = sku(&server, &merchant, 10, 12_345).await;
    let buyer = server.key(json!({"role": "buyer", "buyer_id": 1})).await;
    let order = json!({"buyer_id": 1, "lines": [{"sku_id": sku_id, "quantity": 2}]});
    assert_eq!(server.post("/v1/orders", &buyer, "o-1", order).await.0, 201);
    assert_eq!(server.post("/v1/orders/1/pay", &buyer, "p-1", json!(null)).await.0, 200);

    // A client's id comes back; without one, the server makes one; a bad one is replaced.
    let health = format!("{}/healthz", server.base);
    let given = server.http.get(&health).header("x-request-id", "trace-42").send().await.unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-42");
    let made = server.http.get(&health).send().await.unwrap();
    let made = made.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(!made.is_empty() && made != "trace-42");
    let long = "x".repeat(500);
    let replaced = server.http.get(&health).header("x-request-id", &long).send().await.unwrap();
    assert_ne!(replaced.headers()["x-request-id"].to_str().unwrap(), long);
    // A refusal before any handler (an unknown route) is logged and counted too.
    let missing = server.http.get(format!("{}/no/such/{}", server.base, "path")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("x-request-id"));

    let wanted = [
        r#"elevens_http_requests_total{route="/v1/orders",method="POST",status="201"} 1"#,
        r#"elevens_http_requests_total{route="/v1/orders/{id}/pay",method="POST",status="200"} 1"#,
        r#"elevens_http_requests_total{route="/healthz",method="GET",status="200"} 3"#,
        r#"elevens_http_requests_total{route="unmatched",method="GET",status="404"} 1"#,
        r#"elevens_http_request_duration_seconds_bucket{route="/v1/orders",method="POST",le="+Inf"} 1"#,
        r#"elevens_gmv_minor{currency="CNY"} 24690"#,
        r#"elevens_orders_placed_total{currency="CNY"} 1"#,
        r#"elevens_orders_paid_total{currency="CNY"} 1"#,
        "# TYPE elevens_http_request_duration_seconds histogram",
        "# TYPE elevens_http_requests_total counter",
        "# TYPE elevens_orders_paid_total counter",
        "# TYPE elevens_gmv_minor gauge",
    ];
    // The business figures come from the read model, which folds durable events a moment after
    // the reply: scrape until they are there (10 s at most).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let metrics = loop {
        let metrics = scrape(&server).await;
        if wanted.iter().all(|series| metrics.contains(series)) || std::time::Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    for series in wanted {
        assert!(metrics.contains(series), "no {series} in:\n{metrics}");
    }
    assert!(!metrics.contains("/no/such/path"), "a raw path never becomes a label");

    // SIGTERM flushes the log; every line is one JSON object, the access lines have the fields.
    let (_, clean) = server.stop();
    assert!(clean, "a SIGTERM stop exits 0");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains('\u{1b}'), "no colour codes in a file");
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["message"] == "recovered"), "{text}");
    let access = |id: &str| {
        lines
            .iter()
            .find(|l| l["target"] == "elevens::access" && l["request_id"] == id)
            .unwrap_or_else(|| panic!("no access line for {id}:\n{text}"))
            .clone()
    };
    let line = access("trace-42");
    assert_eq!((line["method"].as_str(), line["route"].as_str()), (Some("GET"), Some("/healthz")));
    assert_eq!((line["status"].as_u64(), line["path"].as_str()), (Some(200), Some("/healthz")));
    assert!(line["duration_us"].is_u64());
    assert_eq!(access(&made)["status"], 200);
    let pay = lines.iter().find(|l| l["route"] == "/v1/orders/{id}/pay").expect("the payment's line");
    assert_eq!((pay["path"].as_str(), pay["status"].as_u64()), (Some("/v1/orders/1/pay"), Some(200)));
}

#[tokio::test]
async fn text_logs_into_a_file_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let mut server = logged(&dir.path().join("data"), &log, "text");
    let health = format!("{}/healthz", server.base);
    server.http.get(&health).header("x-request-id", "plain-7").send().await.unwrap();
    server.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains('\u{1b}'), "colour codes in a file:\n{text}");
    let line =
        text.lines().find(|l| l.contains("request_id=\"plain-7\"")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("status=200") && line.contains("route=\"/healthz\""), "{line}");
}

/// Every series a panel of the dashboard asks for is one elevens describes (or `process_*`), and
/// every panel has a query: a renamed metric breaks this, not the SRE's dashboard on 11.11.
#[test]
fn the_grafana_dashboard_asks_only_for_series_that_exist() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let mut asked = std::collections::BTreeSet::new();
    for panel in panels {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{} has no query", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("elevens_").or_else(|| rest.find("process_")) {
                let name: String =
                    rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                rest = &rest[at + name.len()..];
                asked.insert(name.strip_suffix("_bucket").unwrap_or(&name).to_owned());
            }
        }
    }
    for name in [
        "elevens_http_requests_total",
        "elevens_http_request_duration_seconds",
        "elevens_gmv_minor",
        "elevens_orders_paid_total",
        "process_cpu_seconds_total",
    ] {
        assert!(asked.contains(name), "the dashboard has no panel on {name}");
    }
    for name in asked.iter().filter(|n| n.starts_with("elevens_")) {
        assert!(
            TELEMETRY.contains(&format!("\"{name}\"")),
            "the dashboard asks for {name}, which is not described"
        );
    }
    let process = ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"];
    for name in asked.iter().filter(|n| n.starts_with("process_")) {
        assert!(process.contains(&name.as_str()), "{name} is not a series metrics-process exports");
    }
}
