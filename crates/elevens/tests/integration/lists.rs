//! The lists a merchant works through, over HTTP: a store's few orders found among another
//! store's many in one page, both ways, by words, by status; the buyer's side; an order's
//! returns and tickets; names searched; the refusals; and the same pages after a kill -9 (the
//! owners index is rebuilt from the state).

use crate::harness::{sku, Server};
use serde_json::{json, Value};

fn ids(page: &Value, field: &str) -> Vec<u64> {
    page["items"].as_array().map(|a| a.iter().filter_map(|i| i[field].as_u64()).collect()).unwrap_or_default()
}

/// Places orders in batches: `(buyer, sku)` each, one unit.
async fn place(server: &Server, service: &str, orders: &[(u64, u64)], tag: &str) {
    for (c, chunk) in orders.chunks(500).enumerate() {
        let commands = chunk
            .iter()
            .enumerate()
            .map(|(i, &(buyer, sku))| {
                json!({"op": "place_order", "idempotency_key": format!("{tag}-{c}-{i}"),
                       "params": {"buyer_id": buyer, "lines": [{"sku_id": sku, "quantity": 1}]}})
            })
            .collect();
        let (status, body) = server.batch(service, commands).await;
        assert_eq!(status, 200, "{body}");
        let refused = body["results"].as_array().unwrap().iter().find(|r| r["status"] != 201).cloned();
        assert_eq!(refused, None);
    }
}

#[tokio::test]
async fn a_store_finds_its_orders_among_anothers_thousands_by_words_status_and_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let admin = server.admin.clone();
    // Buyers 4 to 200 make the crowd (each buyer's rate limit would refuse one making it all).
    let (merchant, service) = server.marketplace(200, 100_000_000).await;
    server.post("/v1/merchants", &admin, "m-2", json!({"name": "Lantern House"})).await;
    let other = server.key(json!({"role": "merchant", "merchant_id": 2})).await;
    let hot = sku(&server, &merchant, 100, 5_000).await;
    let (status, lantern) = server
        .post(
            "/v1/skus",
            &other,
            "sku-lantern",
            json!({"merchant_id": 2, "title": "Red Lantern 红灯笼", "price": 100, "currency": "CNY", "stock": 10_000}),
        )
        .await;
    assert_eq!(status, 201, "{lantern}");
    let lantern = lantern["sku_id"].as_u64().unwrap();

    // Store 1's three orders, 700 of store 2's between each.
    let crowd: Vec<(u64, u64)> = (0..700).map(|i| (4 + i % 197, lantern)).collect();
    place(&server, &service, &[(1, hot)], "a").await;
    place(&server, &service, &crowd, "b").await;
    place(&server, &service, &[(1, hot)], "c").await;
    place(&server, &service, &crowd, "d").await;
    place(&server, &service, &[(3, hot)], "e").await;
    let mine = [1, 702, 1_403];

    let (status, page) = server.get("/v1/merchants/1/orders?limit=10", &merchant).await;
    assert_eq!((status, ids(&page, "order_id")), (200, mine.to_vec()), "{page}");
    assert!(page["next_after"].is_null(), "{page}");
    let (_, page) = server.get("/v1/merchants/1/orders?sort=newest", &merchant).await;
    assert_eq!(ids(&page, "order_id"), vec![1_403, 702, 1]);
    assert_eq!(page["items"][0]["buyer_name"], "buyer 3", "names, not numbers: {page}");

    // Page by page, both ways.
    let (_, first) = server.get("/v1/merchants/1/orders?limit=2", &merchant).await;
    assert_eq!((ids(&first, "order_id"), first["next_after"].as_u64()), (vec![1, 702], Some(702)));
    let (_, rest) = server.get("/v1/merchants/1/orders?limit=2&after=702", &merchant).await;
    assert_eq!((ids(&rest, "order_id"), rest["next_after"].as_u64()), (vec![1_403], None));
    let (_, first) = server.get("/v1/merchants/1/orders?limit=2&sort=newest", &merchant).await;
    assert_eq!((ids(&first, "order_id"), first["next_after"].as_u64()), (vec![1_403, 702], Some(702)));
    let (_, rest) = server.get("/v1/merchants/1/orders?limit=2&sort=newest&after=702", &merchant).await;
    assert_eq!((ids(&rest, "order_id"), rest["next_after"].as_u64()), (vec![1], None));

    // By words: the buyer's name, a line's title (any case, Chinese too), the order's number.
    for (query, want) in
        [("q=BUYER%203", vec![1_403]), ("q=hot", mine.to_vec()), ("q=702", vec![702]), ("q=lantern", vec![])]
    {
        let (status, page) = server.get(&format!("/v1/merchants/1/orders?{query}"), &merchant).await;
        assert_eq!((status, ids(&page, "order_id")), (200, want), "{query}: {page}");
    }
    let (_, page) = server.get("/v1/merchants/2/orders?q=%E7%81%AF%E7%AC%BC&limit=100", &other).await;
    assert_eq!((ids(&page, "order_id").len(), page["next_after"].as_u64()), (100, Some(101)), "{page}");

    // By status: one paid, two still waiting for payment.
    let (status, _) = server.post("/v1/orders/702/pay", &service, "pay-702", json!(null)).await;
    assert_eq!(status, 200);
    let (_, paid) = server.get("/v1/merchants/1/orders?status=paid", &merchant).await;
    assert_eq!(ids(&paid, "order_id"), vec![702]);
    let (_, placed) =
        server.get("/v1/merchants/1/orders?status=pending_payment&sort=newest", &merchant).await;
    assert_eq!(ids(&placed, "order_id"), vec![1_403, 1]);

    // The buyer's side: its own orders only.
    let buyer = server.key(json!({"role": "buyer", "buyer_id": 1})).await;
    let (_, page) = server.get("/v1/buyers/1/orders", &buyer).await;
    assert_eq!(ids(&page, "order_id"), vec![1, 702]);
    let (_, page) = server.get("/v1/buyers/4/orders?limit=100", &service).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2 * crowd.iter().filter(|o| o.0 == 4).count(), "{page}");
    assert!(items.iter().all(|o| o["buyer_id"] == 4 && o["merchant_id"] == 2), "{page}");

    // A ticket, found by its subject, and on its order's page with nothing else.
    let (status, _) =
        server.post("/v1/orders/702/tickets", &buyer, "t-1", json!({"subject": "Box arrived crushed"})).await;
    assert_eq!(status, 201);
    let (_, tickets) = server.get("/v1/merchants/1/tickets?q=crushed", &merchant).await;
    assert_eq!(ids(&tickets, "ticket_id"), vec![1]);
    let (_, overdue) = server.get("/v1/merchants/1/tickets?overdue=true", &merchant).await;
    assert_eq!(ids(&overdue, "ticket_id"), Vec::<u64>::new(), "its deadline is ahead");
    let (status, after) = server.get("/v1/orders/702/after-sales", &merchant).await;
    assert_eq!((status, ids(&json!({"items": after["tickets"]}), "ticket_id")), (200, vec![1]), "{after}");
    assert_eq!(after["returns"], json!([]));
    // The store's notes: its own people's, never the buyer's to read.
    let (status, note) =
        server.post("/v1/orders/702/notes", &merchant, "n-1", json!({"body": "Ring before delivery"})).await;
    assert_eq!((status, note["note"].as_u64(), note["by"].as_str()), (201, Some(1), Some("store")), "{note}");
    let (_, after) = server.get("/v1/orders/702/after-sales", &merchant).await;
    assert_eq!(after["notes"][0]["body"], "Ring before delivery", "{after}");
    let (_, theirs) = server.get("/v1/orders/702/after-sales", &buyer).await;
    assert!(theirs.get("notes").is_none() && theirs["tickets"][0]["ticket_id"] == 1, "{theirs}");
    assert_eq!(server.post("/v1/orders/702/notes", &buyer, "n-2", json!({"body": "x"})).await.0, 403);
    assert_eq!(server.get("/v1/orders/702/after-sales", &other).await.0, 403);
    assert_eq!(server.get("/v1/orders/99999/after-sales", &admin).await.0, 404);

    // Names: the operator's pickers.
    let (_, buyers) = server.get("/v1/buyers?q=buyer%2019", &service).await;
    assert_eq!(ids(&buyers, "buyer_id"), vec![19, 190, 191, 192, 193, 194, 195, 196, 197, 198, 199]);
    let (_, merchants) = server.get("/v1/merchants?q=LANTERN", &admin).await;
    assert_eq!(ids(&merchants, "merchant_id"), vec![2]);

    // Refusals: a filter of another list, an empty or long text, another's list, no such store.
    for path in [
        "/v1/merchants/1/orders?late=true",
        "/v1/merchants/1/orders?overdue=true",
        "/v1/merchants/1/tickets?warehouse_id=1",
        "/v1/merchants/1/orders?q=",
        "/v1/merchants/1/orders?q=%20%20",
        "/v1/merchants/1/orders?sort=sideways",
        "/v1/api-keys?q=x",
    ] {
        let status = server.get(path, &admin).await.0;
        assert!(status == 400 || status == 422, "{path}: {status}");
    }
    let long = "x".repeat(101);
    assert_eq!(server.get(&format!("/v1/merchants/1/orders?q={long}"), &merchant).await.0, 400);
    assert_eq!(server.get("/v1/merchants/1/orders", &other).await.0, 403);
    assert_eq!(server.get("/v1/buyers/1/orders", &other).await.0, 403);
    assert_eq!(server.get("/v1/merchants/9/orders", &admin).await.0, 404);

    // After a kill -9 the index is rebuilt from the state: the same pages.
    let (_, before) = server.get("/v1/merchants/1/orders?sort=newest&q=hot", &merchant).await;
    let mut server = server;
    server.kill();
    let server = Server::start(dir.path(), &[]);
    let (_, after) = server.get("/v1/merchants/1/orders?sort=newest&q=hot", &merchant).await;
    assert_eq!(before, after);
    let (_, tickets) = server.get("/v1/merchants/1/tickets", &merchant).await;
    assert_eq!(ids(&tickets, "ticket_id"), vec![1]);
    let (_, after) = server.get("/v1/orders/702/after-sales", &buyer).await;
    assert_eq!(after["tickets"][0]["subject"], "Box arrived crushed");
}
