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

    // The live feed: a frame a second, with the key in the query (as EventSource sends it): a
    // viewer's, which reads the figures and may change nothing.
    let viewer = server.key(json!({"role": "viewer"})).await;
    // The same figures (the per-second rates aside: a second may have passed since).
    let rates_aside = |mut s: serde_json::Value| {
        for rate in ["orders_per_s", "payments_per_s"] {
            s.as_object_mut().unwrap().remove(rate);
        }
        s
    };
    assert_eq!(
        rates_aside(server.get("/v1/analytics/summary", &viewer).await.1),
        rates_aside(summary.clone())
    );
    let url = format!("{}/v1/live?key={viewer}", server.base);
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
    // The sale on the screen: the open one with the most GMV, the operator having chosen none.
    assert_eq!(
        (frame["featured"]["campaign_id"].as_u64(), frame["featured"]["chosen"].as_bool()),
        (Some(1), Some(false)),
        "{frame}"
    );
    assert_eq!(frame["featured"]["status"], "open", "{frame}");
    // A store's own figures; a store that does not exist has none (found by schemathesis: 200).
    let (status, figures) = server.get("/v1/merchants/1/figures", &merchant).await;
    assert_eq!(
        (status, figures["gmv"].as_i64(), figures["paid_orders"].as_u64()),
        (200, Some(5_000), Some(2)),
        "{figures}"
    );
    // Its conversion today: two paid orders over the three views of its SKU.
    assert_eq!(
        (figures["day_views"].as_u64(), figures["day_conversion_bp"].as_u64()),
        (Some(3), Some(6_666)),
        "{figures}"
    );
    assert_eq!(server.get("/v1/merchants/0/figures", &server.admin).await.0, 404);
    assert_eq!(server.get("/v1/merchants/99/figures", &server.admin).await.0, 404);
    assert!(frame["refusals"].is_array() && frame["shedding"].is_array(), "{frame}");
    assert!(frame["admission"]["order"]["admitted"].as_u64().unwrap() >= 3);
    // Payments admitted are the two payments and the refund; the admin's setup counts apart.
    assert_eq!(frame["admission"]["pay"]["admitted"], 3, "{frame}");
    assert!(frame["admission"]["operator"]["admitted"].as_u64().unwrap() >= 3, "{frame}");
    // What a person reads: the SKU's title and the merchant's name, not their ids.
    assert_eq!(frame["top_skus"][0]["name"], "Hot item", "{frame}");
    assert_eq!(frame["top_merchants"][0]["name"], "Flagship", "{frame}");
    assert_eq!(frame["funnels"][0]["sku_title"], "Hot item", "{frame}");
    assert_eq!(frame["featured"]["sku_title"], "Hot item", "{frame}");
    // No second from before this process started is drawn as a zero.
    let since_s = frame["since"].as_u64().unwrap() / 1_000;
    let seconds = frame["timeline"].as_array().unwrap();
    assert!(seconds.len() < 120, "{frame}");
    assert!(seconds.iter().all(|s| s["t"].as_u64().unwrap() >= since_s), "{frame}");
    // The viewer's key changes nothing and reads nothing private.
    let new_sku = json!({"merchant_id": 1, "title": "x", "price": 1, "currency": "CNY", "stock": 1});
    for (status, body) in [
        server.post("/v1/skus", &viewer, "v-sku", new_sku).await,
        server.post("/v1/api-keys", &viewer, "v-key", json!({"role": "admin"})).await,
        server.post(&format!("/v1/orders/{}/refund", paid[0]), &viewer, "v-refund", json!({})).await,
        server
            .post(
                "/v1/webhooks",
                &viewer,
                "v-hook",
                json!({"url": "https://example.com/h", "types": ["order.paid"]}),
            )
            .await,
        server.get(&format!("/v1/orders/{}", paid[0]), &viewer).await,
        server.get("/v1/buyers/1/wallet", &viewer).await,
        server.get("/v1/events", &viewer).await,
        server.get("/v1/admission/rules", &viewer).await,
    ] {
        assert_eq!(status, 403, "a viewer's key was not refused: {body}");
    }
    assert_eq!(server.http.get(format!("{}/v1/live", server.base)).send().await.unwrap().status(), 401);
    let page = server.http.get(format!("{}/screen", server.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/screen/screen.js"));
    let script = server.http.get(format!("{}/screen/screen.js", server.base)).send().await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.text().await.unwrap().contains("EventSource"));
    // Its charting library is served by the binary itself.
    let script = server.http.get(format!("{}/screen/uplot.js", server.base)).send().await.unwrap();
    assert_eq!(script.status(), 200);
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(script.text().await.unwrap().contains("uPlot"));

    // After a restart the cumulative figures are rebuilt from the recovered orders.
    server.kill();
    let server = Server::start(dir.path(), &[]);
    let again = server.get("/v1/analytics/summary", &server.admin).await.1;
    for field in ["gmv", "paid_orders", "aov", "refunded_orders", "refunds", "placed_orders"] {
        assert_eq!(again[field], summary[field], "{field}: {again} vs {summary}");
    }
}

#[tokio::test]
async fn an_experiment_assigns_buyers_stably_and_reports_per_variant() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (merchant, service) = server.marketplace(40, 1_000_000).await;
    let sku_id = sku(&server, &merchant, 1_000, 1_000).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let admin = server.admin.clone();
    let definition = |variants: Value| json!({"name": "bigger photos", "variants": variants, "starts_at": now - 1_000, "ends_at": now + 3_600_000});
    // One variant is no experiment; a weight of 0 is no share.
    let (status, body) =
        server.post("/v1/experiments", &admin, "e0", definition(json!([{"name": "A", "weight": 1}]))).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("out_of_bounds")), "{body}");
    let zero = json!([{"name": "A", "weight": 1}, {"name": "B", "weight": 0}]);
    assert_eq!(server.post("/v1/experiments", &admin, "e00", definition(zero)).await.0, 400);
    assert_eq!(server.post("/v1/experiments", &service, "e-svc", definition(json!([]))).await.0, 403);
    let variants = json!([{"name": "A", "weight": 1}, {"name": "B", "weight": 1}]);
    let (status, experiment) = server.post("/v1/experiments", &admin, "e1", definition(variants)).await;
    assert_eq!(status, 201, "{experiment}");
    assert_eq!(experiment["variants"][1]["name"], "B");
    assert_eq!(server.get("/v1/experiments/1", &service).await.1, experiment);

    // Every buyer sees a variant, the same one each time; both variants get buyers.
    let mut of = std::collections::BTreeMap::new();
    for buyer in 1..=40u64 {
        let path = format!("/v1/experiments/1/variant?buyer_id={buyer}");
        let (status, first) = server.get(&path, &service).await;
        assert_eq!(status, 200, "{first}");
        assert_eq!(server.get(&path, &service).await.1, first);
        of.insert(buyer, first["variant"].as_u64().unwrap());
    }
    assert!(of.values().any(|&v| v == 0) && of.values().any(|&v| v == 1), "{of:?}");
    assert_eq!(server.get("/v1/experiments/9/variant?buyer_id=1", &service).await.0, 404);

    // All 40 are shown the page; the first 10 buy and pay.
    let views: Vec<Value> = (1..=40).map(|b| json!({"sku_id": sku_id, "buyer_id": b})).collect();
    assert_eq!(server.post("/v1/events/views", &service, "v", json!({"views": views})).await.0, 202);
    for buyer in 1..=10u64 {
        let order = json!({"buyer_id": buyer, "lines": [{"sku_id": sku_id, "quantity": 1}]});
        let (_, placed) = server.post("/v1/orders", &service, &format!("o{buyer}"), order).await;
        let id = placed["order_id"].as_u64().unwrap();
        assert_eq!(
            server.post(&format!("/v1/orders/{id}/pay"), &service, &format!("p{buyer}"), json!(null)).await.0,
            200
        );
    }
    let results = server.get("/v1/experiments/1/results", &service).await.1;
    let variants = results["variants"].as_array().unwrap();
    for (i, v) in variants.iter().enumerate() {
        let shown = of.values().filter(|&&x| x == i as u64).count() as u64;
        let converted = (1..=10u64).filter(|b| of[b] == i as u64).count() as u64;
        assert_eq!(
            (v["buyers"].as_u64(), v["converted"].as_u64()),
            (Some(shown), Some(converted)),
            "{results}"
        );
        assert_eq!(v["gmv"].as_u64(), Some(converted * 1_000), "{results}");
    }
    assert!(variants[1]["verdict"].as_str().unwrap().starts_with("B vs A: conversion"), "{results}");
    assert_eq!(server.get("/v1/experiments/1/results", &merchant).await.0, 403);
}

#[tokio::test]
async fn search_finds_new_skus_within_a_second_with_filters_and_sorts() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let (merchant, service) = server.marketplace(5, 10_000_000).await;
    let create = |title: &str, description: &str, price: u64, stock: u64| json!({"merchant_id": 1, "title": title, "description": description, "price": price, "currency": "CNY", "stock": stock});
    let skus = [
        create("Smart phone X", "flagship phone, big screen", 399_900, 5),
        create("Phone case", "for phone X", 9_900, 100),
        create("Rice cooker", "cooks rice", 59_900, 10),
        create("Budget phone", "a phone for everyone", 99_900, 1),
    ];
    let created = std::time::Instant::now();
    for (i, sku) in skus.into_iter().enumerate() {
        assert_eq!(server.post("/v1/skus", &merchant, &format!("s{i}"), sku).await.0, 201);
    }
    let ids = |body: &Value| -> Vec<u64> {
        body["hits"].as_array().unwrap().iter().map(|h| h["sku"]["sku_id"].as_u64().unwrap()).collect()
    };
    // Searchable within a second of being created.
    let found = loop {
        let (status, body) = server.get("/v1/search?q=phone", &service).await;
        assert_eq!(status, 200, "{body}");
        if ids(&body).len() == 3 {
            break body;
        }
        assert!(created.elapsed() < Duration::from_secs(1), "not searchable within a second: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!ids(&found).contains(&3));
    assert_eq!(ids(&server.get("/v1/search?q=phone&max_price=10000", &service).await.1), [2]);
    assert_eq!(ids(&server.get("/v1/search?q=rice+cooker", &service).await.1), [3]);
    assert_eq!(ids(&server.get("/v1/search?merchant_id=2", &service).await.1), Vec::<u64>::new());

    // Sell the budget phone out and sell two flagship phones: stock and sales are exact.
    for (i, (buyer, sku)) in [(1, 4), (2, 1), (3, 1)].into_iter().enumerate() {
        let order = json!({"buyer_id": buyer, "lines": [{"sku_id": sku, "quantity": 1}]});
        let (_, placed) = server.post("/v1/orders", &service, &format!("o{i}"), order).await;
        let id = placed["order_id"].as_u64().unwrap();
        assert_eq!(
            server.post(&format!("/v1/orders/{id}/pay"), &service, &format!("p{i}"), json!(null)).await.0,
            200
        );
    }
    let in_stock = server.get("/v1/search?q=phone&in_stock=true", &service).await.1;
    assert!(!ids(&in_stock).contains(&4), "{in_stock}");
    let by_sales = server.get("/v1/search?q=phone&sort=sales", &service).await.1;
    assert_eq!(ids(&by_sales)[..2], [1, 4], "{by_sales}");
    assert_eq!(server.get("/v1/search?q=phone&sort=price", &service).await.0, 400);

    // An edit: within a second the SKU is found by its new title, no longer by its old one,
    // and once.
    let edit = json!({"title": "Induction rice cooker", "description": "cooks rice and porridge"});
    assert_eq!(server.patch("/v1/skus/3", &merchant, "edit-3", edit).await.0, 200);
    let edited = std::time::Instant::now();
    loop {
        let body = server.get("/v1/search?q=porridge", &service).await.1;
        if ids(&body) == [3] {
            break;
        }
        assert!(edited.elapsed() < Duration::from_secs(1), "the edit not searchable within a second: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ids(&server.get("/v1/search?q=rice", &service).await.1), [3], "once");
    assert_eq!(ids(&server.get("/v1/search?q=induction+cooker", &service).await.1), [3]);

    // After a restart the index is rebuilt from the state, edits included.
    server.kill();
    let server = Server::start(dir.path(), &[]);
    assert_eq!(ids(&server.get("/v1/search?q=rice", &server.admin).await.1), [3]);
    assert_eq!(ids(&server.get("/v1/search?q=porridge", &server.admin).await.1), [3]);
}
