//! `POST /v1/batch/binary`: the JSON batch's commands in postcard, answered with outcomes. The
//! same rules as every other way in: each command exactly once per key (across both batch
//! encodings), a bad command refused on its own with nothing changed, a bad request refused
//! whole.

use crate::harness::{sku, Server};
use elevens_core::{Amount, OrderId, Outcome};
use elevens_http::batch::OrderParams;
use elevens_http::orders::{LineRequestBody, PlaceOrderRequest};
use elevens_http::wire::{BatchOp, BinaryAnswer, BinaryBatch, BinaryCommand};
use serde_json::json;

fn place(key: &str, buyer: u64, sku: u64) -> BinaryCommand<'_> {
    BinaryCommand {
        idempotency_key: key,
        op: BatchOp::PlaceOrder(PlaceOrderRequest {
            buyer_id: buyer,
            lines: vec![LineRequestBody { sku_id: sku, quantity: 1 }],
            coupons: vec![],
        }),
    }
}

fn pay(key: &str, order: u64) -> BinaryCommand<'_> {
    BinaryCommand { idempotency_key: key, op: BatchOp::PayOrder(OrderParams { order_id: order }) }
}

async fn post(server: &Server, key: &str, content_type: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let response = server
        .http
        .post(format!("{}/v1/batch/binary", server.base))
        .bearer_auth(key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("binary batch");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

async fn binary(server: &Server, key: &str, commands: Vec<BinaryCommand<'_>>) -> BinaryAnswer {
    let body = postcard::to_allocvec(&BinaryBatch { commands }).unwrap();
    let (status, bytes) = post(server, key, "application/octet-stream", body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    postcard::from_bytes(&bytes).expect("a binary answer")
}

#[tokio::test]
async fn the_binary_batch_answers_with_outcomes_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--batch-max", "8"]);
    let (merchant, service) = server.marketplace(3, 100_000).await;
    let hot = sku(&server, &merchant, 2, 1_500).await;

    let commands = || {
        vec![
            place("o1", 1, hot),
            place("o2", 2, hot),
            place("o3", 3, hot),
            pay("p1", 1),
            BinaryCommand { idempotency_key: "", ..pay("unused", 2) },
            pay("p404", 99),
        ]
    };
    let answer = binary(&server, &service, commands()).await;
    let statuses: Vec<u16> = answer.results.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [201, 201, 409, 200, 400, 404]);
    assert!(matches!(
        answer.results[0].outcome,
        Ok(Outcome::OrderPlaced { order: OrderId(1), total: Amount(1_500), .. })
    ));
    assert!(matches!(answer.results[3].outcome, Ok(Outcome::OrderPaid { order: OrderId(1), .. })));
    let code = |i: usize| answer.results[i].outcome.as_ref().unwrap_err().code.clone();
    assert_eq!(code(2), "insufficient_stock");
    assert_eq!(code(4), "invalid_idempotency_key");
    assert_eq!(code(5), "not_found");

    // The same batch again: every key answers its first outcome; nothing is applied twice.
    let again = binary(&server, &service, commands()).await;
    for (first, second) in answer.results.iter().zip(&again.results) {
        assert_eq!(first.status, second.status);
        assert_eq!(first.outcome.as_ref().ok(), second.outcome.as_ref().ok());
        let code = |r: &elevens_http::wire::BinaryResult| r.outcome.as_ref().err().map(|e| e.code.clone());
        assert_eq!(code(first), code(second));
    }
    // The JSON batch shares the keys: a key used in binary answers its first order as a view.
    let (status, body) = server
        .batch(
            &service,
            vec![json!({"op": "place_order", "idempotency_key": "o2",
                "params": {"buyer_id": 2, "lines": [{"sku_id": hot, "quantity": 1}]}})],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["results"][0]["status"], 201, "{body}");
    assert_eq!(body["results"][0]["body"]["order_id"], 2, "{body}");
    let (status, body) = server.get(&format!("/v1/skus/{hot}"), &service).await;
    assert_eq!(status, 200);
    assert_eq!(body["available"], 0, "two units, two orders: {body}");
    let (_, order) = server.get("/v1/orders/3", &service).await;
    assert_eq!(order["code"], "not_found", "the refused third order left nothing: {order}");

    // A request refused whole changes nothing and answers the usual JSON error.
    let valid = postcard::to_allocvec(&BinaryBatch { commands: vec![place("o4", 3, hot)] }).unwrap();
    let (status, _) = post(&server, &service, "Application/Octet-Stream; x=1", valid.clone()).await;
    assert_eq!(status, 200, "a media type's case and parameters do not matter");
    let refusals = [
        ("application/json", valid.clone(), 415, "unsupported_media_type"),
        ("application/octet-stream", vec![1, 0xff, 0xff], 422, "invalid_body"),
        ("application/octet-stream", valid[..valid.len() - 1].to_vec(), 422, "invalid_body"),
        (
            "application/octet-stream",
            postcard::to_allocvec(&BinaryBatch {
                commands: (0..9).map(|i| pay(["a", "b", "c", "d", "e", "f", "g", "h", "i"][i], 1)).collect(),
            })
            .unwrap(),
            413,
            "batch_too_large",
        ),
    ];
    for (content_type, body, status, code) in refusals {
        let (got, bytes) = post(&server, &service, content_type, body).await;
        let error: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        assert_eq!((got, error["code"].as_str()), (status, Some(code)), "{error}");
    }
    let (_, body) = server.get(&format!("/v1/skus/{hot}"), &service).await;
    assert_eq!(body["available"], 0);

    // A batch that declares itself payments (the door's room under load) holds only payments:
    // an order in it refuses the whole request before anything is applied.
    let declared = |class: &str, commands: Vec<BinaryCommand<'static>>| {
        let body = postcard::to_allocvec(&BinaryBatch { commands }).unwrap();
        server
            .http
            .post(format!("{}/v1/batch/binary", server.base))
            .bearer_auth(&service)
            .header("content-type", "application/octet-stream")
            .header("batch-class", class.to_owned())
            .body(body)
            .send()
    };
    let (_, order) = server.get("/v1/orders/2", &service).await;
    assert_eq!(order["status"], "pending_payment");
    let sneaky = declared("pay", vec![pay("p2", 2), place("o5", 3, hot)]).await.unwrap();
    assert_eq!(sneaky.status(), 400);
    let error: serde_json::Value = sneaky.json().await.unwrap();
    assert_eq!(error["code"], "batch_class_mismatch");
    let (_, order) = server.get("/v1/orders/2", &service).await;
    assert_eq!(order["status"], "pending_payment", "the refused batch paid nothing");
    let unknown = declared("urgent", vec![pay("p2", 2)]).await.unwrap();
    assert_eq!(unknown.status(), 400);
    let honest = declared("pay", vec![pay("p2", 2)]).await.unwrap();
    assert_eq!(honest.status(), 200);
    let answer: BinaryAnswer = postcard::from_bytes(&honest.bytes().await.unwrap()).unwrap();
    assert!(matches!(answer.results[0].outcome, Ok(Outcome::OrderPaid { order: OrderId(2), .. })));

    let (_, unauthenticated) = post(&server, "nobody", "application/octet-stream", valid).await;
    let error: serde_json::Value = serde_json::from_slice(&unauthenticated).unwrap_or_default();
    assert_eq!(error["code"], "invalid_api_key");
    server.audit().await;
}
