//! Coupons and red packets over HTTP: exact under a stampede, across crashes, and strict about
//! bad input.

use crate::harness::{sku, Server};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn red_packet(server: &Server, amount: u64, count: u32) -> u64 {
    let admin = server.admin.clone();
    let body = json!({"amount": amount, "count": count, "currency": "CNY", "ends_at": now_ms() + 3_600_000});
    let (status, packet) =
        server.post("/v1/red-packets", &admin, &format!("rp-{amount}-{count}"), body).await;
    assert_eq!(status, 201, "{packet}");
    packet["red_packet_id"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_stampede_pays_each_buyer_at_most_one_share_and_the_pool_exactly() {
    const BUYERS: u64 = 300;
    const SHARES: u32 = 100;
    const POOL: u64 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(Server::start(dir.path(), &[]));
    let (_, service) = server.marketplace(BUYERS as usize, 1).await;
    let packet = red_packet(&server, POOL, SHARES).await;

    // Every buyer presses three times: twice with one key (a client retry), once with another.
    let mut tasks = Vec::new();
    for buyer in 1..=BUYERS {
        for (press, key) in [(0, "a"), (1, "a"), (2, "b")] {
            let (server, service) = (server.clone(), service.clone());
            tasks.push(tokio::spawn(async move {
                let path = format!("/v1/red-packets/{packet}/claims");
                let (status, body) = server
                    .post(&path, &service, &format!("claim-{buyer}-{key}"), json!({"buyer_id": buyer}))
                    .await;
                (buyer, press, status, body)
            }));
        }
    }
    let mut shares: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    for task in tasks {
        let (buyer, _, status, body) = task.await.unwrap();
        match status {
            201 => shares.entry(buyer).or_default().push(body),
            409 => *refusals.entry(body["code"].as_str().unwrap().to_owned()).or_default() += 1,
            other => panic!("unexpected {other}: {body}"),
        }
    }
    // A buyer may see its share twice (the repeated key), but only ever the same share.
    for (buyer, answers) in &shares {
        assert!(
            answers.iter().all(|a| a == &answers[0]),
            "buyer {buyer} got two different shares: {answers:?}"
        );
        assert!(answers.len() <= 2, "buyer {buyer}: {answers:?}");
    }
    assert_eq!(shares.len(), SHARES as usize, "shares paid = min(count, claimers); refusals {refusals:?}");
    let paid: u64 = shares.values().map(|a| a[0]["amount"].as_u64().unwrap()).sum();
    assert_eq!(paid, POOL, "the shares sum to the pool exactly");
    assert!(
        refusals.keys().all(|c| c == "red_packet_empty" || c == "red_packet_already_claimed"),
        "{refusals:?}"
    );
    // Each share reached the buyer's wallet.
    let (buyer, answers) = shares.iter().next().unwrap();
    let (_, claims) = server.get(&format!("/v1/buyers/{buyer}/red-packets"), &service).await;
    assert_eq!(claims["claims"][0]["amount"], answers[0]["amount"]);
    let (_, packet_view) = server.get(&format!("/v1/red-packets/{packet}"), &service).await;
    assert_eq!(
        (packet_view["claimed_count"].as_u64(), packet_view["claimed_amount"].as_u64()),
        (Some(100), Some(POOL))
    );
    server.audit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_in_a_claim_stampede_pays_no_share_twice_and_loses_none() {
    const BUYERS: u64 = 400;
    const SHARES: u32 = 250;
    const POOL: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let mut server = Arc::new(Server::start(dir.path(), &["--snapshot-every", "61"]));
    let (_, service) = server.marketplace(BUYERS as usize, 1).await;
    let packet = red_packet(&server, POOL, SHARES).await;
    let mut acknowledged: BTreeMap<u64, u64> = BTreeMap::new();
    let mut next_buyer = 1;
    let mut interrupted = 0;
    for round in 0..5 {
        // Fire a wave of claims; kill the server while they are in flight.
        let wave: Vec<u64> = (next_buyer..(next_buyer + 80).min(BUYERS + 1)).collect();
        next_buyer += 80;
        let mut tasks = Vec::new();
        for &buyer in &wave {
            let (server, service) = (server.clone(), service.clone());
            tasks.push(tokio::spawn(async move {
                let path = format!("/v1/red-packets/{packet}/claims");
                (
                    buyer,
                    server
                        .try_post(
                            &path,
                            &service,
                            &format!("crash-claim-{buyer}"),
                            json!({"buyer_id": buyer}),
                        )
                        .await,
                )
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(5 + 7 * round)).await;
        unsafe { libc::kill(server.child.id() as i32, libc::SIGKILL) };
        let mut uncertain = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (buyer, Ok((201, body))) => {
                    acknowledged.insert(buyer, body["amount"].as_u64().unwrap());
                }
                (_, Ok((409, _))) => {}
                (buyer, Ok((status, body))) => panic!("buyer {buyer}: {status} {body}"),
                (buyer, Err(_)) => uncertain.push(buyer),
            }
        }
        interrupted += uncertain.len();
        drop(server);
        server = Arc::new(Server::start(dir.path(), &["--snapshot-every", "61"]));
        // Every acknowledged share is still there, with the same amount.
        for (buyer, amount) in &acknowledged {
            let (_, claims) = server.get(&format!("/v1/buyers/{buyer}/red-packets"), &service).await;
            assert_eq!(
                claims["claims"][0]["amount"].as_u64(),
                Some(*amount),
                "buyer {buyer}'s share changed or vanished"
            );
        }
        // Retrying with the same key gives the share that was (or now is) paid, never a second.
        for buyer in uncertain {
            let path = format!("/v1/red-packets/{packet}/claims");
            let (status, body) = server
                .post(&path, &service, &format!("crash-claim-{buyer}"), json!({"buyer_id": buyer}))
                .await;
            if status == 201 {
                acknowledged.insert(buyer, body["amount"].as_u64().unwrap());
            }
        }
        server.audit().await;
    }
    eprintln!("claims acknowledged: {}, cut off by a kill: {interrupted}", acknowledged.len());
    assert!(acknowledged.len() > 50 && interrupted > 0, "the kills did not land in the stampede");
    let (_, view) = server.get(&format!("/v1/red-packets/{packet}"), &service).await;
    assert_eq!(
        view["claimed_count"].as_u64(),
        Some(acknowledged.len() as u64),
        "a share paid that no answer acknowledged"
    );
    assert_eq!(view["claimed_amount"].as_u64(), Some(acknowledged.values().sum::<u64>()));
    // Close it: the rest returns to the sponsor and the escrow is empty (the audit checks both).
    let (status, closed) = server
        .post(&format!("/v1/red-packets/{packet}/close"), &server.admin.clone(), "close", Value::Null)
        .await;
    assert_eq!((status, closed["status"].as_str()), (200, Some("closed")), "{closed}");
    assert_eq!(closed["returned"].as_u64().unwrap() + closed["claimed_amount"].as_u64().unwrap(), POOL);
    server.audit().await;
}

#[tokio::test]
async fn coupons_discount_orders_and_return_their_budget() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (merchant, service) = server.marketplace(2, 1_000_000).await;
    let admin = server.admin.clone();
    let sku_id = sku(&server, &merchant, 100, 10_000).await;
    let window = |extra: Value| {
        let mut body =
            json!({"currency": "CNY", "starts_at": now_ms() - 1_000, "ends_at": now_ms() + 3_600_000});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    // The merchant's 15% off (funded by the merchant), the platform's ¥5 off orders over ¥50.
    let (s, merchant_coupon) = server
        .post(
            "/v1/coupons",
            &merchant,
            "c-m",
            window(json!({"merchant_id": 1, "kind": "percent", "percent_bps": 1500, "budget_uses": 2})),
        )
        .await;
    assert_eq!(s, 201, "{merchant_coupon}");
    let (s, platform_coupon) = server
        .post(
            "/v1/coupons",
            &admin,
            "c-p",
            window(json!({"kind": "fixed", "amount_off": 500, "min_spend": 5_000, "budget_amount": 1_000})),
        )
        .await;
    assert_eq!(s, 201, "{platform_coupon}");
    let coupons = json!([merchant_coupon["coupon_id"], platform_coupon["coupon_id"]]);

    let order = |buyer: u64| json!({"buyer_id": buyer, "lines": [{"sku_id": sku_id, "quantity": 1}], "coupons": coupons});
    let (s, placed) = server.post("/v1/orders", &service, "o1", order(1)).await;
    assert_eq!(s, 201, "{placed}");
    // 10,000 - 15% (1,500) = 8,500; - 500 = 8,000.
    assert_eq!((placed["subtotal"].as_u64(), placed["total"].as_u64()), (Some(10_000), Some(8_000)));
    assert_eq!(placed["discounts"][0]["funded_by"], "merchant:1");
    assert_eq!(placed["discounts"][1]["funded_by"], "platform");
    let (s, paid) = server.post("/v1/orders/1/pay", &service, "p1", Value::Null).await;
    assert_eq!(s, 200, "{paid}");
    // The merchant gets what the buyer paid less 2% commission, plus the platform's ¥5.
    let (_, wallet) = server.get("/v1/merchants/1/wallet", &merchant).await;
    assert_eq!(wallet["accounts"][0]["balance"], 8_000 - 160 + 500);
    assert_eq!(wallet["accounts"][0]["entries"][0]["kind"], "coupon_subsidy");

    // A second buyer may use them too; the per-buyer limit (1) stops a second use by buyer 1.
    let (s, again) = server.post("/v1/orders", &service, "o2", order(1)).await;
    assert_eq!((s, again["code"].as_str()), (409, Some("coupon_limit_exceeded")), "{again}");
    let (s, _) = server.post("/v1/orders", &service, "o3", order(2)).await;
    assert_eq!(s, 201);
    // The platform coupon's money budget (1,000) is now spent: a third use is refused.
    let (_, c) = server.get(&format!("/v1/coupons/{}", platform_coupon["coupon_id"]), &service).await;
    assert_eq!((c["used_count"].as_u64(), c["used_amount"].as_u64()), (Some(2), Some(1_000)));
    // Cancelling order 2 gives the budget back.
    let (s, _) = server.post("/v1/orders/2/cancel", &service, "cancel-2", Value::Null).await;
    assert_eq!(s, 200);
    let (_, c) = server.get(&format!("/v1/coupons/{}", platform_coupon["coupon_id"]), &service).await;
    assert_eq!((c["used_count"].as_u64(), c["used_amount"].as_u64()), (Some(1), Some(500)));
    // Refunding order 1 returns the subsidy and the budget.
    let (s, refunded) =
        server.post("/v1/orders/1/refund", &merchant, "refund-1", json!({"restock": true})).await;
    assert_eq!(s, 200, "{refunded}");
    let (_, c) = server.get(&format!("/v1/coupons/{}", merchant_coupon["coupon_id"]), &service).await;
    assert_eq!(c["used_count"], 0);
    let (_, wallet) = server.get("/v1/merchants/1/wallet", &merchant).await;
    assert_eq!(wallet["accounts"][0]["balance"], 0);
    let (_, mine) = server.get("/v1/buyers/1/coupons", &service).await;
    assert_eq!(mine["coupons"].as_array().unwrap().len(), 2);
    server.audit().await;
}

#[tokio::test]
async fn bad_promotions_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (merchant, service) = server.marketplace(1, 1_000).await;
    let admin = server.admin.clone();
    let (s, _) = server.post("/v1/merchants", &admin, "m2", json!({"name": "Rival"})).await;
    assert_eq!(s, 201);
    let rival_sku = {
        let rival = server.key(json!({"role": "merchant", "merchant_id": 2})).await;
        let (s, body) = server
            .post(
                "/v1/skus",
                &rival,
                "rs",
                json!({"merchant_id": 2, "title": "x", "price": 100, "currency": "CNY", "stock": 5}),
            )
            .await;
        assert_eq!(s, 201);
        body["sku_id"].as_u64().unwrap()
    };
    let (now, later) = (now_ms(), now_ms() + 3_600_000);
    let (_, coupon) = server
        .post("/v1/coupons", &merchant, "own", json!({"merchant_id": 1, "kind": "fixed", "amount_off": 10, "currency": "CNY", "starts_at": now - 1000, "ends_at": later}))
        .await;
    let before = server.audit().await;
    let cases: Vec<(&str, &str, &str, Value, u16, &str)> = vec![
        (
            "zero count",
            "/v1/red-packets",
            &admin,
            json!({"amount": 100, "count": 0, "currency": "CNY", "ends_at": later}),
            400,
            "out_of_bounds",
        ),
        (
            "amount under count",
            "/v1/red-packets",
            &admin,
            json!({"amount": 5, "count": 10, "currency": "CNY", "ends_at": later}),
            400,
            "out_of_bounds",
        ),
        (
            "end before start",
            "/v1/red-packets",
            &admin,
            json!({"amount": 100, "count": 10, "currency": "CNY", "starts_at": later, "ends_at": now}),
            400,
            "out_of_bounds",
        ),
        (
            "a pool the merchant cannot fund",
            "/v1/red-packets",
            &merchant,
            json!({"merchant_id": 1, "amount": 100, "count": 10, "currency": "CNY", "ends_at": later}),
            409,
            "insufficient_funds",
        ),
        (
            "a platform pool by a merchant",
            "/v1/red-packets",
            &merchant,
            json!({"amount": 100, "count": 10, "currency": "CNY", "ends_at": later}),
            403,
            "forbidden",
        ),
        (
            "a coupon for another merchant",
            "/v1/coupons",
            &merchant,
            json!({"merchant_id": 2, "kind": "fixed", "amount_off": 10, "currency": "CNY", "starts_at": now, "ends_at": later}),
            403,
            "forbidden",
        ),
        (
            "a coupon with both kinds",
            "/v1/coupons",
            &merchant,
            json!({"merchant_id": 1, "kind": "fixed", "amount_off": 10, "percent_bps": 10, "currency": "CNY", "starts_at": now, "ends_at": later}),
            400,
            "invalid_coupon",
        ),
        (
            "over 100%",
            "/v1/coupons",
            &merchant,
            json!({"merchant_id": 1, "kind": "percent", "percent_bps": 10_001, "currency": "CNY", "starts_at": now, "ends_at": later}),
            400,
            "out_of_bounds",
        ),
        (
            "a coupon ending before it starts",
            "/v1/coupons",
            &merchant,
            json!({"merchant_id": 1, "kind": "fixed", "amount_off": 10, "currency": "CNY", "starts_at": later, "ends_at": now}),
            400,
            "out_of_bounds",
        ),
        (
            "a merchant coupon on a foreign SKU",
            "/v1/orders",
            &service,
            json!({"buyer_id": 1, "lines": [{"sku_id": rival_sku, "quantity": 1}], "coupons": [coupon["coupon_id"]]}),
            400,
            "coupon_not_applicable",
        ),
        (
            "an unknown coupon",
            "/v1/orders",
            &service,
            json!({"buyer_id": 1, "lines": [{"sku_id": rival_sku, "quantity": 1}], "coupons": [99]}),
            404,
            "not_found",
        ),
        (
            "a claim on an unknown pool",
            "/v1/red-packets/99/claims",
            &service,
            json!({"buyer_id": 1}),
            404,
            "not_found",
        ),
    ];
    for (what, path, key, body, status, code) in cases {
        let (got, answer) = server.post(path, key, &format!("bad-{}", what.replace(' ', "-")), body).await;
        assert_eq!((got, answer["code"].as_str()), (status, Some(code)), "{what}: {answer}");
    }
    assert_eq!(server.audit().await["digest"], before["digest"], "refusals changed the state");
}

/// A merchant names a sale, edits it before it starts, cancels one and ends another early; the
/// operator features one on the big screen. Each answer, the feed's events, the refusals by
/// role and a restart agree.
#[tokio::test]
async fn a_named_sale_is_edited_ended_or_cancelled_by_its_merchant_and_featured_by_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let (merchant, _) = server.marketplace(1, 1).await;
    let admin = server.admin.clone();
    let sku_id = sku(&server, &merchant, 100, 10_000).await;
    let rival = {
        let (s, _) = server.post("/v1/merchants", &admin, "m2", json!({"name": "Rival"})).await;
        assert_eq!(s, 201);
        server.key(json!({"role": "merchant", "merchant_id": 2})).await
    };
    let later = now_ms() + 3_600_000;
    let terms = |name: &str, starts_at: u64| {
        json!({"name": name, "sku_id": sku_id, "flash_price": 5_000, "currency": "CNY", "quantity": 10,
            "starts_at": starts_at, "ends_at": starts_at + 600_000, "per_buyer_limit": 1})
    };
    let (status, sale) = server.post("/v1/campaigns", &merchant, "s1", terms("Midnight", later)).await;
    assert_eq!(
        (status, sale["name"].as_str(), sale["status"].as_str()),
        (201, Some("Midnight"), Some("scheduled")),
        "{sale}"
    );

    // Before it starts: any term, by its merchant (or the operator), not by a rival.
    let edit = json!({"name": "Midnight phones", "flash_price": 4_500, "quantity": 20});
    assert_eq!(server.patch("/v1/campaigns/1", &rival, "e0", edit.clone()).await.0, 403);
    let (status, edited) = server.patch("/v1/campaigns/1", &merchant, "e1", edit).await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(
        (edited["name"].as_str(), edited["flash_price"].as_u64(), edited["quantity"].as_u64()),
        (Some("Midnight phones"), Some(4_500), Some(20))
    );
    let (status, body) =
        server.patch("/v1/campaigns/1", &merchant, "e2", json!({"flash_price": 20_000})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("out_of_bounds")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("flash_price"), "the refusal names the field: {body}");

    // Cancelled before it starts: its window is free for another sale.
    assert_eq!(server.post("/v1/campaigns/1/end", &rival, "x0", json!(null)).await.0, 403);
    let (status, cancelled) = server.post("/v1/campaigns/1/end", &merchant, "x1", json!(null)).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")), "{cancelled}");
    let (status, body) = server.post("/v1/campaigns/1/end", &merchant, "x2", json!(null)).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("invalid_campaign_state")), "{body}");

    // A running sale ends now.
    let (status, running) =
        server.post("/v1/campaigns", &merchant, "s2", terms("Now", now_ms() - 1_000)).await;
    assert_eq!((status, running["status"].as_str()), (201, Some("open")), "{running}");
    let (status, ended) = server.post("/v1/campaigns/2/end", &merchant, "x3", json!(null)).await;
    assert_eq!((status, ended["status"].as_str()), (200, Some("ended")), "{ended}");

    // The operator features a sale; nobody else may.
    let (status, sale3) = server.post("/v1/campaigns", &merchant, "s3", terms("Later", later)).await;
    assert_eq!(status, 201, "{sale3}");
    assert_eq!(server.put("/v1/screen/featured", &merchant, "f0", json!({"campaign_id": 3})).await.0, 403);
    let (status, featured) = server.put("/v1/screen/featured", &admin, "f1", json!({"campaign_id": 3})).await;
    assert_eq!((status, featured["campaign_id"].as_u64()), (200, Some(3)), "{featured}");
    assert_eq!(server.put("/v1/screen/featured", &admin, "f2", json!({"campaign_id": 99})).await.0, 404);

    // The feed tells the rest of the marketplace.
    let (_, page) =
        server.get("/v1/events?types=campaign.created,campaign.updated,campaign.featured", &admin).await;
    let types: Vec<&str> =
        page["events"].as_array().expect("events").iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "campaign.created",
            "campaign.updated",
            "campaign.updated",
            "campaign.created",
            "campaign.updated",
            "campaign.created",
            "campaign.featured"
        ],
        "{page}"
    );

    // All of it survives a restart.
    server.kill();
    let server = Server::start(dir.path(), &[]);
    let (_, one) = server.get("/v1/campaigns/1", &merchant).await;
    assert_eq!(
        (one["name"].as_str(), one["status"].as_str(), one["flash_price"].as_u64()),
        (Some("Midnight phones"), Some("cancelled"), Some(4_500)),
        "{one}"
    );
    let (_, three) = server.get("/v1/campaigns/3", &merchant).await;
    assert_eq!(three["featured"], true, "{three}");
    assert!(server.audit().await["ok"].as_bool().unwrap());
}
