//! The event feed and webhooks, against the real binary: positions gap-free and the same after
//! a SIGKILL, each role's scope, long polling, and a webhook receiver on loopback that checks
//! signatures, order and that nothing is lost across a kill -9 of elevens.

use crate::harness::{config_file, sku, Server};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every event the key may read, by paging from position 0.
pub async fn all_events(server: &Server, key: &str, query: &str) -> Vec<Value> {
    let (mut after, mut events) = (0u64, Vec::new());
    loop {
        let (status, page) = server.get(&format!("/v1/events?after={after}&limit=1000{query}"), key).await;
        assert_eq!(status, 200, "{page}");
        let batch = page["events"].as_array().unwrap().clone();
        let next = page["next"].as_u64().unwrap();
        events.extend(batch);
        if next >= page["head"].as_u64().unwrap() {
            return events;
        }
        assert!(next > after, "the feed did not move on: {page}");
        after = next;
    }
}

async fn orders(server: &Server, service: &str, sku_id: u64, tag: &str, n: usize) {
    for i in 0..n {
        let body = json!({"buyer_id": 1 + i % 5, "lines": [{"sku_id": sku_id, "quantity": 1}]});
        let (status, order) = server.post("/v1/orders", service, &format!("{tag}-{i}"), body).await;
        assert_eq!(status, 201, "{order}");
        let id = order["order_id"].as_u64().unwrap();
        if i % 2 == 0 {
            let (status, paid) = server
                .post(&format!("/v1/orders/{id}/pay"), service, &format!("{tag}-pay-{i}"), Value::Null)
                .await;
            assert_eq!(status, 200, "{paid}");
        }
    }
}

#[tokio::test]
async fn the_feed_is_gap_free_scoped_and_the_same_after_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let (merchant, service) = server.marketplace(5, 100_000).await;
    let admin = server.admin.clone();
    let (_, _) = server.post("/v1/merchants", &admin, "m2", json!({"name": "Other"})).await;
    let other = server.key(json!({"role": "merchant", "merchant_id": 2})).await;
    let hot = sku(&server, &merchant, 1_000, 100).await;
    orders(&server, &service, hot, "a", 20).await;

    let events = all_events(&server, &admin, "").await;
    let positions: Vec<u64> = events.iter().map(|e| e["position"].as_u64().unwrap()).collect();
    assert_eq!(positions, (1..=positions.len() as u64).collect::<Vec<_>>(), "positions have gaps");
    let count = |t: &str| events.iter().filter(|e| e["type"] == t).count();
    assert_eq!((count("order.placed"), count("order.paid")), (20, 10));
    assert_eq!(count("sku.created"), 1);
    let placed = events.iter().find(|e| e["type"] == "order.placed").unwrap();
    assert_eq!(placed["version"], 1);
    assert_eq!(placed["merchant"], 1);
    assert_eq!(placed["data"]["currency"], "CNY");
    assert_eq!(placed["data"]["lines"][0]["sku"], hot);
    assert!(placed["data"]["lines"][0]["stock_available"].as_u64().unwrap() < 1_000);

    // Scope: a merchant reads its own; the other merchant none of them; buyers nothing.
    assert_eq!(
        all_events(&server, &merchant, "").await.len(),
        events.iter().filter(|e| e["merchant"] == 1).count()
    );
    assert!(all_events(&server, &other, "").await.is_empty());
    let (status, _) = server.get("/v1/events?merchant=1", &other).await;
    assert_eq!(status, 403);
    let buyer = server.key(json!({"role": "buyer", "buyer_id": 1})).await;
    let (status, body) = server.get("/v1/events", &buyer).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = server.get("/v1/events?types=order.shipped", &admin).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_event_type")));
    let (status, _) = server.get("/v1/events?limit=0", &admin).await;
    assert_eq!(status, 400);
    let only_paid = all_events(&server, &admin, "&types=order.paid").await;
    assert_eq!(only_paid.len(), 10);

    // Long polling: a read at the head waits, and answers with the next event once it exists.
    let head = *positions.last().unwrap();
    let poll = {
        let (base, http, admin) = (server.base.clone(), server.http.clone(), admin.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let url = format!("{base}/v1/events?after={head}&wait_ms=20000&types=order.placed");
            let page: Value = http.get(url).bearer_auth(admin).send().await.unwrap().json().await.unwrap();
            (started.elapsed(), page)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    orders(&server, &service, hot, "b", 1).await;
    let (waited, page) = poll.await.unwrap();
    assert!(waited < Duration::from_secs(10), "the poll was not woken: {waited:?}");
    assert_eq!(page["events"][0]["type"], "order.placed", "{page}");
    assert_eq!(page["events"][0]["position"], head + 1);

    // SIGKILL: the feed after the restart is the feed before it, and goes on from its head.
    let before = all_events(&server, &admin, "").await;
    server.kill();
    let server = Server::start(dir.path(), &[]);
    assert_eq!(all_events(&server, &admin, "").await, before, "the feed changed across a restart");
    orders(&server, &service, hot, "c", 3).await;
    let after = all_events(&server, &admin, "").await;
    assert_eq!(&after[..before.len()], &before[..]);
    let positions: Vec<u64> = after.iter().map(|e| e["position"].as_u64().unwrap()).collect();
    assert_eq!(positions, (1..=positions.len() as u64).collect::<Vec<_>>());

    // A feed deleted while stopped is derived again from the journal, the same.
    drop(server);
    std::fs::remove_dir_all(dir.path().join("feed")).unwrap();
    let server = Server::start(dir.path(), &[]);
    assert_eq!(all_events(&server, &admin, "").await, after, "the feed rebuilt from the journal differs");
}

/// What the receiver saw: each delivery's positions, and refusals it was told to make.
#[derive(Default)]
struct Received {
    deliveries: Vec<Vec<u64>>,
    bad_signatures: usize,
    fail_next: usize,
}

async fn receiver(secret: Arc<Mutex<String>>, seen: Arc<Mutex<Received>>) -> String {
    use axum::http::{HeaderMap, StatusCode};
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (secret, seen) = (secret.clone(), seen.clone());
            async move {
                let header = headers.get("elevens-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
                let (t, v1) = header.split_once(",v1=").unwrap_or(("", ""));
                let t = t.strip_prefix("t=").unwrap_or("");
                let mut mac =
                    Hmac::<sha2::Sha256>::new_from_slice(secret.lock().unwrap().as_bytes()).unwrap();
                mac.update(format!("{t}.").as_bytes());
                mac.update(&body);
                let fresh =
                    t.parse::<u64>().is_ok_and(|t| t.abs_diff(crate::harness::now_ms() / 1_000) < 300);
                let mut seen = seen.lock().unwrap();
                if !fresh || mac.verify_slice(&hex::decode(v1).unwrap_or_default()).is_err() {
                    seen.bad_signatures += 1;
                    return StatusCode::UNAUTHORIZED;
                }
                if seen.fail_next > 0 {
                    seen.fail_next -= 1;
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let delivery: Value = serde_json::from_slice(&body).unwrap();
                let positions = delivery["events"].as_array().unwrap().iter();
                seen.deliveries.push(positions.map(|e| e["position"].as_u64().unwrap()).collect());
                StatusCode::OK
            }
        }),
    );
    format!("{}/hook", crate::harness::serve_on_loopback(app).await)
}

#[tokio::test]
async fn a_webhook_delivers_signed_in_order_and_loses_nothing_across_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        "[webhooks]\nbackoff_base_ms = 50\nbackoff_max_ms = 200\nfailures_max = 1000\nallow_ranges = [\"127.0.0.0/8\"]\n",
    );
    let args = ["--config", config.as_str()];
    let mut server = Server::start(dir.path(), &args);
    let (merchant, service) = server.marketplace(5, 1_000_000).await;
    let hot = sku(&server, &merchant, 10_000, 100).await;
    let (secret, seen) = (Arc::new(Mutex::new(String::new())), Arc::new(Mutex::new(Received::default())));
    let url = receiver(secret.clone(), seen.clone()).await;
    seen.lock().unwrap().fail_next = 3; // retried, with backoff

    let request = json!({"url": url, "types": ["order.placed", "order.paid"], "after": 0});
    let (status, hook) = server.post("/v1/webhooks", &merchant, "hook-1", request.clone()).await;
    assert_eq!(status, 201, "{hook}");
    *secret.lock().unwrap() = hook["secret"].as_str().unwrap().to_owned();
    let id = hook["webhook_id"].as_u64().unwrap();
    let (status, again) = server.post("/v1/webhooks", &merchant, "hook-1", request).await;
    assert_eq!((status, &again["webhook_id"]), (200, &hook["webhook_id"]), "a retry made a second one");
    let (status, reused) = server.post("/v1/webhooks", &merchant, "hook-1", json!({"url": url})).await;
    assert_eq!((status, reused["code"].as_str()), (409, Some("idempotency_key_reused")));
    let (status, _) = server.post("/v1/webhooks", &service, "hook-2", json!({"url": url})).await;
    assert_eq!(status, 403, "a service key subscribes to nothing");
    let (status, _) = server.post("/v1/webhooks", &merchant, "hook-3", json!({"url": "ftp://x"})).await;
    assert_eq!(status, 400);

    orders(&server, &service, hot, "a", 30).await;
    // kill -9 while deliveries are going on, then more orders.
    server.kill();
    let server = Server::start(dir.path(), &args);
    orders(&server, &service, hot, "b", 30).await;

    let wanted: Vec<u64> = all_events(&server, &server.admin.clone(), "&types=order.placed,order.paid")
        .await
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(wanted.len(), 60 + 30);
    let deadline = Instant::now() + Duration::from_secs(60);
    let delivered = loop {
        let firsts: Vec<u64> = {
            let seen = seen.lock().unwrap();
            let mut all: Vec<u64> = seen.deliveries.iter().flatten().copied().collect();
            all.dedup();
            all
        };
        let mut distinct = firsts.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct == wanted || Instant::now() > deadline {
            break firsts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (bad_signatures, deliveries) = {
        let seen = seen.lock().unwrap();
        (seen.bad_signatures, seen.deliveries.clone())
    };
    let received: usize = deliveries.iter().map(Vec::len).sum();
    eprintln!(
        "webhook across a kill -9: {} deliveries, {received} events received, {} distinct of {} wanted, {bad_signatures} bad signatures",
        deliveries.len(),
        { let mut d = delivered.clone(); d.sort_unstable(); d.dedup(); d.len() },
        wanted.len()
    );
    assert_eq!(bad_signatures, 0);
    let mut distinct = delivered.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct, wanted, "events were lost");
    for delivery in &deliveries {
        assert!(delivery.windows(2).all(|w| w[0] < w[1]), "a delivery out of order: {delivery:?}");
    }
    // In order: a repeat (at least once, after the kill) only ever sends again a stretch the
    // receiver had, never skips ahead and back.
    let mut high = 0;
    for delivery in &deliveries {
        let skipped: Vec<&u64> = wanted.iter().filter(|p| **p > high && **p < delivery[0]).collect();
        assert!(skipped.is_empty(), "a delivery skipped {skipped:?}");
        high = high.max(*delivery.last().unwrap());
    }
    let (status, attempts) = server.get(&format!("/v1/webhooks/{id}/deliveries"), &merchant).await;
    assert_eq!(status, 200);
    assert!(
        attempts.as_array().unwrap().iter().all(|a| a["first_position"].as_u64().is_some()),
        "{attempts}"
    );
    // The cursor moves past a delivery once the receiver's answer is back at the worker, a
    // moment after the receiver has the events: wait for it (10 s at most).
    let last = wanted.last().copied().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let view = loop {
        let (status, view) = server.get(&format!("/v1/webhooks/{id}"), &merchant).await;
        assert_eq!(status, 200);
        if view["cursor"].as_u64() >= Some(last) || Instant::now() > deadline {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(view["secret"].is_null(), "the secret is shown once");
    assert!(view["cursor"].as_u64() >= Some(last), "the cursor is behind what was delivered: {view}");
}
