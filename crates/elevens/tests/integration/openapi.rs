//! The OpenAPI document lists every route, and every route it lists answers.

use crate::harness::Server;
use std::collections::BTreeSet;

/// Every route of the API. A new route must be added here, and then to the document.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/v1/cluster"),
    ("get", "/v1/openapi.json"),
    ("get", "/metrics"),
    ("get", "/"),
    ("get", "/screen"),
    ("get", "/screen/uplot.js"),
    ("get", "/screen/uplot.css"),
    ("get", "/screen/screen.js"),
    ("get", "/screen/screen.css"),
    ("get", "/v1/live"),
    ("get", "/console"),
    ("get", "/console/app.js"),
    ("get", "/console/zh.js"),
    ("get", "/console/console.css"),
    ("get", "/v1/me"),
    ("get", "/v1/api-keys"),
    ("get", "/v1/merchants"),
    ("get", "/v1/buyers"),
    ("get", "/v1/experiments"),
    ("get", "/v1/merchants/{id}/skus"),
    ("get", "/v1/merchants/{id}/products"),
    ("get", "/v1/category-tree"),
    ("get", "/v1/merchants/{id}/campaigns"),
    ("get", "/v1/merchants/{id}/warehouses"),
    ("patch", "/v1/skus/{id}"),
    ("post", "/v1/api-keys"),
    ("delete", "/v1/api-keys/{id}"),
    ("post", "/v1/merchants"),
    ("get", "/v1/merchants/{id}"),
    ("get", "/v1/merchants/{id}/wallet"),
    ("post", "/v1/buyers"),
    ("get", "/v1/buyers/{id}"),
    ("post", "/v1/buyers/{id}/top-ups"),
    ("get", "/v1/buyers/{id}/wallet"),
    ("get", "/v1/platform/wallet"),
    ("post", "/v1/skus"),
    ("get", "/v1/skus/{id}"),
    ("post", "/v1/skus/{id}/restock"),
    ("post", "/v1/campaigns"),
    ("get", "/v1/campaigns/{id}"),
    ("post", "/v1/orders"),
    ("get", "/v1/orders/{id}"),
    ("post", "/v1/orders/{id}/pay"),
    ("post", "/v1/orders/{id}/cancel"),
    ("post", "/v1/orders/{id}/refund"),
    ("get", "/v1/buyers/{id}/cart"),
    ("put", "/v1/buyers/{id}/cart/lines/{sku_id}"),
    ("post", "/v1/checkout"),
    ("post", "/v1/categories"),
    ("get", "/v1/categories"),
    ("get", "/v1/categories/{id}"),
    ("post", "/v1/categories/{id}/move"),
    ("post", "/v1/products"),
    ("get", "/v1/products/{id}"),
    ("post", "/v1/products/{id}/variants"),
    ("post", "/v1/products/{id}/move"),
    ("post", "/v1/reservations/expire"),
    ("get", "/v1/audit"),
    ("post", "/v1/batch"),
    ("post", "/v1/batch/binary"),
    ("post", "/v1/coupons"),
    ("get", "/v1/coupons"),
    ("get", "/v1/coupons/{id}"),
    ("post", "/v1/coupons/{id}/disable"),
    ("get", "/v1/buyers/{id}/coupons"),
    ("post", "/v1/red-packets"),
    ("get", "/v1/red-packets"),
    ("get", "/v1/red-packets/{id}"),
    ("post", "/v1/red-packets/{id}/close"),
    ("post", "/v1/red-packets/{id}/claims"),
    ("get", "/v1/buyers/{id}/red-packets"),
    ("post", "/v1/waiting-room"),
    ("get", "/v1/waiting-room/{ticket}"),
    ("get", "/v1/admission"),
    ("get", "/v1/admission/rules"),
    ("put", "/v1/admission/rules"),
    ("get", "/v1/analytics/summary"),
    ("get", "/v1/analytics/timeline"),
    ("get", "/v1/analytics/top"),
    ("get", "/v1/analytics/campaigns/{id}/funnel"),
    ("post", "/v1/events/views"),
    ("post", "/v1/experiments"),
    ("get", "/v1/experiments/{id}"),
    ("get", "/v1/experiments/{id}/variant"),
    ("get", "/v1/experiments/{id}/results"),
    ("get", "/v1/search"),
    ("post", "/v1/merchants/{id}/warehouses"),
    ("get", "/v1/warehouses/{id}"),
    ("get", "/v1/warehouses/{id}/days"),
    ("post", "/v1/carriers"),
    ("get", "/v1/carriers/{id}"),
    ("put", "/v1/buyers/{id}/address"),
    ("put", "/v1/skus/{id}/warehouse"),
    ("put", "/v1/merchants/{id}/shipping-fee"),
    ("get", "/v1/skus/{id}/delivery-estimate"),
    ("get", "/v1/shipments/{id}"),
    ("get", "/v1/orders/{id}/shipments"),
    ("post", "/v1/shipments/{id}/dispatch"),
    ("post", "/v1/shipments/{id}/cancel"),
    ("post", "/v1/tracking-events"),
    ("post", "/v1/orders/{id}/refunds"),
    ("post", "/v1/orders/{id}/returns"),
    ("get", "/v1/returns/{id}"),
    ("post", "/v1/returns/{id}/approve"),
    ("post", "/v1/returns/{id}/reject"),
    ("post", "/v1/returns/{id}/receive"),
    ("post", "/v1/returns/{id}/refund"),
    ("post", "/v1/orders/{id}/tickets"),
    ("get", "/v1/tickets/{id}"),
    ("post", "/v1/tickets/{id}/status"),
    ("get", "/v1/merchants/{id}/orders"),
    ("get", "/v1/merchants/{id}/shipments"),
    ("get", "/v1/merchants/{id}/returns"),
    ("get", "/v1/merchants/{id}/tickets"),
    ("get", "/v1/buyers/{id}/orders"),
    ("get", "/v1/buyers/{id}/shipments"),
    ("get", "/v1/buyers/{id}/tickets"),
    ("get", "/v1/logistics/stats"),
    ("get", "/v1/events"),
    ("post", "/v1/webhooks"),
    ("get", "/v1/webhooks"),
    ("get", "/v1/webhooks/{id}"),
    ("delete", "/v1/webhooks/{id}"),
    ("post", "/v1/webhooks/{id}/enable"),
    ("get", "/v1/webhooks/{id}/deliveries"),
    ("patch", "/v1/campaigns/{id}"),
    ("post", "/v1/campaigns/{id}/end"),
    ("put", "/v1/screen/featured"),
    ("get", "/v1/merchants/{id}/orders.csv"),
    ("get", "/v1/merchants/{id}/figures"),
    ("post", "/v1/tickets/{id}/replies"),
    ("post", "/v1/merchants/{id}/skus.csv"),
    ("get", "/v1/orders/{id}/after-sales"),
    ("put", "/v1/merchants/{id}/time-zone"),
    ("post", "/v1/orders/{id}/notes"),
    ("get", "/v1/carriers"),
];

#[tokio::test]
async fn the_document_and_the_routes_agree() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (status, doc) = server.get("/v1/openapi.json", "").await;
    assert_eq!(status, 200);
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    let expected: BTreeSet<(String, String)> =
        ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, expected);
    // Every documented route is served: none falls through to the router's 404 or 405.
    for (method, path) in &documented {
        let url = format!(
            "{}{}",
            server.base,
            path.replace("{id}", "1").replace("{sku_id}", "1").replace("{ticket}", "0000000000000001")
        );
        let response = server
            .http
            .request(method.to_uppercase().parse().unwrap(), url)
            .bearer_auth(&server.admin)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        // The live feed never ends: its headers are the answer.
        let streams = response.headers().get("content-type").is_some_and(|t| t == "text/event-stream");
        let body: serde_json::Value =
            if streams { Default::default() } else { response.json().await.unwrap_or_default() };
        assert!(
            status != 405 && body["message"] != "no such route",
            "{method} {path} is documented but not served: {status} {body}"
        );
        // A write documents an Idempotency-Key exactly when its handler requires one (the
        // request above sent none).
        let operation = &doc["paths"][path][method];
        let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
        let documents_key =
            parameters.iter().any(|p| p["name"] == "Idempotency-Key" && p["required"] == true);
        let requires_key = body["code"] == "idempotency_key_required";
        assert_eq!(
            documents_key, requires_key,
            "{method} {path}: documented key {documents_key}, {status} {body}"
        );
        // Every placeholder is a declared path parameter; nothing else is.
        let placeholders: BTreeSet<&str> =
            path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
        let in_path: BTreeSet<&str> =
            parameters.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect();
        assert_eq!(placeholders, in_path, "{method} {path}");
    }
}

/// Every `$ref` points at something the document has: a parameter's enum once pointed at a schema
/// the document left out, which openapi-spec-validator (a gated test) refused and clients
/// cannot resolve.
#[tokio::test]
async fn regression_a_parameter_refers_to_a_schema_the_document_lacks() {
    fn refs(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("$ref", serde_json::Value::String(target)) => out.push(target.clone()),
                        _ => refs(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (status, doc) = server.get("/v1/openapi.json", "").await;
    assert_eq!(status, 200);
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty(), "the document has references");
    // A reference is a JSON pointer into the document itself.
    let missing: BTreeSet<&String> = found
        .iter()
        .filter(|target| target.strip_prefix('#').is_none_or(|p| doc.pointer(p).is_none()))
        .collect();
    assert!(missing.is_empty(), "references to nothing: {missing:?}");
}
