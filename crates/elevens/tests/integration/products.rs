//! Products as merchants list them, through the binary: the operator's category tree, a
//! product with its variant grid, refusals by name, and the feed's events.

use crate::harness::{sku, Server};
use serde_json::json;

#[tokio::test]
async fn a_phone_with_its_variants_in_the_operators_tree() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (merchant, _) = server.marketplace(1, 1).await;
    let admin = server.admin.clone();
    let (status, root) = server.post("/v1/categories", &admin, "c1", json!({"name": "Electronics"})).await;
    assert_eq!(status, 201, "{root}");
    let (status, phones) =
        server.post("/v1/categories", &admin, "c2", json!({"name": "Phones", "parent_id": 1})).await;
    assert_eq!((status, &phones["path"]), (201, &json!(["Electronics", "Phones"])), "{phones}");
    let (status, _) = server.post("/v1/categories", &merchant, "c3", json!({"name": "Mine"})).await;
    assert_eq!(status, 403, "the tree is the operator's");
    let (status, cycle) = server.post("/v1/categories/1/move", &admin, "mv", json!({"parent_id": 2})).await;
    assert_eq!((status, cycle["code"].as_str()), (400, Some("out_of_bounds")), "{cycle}");

    let product = json!({"merchant_id": 1, "title": "Phone X", "category_id": 2,
        "attributes": [{"name": "brand", "value": "Elevens"}], "options": ["colour", "storage"]});
    let (status, created) = server.post("/v1/products", &merchant, "p1", product).await;
    assert_eq!(status, 201, "{created}");
    let black = sku(&server, &merchant, 10, 399_900).await;
    let white = sku(&server, &merchant, 5, 459_900).await;
    for (i, (sku_id, options)) in
        [(black, json!(["black", "128 GB"])), (white, json!(["white", "256 GB"]))].iter().enumerate()
    {
        let body = json!({"sku_id": sku_id, "options": options});
        let (status, answer) =
            server.post("/v1/products/1/variants", &merchant, &format!("v{i}"), body).await;
        assert_eq!(status, 200, "{answer}");
    }
    let (status, same) = server
        .post(
            "/v1/products/1/variants",
            &merchant,
            "v-again",
            json!({"sku_id": white, "options": ["black", "128 GB"]}),
        )
        .await;
    assert_eq!((status, same["code"].as_str()), (400, Some("out_of_bounds")), "{same}");
    let (status, view) = server.get("/v1/products/1", &admin).await;
    assert_eq!(status, 200, "{view}");
    let grid: Vec<(u64, String)> = view["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["price"].as_u64().unwrap(), v["options"].to_string()))
        .collect();
    assert_eq!(grid, [(399_900, r#"["black","128 GB"]"#.into()), (459_900, r#"["white","256 GB"]"#.into())]);
    assert_eq!(view["category_path"], json!(["Electronics", "Phones"]));

    let (status, _) = server.post("/v1/products/1/move", &merchant, "mvp", json!({"category_id": 1})).await;
    assert_eq!(status, 200);
    let (_, events) =
        server.get("/v1/events?types=product.created,product.variant_added,product.moved", &admin).await;
    let types: Vec<&str> =
        events["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["product.created", "product.variant_added", "product.variant_added", "product.moved"]);
    server.audit().await;
}
