//! What a search costs at scale, the index alone: N SKUs titled as the bench titles them
//! (`red kettle 42`), grouped into products of four colour variants in a tree of 8 departments
//! of 4 aisles, each product with one of 16 brands; then words-only searches (a noun, an
//! adjective and a noun) and category pages (a department or an aisle, maybe a brand, by
//! relevance or price, with facets), each timed alone.
//!
//! `cargo run --release -p elevens-search --example facets -- [N] [bare]` (default 1,000,000;
//! `bare`: the SKUs without products).

use elevens_feed::{Attribute, Code, Kind};
use elevens_search::{Search, SearchQuery, Sort};
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ADJECTIVES: usize = 16;
const NOUNS: [&str; 32] = [
    "phone", "kettle", "lamp", "jacket", "sneaker", "backpack", "watch", "speaker", "blender", "camera",
    "tablet", "scarf", "mug", "chair", "desk", "pillow", "blanket", "charger", "earbuds", "keyboard",
    "mouse", "monitor", "router", "drone", "bicycle", "helmet", "tent", "teapot", "wok", "fan", "heater",
    "umbrella",
];
const ADJECTIVE_WORDS: [&str; ADJECTIVES] = [
    "red", "blue", "green", "black", "white", "silver", "golden", "wooden", "smart", "compact", "portable",
    "wireless", "organic", "classic", "premium", "mini",
];
const COLOURS: [&str; 4] = ["red", "black", "white", "blue"];
const QUERIES: usize = 200;

fn title(i: u64) -> String {
    let adjective = ADJECTIVE_WORDS[(i % ADJECTIVES as u64) as usize];
    let noun = NOUNS[((i / ADJECTIVES as u64) % NOUNS.len() as u64) as usize];
    format!("{adjective} {noun} {i}")
}

/// p50, p99 and max of `times`, in µs.
fn percentiles(mut times: Vec<u128>) -> String {
    times.sort_unstable();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    format!("p50 {} µs, p99 {} µs, max {} µs", at(0.5), at(0.99), times[times.len() - 1])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    // `bare`: the SKUs alone, no products (to compare words-only searches on the same SKUs).
    let bare = std::env::args().nth(2).as_deref() == Some("bare");
    let search = Search::new()?;
    let cny = Code(elevens_core::Currency::parse("CNY").ok_or("CNY")?);
    let started = Instant::now();
    for c in 1..=8u64 {
        search.fold(
            None,
            &Kind::CategoryCreated { category: c, name: format!("department {c}"), parent: None },
        )?;
    }
    for c in 9..=40u64 {
        let parent = Some(1 + (c - 9) / 4);
        search.fold(None, &Kind::CategoryCreated { category: c, name: format!("aisle {c}"), parent })?;
    }
    for i in 0..n {
        let sku = i + 1;
        let price = 100 + (i * 7_919) % 99_900;
        let (merchant, title) = (Some(i % 100 + 1), title(i));
        let created = Kind::SkuCreated {
            sku,
            title: title.clone(),
            description: String::new(),
            currency: cny,
            price,
            stock: 1_000,
        };
        search.fold(merchant, &created)?;
        if bare {
            continue;
        }
        let product = i / 4 + 1;
        if i % 4 == 0 {
            let kind = Kind::ProductCreated {
                product,
                title: format!("product {product}"),
                category: 9 + product % 32,
                attributes: vec![Attribute {
                    name: "brand".into(),
                    value: format!("brand {}", product % 16),
                }],
                options: vec!["colour".into()],
            };
            search.fold(merchant, &kind)?;
        }
        // As the engine's committer does (every 200 ms), here every 20,000 SKUs: a SKU's
        // document is written, committed, then replaced when it becomes a variant.
        if i % 20_000 == 19_999 {
            search.commit_if_dirty()?;
        }
        let options = vec![COLOURS[(i % 4) as usize].to_string()];
        let added = Kind::VariantAdded {
            product,
            sku,
            options,
            title,
            description: String::new(),
            currency: cny,
            price,
        };
        search.fold(merchant, &added)?;
    }
    search.settle()?;
    println!(
        "{n} SKUs, {} products, indexed and merged in {:.1?} ({} segments)",
        if bare { 0 } else { n / 4 },
        started.elapsed(),
        search.segments()
    );

    measure(&search, if bare { "bare SKUs" } else { "in products" })
}

/// Words-only searches and category pages, [`QUERIES`] of each, timed alone.
fn measure(search: &Search, label: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    let time = |query: &SearchQuery| -> Result<(u128, u64), Box<dyn std::error::Error>> {
        let at = Instant::now();
        let found = search.search(query)?;
        Ok((at.elapsed().as_micros(), found.matched.unwrap_or(found.hits.len() as u64)))
    };
    let mut words = Vec::new();
    for q in 0..QUERIES {
        let noun = NOUNS[next(32) as usize];
        let text = if q % 2 == 0 {
            noun.to_string()
        } else {
            format!("{} {noun}", ADJECTIVE_WORDS[next(16) as usize])
        };
        words.push(time(&SearchQuery { text, limit: 20, ..Default::default() })?.0);
    }
    println!("{label}: words only:     {}", percentiles(words));
    let mut pages = Vec::new();
    let mut matched = 0;
    for _ in 0..QUERIES {
        let query = SearchQuery {
            category: Some(1 + next(40)),
            attributes: if next(2) == 0 {
                vec![("brand".into(), format!("brand {}", next(16)))]
            } else {
                vec![]
            },
            sort: if next(2) == 0 { Sort::PriceAscending } else { Sort::Relevance },
            facets: true,
            limit: 20,
            ..Default::default()
        };
        let (us, m) = time(&query)?;
        pages.push(us);
        matched += m;
    }
    println!(
        "{label}: category pages: {} ({} matches on average)",
        percentiles(pages),
        matched / QUERIES as u64
    );
    Ok(())
}
