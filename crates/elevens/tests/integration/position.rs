//! Positions: every answer says the record it saw, a read may ask to see at least one, and
//! `/v1/cluster` says where the node stands (embedded here; the replicated mode says more).

use crate::harness::Server;
use serde_json::{json, Value};

fn position(response: &reqwest::Response) -> u64 {
    let header = response.headers().get("x-elevens-position").expect("every answer has a position");
    header.to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn answers_carry_their_position_and_a_read_waits_for_the_one_it_asks() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let created = server
        .http
        .post(format!("{}/v1/merchants", server.base))
        .bearer_auth(&server.admin)
        .header("Idempotency-Key", "m")
        .json(&json!({"name": "shop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let written = position(&created);
    assert!(written >= 2, "the admin key and the merchant are records 1 and 2: {written}");

    let read = |min: String| {
        let (http, base, key) = (server.http.clone(), server.base.clone(), server.admin.clone());
        async move {
            let request = http.get(format!("{base}/v1/merchants/1")).bearer_auth(key);
            request.header("X-Elevens-Min-Position", min).send().await.unwrap()
        }
    };
    let seen = read(written.to_string()).await;
    assert_eq!(seen.status(), 200);
    assert!(position(&seen) >= written);

    // A position this node never reaches: answered 503 after the bounded wait, with Retry-After.
    let started = std::time::Instant::now();
    let behind = read((written + 1_000).to_string()).await;
    assert_eq!(behind.status(), 503);
    assert!(behind.headers().contains_key("retry-after"));
    let waited = started.elapsed();
    assert!(waited >= std::time::Duration::from_secs(2), "waited only {waited:?}");
    let body: Value = behind.json().await.unwrap();
    assert_eq!(body["code"], "behind", "{body}");

    let bad = read("soon".into()).await;
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["code"], "invalid_position");

    // No key needed, and no data in it.
    let cluster = server.http.get(format!("{}/v1/cluster", server.base)).send().await.unwrap();
    assert_eq!(cluster.status(), 200);
    let cluster: Value = cluster.json().await.unwrap();
    assert_eq!((cluster["mode"].as_str(), cluster["role"].as_str()), (Some("embedded"), Some("leader")));
    assert_eq!((cluster["writable"].as_bool(), cluster["applied"].as_u64()), (Some(true), Some(written)));
}
