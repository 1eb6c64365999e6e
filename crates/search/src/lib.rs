//! elevens-search: full-text search over SKU titles and descriptions (tantivy, BM25), with
//! filters by merchant, price range, category (a node and its subtree) and attribute values,
//! sorted by relevance or price, and facet counts (categories, merchants, attribute values,
//! the price range) over the matches. The catalogue's structure (categories, products, their
//! attributes, the variants' option values) is kept beside the index in [`catalogue`]: a
//! document names its product and its product's category and carries the numbers of its
//! (name, value) pairs; a category filter asks for the categories of the subtree as the tree is
//! now, so moving a category re-indexes nothing (moving a product re-indexes its variants). The index lives in memory: it is a
//! read model, rebuilt from the recovered state on start ([`Search::from_state`]) and fed new
//! SKUs and edits from the engine's durable events ([`Search::add`], [`Search::replace`]); a
//! committer makes them searchable within a second ([`Search::commit_if_dirty`]). An edit
//! deletes the SKU's document by its id term and adds the new one, so each SKU has exactly one
//! live document whatever its number of edits; the merge policy expunges deleted documents
//! soon, so that they weigh in BM25's statistics (tantivy counts them until merged) only
//! briefly. Stock and sales change with every order, so
//! they are not indexed: the gateway reads them for the candidates from the state itself.
//!
//! Beside it, [`owners`]: whose orders, returns and tickets are whose, the candidates of the
//! lists a store or a buyer works through.

pub mod catalogue;
mod collect;
pub mod owners;
pub mod tokenizer;

pub use collect::{Sort, FACET_DOCS_MAX};

use catalogue::Catalogue;
use collect::{Collect, Tally};
use elevens_core::State;
use elevens_feed::Kind;
use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap as HashMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, RangeQuery, TermQuery, TermSetQuery};
use tantivy::schema::{
    Field, IndexRecordOption, IndexRecordOption as Record, Schema, TextFieldIndexing, TextOptions, FAST,
    INDEXED,
};
use tantivy::tokenizer::{LowerCaser, RemoveLongFilter, TextAnalyzer, TokenStream};
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

/// The most candidates one search returns.
pub const CANDIDATES_MAX: usize = 1_000;
/// The share of a segment's documents that may be deleted (superseded by edits) before the
/// merge policy rewrites it without them: deleted documents still count in BM25's document
/// frequencies and totals until then.
const DELETED_SHARE_BEFORE_MERGE: f32 = 0.01;
/// The most distinct words of one search that count (the rest are left out).
pub const WORDS_MAX: usize = 32;
/// The most attribute filters (name and value) of one search.
pub const ATTRIBUTE_FILTERS_MAX: usize = 16;
/// The most entries a facet lists (categories, merchants, values of one attribute), and the
/// most attributes listed: the most frequent first.
pub const FACET_ENTRIES_MAX: usize = 20;
/// The text fields' tokenizer ([`tokenizer::MarketTokenizer`]), then lower-cased, and words
/// over 40 bytes dropped.
const TOKENIZER: &str = "market";

/// The indexing buffer, in bytes.
const WRITER_BYTES: usize = 50_000_000;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("the search index's writer is being replaced")]
    Settling,
}

/// A SKU as the index sees it.
#[derive(Clone, Debug)]
pub struct SkuDoc {
    pub sku: u64,
    pub merchant: u64,
    pub title: String,
    pub description: String,
    pub price: u64,
}

/// What to look for. An empty `text` matches every SKU (filters only).
#[derive(Clone, Debug, Default)]
pub struct SearchQuery {
    pub text: String,
    pub merchant: Option<u64>,
    pub min_price: Option<u64>,
    pub max_price: Option<u64>,
    /// Only variants of products in this category or under it.
    pub category: Option<u64>,
    /// (name, value): values of one name are alternatives, names are all required.
    pub attributes: Vec<(String, String)>,
    pub sort: Sort,
    /// Count facets over the matches (categories, merchants, attribute values, prices).
    pub facets: bool,
    pub limit: usize,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub sku: u64,
    pub score: f32,
}

/// A search's answer: the best hits, how many SKUs matched (not counted by a words-only search
/// by relevance without facets, which stops early: `None`), and the facets if asked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Found {
    pub hits: Vec<Hit>,
    pub matched: Option<u64>,
    pub facets: Option<Facets>,
}

/// Counts of matching SKUs, the most frequent first, each list at most [`FACET_ENTRIES_MAX`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facets {
    /// The categories one level under the one searched in (the top level without one), each
    /// counting the SKUs in its subtree: (id, name, count).
    pub categories: Vec<(u64, String, u64)>,
    pub merchants: Vec<(u64, u64)>,
    /// Each attribute or option name with its values' counts.
    pub attributes: Vec<(String, Vec<(String, u64)>)>,
    /// The lowest and highest price among the matches.
    pub price: Option<(u64, u64)>,
    /// The matches the counts cover: all of them, or the first [`FACET_DOCS_MAX`].
    pub counted: u64,
}

struct Fields {
    sku: Field,
    merchant: Field,
    price: Field,
    category: Field,
    /// The numbers of the document's (name, value) pairs ([`catalogue`]).
    values: Field,
    title: Field,
    description: Field,
}

pub struct Search {
    index: Index,
    catalogue: RwLock<Catalogue>,
    /// Taken out only while [`Search::settle`] waits for merges (one writer per index).
    writer: Mutex<Option<IndexWriter>>,
    reader: IndexReader,
    fields: Fields,
    dirty: AtomicBool,
}

/// A text field on [`TOKENIZER`], with each word's frequency (BM25's) but not its positions:
/// no query here is a phrase, so positions would be memory per SKU spent for nothing.
fn text() -> TextOptions {
    let indexing = TextFieldIndexing::default().set_tokenizer(TOKENIZER).set_index_option(Record::WithFreqs);
    TextOptions::default().set_indexing_options(indexing)
}

impl Search {
    pub fn new() -> Result<Search, SearchError> {
        let mut schema = Schema::builder();
        // Only what queries need, as memory is per SKU: the id is a column (read for each hit)
        // and a term (what an edit deletes the old document by), the price's range filter runs
        // on its column (an indexed and stored price nearly doubles the index), and the
        // merchant's few terms are indexed. A variant's category (its product's) and the numbers
        // of its (name, value) pairs are terms (the filters) and columns (the facets); merchant
        // and price are columns too, read for each match when a search counts facets.
        let fields = Fields {
            sku: schema.add_u64_field("sku", INDEXED | FAST),
            merchant: schema.add_u64_field("merchant", INDEXED | FAST),
            price: schema.add_u64_field("price", FAST),
            category: schema.add_u64_field("category", INDEXED | FAST),
            values: schema.add_u64_field("values", INDEXED | FAST),
            title: schema.add_text_field("title", text()),
            description: schema.add_text_field("description", text()),
        };
        let index = Index::create_in_ram(schema.build());
        let analyzer = TextAnalyzer::builder(tokenizer::MarketTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .build();
        index.tokenizers().register(TOKENIZER, analyzer);
        let writer = Search::writer(&index)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(Search {
            index,
            catalogue: RwLock::new(Catalogue::default()),
            writer: Mutex::new(Some(writer)),
            reader,
            fields,
            dirty: AtomicBool::new(false),
        })
    }

    /// The index's one writer, one thread, merging segments with deleted documents early.
    fn writer(index: &Index) -> Result<IndexWriter, SearchError> {
        let writer = index.writer_with_num_threads(1, WRITER_BYTES)?;
        let mut policy = tantivy::indexer::LogMergePolicy::default();
        policy.set_del_docs_ratio_before_merge(DELETED_SHARE_BEFORE_MERGE);
        writer.set_merge_policy(Box::new(policy));
        Ok(writer)
    }

    /// Every SKU of the recovered state, searchable at once.
    pub fn from_state(state: &State) -> Result<Search, SearchError> {
        let search = Search::new()?;
        *search.catalogue.write() = Catalogue::from_state(state);
        for (id, sku) in state.skus() {
            search.add(&SkuDoc {
                sku: id.0,
                merchant: sku.merchant().0,
                title: state.sku_title(sku).to_string(),
                description: state.sku_description(sku).to_string(),
                price: sku.price.0,
            })?;
        }
        search.commit_if_dirty()?;
        Ok(search)
    }

    /// Adds a SKU; it becomes searchable at the next commit.
    pub fn add(&self, sku: &SkuDoc) -> Result<(), SearchError> {
        let mut writer = self.writer.lock();
        self.add_with(writer.as_mut().ok_or(SearchError::Settling)?, sku)
    }

    /// The SKU's document: its texts, price and merchant, and, for a variant, its product's
    /// category and title (searched as the SKU's own) and the numbers of its attribute and
    /// option pairs.
    fn add_with(&self, writer: &mut IndexWriter, sku: &SkuDoc) -> Result<(), SearchError> {
        let f = &self.fields;
        let mut doc = TantivyDocument::new();
        doc.add_u64(f.sku, sku.sku);
        doc.add_u64(f.merchant, sku.merchant);
        doc.add_u64(f.price, sku.price);
        doc.add_text(f.title, &sku.title);
        doc.add_text(f.description, &sku.description);
        let catalogue = self.catalogue.read();
        let (product, title, pairs) = catalogue.facts_of_sku(sku.sku).unwrap_or_default();
        doc.add_u64(f.category, catalogue.product(product).map_or(0, |p| p.category));
        if !title.is_empty() {
            doc.add_text(f.title, title);
        }
        for number in pairs {
            doc.add_u64(f.values, number);
        }
        drop(catalogue);
        writer.add_document(doc)?;
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Folds a durable event: a SKU's document added or replaced, the catalogue's structure
    /// changed (a variant's document is replaced, as it gains its product's terms).
    pub fn fold(&self, merchant: Option<u64>, kind: &Kind) -> Result<(), SearchError> {
        let doc = |sku: &u64, title: &String, description: &String, price: &u64| SkuDoc {
            sku: *sku,
            merchant: merchant.unwrap_or_default(),
            title: title.clone(),
            description: description.clone(),
            price: *price,
        };
        match kind {
            Kind::SkuCreated { sku, title, description, price, .. } => {
                self.add(&doc(sku, title, description, price))
            }
            Kind::SkuUpdated { sku, title, description, price, .. } => {
                self.replace(&doc(sku, title, description, price))
            }
            Kind::VariantAdded { product, sku, options, title, description, price, .. } => {
                self.catalogue.write().set_variant(*sku, *product, options);
                self.replace(&doc(sku, title, description, price))
            }
            Kind::ProductCreated { product, title, category, attributes, options } => {
                let attributes: Vec<_> =
                    attributes.iter().map(|a| (a.name.clone(), a.value.clone())).collect();
                self.catalogue.write().set_product(*product, title, *category, &attributes, options.clone());
                Ok(())
            }
            Kind::ProductMoved { product, category, variants } => {
                self.catalogue.write().move_product(*product, *category);
                variants
                    .iter()
                    .try_for_each(|v| self.replace(&doc(&v.sku, &v.title, &v.description, &v.price)))
            }
            Kind::CategoryCreated { category, name, parent } => {
                self.catalogue.write().set_category(*category, name, *parent);
                Ok(())
            }
            Kind::CategoryMoved { category, parent } => {
                self.catalogue.write().move_category(*category, *parent);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Replaces an edited SKU's document at the next commit: every document of the SKU added
    /// before is deleted (tantivy orders a delete after the adds before it and before those
    /// after it), then the new one is added, under one hold of the writer.
    pub fn replace(&self, sku: &SkuDoc) -> Result<(), SearchError> {
        let mut writer = self.writer.lock();
        let writer = writer.as_mut().ok_or(SearchError::Settling)?;
        writer.delete_term(Term::from_field_u64(self.fields.sku, sku.sku));
        self.add_with(writer, sku)
    }

    /// Makes what was added searchable (the committer calls it every few hundred ms).
    pub fn commit_if_dirty(&self) -> Result<(), SearchError> {
        if self.dirty.swap(false, Ordering::AcqRel) {
            self.writer.lock().as_mut().ok_or(SearchError::Settling)?.commit()?;
            self.reader.reload()?;
        }
        Ok(())
    }

    /// The bytes of the searchable index, by tantivy's count of its segments.
    pub fn index_bytes(&self) -> Result<u64, SearchError> {
        let usage = self.reader.searcher().space_usage().map_err(tantivy::TantivyError::from)?;
        Ok(usage.total().get_bytes())
    }

    /// Commits, then waits for the background merges to finish and their old segments to be
    /// dropped: the index at rest, as a measurement of its memory wants it. Adds and commits on
    /// other threads meanwhile wait for the writer's lock (or fail while it is replaced).
    pub fn settle(&self) -> Result<(), SearchError> {
        let mut slot = self.writer.lock();
        let Some(mut writer) = slot.take() else { return Err(SearchError::Settling) };
        writer.commit()?;
        writer.wait_merging_threads()?;
        let writer = Search::writer(&self.index)?;
        self.reader.reload()?;
        // The merged segments' files, now that no searcher holds them.
        writer.garbage_collect_files().wait()?;
        *slot = Some(writer);
        Ok(())
    }

    /// The best matches, by relevance (BM25 over title and description; all words required) or
    /// price, with the facets of every match if asked.
    pub fn search(&self, query: &SearchQuery) -> Result<Found, SearchError> {
        let f = &self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let text = query.text.trim();
        if !text.is_empty() {
            clauses.push((Occur::Must, self.words_query(text)?));
        }
        if let Some(merchant) = query.merchant {
            let term = Term::from_field_u64(f.merchant, merchant);
            clauses.push((Occur::Must, Box::new(TermQuery::new(term, IndexRecordOption::Basic))));
        }
        if query.min_price.is_some() || query.max_price.is_some() {
            let bound = |v: Option<u64>| {
                v.map_or(Bound::Unbounded, |v| Bound::Included(Term::from_field_u64(f.price, v)))
            };
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(bound(query.min_price), bound(query.max_price))),
            ));
        }
        // Values of one name are alternatives; every name is required.
        let mut by_name: Vec<(&str, Vec<Box<dyn Query>>)> = Vec::new();
        for (name, value) in query.attributes.iter().take(ATTRIBUTE_FILTERS_MAX) {
            // A pair no document was ever given matches nothing.
            let one: Box<dyn Query> = match self.catalogue.read().number_of(name, value) {
                Some(n) => {
                    Box::new(TermQuery::new(Term::from_field_u64(f.values, n), IndexRecordOption::Basic))
                }
                None => Box::new(tantivy::query::EmptyQuery),
            };
            match by_name.iter_mut().find(|(n, _)| n == name) {
                Some((_, values)) => values.push(one),
                None => by_name.push((name, vec![one])),
            }
        }
        for (_, values) in by_name {
            let any = values.into_iter().map(|q| (Occur::Should, q)).collect();
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(any))));
        }
        if clauses.is_empty() {
            clauses.push((Occur::Must, Box::new(tantivy::query::AllQuery)));
        }
        if let Some(category) = query.category {
            // The subtree as the tree is now: at most every category.
            let subtree = self.catalogue.read().subtree(category);
            let terms = subtree.into_iter().map(|c| Term::from_field_u64(f.category, c));
            clauses.push((Occur::Must, Box::new(TermSetQuery::new(terms))));
        }
        let searcher = self.reader.searcher();
        let limit = query.limit.clamp(1, CANDIDATES_MAX);
        if query.sort == Sort::Relevance && !text.is_empty() && !query.facets {
            // Words by relevance, nothing to count: tantivy's top-k skips the documents that
            // cannot enter it (block-max WAND), most of them when the words are common.
            let top =
                searcher.search(&BooleanQuery::new(clauses), &TopDocs::with_limit(limit).order_by_score())?;
            let mut skus = SkuColumns::new(&searcher);
            let mut hits = Vec::with_capacity(top.len());
            for (score, address) in top {
                if let Some(sku) = skus.read(address)? {
                    hits.push(Hit { sku, score });
                }
            }
            // Equal scores to the lower SKU id, as the collector ranks them.
            hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.sku.cmp(&b.sku)));
            return Ok(Found { hits, matched: None, facets: None });
        }
        let collect = Collect {
            limit,
            sort: query.sort,
            scoring: query.sort == Sort::Relevance && !text.is_empty(),
            facets: query.facets,
        };
        let collected = searcher.search(&BooleanQuery::new(clauses), &collect)?;
        let hits = collected.top.into_iter().map(|(sku, score)| Hit { sku, score }).collect();
        let facets = collected.tally.map(|tally| self.facets(tally, query.category));
        Ok(Found { hits, matched: Some(collected.matched), facets })
    }

    /// The facets of a tally, read against the catalogue as it is now.
    fn facets(&self, tally: Tally, within: Option<u64>) -> Facets {
        let catalogue = self.catalogue.read();
        let mut categories: HashMap<u64, u64> = HashMap::default();
        for (&category, &n) in &tally.categories {
            // Rolled up to the level under `within` (or the top), as the tree is now.
            let path: Vec<u64> = catalogue.path_up(category).collect();
            let shown = match within {
                Some(root) => {
                    path.iter().position(|&c| c == root).and_then(|i| i.checked_sub(1)).map(|i| path[i])
                }
                None => path.last().copied(),
            };
            if let Some(category) = shown {
                *categories.entry(category).or_default() += u64::from(n);
            }
        }
        // (name, its values' counts, their sum).
        type Named = (String, Vec<(String, u64)>, u64);
        let mut attributes: Vec<Named> = Vec::new();
        for (&number, &n) in &tally.values {
            let Some((name, value)) = catalogue.pair(number) else { continue };
            let n = u64::from(n);
            match attributes.iter_mut().find(|(a, _, _)| a == name) {
                Some((_, list, total)) => {
                    list.push((value.clone(), n));
                    *total += n;
                }
                None => attributes.push((name.clone(), vec![(value.clone(), n)], n)),
            }
        }
        attributes.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        attributes.truncate(FACET_ENTRIES_MAX);
        let name = |id: u64| catalogue.category(id).map(|c| c.name.clone()).unwrap_or_default();
        Facets {
            categories: most(categories).into_iter().map(|(id, n)| (id, name(id), n)).collect(),
            merchants: most(tally.merchants.into_iter().map(|(m, n)| (m, u64::from(n))).collect()),
            attributes: attributes
                .into_iter()
                .map(|(name, list, _)| {
                    let mut list = list;
                    list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                    list.truncate(FACET_ENTRIES_MAX);
                    (name, list)
                })
                .collect(),
            price: tally.price,
            counted: tally.counted,
        }
    }

    /// Every word of `text` required, in the title (weighing double) or the description. The
    /// words are cut by the fields' own tokenizer: what people type is only ever words, never
    /// tantivy's query language (`title:*`, ranges, fields that are not text), so no input can
    /// make the search fail. A text with no word in it matches nothing.
    fn words_query(&self, text: &str) -> Result<Box<dyn Query>, SearchError> {
        let f = &self.fields;
        let mut tokenizer = self.index.tokenizer_for_field(f.title)?;
        let mut stream = tokenizer.token_stream(text);
        let mut words: Vec<String> = Vec::new();
        while stream.advance() {
            let word = &stream.token().text;
            if words.len() < WORDS_MAX && !words.contains(word) {
                words.push(word.clone());
            }
        }
        if words.is_empty() {
            return Ok(Box::new(tantivy::query::EmptyQuery));
        }
        let term = |field, word: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(Term::from_field_text(field, word), IndexRecordOption::WithFreqs))
        };
        let clauses = words
            .iter()
            .map(|word| {
                let either: Box<dyn Query> = Box::new(BooleanQuery::new(vec![
                    (Occur::Should, Box::new(BoostQuery::new(term(f.title, word), 2.0))),
                    (Occur::Should, term(f.description, word)),
                ]));
                (Occur::Must, either)
            })
            .collect();
        Ok(Box::new(BooleanQuery::new(clauses)))
    }

    /// The SKUs searchable (live documents: one per SKU).
    pub fn documents(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The searchable segments: a query looks each of its words up in every one.
    pub fn segments(&self) -> usize {
        self.reader.searcher().segment_readers().len()
    }

    /// Documents deleted by edits and not yet merged away (a query still walks them).
    pub fn deleted_documents(&self) -> u64 {
        let searcher = self.reader.searcher();
        searcher.segment_readers().iter().map(|s| u64::from(s.num_deleted_docs())).sum()
    }
}

/// The SKU column of each segment a hit is in, opened once per search.
struct SkuColumns<'a> {
    searcher: &'a Searcher,
    segments: Vec<Option<tantivy::columnar::Column<u64>>>,
}

impl<'a> SkuColumns<'a> {
    fn new(searcher: &'a Searcher) -> SkuColumns<'a> {
        SkuColumns { searcher, segments: vec![None; searcher.segment_readers().len()] }
    }

    fn read(&mut self, address: DocAddress) -> Result<Option<u64>, SearchError> {
        let Some(slot) = self.segments.get_mut(address.segment_ord as usize) else { return Ok(None) };
        if slot.is_none() {
            *slot = Some(self.searcher.segment_reader(address.segment_ord).fast_fields().u64("sku")?);
        }
        Ok(slot.as_ref().and_then(|sku| sku.first(address.doc_id)))
    }
}

/// The most frequent [`FACET_ENTRIES_MAX`] of `counts`, ties by id.
fn most(counts: HashMap<u64, u64>) -> Vec<(u64, u64)> {
    let mut counts: Vec<(u64, u64)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    counts.truncate(FACET_ENTRIES_MAX);
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sku(sku: u64, merchant: u64, title: &str, description: &str, price: u64) -> SkuDoc {
        SkuDoc { sku, merchant, title: title.into(), description: description.into(), price }
    }

    #[test]
    fn finds_by_words_filters_and_sees_new_skus_after_a_commit() {
        let search = Search::new().unwrap();
        search.add(&sku(1, 1, "Smart phone X", "a phone with a big screen", 399_900)).unwrap();
        search.add(&sku(2, 2, "Phone case", "fits phone X", 9_900)).unwrap();
        search.add(&sku(3, 1, "Rice cooker", "cooks rice; not a phone", 59_900)).unwrap();
        assert!(
            search
                .search(&SearchQuery { text: "phone".into(), limit: 10, ..Default::default() })
                .unwrap()
                .hits
                .is_empty(),
            "not committed yet"
        );
        search.commit_if_dirty().unwrap();
        let q = |text: &str| SearchQuery { text: text.into(), limit: 10, ..Default::default() };
        let hits: Vec<u64> = search.search(&q("phone")).unwrap().hits.iter().map(|h| h.sku).collect();
        assert_eq!(hits.len(), 3);
        assert!(hits[..2].contains(&1) && hits[..2].contains(&2), "titles weigh more: {hits:?}");
        assert_eq!(
            search.search(&q("rice cooker")).unwrap().hits.iter().map(|h| h.sku).collect::<Vec<_>>(),
            [3]
        );
        let cheap = SearchQuery { max_price: Some(10_000), ..q("phone") };
        assert_eq!(search.search(&cheap).unwrap().hits.iter().map(|h| h.sku).collect::<Vec<_>>(), [2]);
        let of_merchant_1 = SearchQuery { merchant: Some(1), min_price: Some(100_000), ..q("") };
        assert_eq!(
            search.search(&of_merchant_1).unwrap().hits.iter().map(|h| h.sku).collect::<Vec<_>>(),
            [1]
        );
        assert_eq!(
            search.search(&q("\"unbalanced AND (")).unwrap().hits.len(),
            0,
            "odd input is not an error"
        );
        // Query syntax is words like any other: no field, wildcard or range reaches tantivy.
        for odd in ["title:*", "description:*", "merchant:*", "price:[1 TO 2]", "sku:1", "*", "-", "\\"] {
            assert!(search.search(&q(odd)).is_ok(), "{odd}");
        }
        assert_eq!(search.search(&q("title:phone")).unwrap().hits.len(), 0, "the word 'title' is in no SKU");
        assert_eq!(
            search.search(&q("PHONE, cooker!")).unwrap().hits.iter().map(|h| h.sku).collect::<Vec<_>>(),
            [3]
        );
        assert_eq!(search.documents(), 3);
    }

    /// An edited SKU is found by its new words and price from the commit after the edit, by its
    /// old ones until then, and once however often it was edited; other SKUs are unaffected.
    #[test]
    fn an_edited_sku_is_found_as_it_is_now_and_only_once() {
        let search = Search::new().unwrap();
        search.add(&sku(1, 1, "red kettle", "steel", 5_000)).unwrap();
        search.add(&sku(2, 1, "red teapot", "clay", 9_000)).unwrap();
        search.commit_if_dirty().unwrap();
        let q = |text: &str| SearchQuery { text: text.into(), limit: 10, ..Default::default() };
        let ids = |query: SearchQuery| {
            search.search(&query).unwrap().hits.iter().map(|h| h.sku).collect::<Vec<_>>()
        };
        search.replace(&sku(1, 1, "blue kettle", "steel", 20_000)).unwrap();
        assert_eq!(ids(q("red kettle")), [1], "before the commit, the SKU as it was");
        search.commit_if_dirty().unwrap();
        assert_eq!(ids(q("red kettle")), Vec::<u64>::new(), "its old words no longer find it");
        assert_eq!(ids(q("blue kettle")), [1]);
        let mut red = ids(q("red"));
        red.sort_unstable();
        assert_eq!(red, [2]);
        assert_eq!(ids(SearchQuery { max_price: Some(10_000), ..q("") }), [2], "its old price is gone too");
        for price in [21_000, 22_000, 23_000] {
            search.replace(&sku(1, 1, "blue kettle", "steel", price)).unwrap();
            search.commit_if_dirty().unwrap();
        }
        assert_eq!(ids(q("kettle")), [1], "one hit, however many documents it had");
        // Two edits between commits: the later one is the SKU.
        search.replace(&sku(1, 1, "green kettle", "steel", 23_000)).unwrap();
        search.replace(&sku(1, 1, "black kettle", "steel", 23_000)).unwrap();
        search.commit_if_dirty().unwrap();
        assert_eq!(ids(q("green")), Vec::<u64>::new());
        assert_eq!(ids(q("black kettle")), [1]);
        assert_eq!(ids(SearchQuery { min_price: Some(23_000), ..q("") }), [1]);
        assert_eq!(ids(SearchQuery { limit: 1, ..q("") }).len(), 1);
        assert_eq!(search.documents(), 2);
    }

    /// A repricing bot's hour on 11.11: one SKU edited 1,000 times. Every SKU that matches is
    /// still found, once, and ranked as a fresh index of the same SKUs ranks it.
    #[test]
    fn search_loses_skus_after_many_edits() {
        let catalogue: Vec<SkuDoc> = (1..=20)
            .map(|i| {
                let words = ["steel", "glass", "red", "quiet", "fast"][..(i as usize % 5) + 1].join(" ");
                sku(
                    i,
                    1 + i % 3,
                    &format!("electric kettle {words}"),
                    &"boils water ".repeat(i as usize % 4),
                    1_000 + i,
                )
            })
            .collect();
        let search = Search::new().unwrap();
        catalogue.iter().for_each(|doc| search.add(doc).unwrap());
        search.commit_if_dirty().unwrap();
        let mut edited = catalogue[0].clone();
        for price in 0..1_000u64 {
            edited.price = 5_000 + price;
            search.replace(&edited).unwrap();
            if price % 10 == 9 {
                search.commit_if_dirty().unwrap(); // the committer, every few hundred ms
            }
        }
        search.commit_if_dirty().unwrap();
        let q = SearchQuery { text: "kettle".into(), limit: 100, ..Default::default() };
        let hits = search.search(&q).unwrap().hits;
        let mut ids: Vec<u64> = hits.iter().map(|h| h.sku).collect();
        ids.sort_unstable();
        assert_eq!(ids, (1..=20).collect::<Vec<_>>(), "every kettle, once");
        assert_eq!(search.documents(), 20);
        let priced = SearchQuery { min_price: Some(5_999), ..q.clone() };
        assert_eq!(search.search(&priced).unwrap().hits.iter().map(|h| h.sku).collect::<Vec<_>>(), [1]);
        // Ranking does not depend on the edit history: as a fresh index of the same SKUs.
        let fresh = Search::new().unwrap();
        catalogue.iter().skip(1).chain([&edited]).for_each(|doc| fresh.add(doc).unwrap());
        fresh.commit_if_dirty().unwrap();
        search.settle().unwrap();
        assert_eq!(search.deleted_documents(), 0, "merges expunged the superseded documents");
        let (now, expected) = (search.search(&q).unwrap().hits, fresh.search(&q).unwrap().hits);
        for (a, b) in now.iter().zip(&expected) {
            assert!((a.score - b.score).abs() <= 1e-4 * b.score, "{now:?} against {expected:?}");
        }
        let order = |hits: &[Hit]| hits.iter().map(|h| (h.sku, (h.score * 1e4) as i64)).collect::<Vec<_>>();
        let (mut a, mut b) = (order(&now), order(&expected));
        a.sort_by_key(|(sku, score)| (-score, *sku));
        b.sort_by_key(|(sku, score)| (-score, *sku));
        assert_eq!(a, b);
    }

    /// A small bilingual catalogue, searched as shoppers would: the obvious query finds the
    /// obvious SKU first, in Chinese written without spaces, in English, and mixed.
    #[test]
    fn chinese_is_segmented_and_english_and_numbers_still_work() {
        let search = Search::new().unwrap();
        let catalogue = [
            (1, "华为智能手机旗舰版", "5G 全网通 256GB 曲面屏"),
            (2, "小米智能手表", "心率监测 长续航"),
            (3, "手机壳 适用于华为", "防摔 硅胶"),
            (4, "Apple iPhone 15 Pro 智能手机", "钛金属 256GB"),
            (5, "美的电饭煲 家用", "智能预约 4L"),
            (6, "Rice cooker 4L", "non-stick, 电饭锅"),
            (7, "ソニー ワイヤレスヘッドホン", "ノイズキャンセリング"),
        ];
        for (id, title, description) in catalogue {
            search.add(&sku(id, 1, title, description, 100)).unwrap();
        }
        search.commit_if_dirty().unwrap();
        let hits = |text: &str| -> Vec<u64> {
            let q = SearchQuery { text: text.into(), limit: 10, ..Default::default() };
            search.search(&q).unwrap().hits.iter().map(|h| h.sku).collect()
        };
        assert_eq!(hits("智能手机").first(), Some(&1), "{:?}", hits("智能手机"));
        assert!(hits("智能手机").contains(&4));
        assert!(!hits("智能手机").contains(&2), "a smart watch is not a smartphone");
        // Both the phone and its case have Huawei and phone in their titles; BM25 ranks the
        // shorter title first, so this asks only that both are found.
        let huawei = hits("华为手机");
        assert!(huawei.len() == 2 && huawei.contains(&1) && huawei.contains(&3), "{huawei:?}");
        assert_eq!(hits("手机壳"), vec![3]);
        assert_eq!(hits("电饭煲"), vec![5]);
        assert_eq!(hits("iphone 15"), vec![4], "English and numbers, any case");
        assert_eq!(hits("256GB").len(), 2);
        assert_eq!(hits("rice cooker"), vec![6]);
        assert_eq!(hits("ヘッドホン"), vec![7], "{:?}", hits("ヘッドホン"));
        assert!(hits("，。！").is_empty(), "punctuation alone matches nothing");
    }
}
