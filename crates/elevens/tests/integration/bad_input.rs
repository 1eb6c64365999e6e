//! Invariant 6: bad input gets a clear 4xx with a stable code, never a panic, never a change.

use crate::harness::{sku, Server};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Case {
    what: &'static str,
    method: &'static str,
    path: String,
    key: Option<String>,
    idempotency: Option<&'static str>,
    content_type: &'static str,
    body: String,
    status: u16,
    code: &'static str,
}

fn case(what: &'static str, path: &str, key: &str, body: Value, status: u16, code: &'static str) -> Case {
    Case {
        what,
        method: "POST",
        path: path.to_owned(),
        key: Some(key.to_owned()),
        idempotency: Some("bad-input"),
        content_type: "application/json",
        body: body.to_string(),
        status,
        code,
    }
}

#[tokio::test]
async fn bad_input_is_refused_clearly_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--batch-max", "5"]);
    let (merchant, service) = server.marketplace(2, 10_000).await;
    let sku_id = sku(&server, &merchant, 10, 50_000).await;
    let admin = server.admin.clone();
    let buyer1 = server.key(json!({"role": "buyer", "buyer_id": 1})).await;
    let buyer2 = server.key(json!({"role": "buyer", "buyer_id": 2})).await;
    let (status, _) = server
        .post(
            "/v1/orders",
            &buyer1,
            "real-order",
            json!({"buyer_id": 1, "lines": [{"sku_id": sku_id, "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, m2) = server.post("/v1/merchants", &admin, "m2", json!({"name": "Rival"})).await;
    assert_eq!(status, 201, "{m2}");
    let rival = server.key(json!({"role": "merchant", "merchant_id": 2})).await;

    let order = |qty: Value| json!({"buyer_id": 1, "lines": [{"sku_id": sku_id, "quantity": qty}]});
    let top_up = |amount: Value, currency: &str| json!({"amount": amount, "currency": currency});
    let new_sku =
        |price: Value| json!({"merchant_id": 1, "title": "x", "price": price, "currency": "CNY", "stock": 1});
    let mut cases = vec![
        Case {
            body: "{\"buyer_id\": 1,".into(),
            ..case("malformed JSON", "/v1/orders", &service, json!(null), 400, "malformed_json")
        },
        case(
            "unknown field",
            "/v1/orders",
            &service,
            json!({"buyer_id": 1, "lines": [], "coupon": "x"}),
            422,
            "invalid_body",
        ),
        case("missing field", "/v1/orders", &service, json!({"buyer_id": 1}), 422, "invalid_body"),
        case(
            "wrong type",
            "/v1/orders",
            &service,
            json!({"buyer_id": "one", "lines": []}),
            422,
            "invalid_body",
        ),
        case("no lines", "/v1/orders", &service, json!({"buyer_id": 1, "lines": []}), 400, "out_of_bounds"),
        case("zero quantity", "/v1/orders", &service, order(json!(0)), 400, "out_of_bounds"),
        case("negative quantity", "/v1/orders", &service, order(json!(-1)), 422, "invalid_body"),
        case(
            "quantity over u32",
            "/v1/orders",
            &service,
            order(json!(4_294_967_296u64)),
            422,
            "invalid_body",
        ),
        case(
            "quantity over the line limit",
            "/v1/orders",
            &service,
            order(json!(10_001)),
            400,
            "out_of_bounds",
        ),
        case("more than the stock", "/v1/orders", &service, order(json!(10)), 409, "insufficient_stock"),
        case(
            "unknown sku",
            "/v1/orders",
            &service,
            json!({"buyer_id": 1, "lines": [{"sku_id": 999, "quantity": 1}]}),
            404,
            "not_found",
        ),
        case(
            "unknown buyer",
            "/v1/orders",
            &service,
            json!({"buyer_id": 999, "lines": [{"sku_id": sku_id, "quantity": 1}]}),
            404,
            "not_found",
        ),
        case(
            "the same sku twice",
            "/v1/orders",
            &service,
            json!({"buyer_id": 1, "lines": [{"sku_id": sku_id, "quantity": 1}, {"sku_id": sku_id, "quantity": 1}]}),
            400,
            "duplicate_sku",
        ),
        case(
            "negative amount",
            "/v1/buyers/1/top-ups",
            &service,
            top_up(json!(-5), "CNY"),
            422,
            "invalid_body",
        ),
        Case {
            body: r#"{"amount": 18446744073709551616, "currency": "CNY"}"#.into(),
            ..case("amount over u64", "/v1/buyers/1/top-ups", &service, json!(null), 422, "invalid_body")
        },
        case(
            "amount at u64::MAX",
            "/v1/buyers/1/top-ups",
            &service,
            top_up(json!(u64::MAX), "CNY"),
            400,
            "amount_too_large",
        ),
        case(
            "amount at i64::MAX",
            "/v1/buyers/1/top-ups",
            &service,
            top_up(json!(i64::MAX), "CNY"),
            400,
            "amount_too_large",
        ),
        case("zero amount", "/v1/buyers/1/top-ups", &service, top_up(json!(0), "CNY"), 400, "out_of_bounds"),
        case(
            "float amount",
            "/v1/buyers/1/top-ups",
            &service,
            top_up(json!(1.5), "CNY"),
            422,
            "invalid_body",
        ),
        case(
            "bad currency",
            "/v1/buyers/1/top-ups",
            &service,
            top_up(json!(5), "cny"),
            400,
            "invalid_currency",
        ),
        case("zero price", "/v1/skus", &merchant, new_sku(json!(0)), 400, "out_of_bounds"),
        case(
            "price over the limit",
            "/v1/skus",
            &merchant,
            new_sku(json!(u64::MAX)),
            400,
            "amount_too_large",
        ),
        case(
            "campaign in another currency",
            "/v1/campaigns",
            &merchant,
            json!({"sku_id": sku_id, "flash_price": 100, "currency": "USD", "quantity": 1, "starts_at": 0, "ends_at": 10, "per_buyer_limit": 1}),
            400,
            "currency_mismatch",
        ),
        case(
            "campaign ending before it starts",
            "/v1/campaigns",
            &merchant,
            json!({"sku_id": sku_id, "flash_price": 100, "currency": "CNY", "quantity": 1, "starts_at": 10, "ends_at": 5, "per_buyer_limit": 1}),
            400,
            "out_of_bounds",
        ),
        case("pay an unknown order", "/v1/orders/999/pay", &service, json!(null), 404, "not_found"),
        case(
            "pay with too little money",
            "/v1/orders/1/pay",
            &buyer1,
            json!(null),
            409,
            "insufficient_funds",
        ),
        case(
            "a path id that is not a number",
            "/v1/orders/abc/pay",
            &service,
            json!(null),
            400,
            "invalid_path",
        ),
        case(
            "restock another merchant's sku",
            &format!("/v1/skus/{sku_id}/restock"),
            &rival,
            json!({"quantity": 1}),
            403,
            "forbidden",
        ),
        case("a buyer creating a sku", "/v1/skus", &buyer1, new_sku(json!(100)), 403, "forbidden"),
        case("a buyer ordering for another", "/v1/orders", &buyer2, order(json!(1)), 403, "forbidden"),
        case("a buyer paying another's order", "/v1/orders/1/pay", &buyer2, json!(null), 403, "forbidden"),
        case(
            "a merchant creating merchants",
            "/v1/merchants",
            &merchant,
            json!({"name": "x"}),
            403,
            "forbidden",
        ),
        case("a service creating keys", "/v1/api-keys", &service, json!({"role": "admin"}), 403, "forbidden"),
        case(
            "a merchant key without its merchant",
            "/v1/api-keys",
            &admin,
            json!({"role": "merchant"}),
            400,
            "invalid_role",
        ),
        case("an invalid key", "/v1/orders", "ek_nope", order(json!(1)), 401, "invalid_api_key"),
        Case { key: None, ..case("no key", "/v1/orders", "", order(json!(1)), 401, "unauthenticated") },
        Case {
            idempotency: None,
            ..case(
                "no idempotency key",
                "/v1/orders",
                &service,
                order(json!(1)),
                400,
                "idempotency_key_required",
            )
        },
        Case {
            idempotency: Some("real-order"),
            ..case(
                "a key reused for another command",
                "/v1/orders",
                &buyer1,
                order(json!(2)),
                409,
                "idempotency_key_reused",
            )
        },
        Case {
            content_type: "text/plain",
            ..case("not JSON", "/v1/orders", &service, order(json!(1)), 415, "unsupported_media_type")
        },
        case(
            "a name over the limit",
            "/v1/buyers",
            &service,
            json!({"name": "x".repeat(201)}),
            400,
            "out_of_bounds",
        ),
        case("an unknown route", "/v1/nothing", &service, json!({}), 404, "not_found"),
        Case {
            method: "DELETE",
            ..case("a wrong method", "/v1/orders", &service, json!({}), 405, "method_not_allowed")
        },
        case(
            "a batch over the limit",
            "/v1/batch",
            &service,
            json!({"commands": (0..6).map(|i| json!({"op": "pay_order", "idempotency_key": format!("k{i}"), "params": {"order_id": 1}})).collect::<Vec<_>>()}),
            413,
            "batch_too_large",
        ),
        case(
            "a batch with a stray field",
            "/v1/batch",
            &service,
            json!({"commands": [], "atomic": true}),
            422,
            "invalid_body",
        ),
        case("posting to the audit", "/v1/audit", &service, json!(null), 405, "method_not_allowed"),
    ];
    cases.push(Case {
        method: "GET",
        ..case("another buyer's order", "/v1/orders/1", &buyer2, json!(null), 403, "forbidden")
    });
    cases.push(Case {
        method: "GET",
        ..case("another buyer's wallet", "/v1/buyers/1/wallet", &buyer2, json!(null), 403, "forbidden")
    });
    cases.push(Case {
        method: "GET",
        ..case(
            "the platform wallet as a merchant",
            "/v1/platform/wallet",
            &merchant,
            json!(null),
            403,
            "forbidden",
        )
    });
    cases.push(Case {
        method: "GET",
        ..case("the audit as a service", "/v1/audit", &service, json!(null), 403, "forbidden")
    });
    cases.push(Case {
        method: "GET",
        ..case(
            "a wallet query with a stray field",
            "/v1/buyers/1/wallet?x=1",
            &service,
            json!(null),
            400,
            "invalid_query",
        )
    });

    let before = server.audit().await;
    for c in &cases {
        let url = format!("{}{}", server.base, c.path);
        let mut request = server.http.request(c.method.parse().unwrap(), url);
        if let Some(key) = &c.key {
            request = request.bearer_auth(key);
        }
        if let Some(idempotency) = c.idempotency {
            request = request.header("Idempotency-Key", idempotency);
        }
        let response =
            request.header("content-type", c.content_type).body(c.body.clone()).send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!((status, body["code"].as_str()), (c.status, Some(c.code)), "{}: {body}", c.what);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{}: no message", c.what);
    }
    // A body announced over the limit is refused before it is read.
    let mut socket = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "POST /v1/buyers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {service}\r\nIdempotency-Key: big\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"name\": \"xxxx",
        9 << 20
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = socket.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413") && answer.contains("payload_too_large"), "{answer}");

    // Batch items fail one by one, with the single endpoint's status and code.
    let (status, body) = server
        .batch(
            &service,
            vec![
                json!({"op": "pay_order", "idempotency_key": "b1", "params": {"order_id": 999}}),
                json!({"op": "teleport", "idempotency_key": "b2", "params": {}}),
                json!({"op": "pay_order", "idempotency_key": "", "params": {"order_id": 1}}),
                json!({"op": "top_up", "idempotency_key": "b3", "params": {"buyer_id": 1, "amount": 0, "currency": "CNY"}}),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let got: Vec<(u64, &str)> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["status"].as_u64().unwrap(), r["body"]["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![
            (404, "not_found"),
            (400, "unknown_op"),
            (400, "invalid_idempotency_key"),
            (400, "out_of_bounds")
        ]
    );
    let after = server.audit().await;
    assert_eq!(before["digest"], after["digest"], "bad input changed the state");
    assert_eq!(before["applied"], after["applied"]);
}
