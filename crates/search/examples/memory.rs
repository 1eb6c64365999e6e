//! Where the search index's memory goes: RSS and tantivy's own count of the index's bytes,
//! after indexing N and then 2N SKUs titled as the bench titles them (`red kettle 42`).
//!
//! `cargo run --release -p elevens-search --example memory -- [N]`. mimalloc keeps freed pages
//! a while before it returns them: `MIMALLOC_PURGE_DELAY=0` counts only what is held (one run:
//! 61 B per SKU of RSS by default, 11 B with it, against 18.5 B of index by tantivy's count).

use elevens_search::{Search, SkuDoc};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

const ADJECTIVES: [&str; 4] = ["red", "blue", "green", "black"];
const NOUNS: [&str; 4] = ["phone", "kettle", "lamp", "jacket"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let search = Search::new()?;
    let add = |range: std::ops::Range<u64>| -> Result<(), Box<dyn std::error::Error>> {
        for i in range {
            let title = format!("{} {} {i}", ADJECTIVES[(i % 4) as usize], NOUNS[(i / 4 % 4) as usize]);
            search.add(&SkuDoc {
                sku: i + 1,
                merchant: i % 100 + 1,
                title,
                description: String::new(),
                price: 100 + i % 1000,
            })?;
            if i % 100_000 == 99_999 {
                search.commit_if_dirty()?;
            }
        }
        search.settle()?;
        Ok(())
    };
    let start = rss_bytes();
    add(0..n)?;
    let (half, half_index) = (rss_bytes(), search.index_bytes()?);
    add(n..2 * n)?;
    let (full, full_index) = (rss_bytes(), search.index_bytes()?);
    println!("start {start} B; after {n}: rss +{} B, index {half_index} B", half - start);
    println!("after {}: rss +{} B, index {full_index} B", 2 * n, full - start);
    println!(
        "second half per SKU: rss {:.1} B, index {:.1} B",
        (full - half) as f64 / n as f64,
        (full_index - half_index) as f64 / n as f64
    );
    Ok(())
}
