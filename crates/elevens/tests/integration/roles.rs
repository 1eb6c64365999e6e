//! Every role is a boundary: the threat model's table (ARCHITECTURE.md, "Roles") as a matrix of
//! endpoints and keys. Each row names the keys that may; every other key is refused with
//! `403 forbidden`, and a refused write changes nothing (the journal does not move). A key that
//! may read is answered (not 403); the writes the rows allow are not sent, so the refusals are
//! tested against one unchanged state.

use crate::harness::{sku, Server};
use serde_json::{json, Value};

/// The keys of the matrix: the operator, a storefront backend, merchant 1 (whose SKU and
/// order the paths name) and its rival, buyer 1 (whose order it is) and another buyer, a
/// carrier, the big screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Admin,
    Service,
    Merchant,
    Rival,
    Buyer,
    OtherBuyer,
    Carrier,
    Viewer,
}

use Who::*;

const EVERYONE: [Who; 8] = [Admin, Service, Merchant, Rival, Buyer, OtherBuyer, Carrier, Viewer];

struct Row {
    method: &'static str,
    path: &'static str,
    body: Value,
    may: &'static [Who],
}

fn get(path: &'static str, may: &'static [Who]) -> Row {
    Row { method: "GET", path, body: Value::Null, may }
}

fn post(path: &'static str, body: Value, may: &'static [Who]) -> Row {
    Row { method: "POST", path, body, may }
}

fn put(path: &'static str, body: Value, may: &'static [Who]) -> Row {
    Row { method: "PUT", path, body, may }
}

fn patch(path: &'static str, body: Value, may: &'static [Who]) -> Row {
    Row { method: "PATCH", path, body, may }
}

#[tokio::test]
async fn each_role_is_refused_what_the_threat_model_denies_it_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (merchant, service) = server.marketplace(2, 1_000_000).await;
    let admin = server.admin.clone();
    assert_eq!(server.post("/v1/merchants", &admin, "rival", json!({"name": "Rival"})).await.0, 201);
    let lanes =
        json!({"name": "SF", "lanes": [{"from": "CN-ZJ", "to": "CN-BJ", "p50_days": 2, "p90_days": 3}]});
    assert_eq!(server.post("/v1/carriers", &admin, "carrier", lanes).await.0, 201);
    let sku_id = sku(&server, &merchant, 100, 5_000).await;
    assert_eq!(sku_id, 1);
    let order = json!({"buyer_id": 1, "lines": [{"sku_id": 1, "quantity": 1}]});
    let (status, placed) = server.post("/v1/orders", &service, "order-1", order.clone()).await;
    assert_eq!(status, 201, "{placed}");
    assert_eq!(server.post("/v1/orders/1/pay", &service, "pay-1", Value::Null).await.0, 200);
    let later = crate::harness::now_ms() + 3_600_000;
    let sale = json!({"name": "x", "sku_id": 1, "flash_price": 100, "currency": "CNY", "quantity": 1,
        "starts_at": later, "ends_at": later + 60_000, "per_buyer_limit": 1});
    assert_eq!(server.post("/v1/campaigns", &merchant, "sale-1", sale.clone()).await.0, 201);
    let ticket = json!({"subject": "where is it?"});
    assert_eq!(server.post("/v1/orders/1/tickets", &service, "ticket-1", ticket).await.0, 201);
    let keys = [
        (Admin, admin.clone()),
        (Service, service.clone()),
        (Merchant, merchant.clone()),
        (Rival, server.key(json!({"role": "merchant", "merchant_id": 2})).await),
        (Buyer, server.key(json!({"role": "buyer", "buyer_id": 1})).await),
        (OtherBuyer, server.key(json!({"role": "buyer", "buyer_id": 2})).await),
        (Carrier, server.key(json!({"role": "carrier", "carrier_id": 1})).await),
        (Viewer, server.key(json!({"role": "viewer"})).await),
    ];

    let sku = json!({"merchant_id": 1, "title": "x", "price": 100, "currency": "CNY", "stock": 1});
    let top_up = json!({"amount": 100, "currency": "CNY"});
    let coupon = json!({"kind": "fixed", "amount_off": 10, "currency": "CNY", "starts_at": 0, "ends_at": 1});
    let rows = [
        // The operator's own.
        get("/v1/api-keys", &[Admin]),
        get("/v1/audit", &[Admin]),
        get("/v1/platform/wallet", &[Admin]),
        post("/v1/api-keys", json!({"role": "viewer"}), &[Admin]),
        post("/v1/merchants", json!({"name": "x"}), &[Admin]),
        post("/v1/coupons", coupon, &[Admin]),
        post("/v1/experiments", json!({"name": "x", "variants": [], "starts_at": 0, "ends_at": 1}), &[Admin]),
        // Who may list the marketplace's parties.
        get("/v1/merchants", &[Admin, Service]),
        get("/v1/buyers", &[Admin, Service]),
        get("/v1/carriers?q=sf", &[Admin, Service]),
        // Money: a wallet is its owner's (and the operator's); a buyer's also the storefront's.
        get("/v1/merchants/1/wallet", &[Admin, Merchant]),
        get("/v1/buyers/1/wallet", &[Admin, Service, Buyer]),
        post("/v1/buyers/1/top-ups", top_up, &[Admin, Service]),
        // The catalogue: the merchant's to change, everyone's to read.
        get("/v1/skus/1", &EVERYONE),
        get("/v1/merchants/1/skus", &[Admin, Merchant]),
        post("/v1/skus", sku, &[Admin, Merchant]),
        post("/v1/skus/1/restock", json!({"quantity": 1}), &[Admin, Merchant]),
        put("/v1/merchants/1/time-zone", json!({"utc_offset_minutes": 480}), &[Admin, Merchant]),
        post("/v1/merchants/1/skus.csv", json!("title,price,currency\nx,1,CNY"), &[Admin, Merchant]),
        // A flash sale: its merchant's to create, change and end; the screen's feature, the operator's.
        post("/v1/campaigns", sale, &[Admin, Merchant]),
        patch("/v1/campaigns/1", json!({"name": "y"}), &[Admin, Merchant]),
        post("/v1/campaigns/1/end", Value::Null, &[Admin, Merchant]),
        put("/v1/screen/featured", json!({"campaign_id": 1}), &[Admin]),
        // An order: its buyer's, its merchant's, the storefront's.
        post("/v1/tickets/1/replies", json!({"body": "x"}), &[Admin, Service, Merchant, Buyer]),
        get("/v1/orders/1", &[Admin, Service, Merchant, Buyer]),
        get("/v1/merchants/1/orders", &[Admin, Merchant]),
        get("/v1/merchants/1/tickets?q=x", &[Admin, Merchant]),
        get("/v1/buyers/1/orders?sort=newest", &[Admin, Service, Buyer]),
        get("/v1/orders/1/after-sales", &[Admin, Service, Merchant, Buyer]),
        post("/v1/orders/1/notes", json!({"body": "x"}), &[Admin, Merchant]),
        get("/v1/merchants/1/orders.csv", &[Admin, Merchant]),
        post("/v1/orders", order, &[Admin, Service, Buyer]),
        post("/v1/orders/1/refund", json!({"restock": false}), &[Admin, Merchant]),
        // A cart and its checkout: the buyer's, and the storefront's for it.
        get("/v1/buyers/1/cart", &[Admin, Service, Buyer]),
        put("/v1/buyers/1/cart/lines/1", json!({"quantity": 1}), &[Admin, Service, Buyer]),
        post(
            "/v1/checkout",
            json!({"buyer_id": 1, "lines": [{"sku_id": 1, "quantity": 1}]}),
            &[Admin, Service, Buyer],
        ),
        // The category tree is the operator's; a product, its merchant's.
        get("/v1/categories", &EVERYONE),
        get("/v1/category-tree", &EVERYONE),
        get("/v1/merchants/1/products", &EVERYONE),
        post("/v1/categories", json!({"name": "x"}), &[Admin]),
        post("/v1/products", json!({"merchant_id": 1, "title": "x", "category_id": 1}), &[Admin, Merchant]),
        // The figures: the screen's, never a merchant's or a buyer's.
        get("/v1/analytics/summary", &[Admin, Service, Viewer]),
        get("/v1/merchants/1/figures", &[Admin, Service, Merchant, Viewer]),
        // The feed and webhooks: never a buyer's, a carrier's or the screen's.
        get("/v1/events", &[Admin, Service, Merchant, Rival]),
        get("/v1/webhooks", &[Admin, Merchant, Rival]),
        // Admission's rules are operations.
        get("/v1/admission/rules", &[Admin]),
    ];

    let before = applied(&server).await;
    let mut wrong = Vec::new();
    for row in &rows {
        for (who, key) in &keys {
            let may = row.may.contains(who);
            if may && row.method != "GET" {
                continue; // allowed writes would change the state the refusals are tested on
            }
            let idempotency = format!("roles-{who:?}-{}", row.path);
            let (status, body) = match row.method {
                "GET" => server.get(row.path, key).await,
                "PUT" => server.put(row.path, key, &idempotency, row.body.clone()).await,
                "PATCH" => server.patch(row.path, key, &idempotency, row.body.clone()).await,
                _ => server.post(row.path, key, &idempotency, row.body.clone()).await,
            };
            let refused = status == 403 && body["code"] == "forbidden";
            if refused == may {
                wrong.push(format!("{} {} as {who:?}: {status} {body}", row.method, row.path));
            }
        }
    }
    assert!(wrong.is_empty(), "answers against the threat model:\n{}", wrong.join("\n"));
    assert_eq!(applied(&server).await, before, "a refused write changed the state");
    server.audit().await;
}

/// The last record durable and applied: moves with every write that changed the state.
async fn applied(server: &Server) -> u64 {
    let (status, cluster) = server.get("/v1/cluster", &server.admin).await;
    assert_eq!(status, 200, "{cluster}");
    cluster["applied"].as_u64().expect("applied")
}
