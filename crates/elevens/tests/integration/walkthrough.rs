//! An order's whole life, as the README's curl walk-through shows it, and that it survives a
//! restart.

use crate::harness::{sku, Server};
use serde_json::json;

#[tokio::test]
async fn an_order_from_placement_to_refund_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (merchant, service) = server.marketplace(1, 1_000_000).await;
    let sku_id = sku(&server, &merchant, 100, 399_900).await;
    let buyer = server.key(json!({"role": "buyer", "buyer_id": 1})).await;

    let order = json!({"buyer_id": 1, "lines": [{"sku_id": sku_id, "quantity": 2}]});
    let (status, placed) = server.post("/v1/orders", &buyer, "order-1", order.clone()).await;
    assert_eq!(status, 201, "{placed}");
    assert_eq!(
        (placed["status"].as_str(), placed["total"].as_u64()),
        (Some("pending_payment"), Some(799_800))
    );

    let (status, paid) = server.post("/v1/orders/1/pay", &buyer, "pay-1", json!(null)).await;
    assert_eq!((status, paid["status"].as_str()), (200, Some("paid")), "{paid}");
    assert_eq!(paid["commission"], 15_996, "2% default commission");
    // Exactly once: the same key returns the first answer and pays nothing more.
    let (status, again) = server.post("/v1/orders/1/pay", &buyer, "pay-1", json!(null)).await;
    assert_eq!((status, &again), (200, &paid));
    let (_, wallet) = server.get("/v1/buyers/1/wallet", &buyer).await;
    assert_eq!(wallet["accounts"][0]["balance"], 1_000_000 - 799_800);
    let (_, wallet) = server.get("/v1/merchants/1/wallet", &merchant).await;
    assert_eq!(wallet["accounts"][0]["balance"], 799_800 - 15_996);

    // A buyer cannot refund; the merchant can, and chooses to restock.
    let (status, body) =
        server.post("/v1/orders/1/refund", &buyer, "refund-1", json!({"restock": true})).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let (status, refunded) =
        server.post("/v1/orders/1/refund", &merchant, "refund-1", json!({"restock": true})).await;
    assert_eq!((status, refunded["status"].as_str()), (200, Some("refunded")), "{refunded}");
    let before = server.audit().await;

    // Operators see the engine's counters in Prometheus text.
    let metrics =
        server.http.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("elevens_commands_total{result=\"changed\"}"), "{metrics}");
    assert!(metrics.contains("elevens_refusals_total{code=\"forbidden\"} 1"), "{metrics}");
    assert!(metrics.contains("elevens_journal_write_fsync_seconds"), "{metrics}");
    // Every series is described and typed; latencies are histograms, which aggregate.
    for line in metrics.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        let family = if metrics.contains(&format!("# TYPE {family} ")) { family } else { name };
        assert!(metrics.contains(&format!("# HELP {family} ")), "no help for {name}:\n{metrics}");
        assert!(metrics.contains(&format!("# TYPE {family} ")), "no type for {name}");
    }
    assert!(metrics.contains("# TYPE elevens_journal_write_fsync_seconds histogram"), "{metrics}");
    for series in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_cpu_seconds_total",
        "elevens_build_info{",
    ] {
        assert!(metrics.contains(series), "no {series}:\n{metrics}");
    }

    let mut server = server;
    server.kill();
    let server = Server::start(dir.path(), &[]);
    let after = server.audit().await;
    assert_eq!(before["digest"], after["digest"], "restart changed the state");
    let (_, order) = server.get("/v1/orders/1", &service).await;
    assert_eq!(order["status"], "refunded");
    let (_, sku) = server.get(&format!("/v1/skus/{sku_id}"), &service).await;
    assert_eq!((sku["available"].as_u64(), sku["sold"].as_u64()), (Some(100), Some(0)));
}

#[tokio::test]
async fn an_unpaid_order_expires_and_releases_its_stock() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--reservation-ttl-ms", "1000"]);
    let (merchant, service) = server.marketplace(1, 1_000_000).await;
    let sku_id = sku(&server, &merchant, 3, 100).await;
    let order = json!({"buyer_id": 1, "lines": [{"sku_id": sku_id, "quantity": 3}]});
    let (status, _) = server.post("/v1/orders", &service, "o", order).await;
    assert_eq!(status, 201);
    // The engine expires reservations by itself, driven by the sequencer's clock.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, order) = server.get("/v1/orders/1", &service).await;
        if order["status"] == "expired" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never expired: {order}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, body) = server.post("/v1/orders/1/pay", &service, "late", serde_json::Value::Null).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("invalid_order_state")));
    let (_, sku) = server.get(&format!("/v1/skus/{sku_id}"), &service).await;
    assert_eq!(sku["available"], 3);
    server.audit().await;
}
