//! The read side over HTTP: the summary after real orders, a campaign's funnel with views, the
//! live feed's frames, the big screen page, and the figures surviving a restart.

use crate::harness::{sku, Server};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn the_figures_follow_the_orders_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let (merchant, service) = server.marketplace(3, 1_000_000).await;
    let sku_id = sku(&server, &merchant, 100, 10_000).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let campaign = json!({"sku_id": sku_id, "flash_price": 5_000, "currency": "CNY", "quantity": 10,
                          "starts_at": now - 1_000, "ends_at": now + 3_600_000, "per_buyer_limit": 2});
    assert_eq!(server.post("/v1/campaigns", &merchant, "c1", campaign).await.0, 201);

    // Three buyers see the flash sale; two order, one pays twice (two orders), one refund.
    let views: Vec<Value> =
        (1..=3).map(|b| json!({"sku_id": sku_id, "campaign_id": 1, "buyer_id": b})).collect();
    let (status, body) = server.post("/v1/events/views", &service, "v", json!({"views": views})).await;
    assert_eq!((status, body["accepted"].as_u64()), (202, Some(3)), "{body}");
    let mut paid = Vec::new();
    for (i, buyer) in [1, 1, 2].into_iter().enumerate() {
        let order = json!({"buyer_id": buyer, "lines": [{"sku_id": sku_id, "quantity": 1}]});
        let (status, placed) = server.post("/v1/orders", &service, &format!("o{i}"), order).await;
        assert_eq!(status, 201, "{placed}");
        let id = placed["order_id"].as_u64().unwrap();
        if i < 2 {
            assert_eq!(
                server.post(&format!("/v1/orders/{id}/pay"), &service, &format!("p{i}"), json!(null)).await.0,
                200
            );
            paid.push(id);
        }
    }
    let refund = json!({"restock": true});
    assert_eq!(server.post(&format!("/v1/orders/{}/refund", paid[1]), &merchant, "r", refund).await.0, 200);

    let summary = server.get("/v1/analytics/summary", &service).await.1;
    assert_eq!(summary["currency"], "CNY");
    assert_eq!(
        (summary["gmv"].as_i64(), summary["paid_orders"].as_u64()),
        (Some(5_000), Some(2)),
        "{summary}"
    );
    assert_eq!((summary["aov"].as_i64(), summary["refunded_orders"].as_u64()), (Some(2_500), Some(1)));
    assert_eq!(summary["placed_orders"], 3);
    let funnel = server.get("/v1/analytics/campaigns/1/funnel", &service).await.1;
    assert_eq!(
        (funnel["views"].as_u64(), funnel["orders"].as_u64(), funnel["paid"].as_u64()),
        (Some(3), Some(3), Some(2))
    );
    assert_eq!(funnel["view_to_order"], 1.0);
    let top = server.get("/v1/analytics/top", &service).await.1;
    assert_eq!(top["skus"][0]["id"].as_u64(), Some(sku_id), "{top}");
    let timeline = server.get("/v1/analytics/timeline?seconds=30", &service).await.1;
    assert_eq!(timeline.as_array().unwrap().len(), 30);
    assert_eq!(timeline.as_array().unwrap().iter().map(|s| s["orders"].as_u64().unwrap()).sum::<u64>(), 3);
    // Platform figures are not for a merchant's or a buyer's key.
    assert_eq!(server.get("/v1/analytics/summary", &merchant).await.0, 403);

    // The live feed: a frame a second, with the key in the query (as EventSource sends it).
    let url = format!("{}/v1/live?key={service}", server.base);
    let mut response = server.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk =
            tokio::time::timeout(Duration::from_secs(5), response.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).expect("a data line");
    let frame: Value = serde_json::from_str(data).unwrap();
    assert_eq!(frame["summary"]["gmv"], 5_000, "{frame}");
    assert_eq!(frame["next_campaign"]["campaign_id"], 1);
    assert!(frame["admission"]["order"]["admitted"].as_u64().unwrap() >= 3);
    assert_eq!(server.http.get(format!("{}/v1/live", server.base)).send().await.unwrap().status(), 401);
    let page = server.http.get(format!("{}/screen", server.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("EventSource"));

    // After a restart the cumulative figures are rebuilt from the recovered orders.
    server.kill();
    let server = Server::start(dir.path(), &[]);
    let again = server.get("/v1/analytics/summary", &server.admin).await.1;
    for field in ["gmv", "paid_orders", "aov", "refunded_orders", "refunds", "placed_orders"] {
        assert_eq!(again[field], summary[field], "{field}: {again} vs {summary}");
    }
}
