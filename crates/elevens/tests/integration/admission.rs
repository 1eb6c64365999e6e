//! Admission control against a real server: a flood is answered with 429s that say when to come
//! back, never a 5xx; payments of accepted orders are never shed; every acknowledged order
//! is there afterwards; rules change at runtime; the waiting room is first-in first-out and
//! its tickets belong to their buyers.

use crate::harness::{sku, Reply, Server};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A 429 says why and when to come back, in the header and in the body.
fn assert_polite(reply: &Reply, headers_retry_after: Option<&str>) {
    let (status, body) = reply;
    assert_eq!(*status, 429);
    assert!(body["code"].is_string() && body["message"].is_string(), "{body}");
    assert!(body["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0), "{body}");
    assert!(headers_retry_after.is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)), "no Retry-After");
}

/// Sends a request once; the answer and its `Retry-After` header.
async fn once(request: reqwest::RequestBuilder) -> (Reply, Option<String>) {
    let response = request.send().await.expect("request");
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    ((status, body), retry_after)
}

async fn raw_post(
    server: &Server,
    path: &str,
    key: &str,
    idem: &str,
    body: Value,
) -> (Reply, Option<String>) {
    let url = format!("{}{path}", server.base);
    once(server.http.post(url).bearer_auth(key).header("Idempotency-Key", idem).json(&body)).await
}

async fn raw_get(server: &Server, path: &str, key: &str) -> (Reply, Option<String>) {
    once(server.http.get(format!("{}{path}", server.base)).bearer_auth(key)).await
}

/// After the set-up, the adaptive limit is pinned at 4 commands in flight (no window ever
/// ends), so a flood of 400 concurrent orders and 200 reads must be shed; payments may go on up
/// to the hard maximum, far above.
fn flood_rules() -> Value {
    json!({
        "buyer_quota": {"per_s": 1000, "burst": 1000},
        "read_share_pct": 50,
        "adaptive": {"initial": 4, "min": 4, "max": 4, "latency_target_ms": 15, "window_ms": 3_600_000},
        "in_flight_hard_max": 100_000
    })
}

async fn put_rules(server: &Server, key: &str, rules: &Value) -> Reply {
    let url = format!("{}/v1/admission/rules", server.base);
    once(server.http.put(url).bearer_auth(key).json(rules)).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_is_shed_with_429s_payments_never_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(Server::start(dir.path(), &[]));
    let (merchant, service) = server.marketplace(400, 1_000_000).await;
    let sku_id = sku(&server, &merchant, 1_000_000, 100).await;
    let (status, body) = put_rules(&server, &server.admin, &flood_rules()).await;
    assert_eq!(status, 200, "{body}");

    let mut tasks = Vec::new();
    for buyer in 1..=400u64 {
        let (server, service) = (server.clone(), service.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"buyer_id": buyer, "lines": [{"sku_id": sku_id, "quantity": 1}]});
            let (placed, retry_after) =
                raw_post(&server, "/v1/orders", &service, &format!("o{buyer}"), body).await;
            let mut outcome = vec![("order", placed.0, placed.1["code"].as_str().unwrap_or("").to_owned())];
            if placed.0 == 429 {
                assert_polite(&placed, retry_after.as_deref());
                return (None, outcome);
            }
            assert_eq!(placed.0, 201, "{}", placed.1);
            let order = placed.1["order_id"].as_u64().unwrap();
            let (paid, _) = raw_post(
                &server,
                &format!("/v1/orders/{order}/pay"),
                &service,
                &format!("p{buyer}"),
                json!(null),
            )
            .await;
            outcome.push(("pay", paid.0, paid.1["code"].as_str().unwrap_or("").to_owned()));
            (Some((order, paid.0 == 200)), outcome)
        }));
    }
    for i in 0..200u64 {
        let (server, service) = (server.clone(), service.clone());
        tasks.push(tokio::spawn(async move {
            let (read, retry_after) = raw_get(&server, &format!("/v1/skus/{sku_id}"), &service).await;
            if read.0 == 429 {
                assert_polite(&read, retry_after.as_deref());
            } else {
                assert_eq!(read.0, 200, "read {i}: {}", read.1);
            }
            (None, vec![("read", read.0, read.1["code"].as_str().unwrap_or("").to_owned())])
        }));
    }
    let mut seen: BTreeMap<(&str, u16, String), usize> = BTreeMap::new();
    let mut acknowledged = Vec::new();
    for task in tasks {
        let (order, outcome) = task.await.expect("task");
        acknowledged.extend(order);
        for o in outcome {
            *seen.entry(o).or_default() += 1;
        }
    }
    // Only 2xx and 429 came back; orders and reads were shed; payments never.
    assert!(seen.keys().all(|(_, status, _)| [200, 201, 429].contains(status)), "{seen:?}");
    assert!(seen.get(&("order", 429, "overloaded".into())).is_some_and(|&n| n > 0), "{seen:?}");
    assert!(
        !seen.keys().any(|(kind, status, _)| *kind == "pay" && *status == 429),
        "a payment was shed: {seen:?}"
    );
    assert!(acknowledged.iter().all(|(_, paid)| *paid), "{seen:?}");
    // Reads are shed before orders: a larger share of them.
    let share = |kind: &str| {
        let shed =
            seen.iter().filter(|((k, s, _), _)| *k == kind && *s == 429).map(|(_, n)| n).sum::<usize>();
        let all = seen.iter().filter(|((k, ..), _)| *k == kind).map(|(_, n)| n).sum::<usize>();
        shed as f64 / all as f64
    };
    assert!(share("read") >= share("order") * 0.9, "reads {} orders {}", share("read"), share("order"));

    // Every acknowledged order is there, paid; the ledger balances.
    for (order, _) in &acknowledged {
        let (status, body) = server.get(&format!("/v1/orders/{order}"), &service).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("paid")), "{body}");
    }
    server.audit().await;
    // The counts are on /metrics and in the admission view.
    let (_, stats) = server.get("/v1/admission", &server.admin).await;
    assert!(stats["order"]["shed"]["overloaded"].as_u64().unwrap_or(0) > 0, "{stats}");
    assert_eq!(stats["pay"]["shed"], json!({}), "{stats}");
    let metrics =
        server.http.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("elevens_admission_shed_total"), "{metrics}");
    assert!(metrics.contains("elevens_admission_limit 4"), "{metrics}");
}

#[tokio::test]
async fn a_buyer_over_its_rate_is_told_when_to_come_back_and_rules_change_at_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        crate::harness::config_file(dir.path(), "[admission]\nbuyer_quota = { per_s = 1, burst = 3 }\n");
    let server = Server::start(dir.path(), &["--config", &config]);
    let (merchant, service) = server.marketplace(2, 1_000_000).await;
    let sku_id = sku(&server, &merchant, 1_000, 100).await;
    let order = |n: u64| json!({"buyer_id": 1, "lines": [{"sku_id": sku_id, "quantity": n}]});

    let mut statuses = Vec::new();
    for i in 0..5 {
        let (reply, retry_after) =
            raw_post(&server, "/v1/orders", &service, &format!("r{i}"), order(1)).await;
        if reply.0 == 429 {
            assert_eq!(reply.1["code"], "rate_limited", "{}", reply.1);
            assert_polite(&reply, retry_after.as_deref());
        }
        statuses.push(reply.0);
    }
    assert_eq!(&statuses[..3], &[201, 201, 201]);
    assert_eq!(statuses[4], 429, "{statuses:?}");
    // Another buyer is not affected.
    let other = json!({"buyer_id": 2, "lines": [{"sku_id": sku_id, "quantity": 1}]});
    assert_eq!(raw_post(&server, "/v1/orders", &service, "other", other).await.0 .0, 201);

    // The rules from the file are readable; an admin lifts buyer 1's limit without a restart.
    let (status, mut rules) = server.get("/v1/admission/rules", &server.admin).await;
    assert_eq!(status, 200);
    assert_eq!(rules["buyer_quota"], json!({"per_s": 1, "burst": 3}));
    rules["buyer_exceptions"] = json!([{"id": 1, "quota": null}]);
    assert_eq!(put_rules(&server, &server.admin, &rules).await.0, 200);
    for i in 0..10 {
        let (reply, _) = raw_post(&server, "/v1/orders", &service, &format!("free{i}"), order(1)).await;
        assert_eq!(reply.0, 201, "{}", reply.1);
    }
    // Bad rules are refused and change nothing; only an admin may change them.
    let mut bad = rules.clone();
    bad["read_share_pct"] = json!(0);
    let (status, body) = put_rules(&server, &server.admin, &bad).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_rules")), "{body}");
    assert_eq!(put_rules(&server, &service, &rules).await.0, 403);
    assert_eq!(server.get("/v1/admission/rules", &server.admin).await.1, rules);

    // The change outlives a kill -9: the data directory keeps it, over the file's rules.
    let mut server = server;
    server.kill();
    let server = Server::start(dir.path(), &["--config", &config]);
    assert_eq!(server.get("/v1/admission/rules", &server.admin).await.1, rules);
    let (reply, _) = raw_post(&server, "/v1/orders", &service, "after-restart", order(1)).await;
    assert_eq!(reply.0, 201, "buyer 1 is still unlimited: {}", reply.1);
}

#[tokio::test]
async fn environment_variables_set_the_bounds_and_a_typo_in_one_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::harness::config_file(dir.path(), "[engine]\nbatch_commands_max = 100\n");
    let env = [("RUST_LOG", "warn"), ("ELEVENS_ENGINE__BATCH_COMMANDS_MAX", "2")];
    let server = Server::start_with(dir.path(), &["--config", &config], &env, std::process::Stdio::inherit());
    let (_, service) = server.marketplace(0, 0).await;
    let buyer =
        |n: u32| json!({"op": "create_buyer", "idempotency_key": format!("b{n}"), "params": {"name": "b"}});
    let (status, body) = server.batch(&service, vec![buyer(1), buyer(2), buyer(3)]).await;
    assert_eq!((status, body["code"].as_str()), (413, Some("batch_too_large")), "the variable wins: {body}");
    assert_eq!(server.batch(&service, vec![buyer(1), buyer(2)]).await.0, 200);
    drop(server);

    let output = std::process::Command::new(crate::harness::BIN)
        .args(["serve", "--data"])
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .env("ELEVENS_HTTP__CONECTIONS_MAX", "5")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("conections_max"), "{stderr}");
}

#[test]
fn a_config_file_with_a_mistake_stops_the_server_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        crate::harness::config_file(dir.path(), "[admission]\nbuyer_qouta = { per_s = 1, burst = 1 }\n");
    let output = std::process::Command::new(crate::harness::BIN)
        .args(["serve", "--data"])
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0", "--config", &config])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("elevens.toml") && stderr.contains("buyer_qouta"), "{stderr}");
}

#[tokio::test]
async fn the_waiting_room_admits_first_in_first_out_and_tickets_are_their_buyers() {
    let dir = tempfile::tempdir().unwrap();
    // The hot SKU takes one order a second; the room admits five tickets a second.
    let rules =
        "[admission]\nsku_quota = { per_s = 1, burst = 1 }\n[admission.waiting_room]\nadmit_per_s = 5\n";
    let config = crate::harness::config_file(dir.path(), rules);
    let server = Server::start(dir.path(), &["--config", &config]);
    let (merchant, service) = server.marketplace(4, 1_000_000).await;
    let sku_id = sku(&server, &merchant, 1_000, 100).await;
    let now = crate::harness::now_ms();
    let campaign = json!({"sku_id": sku_id, "flash_price": 50, "currency": "CNY", "quantity": 100,
        "starts_at": now - 1_000, "ends_at": now + 3_600_000, "per_buyer_limit": 10});
    let (status, body) = server.post("/v1/campaigns", &merchant, "campaign", campaign).await;
    assert_eq!(status, 201, "{body}");
    let mut buyer_keys = Vec::new();
    for b in 1..=4u64 {
        buyer_keys.push(server.key(json!({"role": "buyer", "buyer_id": b})).await);
    }
    let order = |b: u64| json!({"buyer_id": b, "lines": [{"sku_id": sku_id, "quantity": 1}]});
    assert_eq!(raw_post(&server, "/v1/orders", &service, "first", order(4)).await.0 .0, 201);
    let (refused, _) = raw_post(&server, "/v1/orders", &service, "second", order(1)).await;
    assert_eq!((refused.0, refused.1["code"].as_str()), (429, Some("sku_rate_limited")), "{}", refused.1);

    // Three buyers take tickets, in order; positions are 1, 2, 3.
    let mut tickets = Vec::new();
    for b in 1..=3u64 {
        let key = &buyer_keys[b as usize - 1];
        let (status, ticket) = server
            .post("/v1/waiting-room", key, &format!("t{b}"), json!({"campaign_id": 1, "buyer_id": b}))
            .await;
        assert_eq!(status, 201, "{ticket}");
        assert_eq!(ticket["state"], "waiting");
        assert_eq!(ticket["position"], b, "{ticket}");
        tickets.push(ticket["ticket"].as_str().unwrap().to_owned());
    }
    // Taking one again gives the same ticket, not a second place.
    let (_, again) = server
        .post("/v1/waiting-room", &buyer_keys[1], "t2b", json!({"campaign_id": 1, "buyer_id": 2}))
        .await;
    assert_eq!(again["ticket"], tickets[1].as_str());
    // A ticket is not for another buyer to see, nor to take for someone else.
    assert_eq!(server.get(&format!("/v1/waiting-room/{}", tickets[0]), &buyer_keys[1]).await.0, 404);
    let (status, _) = server
        .post("/v1/waiting-room", &buyer_keys[0], "t-steal", json!({"campaign_id": 1, "buyer_id": 2}))
        .await;
    assert_eq!(status, 403);
    assert_eq!(server.get("/v1/waiting-room/not-a-ticket", &buyer_keys[0]).await.0, 400);

    // Used before it is admitted: 429 with the position; by someone else: 403.
    let with_ticket = |b: u64, ticket: &str, idem: &str| {
        let request = server
            .http
            .post(format!("{}/v1/orders", server.base))
            .bearer_auth(&buyer_keys[b as usize - 1])
            .header("Idempotency-Key", idem)
            .header("Waiting-Room-Ticket", ticket)
            .json(&order(b));
        async move { once(request).await.0 }
    };
    let (status, body) = with_ticket(3, &tickets[2], "early").await;
    assert!(status == 429 && body["code"] == "ticket_not_admitted", "{status} {body}");
    // Admitted in order at 5 a second: within 800 ms all three are in.
    tokio::time::sleep(Duration::from_millis(800)).await;
    for (i, ticket) in tickets.iter().enumerate() {
        let (_, view) = server.get(&format!("/v1/waiting-room/{ticket}"), &buyer_keys[i]).await;
        assert_eq!(view["state"], "admitted", "{view}");
    }
    assert_eq!(with_ticket(2, &tickets[0], "stolen").await.0, 403);
    // Each admitted ticket buys past the SKU's limit, once.
    for b in 1..=3u64 {
        let (status, body) = with_ticket(b, &tickets[b as usize - 1], &format!("ticketed{b}")).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = with_ticket(1, &tickets[0], "ticketed-again").await;
    assert_eq!((status, body["code"].as_str()), (409, Some("ticket_used")), "{body}");
    server.audit().await;
}
