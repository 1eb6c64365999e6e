//! One pass over a query's matches: the best `limit` by relevance or price (ties to the lower
//! SKU id, so an order never depends on when a document was written), and the tallies the facets
//! are counted from. Tallies stop after [`FACET_DOCS_MAX`] documents, so a query that
//! matches everything costs bounded memory; the answer then says its counts are partial.

use rustc_hash::FxHashMap as HashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

/// The most matching documents the facets are counted over.
pub const FACET_DOCS_MAX: u64 = 200_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    /// BM25 over titles and descriptions; with no words, by SKU id.
    #[default]
    Relevance,
    PriceAscending,
    PriceDescending,
}

pub(crate) struct Collect {
    pub limit: usize,
    pub sort: Sort,
    pub scoring: bool,
    pub facets: bool,
}

/// What the facets are counted from.
#[derive(Default)]
pub(crate) struct Tally {
    pub counted: u64,
    /// Matching documents per category (documents in none are not here), per merchant, and
    /// per (name, value) pair by its number.
    pub categories: HashMap<u64, u32>,
    pub merchants: HashMap<u64, u32>,
    pub values: HashMap<u64, u32>,
    pub price: Option<(u64, u64)>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        let room = FACET_DOCS_MAX.saturating_sub(self.counted);
        if other.counted > room {
            // Past the bound: the segments' tallies are not cut to fit, only not added.
            return;
        }
        self.counted += other.counted;
        for (k, n) in other.categories {
            *self.categories.entry(k).or_default() += n;
        }
        for (k, n) in other.merchants {
            *self.merchants.entry(k).or_default() += n;
        }
        for (k, n) in other.values {
            *self.values.entry(k).or_default() += n;
        }
        self.price = match (self.price, other.price) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (a, b) => a.or(b),
        };
    }
}

pub(crate) struct Collected {
    /// (SKU, score), best first.
    pub top: Vec<(u64, Score)>,
    pub matched: u64,
    pub tally: Option<Tally>,
}

/// A candidate: its sort key (higher is better), then its SKU (lower is better on a tie).
type Ranked = (u64, Reverse<u64>);

pub(crate) struct SegmentCollect {
    limit: usize,
    sort: Sort,
    sku: Column<u64>,
    category: Column<u64>,
    values: Column<u64>,
    merchant: Column<u64>,
    price: Column<u64>,
    /// The best `limit` so far, worst on top.
    best: BinaryHeap<Reverse<(Ranked, u32)>>,
    matched: u64,
    tally: Option<Tally>,
}

impl Collector for Collect {
    type Fruit = Collected;
    type Child = SegmentCollect;

    fn for_segment(&self, _: SegmentOrdinal, reader: &SegmentReader) -> tantivy::Result<SegmentCollect> {
        let fast = reader.fast_fields();
        Ok(SegmentCollect {
            limit: self.limit,
            sort: self.sort,
            sku: fast.u64("sku")?,
            category: fast.u64("category")?,
            values: fast.u64("values")?,
            merchant: fast.u64("merchant")?,
            price: fast.u64("price")?,
            best: BinaryHeap::with_capacity(self.limit + 1),
            matched: 0,
            tally: self.facets.then(Tally::default),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.scoring
    }

    fn merge_fruits(&self, fruits: Vec<SegmentFruit>) -> tantivy::Result<Collected> {
        let mut all: Vec<(Ranked, Score)> = Vec::new();
        let mut matched = 0;
        let mut tally = self.facets.then(Tally::default);
        for fruit in fruits {
            all.extend(fruit.best);
            matched += fruit.matched;
            if let (Some(into), Some(from)) = (tally.as_mut(), fruit.tally) {
                into.merge(from);
            }
        }
        all.sort_unstable_by_key(|a| Reverse(a.0));
        all.truncate(self.limit);
        Ok(Collected {
            top: all.into_iter().map(|((_, Reverse(sku)), score)| (sku, score)).collect(),
            matched,
            tally,
        })
    }
}

pub(crate) struct SegmentFruit {
    best: Vec<(Ranked, Score)>,
    matched: u64,
    tally: Option<Tally>,
}

impl SegmentCollector for SegmentCollect {
    type Fruit = SegmentFruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        self.matched += 1;
        let price = || self.price.first(doc).unwrap_or(0);
        let key = match self.sort {
            // BM25 scores are not negative: their bits order as they do.
            Sort::Relevance => u64::from(score.max(0.0).to_bits()),
            Sort::PriceAscending => u64::MAX - price(),
            Sort::PriceDescending => price(),
        };
        // The SKU is read only for a candidate that may enter the best.
        let full = self.best.len() >= self.limit;
        if !full || self.best.peek().is_some_and(|Reverse(((worst, _), _))| key >= *worst) {
            let ranked = (key, Reverse(self.sku.first(doc).unwrap_or(0)));
            if !full {
                self.best.push(Reverse((ranked, score.to_bits())));
            } else if self.best.peek().is_some_and(|Reverse((worst, _))| ranked > *worst) {
                self.best.pop();
                self.best.push(Reverse((ranked, score.to_bits())));
            }
        }
        if let Some(tally) = self.tally.as_mut().filter(|t| t.counted < FACET_DOCS_MAX) {
            tally.counted += 1;
            if let Some(merchant) = self.merchant.first(doc) {
                *tally.merchants.entry(merchant).or_default() += 1;
            }
            let category = self.category.first(doc).unwrap_or(0);
            if category != 0 {
                *tally.categories.entry(category).or_default() += 1;
            }
            for number in self.values.values_for_doc(doc) {
                *tally.values.entry(number).or_default() += 1;
            }
            let price = price();
            tally.price = Some(tally.price.map_or((price, price), |(lo, hi)| (lo.min(price), hi.max(price))));
        }
    }

    fn harvest(self) -> SegmentFruit {
        let best =
            self.best.into_iter().map(|Reverse((ranked, score))| (ranked, Score::from_bits(score))).collect();
        SegmentFruit { best, matched: self.matched, tally: self.tally }
    }
}
