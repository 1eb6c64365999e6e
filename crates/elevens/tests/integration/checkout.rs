//! A cart across three stores checked out in one payment, through the binary: the cart survives
//! a kill -9, the checkout places and pays one order per store or refuses and moves nothing,
//! and checkouts cut by kill -9 are never half paid after the restart.

use crate::harness::Server;
use serde_json::{json, Value};

/// Three stores with a SKU each (100, 200 and 300 yuan, 50 units) and `buyers` buyers with
/// 2,000 yuan each. Returns the service key.
async fn three_stores(server: &Server, buyers: usize) -> String {
    let (_, service) = server.marketplace(buyers, 200_000).await;
    let admin = server.admin.clone();
    for (m, name) in [(2, "Second"), (3, "Third")] {
        let (status, _) = server.post("/v1/merchants", &admin, &format!("m{m}"), json!({"name": name})).await;
        assert_eq!(status, 201);
    }
    for m in 1..=3u64 {
        let sku = json!({"merchant_id": m, "title": format!("item {m}"), "price": 10_000 * m, "currency": "CNY", "stock": 50});
        let (status, body) = server.post("/v1/skus", &admin, &format!("sku{m}"), sku).await;
        assert_eq!((status, body["sku_id"].as_u64()), (201, Some(m)), "{body}");
    }
    service
}

async fn wallet(server: &Server, buyer: u64) -> i64 {
    let (_, w) = server.get(&format!("/v1/buyers/{buyer}/wallet"), &server.admin).await;
    w["accounts"][0]["balance"].as_i64().unwrap_or(0)
}

#[tokio::test]
async fn a_cart_of_three_stores_survives_a_kill_and_is_paid_in_one_checkout() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    three_stores(&server, 2).await;
    let buyer = server.key(json!({"role": "buyer", "buyer_id": 1})).await;
    let other = server.key(json!({"role": "buyer", "buyer_id": 2})).await;
    for (sku, quantity) in [(1, 2), (2, 1), (3, 1)] {
        let path = format!("/v1/buyers/1/cart/lines/{sku}");
        let (status, cart) =
            server.put(&path, &buyer, &format!("cart-{sku}"), json!({"quantity": quantity})).await;
        assert_eq!(status, 200, "{cart}");
    }
    let (status, refused) =
        server.put("/v1/buyers/1/cart/lines/1", &other, "theirs", json!({"quantity": 9})).await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("forbidden")), "{refused}");

    // The cart is journaled state: it is there after a kill -9.
    server.kill();
    let server = Server::start(dir.path(), &[]);
    let (status, cart) = server.get("/v1/buyers/1/cart", &buyer).await;
    assert_eq!(status, 200, "{cart}");
    assert_eq!(cart["subtotal"], 20_000 + 20_000 + 30_000, "{cart}");
    assert_eq!(cart["lines"].as_array().unwrap().len(), 3);

    // More than the wallet holds: refused, nothing moved, the cart kept.
    let (status, _) =
        server.put("/v1/buyers/1/cart/lines/3", &buyer, "cart-3-many", json!({"quantity": 10})).await;
    assert_eq!(status, 200);
    let (status, short) = server.post("/v1/checkout", &buyer, "checkout-short", json!({"buyer_id": 1})).await;
    assert_eq!((status, short["code"].as_str()), (409, Some("insufficient_funds")), "{short}");
    assert_eq!(wallet(&server, 1).await, 200_000);
    let (_, orders) = server.get("/v1/merchants/1/orders", &server.admin).await;
    assert_eq!(
        orders["items"].as_array().map(Vec::len),
        Some(0),
        "a refused checkout placed an order: {orders}"
    );

    // Within it: one order per store, all paid, one total, the cart emptied.
    server.put("/v1/buyers/1/cart/lines/3", &buyer, "cart-3-one", json!({"quantity": 1})).await;
    let (status, done) = server.post("/v1/checkout", &buyer, "checkout", json!({"buyer_id": 1})).await;
    assert_eq!(status, 201, "{done}");
    assert_eq!(done["total"], 70_000);
    let orders = done["orders"].as_array().unwrap();
    let stores: Vec<u64> = orders.iter().map(|o| o["merchant_id"].as_u64().unwrap()).collect();
    assert_eq!(stores, [1, 2, 3]);
    assert!(orders.iter().all(|o| o["status"] == "paid"), "{done}");
    assert_eq!(wallet(&server, 1).await, 200_000 - 70_000);
    let (_, again) = server.post("/v1/checkout", &buyer, "checkout", json!({"buyer_id": 1})).await;
    assert_eq!(again, done, "a retry answers the same checkout");
    assert_eq!(server.get("/v1/buyers/1/cart", &buyer).await.1["lines"], json!([]));
    let (_, paid) = server.get("/v1/events?types=order.paid", &server.admin).await;
    assert_eq!(paid["events"].as_array().map(Vec::len), Some(3), "{paid}");
    server.audit().await;
}

/// Checkouts in flight when the server is killed: after each restart every order is paid (a
/// checkout's orders are never left unpaid), every retried checkout answers as first acked,
/// and the buyers' wallets paid exactly the orders' totals.
#[tokio::test]
async fn checkouts_cut_by_kill_9_are_never_half_paid() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let service = three_stores(&server, 8).await;
    let mut acked: Vec<(String, Value, Value)> = Vec::new();
    let mut cut = 0;
    for round in 0..4 {
        let requests = (0..24u64).map(|n| {
            let buyer = 1 + n % 8;
            let lines: Vec<Value> =
                (1..=3).filter(|m| (n + m) % 3 != 0).map(|m| json!({"sku_id": m, "quantity": 1})).collect();
            let body = json!({"buyer_id": buyer, "lines": lines});
            let key = format!("r{round}-{n}");
            let server = &server;
            let service = &service;
            async move {
                // Staggered, so the kill lands among them.
                tokio::time::sleep(std::time::Duration::from_millis(n * 3)).await;
                let answer = server.try_post("/v1/checkout", service, &key, body.clone()).await;
                (key, body, answer)
            }
        });
        let pid = server.child.id() as i32;
        let kill = async move {
            tokio::time::sleep(std::time::Duration::from_millis(30 + 10 * round)).await;
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        };
        let (answers, ()) = tokio::join!(futures::future::join_all(requests), kill);
        for (key, body, answer) in answers {
            match answer {
                Ok((201, answer)) => acked.push((key, body, answer)),
                _ => cut += 1,
            }
        }
        server.kill();
        server = Server::start(dir.path(), &[]);
    }
    // Every acknowledged checkout answers the same after the restarts.
    for (key, body, answer) in &acked {
        let (status, again) = server.post("/v1/checkout", &service, key, body.clone()).await;
        assert_eq!((status, &again), (201, answer), "{key}");
    }
    let audit = server.audit().await;
    assert!(audit["checks"].as_array().unwrap().iter().all(|c| c["ok"] == true), "{audit}");
    let mut paid_total = 0i64;
    let mut order = 1;
    loop {
        let (status, o) = server.get(&format!("/v1/orders/{order}"), &server.admin).await;
        if status == 404 {
            break;
        }
        assert_eq!(o["status"], "paid", "a checkout's order left unpaid: {o}");
        paid_total += o["total"].as_i64().unwrap();
        order += 1;
    }
    let mut spent = 0;
    for buyer in 1..=8 {
        spent += 200_000 - wallet(&server, buyer).await;
    }
    assert_eq!(spent, paid_total, "the wallets paid exactly the orders");
    eprintln!("checkouts acknowledged {}, cut by the kills {cut}", acked.len());
    assert!(order > 1 && !acked.is_empty() && cut > 0, "the kills landed among the checkouts");
}

/// The platform's "every 200 yuan across stores, 30 off" paid by the stores: apportioned to
/// each store's order by its share of the spend, to the fen, and a refund of a store's order
/// gives back what was paid for it, its share of the discount kept off.
#[tokio::test]
async fn a_cross_store_discount_is_shared_by_the_stores_to_the_fen_and_refunds_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    three_stores(&server, 1).await;
    let admin = server.admin.clone();
    let now = crate::harness::now_ms();
    let discount = json!({"kind": "cross_store", "every": 20_000, "amount_off": 3_000, "cap": 10_000,
        "merchants_fund": true, "currency": "CNY", "starts_at": now - 1_000, "ends_at": now + 3_600_000,
        "per_buyer_limit": 10});
    let (status, coupon) = server.post("/v1/coupons", &admin, "cross", discount).await;
    assert_eq!(
        (status, coupon["kind"].as_str(), coupon["funded_by"].as_str()),
        (201, Some("cross_store"), Some("merchants")),
        "{coupon}"
    );
    let id = coupon["coupon_id"].as_u64().unwrap();
    // Not on a single store's order.
    let single = json!({"buyer_id": 1, "lines": [{"sku_id": 3, "quantity": 1}], "coupons": [id]});
    let (status, refused) = server.post("/v1/orders", &admin, "single", single).await;
    assert_eq!((status, refused["code"].as_str()), (400, Some("coupon_not_applicable")), "{refused}");

    let lines =
        json!([{"sku_id": 1, "quantity": 2}, {"sku_id": 2, "quantity": 1}, {"sku_id": 3, "quantity": 1}]);
    let body = json!({"buyer_id": 1, "lines": lines, "coupons": [id]});
    let (status, done) = server.post("/v1/checkout", &admin, "checkout", body).await;
    assert_eq!(status, 201, "{done}");
    // 70,000 spent: three steps of 20,000, 9,000 off, shared 20:20:30 and the odd fen first.
    assert_eq!(done["total"], 61_000, "{done}");
    let totals: Vec<u64> =
        done["orders"].as_array().unwrap().iter().map(|o| o["total"].as_u64().unwrap()).collect();
    assert_eq!(totals, [20_000 - 2_572, 20_000 - 2_571, 30_000 - 3_857]);
    assert_eq!(wallet(&server, 1).await, 200_000 - 61_000);

    // The third store refunds its order: the buyer gets back what it paid for it.
    let (status, refunded) = server.post("/v1/orders/3/refund", &admin, "refund-3", json!({})).await;
    assert_eq!(status, 200, "{refunded}");
    assert_eq!(wallet(&server, 1).await, 200_000 - 61_000 + 26_143);
    server.audit().await;
}

/// A stampede on a hot variant through carts: 60 buyers with the hot SKU (20 units) and another
/// store's SKU in their carts check out at once. Exactly 20 checkouts are paid, each with both
/// stores' orders; the others are refused whole (no order, no money moved); nothing oversold.
#[tokio::test]
async fn a_stampede_on_a_hot_variant_through_carts_never_oversells() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let service = three_stores(&server, 60).await;
    let hot = json!({"merchant_id": 1, "title": "hot", "price": 5_000, "currency": "CNY", "stock": 20});
    let (status, body) = server.post("/v1/skus", &server.admin, "hot", hot).await;
    assert_eq!((status, body["sku_id"].as_u64()), (201, Some(4)), "{body}");
    for buyer in 1..=60u64 {
        for (sku, n) in [(4, 1), (2, 1)] {
            let path = format!("/v1/buyers/{buyer}/cart/lines/{sku}");
            let (status, _) =
                server.put(&path, &service, &format!("c{buyer}-{sku}"), json!({"quantity": n})).await;
            assert_eq!(status, 200);
        }
    }
    let checkouts = (1..=60u64).map(|buyer| {
        let (server, service) = (&server, &service);
        async move {
            server.try_post("/v1/checkout", service, &format!("k{buyer}"), json!({"buyer_id": buyer})).await
        }
    });
    let answers = futures::future::join_all(checkouts).await;
    let paid = answers.iter().filter(|a| matches!(a, Ok((201, _)))).count();
    let refused: Vec<&str> = answers
        .iter()
        .filter_map(|a| a.as_ref().ok())
        .filter(|a| a.0 != 201)
        .filter_map(|a| a.1["code"].as_str())
        .collect();
    assert_eq!(paid, 20, "refusals: {refused:?}");
    assert!(refused.iter().all(|c| *c == "insufficient_stock"), "{refused:?}");
    let (_, hot) = server.get("/v1/skus/4", &server.admin).await;
    assert_eq!((hot["sold"].as_u64(), hot["available"].as_u64()), (Some(20), Some(0)), "{hot}");
    let (_, other) = server.get("/v1/skus/2", &server.admin).await;
    assert_eq!(other["sold"], 20, "the other store's line sold with each paid checkout only: {other}");
    let mut spent = 0;
    for buyer in 1..=60 {
        spent += 200_000 - wallet(&server, buyer).await;
    }
    assert_eq!(spent, 20 * (5_000 + 20_000), "money moved for the paid checkouts only");
    server.audit().await;
}
