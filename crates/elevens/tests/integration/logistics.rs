//! An order's life past payment over HTTP, as the README shows it: a warehouse and a carrier,
//! a delivery estimate, the shipment booked at payment, dispatch, a carrier's feed (with a
//! duplicate and a late event), delivery, a return received and refunded, a ticket; the
//! refusals of other roles; and all of it after a kill -9.

use crate::harness::{sku, Server};
use serde_json::json;

#[tokio::test]
async fn an_order_ships_is_tracked_delivered_returned_and_survives_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let admin = server.admin.clone();
    let (merchant, service) = server.marketplace(2, 10_000_000).await;
    let (status, warehouse) = server
        .post(
            "/v1/merchants/1/warehouses",
            &merchant,
            "wh-1",
            json!({"name": "Hangzhou", "region": "CN-ZJ", "capacity_per_day": 1000, "cutoff": "23:59",
                   "utc_offset_minutes": 480, "closed_weekdays": [], "closed_dates": ["2026-12-25"]}),
        )
        .await;
    assert_eq!((status, warehouse["warehouse_id"].as_u64()), (201, Some(1)), "{warehouse}");
    let sku_id = sku(&server, &merchant, 10, 50_000).await;
    let lanes = json!({"name": "SF Express", "lanes": [{"from": "CN-ZJ", "to": "CN-BJ", "p50_days": 1, "p90_days": 2}]});
    let (status, carrier) = server.post("/v1/carriers", &admin, "carrier-1", lanes.clone()).await;
    assert_eq!(status, 201, "{carrier}");
    // A merchant cannot create carriers; the operator finds one by name.
    assert_eq!(server.post("/v1/carriers", &merchant, "carrier-2", lanes).await.0, 403);
    let (_, found) = server.get("/v1/carriers?q=express", &admin).await;
    assert_eq!(
        (found["items"][0]["carrier_id"].as_u64(), found["items"][0]["lanes"][0]["to"].as_str()),
        (Some(1), Some("CN-BJ")),
        "{found}"
    );
    assert_eq!(server.get("/v1/carriers?q=post", &admin).await.1["items"], json!([]));
    let carrier_key = server.key(json!({"role": "carrier", "carrier_id": 1})).await;
    let buyer = server.key(json!({"role": "buyer", "buyer_id": 1})).await;
    let address = json!({"region": "CN-BJ", "address": "1 Chang'an Avenue"});
    let (status, body) = server.put("/v1/buyers/1/address", &buyer, "addr-1", address.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.put("/v1/buyers/2/address", &buyer, "addr-2", address).await.0, 403);
    let (status, estimate) =
        server.get(&format!("/v1/skus/{sku_id}/delivery-estimate?region=CN-BJ"), &buyer).await;
    assert_eq!(status, 200, "{estimate}");
    assert!(estimate["promised_by"].is_string(), "{estimate}");

    server
        .put("/v1/merchants/1/shipping-fee", &merchant, "fee-1", json!({"currency": "CNY", "fee": 800}))
        .await;
    let order = json!({"buyer_id": 1, "lines": [{"sku_id": sku_id, "quantity": 2}]});
    let (status, placed) = server.post("/v1/orders", &buyer, "order-1", order).await;
    assert_eq!(
        (status, placed["total"].as_u64(), placed["shipping"].as_u64()),
        (201, Some(100_800), Some(800))
    );
    let (status, _) = server.post("/v1/orders/1/pay", &buyer, "pay-1", json!(null)).await;
    assert_eq!(status, 200);
    let (_, shipments) = server.get("/v1/orders/1/shipments", &buyer).await;
    let shipment = &shipments["items"][0];
    assert_eq!(
        (shipment["status"].as_str(), shipment["promised_by"].as_str()),
        (Some("awaiting_dispatch"), estimate["promised_by"].as_str())
    );
    // What the merchant has to ship, and what another merchant may not see.
    let (_, to_ship) = server.get("/v1/merchants/1/orders?status=paid", &merchant).await;
    assert_eq!(to_ship["items"].as_array().map(Vec::len), Some(1), "{to_ship}");
    server.post("/v1/merchants", &admin, "m-2", json!({"name": "Other"})).await;
    let other = server.key(json!({"role": "merchant", "merchant_id": 2})).await;
    assert_eq!(server.get("/v1/merchants/1/shipments", &other).await.0, 403);
    assert_eq!(server.get("/v1/shipments/1", &other).await.0, 403);
    assert_eq!(server.post("/v1/shipments/1/dispatch", &other, "d-x", json!(null)).await.0, 403);

    let (status, dispatched) = server.post("/v1/shipments/1/dispatch", &merchant, "d-1", json!(null)).await;
    assert_eq!((status, dispatched["result"].as_str()), (200, Some("shipment_dispatched")), "{dispatched}");
    let (_, shipment) = server.get("/v1/shipments/1", &merchant).await;
    assert_eq!(shipment["status"], "dispatched", "{shipment}");
    let at = crate::harness::now_ms();
    let event = |id: &str, status: &str, at: u64| json!({"shipment_id": 1, "event_id": id, "status": status, "occurred_at": at});
    let feed = json!({"events": [event("e1", "in_transit", at), event("e2", "out_for_delivery", at + 1_000),
        event("e3", "delivered", at + 2_000), event("e1", "in_transit", at), event("e0", "pre_transit", at - 1_000)]});
    let (status, recorded) = server.post("/v1/tracking-events", &carrier_key, "feed-1", feed).await;
    assert_eq!(
        (status, recorded["recorded"].as_u64(), recorded["duplicates"].as_u64()),
        (200, Some(4), Some(1)),
        "{recorded}"
    );
    let (_, shipment) = server.get("/v1/shipments/1", &buyer).await;
    assert_eq!(
        (shipment["status"].as_str(), shipment["tracking_status"].as_str()),
        (Some("delivered"), Some("delivered")),
        "{shipment}"
    );
    assert_eq!(shipment["history"].as_array().map(Vec::len), Some(4));
    let (_, order) = server.get("/v1/orders/1", &buyer).await;
    assert_eq!(order["status"], "delivered");
    // An event for a shipment that does not exist: 404, and nothing recorded.
    let mut unknown = event("e9", "in_transit", at);
    unknown["shipment_id"] = json!(99);
    let bad = json!({"events": [event("e8", "in_transit", at), unknown]});
    assert_eq!(server.post("/v1/tracking-events", &carrier_key, "feed-2", bad).await.0, 404);

    // A return of one unit: received and restocked, then refunded (with the shipping).
    let ret = json!({"lines": [{"sku_id": sku_id, "quantity": 3}], "reason": "damaged"});
    assert_eq!(server.post("/v1/orders/1/returns", &buyer, "r-0", ret).await.0, 409, "more than bought");
    let ret = json!({"lines": [{"sku_id": sku_id, "quantity": 1}], "reason": "damaged"});
    let (status, ret) = server.post("/v1/orders/1/returns", &buyer, "r-1", ret).await;
    assert_eq!((status, ret["status"].as_str()), (201, Some("requested")), "{ret}");
    server.post("/v1/returns/1/approve", &merchant, "ra-1", json!(null)).await;
    let (_, received) =
        server.post("/v1/returns/1/receive", &merchant, "rr-1", json!({"restock": true})).await;
    assert_eq!(received["status"], "received");
    let (status, refunded) =
        server.post("/v1/returns/1/refund", &merchant, "rf-1", json!({"shipping": 800})).await;
    assert_eq!((status, refunded["refunded"].as_u64()), (200, Some(50_800)), "{refunded}");
    let (_, wallet) = server.get("/v1/buyers/1/wallet", &buyer).await;
    assert_eq!(wallet["accounts"][0]["balance"], 10_000_000 - 100_800 + 50_800);

    let (status, ticket) =
        server.post("/v1/orders/1/tickets", &buyer, "t-1", json!({"subject": "one arrived broken"})).await;
    assert_eq!((status, ticket["status"].as_str()), (201, Some("new")), "{ticket}");
    let (status, ticket) =
        server.post("/v1/tickets/1/status", &merchant, "ts-1", json!({"status": "resolved"})).await;
    assert_eq!((status, ticket["status"].as_str()), (200, Some("resolved")), "{ticket}");
    assert!(ticket["first_response_at"].is_u64());
    assert_eq!(server.get("/v1/tickets/1", &other).await.0, 403);
    let (_, stats) = server.get("/v1/logistics/stats", &service).await;
    assert_eq!((stats["delivered"].as_u64(), stats["tickets"].as_u64()), (Some(1), Some(1)), "{stats}");

    let before = server.audit().await;
    assert_eq!(before["ok"], true, "{before}");
    let mut server = server;
    server.kill();
    let server = Server::start(dir.path(), &[]);
    let after = server.audit().await;
    assert_eq!(before["digest"], after["digest"], "restart changed the state");
    let (_, shipment) = server.get("/v1/shipments/1", &service).await;
    assert_eq!(shipment["history"].as_array().map(Vec::len), Some(4));
}
