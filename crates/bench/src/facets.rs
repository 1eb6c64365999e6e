//! The mixed workload's catalogue structure and its faceted searches: a category tree, and the
//! tail's SKUs grouped into products of four colour variants (one merchant's SKUs, 100 apart),
//! each product with a brand. Before the load, 200 faceted queries are timed on the index alone;
//! while it runs, one client asks one every [`PROBE_INTERVAL`] and times it alone: in-process the
//! index's answer under the load's contention, over HTTP the whole request.

use crate::{admin, run_setup, MERCHANTS};
use elevens_core::products::NewProduct;
use elevens_core::{CategoryId, Command, MerchantId, ProductId, SkuId};
use elevens_http::engine::EngineHandle;
use rand::Rng;
use std::time::Duration;

/// Top-level categories, and children under each: products sit in the children.
pub const TOP_CATEGORIES: u64 = 8;
pub const CHILD_CATEGORIES: u64 = 4;
/// A product's variants: the colours.
pub const COLOURS: [&str; 4] = ["red", "black", "white", "blue"];
pub const BRANDS: [&str; 16] = [
    "Apple", "华为", "小米", "Sony", "Haier", "美的", "Lenovo", "OPPO", "vivo", "Nike", "安踏", "Uniqlo",
    "李宁", "Dyson", "Philips", "格力",
];
/// How often the probing client asks a faceted query.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// Products (and their variants) made per set-up batch.
const PRODUCTS_PER_BATCH: u64 = 10_000;

/// The category tree (ids 1..=8 at the top, then 4 under each), and the tail's SKUs (`skus` of
/// them, SKU ids from 2) as products of [`COLOURS`]`.len()` variants; SKUs left over (fewer than
/// a product's worth of one merchant) stay bare. Returns the products made.
pub fn setup(engine: &EngineHandle, skus: u64) -> anyhow::Result<u64> {
    let mut commands = Vec::new();
    for top in 0..TOP_CATEGORIES {
        commands.push(admin(Command::CreateCategory { name: format!("department {top}"), parent: None }));
    }
    for top in 0..TOP_CATEGORIES {
        for child in 0..CHILD_CATEGORIES {
            let parent = Some(CategoryId(top + 1));
            commands.push(admin(Command::CreateCategory { name: format!("aisle {top}.{child}"), parent }));
        }
    }
    run_setup(engine, commands)?;
    let colours = COLOURS.len() as u64;
    // Product p takes tail SKUs base, base + 100, base + 200, base + 300: one merchant's.
    let block = MERCHANTS * colours;
    let products = skus / block * MERCHANTS;
    for first in (0..products).step_by(PRODUCTS_PER_BATCH as usize) {
        let mut commands = Vec::new();
        for p in first..(first + PRODUCTS_PER_BATCH).min(products) {
            let base = p / MERCHANTS * block + p % MERCHANTS;
            commands.push(admin(Command::CreateProduct(Box::new(NewProduct {
                merchant: MerchantId(base % MERCHANTS + 1),
                title: format!("product {p}"),
                description: String::new(),
                category: CategoryId(TOP_CATEGORIES + 1 + p % (TOP_CATEGORIES * CHILD_CATEGORIES)),
                attributes: vec![("brand".into(), BRANDS[p as usize % BRANDS.len()].into())],
                options: vec!["colour".into()],
            }))));
            for (k, colour) in COLOURS.iter().enumerate() {
                commands.push(admin(Command::AddVariant {
                    product: ProductId(p + 1),
                    sku: SkuId(2 + base + k as u64 * MERCHANTS),
                    options: vec![colour.to_string()],
                }));
            }
        }
        run_setup(engine, commands)?;
    }
    Ok(products)
}

/// The latency of `queries` category pages asked of the index alone, one after another, once
/// its merges are done: what a faceted query costs by itself.
pub fn idle(engine: &EngineHandle, queries: usize, rng: &mut impl Rng) -> anyhow::Result<crate::Latency> {
    engine.search.settle()?;
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    for _ in 0..queries {
        let crate::driver::Op::Facets { category, brand, by_price } = probe(rng) else { continue };
        let started = std::time::Instant::now();
        engine.search.search(&crate::driver::facets_query(category, brand, by_price))?;
        h.saturating_record(started.elapsed().as_micros().max(1) as u64);
    }
    Ok(crate::Latency::of(&h))
}

/// A storefront's category page: a department or an aisle, maybe one brand, by relevance or
/// price, with its facets.
pub fn probe(rng: &mut impl Rng) -> crate::driver::Op {
    let categories = TOP_CATEGORIES * (1 + CHILD_CATEGORIES);
    crate::driver::Op::Facets {
        category: rng.random_range(1..=categories),
        brand: rng.random_bool(0.5).then(|| rng.random_range(0..BRANDS.len() as u8)),
        by_price: rng.random_bool(0.5),
    }
}
