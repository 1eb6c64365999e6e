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
    // Found by a word of its title, any case; not by words it does not hold.
    let (_, found) = server.get("/v1/merchants/1/products?q=PHONE", &merchant).await;
    assert_eq!(found["items"][0]["product_id"], 1, "{found}");
    assert_eq!(server.get("/v1/merchants/1/products?q=tablet", &merchant).await.1["items"], json!([]));
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

/// A category page as a storefront asks for it: the subtree's variants, filtered by an
/// attribute and sorted by price, with facets naming the categories, brands and colours; the
/// same answer after a product moves (no re-indexing) and after a kill -9 and restart.
#[tokio::test]
async fn faceted_search_filters_by_subtree_and_attribute_and_counts_facets() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let (merchant, _) = server.marketplace(1, 1).await;
    let admin = server.admin.clone();
    for (i, (name, parent)) in
        [("Electronics", None), ("Phones", Some(1)), ("Home", None), ("Kettles", Some(3))]
            .into_iter()
            .enumerate()
    {
        let (status, body) = server
            .post("/v1/categories", &admin, &format!("c{i}"), json!({"name": name, "parent_id": parent}))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let products = [
        ("华为 Mate 手机", 2, "华为", [("black", 399_900), ("white", 419_900)]),
        ("Elevens phone", 2, "Elevens", [("black", 199_900), ("red", 189_900)]),
        ("Steel kettle", 4, "Elevens", [("black", 9_900), ("white", 12_900)]),
    ];
    for (p, (title, category, brand, variants)) in products.iter().enumerate() {
        let body = json!({"merchant_id": 1, "title": title, "category_id": category,
            "attributes": [{"name": "brand", "value": brand}], "options": ["colour"]});
        let (status, created) = server.post("/v1/products", &merchant, &format!("p{p}"), body).await;
        assert_eq!(status, 201, "{created}");
        for (v, (colour, price)) in variants.iter().enumerate() {
            let sku_id = sku(&server, &merchant, 5, *price).await;
            let body = json!({"sku_id": sku_id, "options": [colour]});
            let path = format!("/v1/products/{}/variants", p + 1);
            let (status, answer) = server.post(&path, &merchant, &format!("v{p}.{v}"), body).await;
            assert_eq!(status, 200, "{answer}");
        }
    }
    let bare = sku(&server, &merchant, 5, 1_000).await; // no product: in no category
    let prices = |body: &serde_json::Value| -> Vec<u64> {
        body["hits"].as_array().unwrap().iter().map(|h| h["sku"]["price"].as_u64().unwrap()).collect()
    };
    // Searchable within a second of the last write.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let everything = loop {
        let (status, body) = server.get("/v1/search?facets=true&limit=100", &admin).await;
        assert_eq!(status, 200, "{body}");
        if body["matched"] == 7 || std::time::Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(everything["matched"], 7, "{everything}");
    let facets = &everything["facets"];
    assert_eq!(
        facets["categories"],
        json!([{"category_id": 1, "name": "Electronics", "count": 4}, {"category_id": 3, "name": "Home", "count": 2}])
    );
    assert_eq!((facets["min_price"].as_u64(), facets["max_price"].as_u64()), (Some(1_000), Some(419_900)));
    let skus: Vec<u64> =
        everything["hits"].as_array().unwrap().iter().map(|h| h["sku"]["sku_id"].as_u64().unwrap()).collect();
    assert!(skus.contains(&bare), "a SKU without a product is found too: {everything}");

    let page =
        "/v1/search?category_id=1&attribute=colour:black&attribute=colour:red&sort=price_asc&facets=true";
    let (status, phones) = server.get(page, &admin).await;
    assert_eq!(status, 200, "{phones}");
    assert_eq!(prices(&phones), [189_900, 199_900, 399_900], "{phones}");
    assert_eq!(phones["facets"]["categories"], json!([{"category_id": 2, "name": "Phones", "count": 3}]));
    let brands =
        phones["facets"]["attributes"].as_array().unwrap().iter().find(|a| a["name"] == "brand").unwrap();
    assert_eq!(brands["values"], json!([{"value": "Elevens", "count": 2}, {"value": "华为", "count": 1}]));
    let (_, huawei) = server.get("/v1/search?q=手机&attribute=brand:华为&sort=price_desc", &admin).await;
    assert_eq!(prices(&huawei), [419_900, 399_900], "{huawei}");
    // Words by relevance without facets: tantivy's top-k, which stops early and does not count.
    let (_, words) = server.get("/v1/search?q=手机", &admin).await;
    assert_eq!(
        (words["hits"].as_array().map(Vec::len), &words["matched"]),
        (Some(2), &json!(null)),
        "{words}"
    );

    // The kettle moves under Electronics: found there at once, nothing re-indexed.
    let (status, _) = server.post("/v1/products/3/move", &merchant, "mv", json!({"category_id": 2})).await;
    assert_eq!(status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let moved = loop {
        let body = server.get("/v1/search?category_id=1&sort=price_asc", &admin).await.1;
        if body["matched"] == 6 || std::time::Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(prices(&moved), [9_900, 12_900, 189_900, 199_900, 399_900, 419_900], "{moved}");

    server.kill();
    let server = Server::start(dir.path(), &[]);
    let (_, again) = server.get("/v1/search?category_id=1&sort=price_asc", &admin).await;
    assert_eq!(prices(&again), prices(&moved), "the index is rebuilt from the state after kill -9");
    // The black kettle is a phone now, by its category.
    let (_, phones_again) = server.get(page, &admin).await;
    assert_eq!(
        phones_again["facets"]["categories"],
        json!([{"category_id": 2, "name": "Phones", "count": 4}])
    );

    for bad in ["attribute=brand", "sort=price", "attribute=a:1&attribute=a:2&attribute=a:3&attribute=a:4&attribute=a:5&attribute=a:6&attribute=a:7&attribute=a:8&attribute=a:9&attribute=a:10&attribute=a:11&attribute=a:12&attribute=a:13&attribute=a:14&attribute=a:15&attribute=a:16&attribute=a:17", "category_id=x", "nonsense=1"] {
        let (status, body) = server.get(&format!("/v1/search?{bad}"), &admin).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("invalid_query")), "{bad}: {body}");
    }
    server.audit().await;
}
