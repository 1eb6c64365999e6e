//! 1,000 buyers race for 100 units: exactly 100 orders, everyone else a clear refusal.

use crate::harness::{sku, Server};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

const BUYERS: u64 = 1_000;
const UNITS: u64 = 100;

/// Every buyer sends `attempts` orders for one unit of `sku_id`, all at once.
async fn stampede(server: &Arc<Server>, service: &str, sku_id: u64, attempts: u64) -> Vec<(u64, u16, Value)> {
    let mut tasks = Vec::new();
    for buyer in 1..=BUYERS {
        for attempt in 0..attempts {
            let (server, service) = (server.clone(), service.to_owned());
            tasks.push(tokio::spawn(async move {
                let body = json!({"buyer_id": buyer, "lines": [{"sku_id": sku_id, "quantity": 1}]});
                let key = format!("o-{sku_id}-{buyer}-{attempt}");
                let (status, reply) = server.post("/v1/orders", &service, &key, body).await;
                (buyer, status, reply)
            }));
        }
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    results
}

fn codes(results: &[(u64, u16, Value)]) -> BTreeMap<String, usize> {
    let mut codes = BTreeMap::new();
    for (_, status, body) in results.iter().filter(|(_, s, _)| *s != 201) {
        *codes.entry(format!("{status} {}", body["code"].as_str().unwrap_or("?"))).or_default() += 1;
    }
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_buyers_never_oversell_a_hundred_units() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(Server::start(dir.path(), &[]));
    let (merchant, service) = server.marketplace(BUYERS as usize, 1_000_000).await;
    let sku_id = sku(&server, &merchant, UNITS, 999).await;

    let results = stampede(&server, &service, sku_id, 1).await;
    let accepted = results.iter().filter(|(_, s, _)| *s == 201).count() as u64;
    assert_eq!(accepted, UNITS, "refusals: {:?}", codes(&results));
    assert_eq!(codes(&results), BTreeMap::from([("409 insufficient_stock".to_owned(), 900)]));

    let (_, sku) = server.get(&format!("/v1/skus/{sku_id}"), &service).await;
    assert_eq!((sku["available"].as_u64(), sku["reserved"].as_u64()), (Some(0), Some(UNITS)));
    server.audit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_never_sells_beyond_its_quantity_or_a_buyers_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(Server::start(dir.path(), &[]));
    let (merchant, service) = server.marketplace(BUYERS as usize, 1_000_000).await;
    // Plenty of stock: the campaign's quantity and the per-buyer limit are what bind.
    let sku_id = sku(&server, &merchant, 10_000, 5_000).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let (status, campaign) = server
        .post(
            "/v1/campaigns",
            &merchant,
            "campaign",
            json!({"sku_id": sku_id, "flash_price": 1_100, "currency": "CNY", "quantity": UNITS,
                   "starts_at": now - 1_000, "ends_at": now + 3_600_000, "per_buyer_limit": 1}),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");

    // Each buyer tries twice: the second is refused by the limit or by the sold-out campaign.
    let results = stampede(&server, &service, sku_id, 2).await;
    let mut per_buyer: BTreeMap<u64, usize> = BTreeMap::new();
    for (buyer, status, body) in &results {
        if *status == 201 {
            *per_buyer.entry(*buyer).or_default() += 1;
            assert_eq!(body["lines"][0]["unit_price"], 1_100);
        }
    }
    assert_eq!(per_buyer.values().sum::<usize>() as u64, UNITS, "refusals: {:?}", codes(&results));
    assert!(per_buyer.values().all(|&n| n == 1), "a buyer got more than the limit");
    let refusals = codes(&results);
    assert!(
        refusals.keys().all(|c| c == "409 campaign_sold_out" || c == "409 campaign_limit_exceeded"),
        "{refusals:?}"
    );
    let (_, campaign) = server.get("/v1/campaigns/1", &service).await;
    assert_eq!((campaign["taken"].as_u64(), campaign["remaining"].as_u64()), (Some(UNITS), Some(0)));
    server.audit().await;
}
