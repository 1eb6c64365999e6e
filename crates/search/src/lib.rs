//! elevens-search: full-text search over SKU titles and descriptions (tantivy, BM25), with
//! filters by merchant and price range as indexed fields. The index lives in memory: it is a
//! read model, rebuilt from the recovered state on start ([`Search::from_state`]) and fed new
//! SKUs and edits from the engine's durable events ([`Search::add`], [`Search::replace`]); a
//! committer makes them searchable within a second ([`Search::commit_if_dirty`]). Stock and sales change with every order, so
//! they are not indexed: the gateway reads them for the candidates from the state itself.

pub mod tokenizer;

use elevens_core::State;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, IndexRecordOption as Record, Schema, TextFieldIndexing, TextOptions, FAST,
    INDEXED,
};
use tantivy::tokenizer::{LowerCaser, RemoveLongFilter, TextAnalyzer, TokenStream};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, Term};
use tantivy::{DocAddress, Searcher};

/// The most candidates one search returns.
pub const CANDIDATES_MAX: usize = 1_000;
/// The most superseded documents one search reads past, beyond the hits it returns (see
/// [`Search::replace`]).
pub const SUPERSEDED_READ_MAX: usize = 1_000;
/// The most distinct words of one search that count (the rest are left out).
pub const WORDS_MAX: usize = 32;
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
    pub limit: usize,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub sku: u64,
    pub score: f32,
}

struct Fields {
    sku: Field,
    generation: Field,
    merchant: Field,
    price: Field,
    title: Field,
    description: Field,
}

pub struct Search {
    index: Index,
    /// Taken out only while [`Search::settle`] waits for merges (one writer per index).
    writer: Mutex<Option<IndexWriter>>,
    reader: IndexReader,
    fields: Fields,
    dirty: AtomicBool,
    /// Edits: each edited SKU's current generation as of the last commit (what searches compare
    /// with; a SKU never edited is absent, generation 0), the generations given since (made
    /// visible by the next commit), and how many documents edits have superseded.
    visible: RwLock<HashMap<u64, u64>>,
    pending: Mutex<HashMap<u64, u64>>,
    superseded: AtomicU64,
}

/// A text field as `TEXT` is, on [`TOKENIZER`].
fn text() -> TextOptions {
    let indexing =
        TextFieldIndexing::default().set_tokenizer(TOKENIZER).set_index_option(Record::WithFreqsAndPositions);
    TextOptions::default().set_indexing_options(indexing)
}

impl Search {
    pub fn new() -> Result<Search, SearchError> {
        let mut schema = Schema::builder();
        // Only what queries need, as memory is per SKU: the id and the document's generation
        // are columns only (a term per id, which `delete_term` would need, costs 5.5 bytes per
        // SKU; the generation column is constant, so nearly free, until SKUs are edited), and
        // the price's range filter runs on its column too (an indexed and stored price nearly
        // doubles the index); the merchant's few terms stay indexed.
        let fields = Fields {
            sku: schema.add_u64_field("sku", FAST),
            generation: schema.add_u64_field("generation", FAST),
            merchant: schema.add_u64_field("merchant", INDEXED),
            price: schema.add_u64_field("price", FAST),
            title: schema.add_text_field("title", text()),
            description: schema.add_text_field("description", text()),
        };
        let index = Index::create_in_ram(schema.build());
        let analyzer = TextAnalyzer::builder(tokenizer::MarketTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .build();
        index.tokenizers().register(TOKENIZER, analyzer);
        let writer = index.writer_with_num_threads(1, WRITER_BYTES)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(Search {
            index,
            writer: Mutex::new(Some(writer)),
            reader,
            fields,
            dirty: AtomicBool::new(false),
            visible: RwLock::default(),
            pending: Mutex::default(),
            superseded: AtomicU64::new(0),
        })
    }

    /// Every SKU of the recovered state, searchable at once.
    pub fn from_state(state: &State) -> Result<Search, SearchError> {
        let search = Search::new()?;
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
        self.add_generation(sku, 0)
    }

    fn add_generation(&self, sku: &SkuDoc, generation: u64) -> Result<(), SearchError> {
        let f = &self.fields;
        let mut writer = self.writer.lock();
        writer.as_mut().ok_or(SearchError::Settling)?.add_document(doc!(
            f.sku => sku.sku,
            f.generation => generation,
            f.merchant => sku.merchant,
            f.price => sku.price,
            f.title => sku.title.as_str(),
            f.description => sku.description.as_str(),
        ))?;
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Replaces an edited SKU's document at the next commit: the new one is added under the
    /// SKU's next generation, and from that commit on every search drops the documents of older
    /// generations (they stay in the index until it is rebuilt, at the next start; each search
    /// reads past at most [`SUPERSEDED_READ_MAX`] of them).
    pub fn replace(&self, sku: &SkuDoc) -> Result<(), SearchError> {
        // Held until the document is added, and by a commit throughout: a commit makes a
        // generation visible only with its document, and no generation is given twice.
        let mut pending = self.pending.lock();
        let current = pending.get(&sku.sku).or(self.visible.read().get(&sku.sku)).copied().unwrap_or(0);
        self.superseded.fetch_add(1, Ordering::Release);
        self.add_generation(sku, current + 1)?;
        pending.insert(sku.sku, current + 1);
        Ok(())
    }

    /// Makes what was added searchable (the committer calls it every few hundred ms).
    pub fn commit_if_dirty(&self) -> Result<(), SearchError> {
        if self.dirty.swap(false, Ordering::AcqRel) {
            // Every pending edit's document is in this commit (an edit holds this lock while it
            // adds it): searches compare with their generations once the reader shows it, and
            // until then saw the old documents, as they should.
            let mut pending = self.pending.lock();
            self.writer.lock().as_mut().ok_or(SearchError::Settling)?.commit()?;
            self.reader.reload()?;
            self.visible.write().extend(pending.drain());
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
        let writer = self.index.writer_with_num_threads(1, WRITER_BYTES)?;
        self.reader.reload()?;
        // The merged segments' files, now that no searcher holds them.
        writer.garbage_collect_files().wait()?;
        *slot = Some(writer);
        Ok(())
    }

    /// The best matches, by relevance (BM25 over title and description; all words required).
    pub fn search(&self, query: &SearchQuery) -> Result<Vec<Hit>, SearchError> {
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
        if clauses.is_empty() {
            clauses.push((Occur::Must, Box::new(tantivy::query::AllQuery)));
        }
        let searcher = self.reader.searcher();
        let limit = query.limit.clamp(1, CANDIDATES_MAX);
        // Superseded documents of edited SKUs may be among the best: read past them.
        // (Counted before an edit's document is added, so a search that reads 0 sees none.)
        let superseded = usize::try_from(self.superseded.load(Ordering::Acquire)).unwrap_or(usize::MAX);
        let wanted = limit + superseded.min(SUPERSEDED_READ_MAX);
        let top =
            searcher.search(&BooleanQuery::new(clauses), &TopDocs::with_limit(wanted).order_by_score())?;
        // With no edit ever, each SKU has one document: no generation to read, nothing twice.
        let edited = superseded > 0;
        let visible = self.visible.read();
        let mut ids = IdColumns::new(&searcher, edited);
        let mut seen = HashSet::with_capacity(if edited { top.len() } else { 0 });
        let mut hits = Vec::with_capacity(limit);
        for (score, address) in top {
            let Some((sku, generation)) = ids.read(address)? else { continue };
            // Only a SKU's current document, once (a commit shows the new one a moment before
            // its generation is the current one).
            let current =
                !edited || (visible.get(&sku).copied().unwrap_or(0) == generation && seen.insert(sku));
            if current {
                hits.push(Hit { sku, score });
                if hits.len() == limit {
                    break;
                }
            }
        }
        Ok(hits)
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

    /// The SKUs searchable (documents less those edits superseded).
    pub fn documents(&self) -> u64 {
        let superseded = self.visible.read().values().sum::<u64>();
        self.reader.searcher().num_docs().saturating_sub(superseded)
    }
}

/// The id column (and the generation's, if asked) of each segment a hit is in, opened once per
/// search.
struct IdColumns<'a> {
    searcher: &'a Searcher,
    with_generation: bool,
    segments: Vec<Option<(Column, Option<Column>)>>,
}

type Column = tantivy::columnar::Column<u64>;

impl<'a> IdColumns<'a> {
    fn new(searcher: &'a Searcher, with_generation: bool) -> IdColumns<'a> {
        IdColumns { searcher, with_generation, segments: vec![None; searcher.segment_readers().len()] }
    }

    /// The document's SKU and generation (0 unless asked for).
    fn read(&mut self, address: DocAddress) -> Result<Option<(u64, u64)>, SearchError> {
        let Some(slot) = self.segments.get_mut(address.segment_ord as usize) else { return Ok(None) };
        if slot.is_none() {
            let fields = self.searcher.segment_reader(address.segment_ord).fast_fields();
            let generation = if self.with_generation { Some(fields.u64("generation")?) } else { None };
            *slot = Some((fields.u64("sku")?, generation));
        }
        Ok(slot.as_ref().and_then(|(sku, generation)| {
            let generation = match generation {
                Some(column) => column.first(address.doc_id)?,
                None => 0,
            };
            Some((sku.first(address.doc_id)?, generation))
        }))
    }
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
                .is_empty(),
            "not committed yet"
        );
        search.commit_if_dirty().unwrap();
        let q = |text: &str| SearchQuery { text: text.into(), limit: 10, ..Default::default() };
        let hits: Vec<u64> = search.search(&q("phone")).unwrap().iter().map(|h| h.sku).collect();
        assert_eq!(hits.len(), 3);
        assert!(hits[..2].contains(&1) && hits[..2].contains(&2), "titles weigh more: {hits:?}");
        assert_eq!(search.search(&q("rice cooker")).unwrap().iter().map(|h| h.sku).collect::<Vec<_>>(), [3]);
        let cheap = SearchQuery { max_price: Some(10_000), ..q("phone") };
        assert_eq!(search.search(&cheap).unwrap().iter().map(|h| h.sku).collect::<Vec<_>>(), [2]);
        let of_merchant_1 = SearchQuery { merchant: Some(1), min_price: Some(100_000), ..q("") };
        assert_eq!(search.search(&of_merchant_1).unwrap().iter().map(|h| h.sku).collect::<Vec<_>>(), [1]);
        assert_eq!(search.search(&q("\"unbalanced AND (")).unwrap().len(), 0, "odd input is not an error");
        // Query syntax is words like any other: no field, wildcard or range reaches tantivy.
        for odd in ["title:*", "description:*", "merchant:*", "price:[1 TO 2]", "sku:1", "*", "-", "\\"] {
            assert!(search.search(&q(odd)).is_ok(), "{odd}");
        }
        assert_eq!(search.search(&q("title:phone")).unwrap().len(), 0, "the word 'title' is in no SKU");
        assert_eq!(
            search.search(&q("PHONE, cooker!")).unwrap().iter().map(|h| h.sku).collect::<Vec<_>>(),
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
        let ids =
            |query: SearchQuery| search.search(&query).unwrap().iter().map(|h| h.sku).collect::<Vec<_>>();
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
            search.search(&q).unwrap().iter().map(|h| h.sku).collect()
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
