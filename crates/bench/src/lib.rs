//! elevens-bench: the 11.11 workloads of the brief (§6), seeded so that two runs offer the same
//! work, with latency percentiles (HdrHistogram) and the invariant checks run against the target
//! itself at the end.
//!
//! Modes: `in-process` drives the real engine (sequencer, journal thread, fsync'd group commit)
//! through its submission queue, no network; `http` sends one command per request over
//! keep-alive connections; `http-batch` sends batches to `POST /v1/batch`. The HTTP server runs
//! in this process on loopback, on the same engine, so the load generator shares the machine,
//! as the brief asks. Performance is shown here, never in tests.

pub mod budget;
mod driver;
pub mod facets;
pub mod fulfil;
mod open_loop;
pub mod peers;
pub mod spike;

use driver::sku_title;
pub use driver::{Answer, Driver, Op};

use anyhow::{bail, Context};
use elevens_core::{Actor, Command, NewCampaign, NewRedPacket, NewSku, Sponsor};
use elevens_core::{Amount, BuyerId, Currency, MerchantId, Millis, RedPacketId, SkuId};
use elevens_http::auth::{hash_secret, new_secret};
use elevens_http::config::Config;
use elevens_http::engine::{now_ms, Engine, EngineHandle, Item, ItemResult, Reply, ReplyWith};
use elevens_http::gate::Gate;
use elevens_http::seam::Commands;
use elevens_http::views::{Query, View};
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The hot SKU's stock and campaign quantity (BRIEF §6).
pub const HOT_UNITS: u64 = 10_000;
/// The Zipf(1.1) tail of the flash workload.
pub const TAIL_SKUS_DEFAULT: u64 = 100_000;
const MERCHANTS: u64 = 100;
const SETUP_BATCH_COMMANDS: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    InProcess,
    Http,
    HttpBatch,
}

/// How `http-batch` encodes elevens' batches: `POST /v1/batch/binary` (postcard commands,
/// answered with outcomes) or `POST /v1/batch` (JSON, answered with views).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BatchEncoding {
    #[default]
    Binary,
    Json,
}

/// What is measured: elevens, a peer, or the bare HTTP ceiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    Elevens,
    Postgres,
    RedisAlways,
    RedisEverysec,
    /// A bare hyper "hello" server (mode http only).
    HyperHello,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    Flash,
    Redpacket,
    /// Flash, closed loop to find the capacity, then open loop with a 10x spike.
    Spike,
    /// The flash marketplace's everyday traffic: browse and search 80%, order 15%, pay 5%.
    Mixed,
    /// Flash with warehouses, a carrier and addresses behind it; then every paid order is
    /// dispatched, tracked through four events and delivered (in-process).
    Fulfil,
    /// The flash marketplace's tail bought by carts of three stores, each checked out in one
    /// command: three orders placed and paid.
    Checkout,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub workload: Workload,
    pub mode: Mode,
    pub target: Target,
    /// Buyers (flash) or claimers (redpacket).
    pub buyers: u64,
    /// The SKUs of the catalogue's Zipf tail (flash, mixed, spike).
    pub skus: u64,
    /// How long the load runs (flash), or at most (redpacket: until every claimer has claimed).
    pub duration: Duration,
    /// Concurrent clients, each with one request in flight; by mode if absent.
    pub clients: Option<usize>,
    /// Commands per submission or batch request; by mode if absent (always 1 for `http`).
    pub batch: Option<usize>,
    /// elevens' batch endpoint in `http-batch` mode.
    pub batch_encoding: BatchEncoding,
    /// The share of flash orders aimed at the hot SKU.
    pub hot_share: f64,
    /// Red packet: the pool, in minor units, and its number of shares.
    pub pool: u64,
    pub shares: u32,
    pub seed: u64,
    /// Where the engine keeps its journal; a fresh directory under the current one if absent
    /// (not /tmp, which may be a RAM disk where fsync costs nothing).
    pub data: Option<PathBuf>,
    /// Snapshots every this many commands; none if absent (a snapshot forks the engine's
    /// process, measured on its own).
    pub snapshot_every: Option<u64>,
    /// The snapshots written with `O_DIRECT` (`Config::snapshot_direct_io`).
    pub snapshot_direct_io: bool,
    /// Flash only: open loop at this many arrivals (orders) per second instead of the closed
    /// loop, latency from each arrival's intended time (`open_loop`).
    pub rate: Option<f64>,
    /// Tells the process's allocator to hand freed memory back to the system at once (`true`)
    /// or as it does by default (`false`); none if it cannot. The set-up's memory figures are
    /// read with it on, so that they count what the catalogue holds, not what the allocator has
    /// yet to return: mimalloc keeps freed pages for a second or more (a search index's merged
    /// segments, the indexing buffer), and the same set-up read 106-202 bytes per SKU with it,
    /// 121-126 without.
    pub release_freed_memory: Option<fn(bool)>,
    /// Fulfil: the orders of the 11.11 backlog scenario (0: none), and its warehouse's capacity.
    pub backlog_orders: u64,
    pub backlog_capacity: u32,
    /// Mixed: group the tail into products in a category tree and probe faceted queries
    /// (`facets.rs`); without, the tail stays bare SKUs.
    pub products: bool,
    /// elevens' journal on NATS JetStream (a scratch stream, deleted after the run) instead of
    /// the data directory's files.
    pub journal: Option<elevens_replication::Options>,
}

impl Options {
    fn clients(&self) -> usize {
        self.clients.unwrap_or(match self.mode {
            // The engine is a two-stage pipeline (apply, then fsync): the closed loop must keep
            // both stages fed. 4 clients x 2,000 left the sequencer idle 40% of the time while
            // every client waited on an fsync; 16 x 2,000 keeps it ~95% busy (RESULTS.md,
            // "Flash workload"). The spike keeps 4: its capacity phase defines C at the latency
            // its admission target aims for, and its figures were measured so. The mixed
            // workload keeps 4: its searches, not the sequencer, bound it, and 16 clients only
            // crowded them (85,590 operations/s at p50 338 ms, against 115,804 at 65 ms).
            Mode::InProcess if matches!(self.workload, Workload::Spike | Workload::Mixed) => 4,
            Mode::InProcess => 16,
            Mode::Http => 64,
            Mode::HttpBatch => 4,
        })
    }

    pub(crate) fn batch(&self) -> usize {
        match self.mode {
            Mode::Http => 1,
            Mode::InProcess => self.batch.unwrap_or(2_000),
            Mode::HttpBatch => self.batch.unwrap_or(1_000),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        Latency {
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FacetedSearch {
    pub products: u64,
    /// Before the load, once the index's merges are done: the query alone.
    pub idle_latency_us: Option<Latency>,
    pub queries: u64,
    pub latency_us: Latency,
}

#[derive(Debug, Default, Serialize)]
pub struct Invariants {
    /// False where the target holds no state to check (the bare hyper server): then every check
    /// below is false, not assumed.
    pub applicable: bool,
    /// Flash: the hot SKU's units sold equal its acknowledged paid orders, never exceed its
    /// stock, and are the whole stock once "sold out" was answered. Red packet: shares paid =
    /// min(count, claimers).
    pub sold_exactly_stock: bool,
    /// Every transfer balances and the balances sum to zero (the engine's own audit).
    pub ledger_balanced: bool,
    /// Every invariant of the audit.
    pub audit_ok: bool,
    /// Red packet: the shares the clients saw sum to what the pool paid out, and to the whole
    /// pool when every share was claimed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_sum_exact: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub workload: Workload,
    pub mode: Mode,
    pub target: Target,
    /// Where elevens' journal was: `local` (the data directory) or `nats` (a JetStream stream).
    pub journal: &'static str,
    pub duration_s: f64,
    pub orders: u64,
    pub payments: u64,
    pub orders_per_s: f64,
    pub payments_per_s: f64,
    /// Mixed: every operation offered (reads and writes, refused ones too), product pages and
    /// searches answered.
    pub ops: u64,
    pub ops_per_s: f64,
    pub browses: u64,
    pub searches: u64,
    /// SKUs the searches found (at most 20 a page).
    pub search_hits: u64,
    /// Mixed: the faceted queries one client asked alone during the load (a category page with
    /// facets, see `facets.rs`), and their latency from asking to the answer, in µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faceted_search: Option<FacetedSearch>,
    /// Red packet: claim attempts, and shares paid.
    pub claims: u64,
    pub claims_per_s: f64,
    pub shares_paid: u64,
    /// From sending to the durable reply, per command.
    pub latency_us: Latency,
    /// Commands refused, by code (sold-out refusals are expected once the hot SKU is gone).
    pub errors: BTreeMap<String, u64>,
    pub rss_bytes_per_order: f64,
    /// What a SKU costs in memory (engine and search index), measured while setting up the
    /// catalogue (elevens' flash and mixed workloads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes_per_sku: Option<f64>,
    pub invariants: Invariants,
    pub clients: usize,
    pub batch: usize,
    /// elevens' batch endpoint (`http-batch` against elevens only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_encoding: Option<BatchEncoding>,
    pub buyers: u64,
    pub seed: u64,
    pub cores: usize,
    /// The sequencer's (the bottleneck's) busy time per item it applied during the load, in ns:
    /// steadier than throughput on a noisy machine, and what a change to the hot path moves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequencer_ns_per_item: Option<f64>,
    /// The longest batch the sequencer applied in the whole run (set-up, load and the
    /// end-of-run audit), in ms: the longest any command waited behind another's work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst_batch_ms: Option<f64>,
    /// The spike workload's figures (capacity, goodput, shedding, recovery).
    #[serde(flatten)]
    pub spike: Option<spike::SpikeFigures>,
    /// `--rate`'s figures (the rate, arrivals offered and dropped, requests shed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_loop: Option<open_loop::OpenLoopFigures>,
    /// The fulfil workload's figures (shipments, tracking, memory, its invariants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fulfil: Option<fulfil::FulfilFigures>,
    /// The 11.11 backlog scenario: promises spreading over the days and coming back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backlog: Option<fulfil::BacklogFigures>,
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

fn cny() -> Currency {
    Currency::parse("CNY").expect("CNY is a currency")
}

/// Submits and waits (from a plain thread), retrying while the sequencer's queue is full.
fn call(engine: &dyn Commands, mut items: Vec<Item>) -> anyhow::Result<Vec<ItemResult>> {
    loop {
        match engine.submit_or_return(items) {
            Ok(rx) => return rx.blocking_recv().context("the engine stopped"),
            Err(back) => {
                items = back;
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }
}

fn admin(command: Command) -> Item {
    Item::Write { actor: Actor::Admin, idempotency: None, command, reply: ReplyWith::Outcome }
}

fn run_setup(engine: &EngineHandle, mut commands: Vec<Item>) -> anyhow::Result<()> {
    while !commands.is_empty() {
        let rest = commands.split_off(commands.len().min(SETUP_BATCH_COMMANDS));
        let results = call(engine, std::mem::replace(&mut commands, rest))?;
        if let Some(Err(error)) = results.into_iter().find(Result::is_err) {
            bail!("setup failed: {error}");
        }
    }
    Ok(())
}

/// The tail's prices, drawn from the seed: the same for elevens and every peer.
fn tail_prices(rng: &mut rand::rngs::StdRng, skus: u64) -> Vec<u64> {
    (0..skus).map(|_| rng.random_range(100..100_000)).collect()
}

const HOT_PRICE: u64 = 599_900;
const FLASH_PRICE: u64 = 99_900;
const BUYER_BALANCE: u64 = 10_000_000_000;

/// A SKU of the flash marketplace's merchant `merchant` (modulo their number).
fn flash_sku(merchant: u64, title: String, price: u64, stock: u64) -> Command {
    Command::CreateSku(Box::new(NewSku {
        merchant: MerchantId(merchant % MERCHANTS + 1),
        title,
        description: String::new(),
        price: Amount(price),
        currency: cny(),
        initial_stock: stock,
        warehouse: None,
    }))
}

/// The flash marketplace: 100 merchants, the hot SKU (id 1), the Zipf tail, and buyers with
/// money. The campaign comes with [`flash_campaign`]. Returns the memory the second half of the
/// tail took per SKU (RSS, engine and search index, once the index holds them): the first half
/// takes the fixed costs (the search writer's buffer, the tables' first allocations).
fn setup_flash(
    runtime: &tokio::runtime::Runtime,
    engine: &EngineHandle,
    options: &Options,
    rng: &mut rand::rngs::StdRng,
) -> anyhow::Result<f64> {
    let mut commands = Vec::new();
    for m in 0..MERCHANTS {
        commands.push(admin(Command::CreateMerchant { name: format!("merchant {m}"), commission_bps: 200 }));
    }
    commands.push(admin(flash_sku(0, "the hot item".into(), HOT_PRICE, HOT_UNITS)));
    run_setup(engine, std::mem::take(&mut commands))?;
    // The tail's commands are made a batch at a time, so that no list of them is alive (and
    // then freed) across the measurement.
    let prices = tail_prices(rng, options.skus);
    let create_tail = |skus: std::ops::Range<usize>| {
        for start in skus.clone().step_by(SETUP_BATCH_COMMANDS) {
            let batch = start..(start + SETUP_BATCH_COMMANDS).min(skus.end);
            let s = |s: usize| admin(flash_sku(s as u64, sku_title(s as u64), prices[s], 1_000_000_000));
            run_setup(engine, batch.map(s).collect())?;
        }
        anyhow::Ok(())
    };
    let settled_rss = || {
        runtime.block_on(engine.read_models_caught_up());
        engine.search.settle()?;
        anyhow::Ok(rss_bytes())
    };
    let release = |on: bool| options.release_freed_memory.inspect(|f| f(on));
    release(true);
    let half = prices.len() / 2;
    create_tail(0..half)?;
    let before = settled_rss()?;
    create_tail(half..prices.len())?;
    let added = settled_rss()?.saturating_sub(before);
    release(false);
    let rss_bytes_per_sku = added as f64 / (prices.len() - half).max(1) as f64;
    for b in 1..=options.buyers {
        commands.push(admin(Command::CreateBuyer { name: format!("buyer {b}") }));
        commands.push(admin(Command::TopUp {
            buyer: BuyerId(b),
            amount: Amount(10_000_000_000),
            currency: cny(),
        }));
    }
    run_setup(engine, commands)?;
    Ok(rss_bytes_per_sku)
}

/// The flash sale of the hot SKU (campaign 1), one unit per buyer.
fn flash_campaign(starts_at: Millis) -> Item {
    admin(Command::CreateCampaign(NewCampaign {
        sku: SkuId(1),
        flash_price: Amount(FLASH_PRICE),
        currency: cny(),
        quantity: HOT_UNITS,
        starts_at,
        ends_at: starts_at.saturating_add(24 * 3_600_000),
        per_buyer_limit: 1,
    }))
}

/// One pool (id 1) and its claimers.
fn setup_redpacket(engine: &EngineHandle, options: &Options) -> anyhow::Result<()> {
    let mut commands: Vec<Item> =
        (1..=options.buyers).map(|b| admin(Command::CreateBuyer { name: format!("claimer {b}") })).collect();
    let now = now_ms();
    commands.push(admin(Command::CreateRedPacket(NewRedPacket {
        sponsor: Sponsor::Platform,
        amount: Amount(options.pool),
        count: options.shares,
        currency: cny(),
        starts_at: now,
        ends_at: now.saturating_add(24 * 3_600_000),
        seed: options.seed,
    })));
    run_setup(engine, commands)
}

#[derive(Default)]
struct Tally {
    orders: u64,
    payments: u64,
    ops: u64,
    browses: u64,
    searches: u64,
    search_hits: u64,
    claims: u64,
    shares: u64,
    share_sum: u64,
    /// Flash: paid orders for the hot SKU, and whether it was ever answered "sold out".
    hot_paid: u64,
    hot_sold_out: bool,
    errors: BTreeMap<String, u64>,
    latency: Option<Histogram<u64>>,
    /// Mixed: the probing client's faceted queries, each timed alone.
    facets: Option<Histogram<u64>>,
}

impl Tally {
    fn new() -> anyhow::Result<Tally> {
        Ok(Tally { latency: Some(Histogram::new_with_bounds(1, 600_000_000, 3)?), ..Tally::default() })
    }

    fn merge(&mut self, other: Tally) -> anyhow::Result<()> {
        self.orders += other.orders;
        self.payments += other.payments;
        self.ops += other.ops;
        self.browses += other.browses;
        self.searches += other.searches;
        self.search_hits += other.search_hits;
        self.claims += other.claims;
        self.shares += other.shares;
        self.share_sum += other.share_sum;
        self.hot_paid += other.hot_paid;
        self.hot_sold_out |= other.hot_sold_out;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
        if let (Some(mine), Some(theirs)) = (self.latency.as_mut(), other.latency.as_ref()) {
            mine.add(theirs)?;
        }
        match (self.facets.as_mut(), other.facets) {
            (Some(mine), Some(theirs)) => mine.add(&theirs)?,
            (None, theirs) => self.facets = theirs,
            _ => {}
        }
        Ok(())
    }
}

/// Runs ops through the driver and records each op's latency (the batch's, in batch modes).
async fn timed(driver: &Driver, ops: &[Op], key_base: u64, tally: &mut Tally) -> anyhow::Result<Vec<Answer>> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    let started = Instant::now();
    let answers = driver.run(ops, key_base).await?;
    let micros = started.elapsed().as_micros().max(1) as u64;
    if let Some(h) = tally.latency.as_mut() {
        h.saturating_record_n(micros, answers.len() as u64);
    }
    for answer in &answers {
        if let Answer::Refused(code) = answer {
            *tally.errors.entry(code.clone()).or_default() += 1;
        }
    }
    Ok(answers)
}

/// The bar a run shows while it runs: its seconds, and a message of what it has done so far.
fn progress_bar(duration: Duration) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(duration.as_secs().max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// The highest `--rate`, arrivals per second: ten times the in-process figure of the brief.
const RATE_MAX: f64 = 10_000_000.0;

/// The stores of one checkout in the checkout workload.
const CHECKOUT_STORES: u64 = 3;

/// Mixed: the faceted queries timed alone before the load.
const FACETS_IDLE_QUERIES: usize = 200;

/// Mixed: unpaid orders a client remembers for paying later.
const UNPAID_MAX: usize = 100_000;

/// The answers that mean "the hot SKU is gone", from elevens and from the peers.
const SOLD_OUT_CODES: &[&str] = &["insufficient_stock", "campaign_sold_out", "sold_out"];

/// Flash: the hot SKU's units sold equal the paid orders acknowledged for it, never exceed its
/// stock, and reach the stock once anyone was told it was sold out (no unit lost).
fn sold_exactly(sold: u64, tally: &Tally) -> bool {
    sold == tally.hot_paid && sold <= HOT_UNITS && (!tally.hot_sold_out || sold == HOT_UNITS)
}

struct Client {
    id: u64,
    driver: Arc<Driver>,
    options: Options,
    deadline: Instant,
    progress: Arc<AtomicU64>,
    next_claimer: Arc<AtomicU64>,
}

impl Client {
    /// This client's own seeded generator, the tail's popularity, and its first idempotency key
    /// (each client's keys are apart from every other's).
    fn seeded(&self) -> anyhow::Result<(rand::rngs::StdRng, Zipf<f64>, u64)> {
        let rng =
            rand::rngs::StdRng::seed_from_u64(self.options.seed ^ (self.id + 1).wrapping_mul(0x9e37_79b9));
        let zipf = Zipf::new(self.options.skus as f64, 1.1).context("zipf")?;
        Ok((rng, zipf, (self.id + 1) << 40))
    }

    async fn flash(self) -> anyhow::Result<Tally> {
        let (mut rng, zipf, mut key) = self.seeded()?;
        let mut tally = Tally::new()?;
        let batch = self.options.batch();
        while Instant::now() < self.deadline {
            let places: Vec<Op> = (0..batch)
                .map(|_| {
                    let sku = if rng.random_bool(self.options.hot_share) {
                        1
                    } else {
                        1 + zipf.sample(&mut rng) as u64
                    };
                    Op::Place { buyer: rng.random_range(1..=self.options.buyers), sku }
                })
                .collect();
            let placed = timed(&self.driver, &places, key, &mut tally).await?;
            key += places.len() as u64;
            let mut pays = Vec::with_capacity(placed.len());
            let mut hot = Vec::with_capacity(placed.len());
            for (op, answer) in places.iter().zip(&placed) {
                let is_hot = matches!(op, Op::Place { sku: 1, .. });
                match answer {
                    Answer::Ok(order) => {
                        pays.push(Op::Pay { order: *order });
                        hot.push(is_hot);
                    }
                    Answer::Refused(code) => {
                        tally.hot_sold_out |= is_hot && SOLD_OUT_CODES.contains(&code.as_str());
                    }
                }
            }
            tally.orders += pays.len() as u64;
            if self.driver.pays_with_order() {
                tally.payments += pays.len() as u64;
                tally.hot_paid += hot.iter().filter(|h| **h).count() as u64;
                self.progress.fetch_add(pays.len() as u64, Ordering::Relaxed);
                continue;
            }
            let paid = timed(&self.driver, &pays, key, &mut tally).await?;
            key += pays.len() as u64;
            tally.payments += paid.iter().filter(|a| matches!(a, Answer::Ok(_))).count() as u64;
            tally.hot_paid +=
                paid.iter().zip(&hot).filter(|(a, h)| **h && matches!(a, Answer::Ok(_))).count() as u64;
            self.progress.fetch_add(pays.len() as u64, Ordering::Relaxed);
        }
        Ok(tally)
    }

    /// Carts of three stores: three neighbouring SKUs of the tail (the tail's SKUs go round
    /// the merchants), one unit each, checked out in one command that places and pays an
    /// order per store.
    async fn checkout(self) -> anyhow::Result<Tally> {
        let (mut rng, zipf, mut key) = self.seeded()?;
        let mut tally = Tally::new()?;
        let batch = self.options.batch();
        let last = self.options.skus.saturating_sub(2).max(1);
        while Instant::now() < self.deadline {
            let carts: Vec<Op> = (0..batch)
                .map(|_| {
                    let sku = 2 + (zipf.sample(&mut rng) as u64).min(last) - 1;
                    Op::Checkout { buyer: rng.random_range(1..=self.options.buyers), sku }
                })
                .collect();
            let answers = timed(&self.driver, &carts, key, &mut tally).await?;
            key += carts.len() as u64;
            let paid = answers.iter().filter(|a| matches!(a, Answer::Ok(_))).count() as u64;
            tally.orders += paid * CHECKOUT_STORES;
            tally.payments += paid * CHECKOUT_STORES;
            self.progress.fetch_add(paid * CHECKOUT_STORES, Ordering::Relaxed);
        }
        Ok(tally)
    }

    /// Browse 40%, search 40%, place 15%, pay 5% (the oldest of this client's unpaid orders;
    /// the other two in three stay reserved, as abandoned carts do until their reservation ends).
    async fn mixed(self) -> anyhow::Result<Tally> {
        let (mut rng, zipf, mut key) = self.seeded()?;
        let mut tally = Tally::new()?;
        let batch = self.options.batch();
        // Orders placed and not yet paid, with whether they are the hot SKU's (bounded: the
        // oldest are forgotten, left to their reservations).
        let mut unpaid: std::collections::VecDeque<(u64, bool)> = std::collections::VecDeque::new();
        let probing = self.id == 0 && self.options.target == Target::Elevens && self.options.products;
        if probing {
            tally.facets = Some(Histogram::new_with_bounds(1, 600_000_000, 3)?);
        }
        let mut probed = Instant::now();
        while Instant::now() < self.deadline {
            if probing && probed.elapsed() >= facets::PROBE_INTERVAL {
                probed = Instant::now();
                // In-process, the index's answer alone (the page's 20 SKUs would wait behind the
                // other clients' batches in the sequencer); over HTTP, the whole request.
                let op = facets::probe(&mut rng);
                match (&*self.driver, op) {
                    (Driver::InProcess { engine, .. }, Op::Facets { category, brand, by_price }) => {
                        engine.search.search(&driver::facets_query(category, brand, by_price))?;
                    }
                    _ => {
                        self.driver.run(&[op], key).await?;
                    }
                }
                let micros = probed.elapsed().as_micros().max(1) as u64;
                if let Some(h) = tally.facets.as_mut() {
                    h.saturating_record(micros);
                }
            }
            let mut ops = Vec::with_capacity(batch);
            // Whether each payment of the batch, in order, is for the hot SKU.
            let mut hot_pays = Vec::new();
            for _ in 0..batch {
                let tail_sku = 1 + zipf.sample(&mut rng) as u64;
                let roll: f64 = rng.random();
                let op = if roll < 0.40 {
                    Op::Browse { sku: tail_sku }
                } else if roll < 0.80 {
                    let adjective = rng.random_bool(0.5).then(|| rng.random_range(0..16));
                    Op::Search { adjective, noun: rng.random_range(0..32) }
                } else if roll < 0.95 {
                    let hot = rng.random_bool(self.options.hot_share);
                    Op::Place {
                        buyer: rng.random_range(1..=self.options.buyers),
                        sku: if hot { 1 } else { tail_sku },
                    }
                } else {
                    match unpaid.pop_front() {
                        Some((order, hot)) => {
                            hot_pays.push(hot);
                            Op::Pay { order }
                        }
                        None => Op::Browse { sku: tail_sku },
                    }
                };
                ops.push(op);
            }
            let answers = timed(&self.driver, &ops, key, &mut tally).await?;
            key += ops.len() as u64;
            tally.ops += ops.len() as u64;
            let mut hot_pays = hot_pays.into_iter();
            for (op, answer) in ops.iter().zip(&answers) {
                match (op, answer) {
                    (Op::Browse { .. }, Answer::Ok(_)) => tally.browses += 1,
                    (Op::Search { .. }, Answer::Ok(hits)) => {
                        tally.searches += 1;
                        tally.search_hits += hits;
                    }
                    (Op::Place { sku, .. }, Answer::Ok(order)) => {
                        tally.orders += 1;
                        if unpaid.len() == UNPAID_MAX {
                            unpaid.pop_front();
                        }
                        unpaid.push_back((*order, *sku == 1));
                    }
                    (Op::Place { sku: 1, .. }, Answer::Refused(code)) => {
                        tally.hot_sold_out |= SOLD_OUT_CODES.contains(&code.as_str());
                    }
                    (Op::Pay { .. }, answer) => {
                        let (paid, hot) = (matches!(answer, Answer::Ok(_)), hot_pays.next() == Some(true));
                        tally.payments += u64::from(paid);
                        tally.hot_paid += u64::from(paid && hot);
                    }
                    _ => {}
                }
            }
            self.progress.fetch_add(ops.len() as u64, Ordering::Relaxed);
        }
        Ok(tally)
    }

    async fn redpacket(self) -> anyhow::Result<Tally> {
        let mut tally = Tally::new()?;
        let batch = self.options.batch() as u64;
        while Instant::now() < self.deadline {
            let first = self.next_claimer.fetch_add(batch, Ordering::Relaxed) + 1;
            if first > self.options.buyers {
                break;
            }
            let last = (first + batch - 1).min(self.options.buyers);
            let ops: Vec<Op> = (first..=last).map(|buyer| Op::Claim { packet: 1, buyer }).collect();
            let answers = timed(&self.driver, &ops, first, &mut tally).await?;
            tally.claims += ops.len() as u64;
            for answer in answers {
                if let Answer::Ok(share) = answer {
                    tally.shares += 1;
                    tally.share_sum += share;
                }
            }
            self.progress.fetch_add(ops.len() as u64, Ordering::Relaxed);
        }
        Ok(tally)
    }
}

fn read(engine: &EngineHandle, query: Query) -> anyhow::Result<View> {
    let mut results = call(engine, vec![Item::Read { actor: Actor::Admin, query }])?;
    match results.pop().context("no reply")?? {
        Reply::View(view) => Ok(*view),
        Reply::Outcome(outcome) => bail!("a read answered with an outcome: {outcome:?}"),
    }
}

/// Starts the HTTP API on a loopback port, on the running engine; returns its base URL and a
/// service key.
async fn start_http(
    engine: &EngineHandle,
    config: &Config,
    gate: Arc<Gate>,
    batch: Option<BatchEncoding>,
) -> anyhow::Result<Driver> {
    let secret = new_secret();
    let create = Command::CreateApiKey { acts_as: Actor::Service, secret_sha256: hash_secret(&secret) };
    let rx = engine.submit(vec![admin(create)]).map_err(|_| anyhow::anyhow!("engine overloaded"))?;
    if let Some(Err(error)) = rx.await?.pop() {
        bail!("creating the bench's service key: {error}");
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let base = format!("http://{}", listener.local_addr()?);
    let mut config = config.clone();
    config.engine.batch_commands_max = config.engine.batch_commands_max.max(10_000);
    let engine = engine.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // The server gets its own runtime and threads, as a separate process would: the load
    // generator's tasks never wait in the server's run queue, nor the server's in the generator's.
    std::thread::Builder::new().name("bench-server".into()).spawn(move || {
        let served = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("server")
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| {
                runtime.block_on(async {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    let config = Arc::new(config);
                    let stopped = async {
                        let _ = stopped.await;
                    };
                    elevens_http::serve_engine(engine, config, gate, listener, stopped).await
                })
            });
        if let Err(error) = served {
            eprintln!("bench server: {error:#}");
        }
    })?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(4_096).tcp_nodelay(true).build()?;
    Ok(Driver::Http { api: driver::HttpApi { client, base, key: secret }, batch, _stop: stop })
}

/// Connects one client's way in to the target.
async fn connect(
    target: Target,
    mode: Mode,
    shared: &Option<Arc<Driver>>,
    sha: &str,
    hello: &str,
) -> anyhow::Result<Arc<Driver>> {
    let pipelined = mode == Mode::HttpBatch;
    Ok(match target {
        Target::Elevens => shared.clone().context("no elevens driver")?,
        Target::Postgres => {
            let client = peers::postgres_connect().await?;
            let statement = client.prepare("SELECT flash_order($1, $2, 1)").await?;
            Arc::new(Driver::Postgres { client, statement, pipelined })
        }
        Target::RedisAlways | Target::RedisEverysec => {
            let con = peers::redis_connect(target == Target::RedisEverysec).await?;
            Arc::new(Driver::Redis { con, sha: sha.to_owned(), pipelined })
        }
        Target::HyperHello => {
            let client = reqwest::Client::builder().pool_max_idle_per_host(1).tcp_nodelay(true).build()?;
            Arc::new(Driver::Hello { client, url: format!("{hello}/hello") })
        }
    })
}

pub fn run(options: Options) -> anyhow::Result<Report> {
    if options.buyers == 0 || options.skus == 0 || options.batch == Some(0) || options.clients == Some(0) {
        bail!("buyers, skus, batch and clients must be positive");
    }
    if options.target != Target::Elevens && options.workload != Workload::Flash {
        bail!("the peers run the flash workload only");
    }
    if options.workload == Workload::Fulfil
        && (options.mode != Mode::InProcess || options.target != Target::Elevens)
    {
        bail!("the fulfil workload runs in-process against elevens");
    }
    if options.target != Target::Elevens && options.mode == Mode::InProcess {
        bail!("a peer is reached over the network: use --mode http (one call per round trip) or http-batch (pipelined)");
    }
    if options.target == Target::HyperHello && options.mode != Mode::Http {
        bail!("the hyper hello server is measured with --mode http");
    }
    if options.journal.is_some() && options.target != Target::Elevens {
        bail!("--journal carries elevens' journal: the peers keep their own");
    }
    if let Some(rate) = options.rate {
        if options.workload != Workload::Flash || options.target == Target::HyperHello {
            bail!("--rate runs the flash workload open loop against elevens or a peer (the spike sets its own rates)");
        }
        if !(rate.is_finite() && (1.0..=RATE_MAX).contains(&rate)) {
            bail!("--rate is arrivals per second, from 1 to {RATE_MAX}");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed);
    let setup_started = Instant::now();
    let scratch;
    let mut engine = None;
    let mut shared = None;
    let mut sha = String::new();
    let mut hello = String::new();
    let mut gate = Arc::new(Gate::new(Default::default()));
    let mut rss_bytes_per_sku = None;
    let mut products = 0;
    let mut facets_idle = None;
    let marketplace = |rng: &mut rand::rngs::StdRng| peers::Marketplace {
        merchants: MERCHANTS,
        hot_units: HOT_UNITS,
        hot_price: HOT_PRICE,
        flash_price: FLASH_PRICE,
        tail_prices: tail_prices(rng, options.skus),
        buyers: options.buyers,
        buyer_balance: BUYER_BALANCE,
    };
    match options.target {
        Target::Elevens => {
            let data = match &options.data {
                Some(dir) => dir.clone(),
                None => {
                    scratch = tempfile::Builder::new().prefix("elevens-bench-").tempdir_in(".")?;
                    scratch.path().to_path_buf()
                }
            };
            let mut config = Config::new(data, "127.0.0.1:0".parse()?);
            config.engine.snapshot_every_commands = options.snapshot_every.unwrap_or(u64::MAX).max(1);
            config.engine.snapshot_direct_io = options.snapshot_direct_io;
            if let Some(nats) = &options.journal {
                config.journal = elevens_http::config::JournalTarget::Nats(nats.clone());
            }
            gate = Arc::new(Gate::new(config.admission.clone()));
            let (started, _) = Engine::start(&config)?;
            let handle = started.handle.clone();
            wait_writable(&handle)?;
            match options.workload {
                Workload::Flash | Workload::Mixed | Workload::Fulfil | Workload::Checkout => {
                    rss_bytes_per_sku = Some(setup_flash(&runtime, &handle, &options, &mut rng)?);
                    if options.workload == Workload::Fulfil {
                        fulfil::setup(&handle, options.buyers)?;
                    }
                    if options.workload == Workload::Mixed && options.products {
                        products = facets::setup(&handle, options.skus)?;
                        runtime.block_on(handle.read_models_caught_up());
                        facets_idle = Some(facets::idle(&handle, FACETS_IDLE_QUERIES, &mut rng)?);
                    }
                    run_setup(&handle, vec![flash_campaign(Millis(now_ms().0 - 1_000))])?;
                }
                Workload::Redpacket => setup_redpacket(&handle, &options)?,
                Workload::Spike => {} // its campaign starts with the spike: set up just before
            }
            // The spike goes through admission control in every mode; the other workloads
            // in-process measure the engine alone.
            let in_process_gate = (options.workload == Workload::Spike).then(|| gate.clone());
            shared = Some(Arc::new(match options.mode {
                Mode::InProcess => Driver::InProcess { engine: handle.clone(), gate: in_process_gate },
                Mode::Http => runtime.block_on(start_http(&handle, &config, gate.clone(), None))?,
                Mode::HttpBatch => {
                    let encoding = Some(options.batch_encoding);
                    runtime.block_on(start_http(&handle, &config, gate.clone(), encoding))?
                }
            }));
            if options.workload == Workload::Spike {
                rss_bytes_per_sku = Some(setup_flash(&runtime, &handle, &options, &mut rng)?);
                // The campaign opens when the spike starts, after the capacity and steady phases.
                let opens_in = ((spike::CAPACITY_S + spike::STEADY_S) * 1_000.0) as u64;
                run_setup(&handle, vec![flash_campaign(Millis(now_ms().0 + opens_in))])?;
            }
            engine = Some((started, handle));
        }
        Target::Postgres => runtime.block_on(peers::postgres_setup(&marketplace(&mut rng)))?,
        Target::RedisAlways | Target::RedisEverysec => {
            let everysec = options.target == Target::RedisEverysec;
            sha = runtime.block_on(peers::redis_setup(&marketplace(&mut rng), everysec))?;
        }
        Target::HyperHello => hello = runtime.block_on(peers::hello_server())?,
    }
    eprintln!("setup: {} buyers in {:.1?}", options.buyers, setup_started.elapsed());
    if let Some((_, handle)) = &engine {
        // As the set-up left it (the read models may still be folding its last commands).
        eprintln!(
            "search index: {} documents ({} deleted, not yet merged away) in {} segments",
            handle.search.documents(),
            handle.search.deleted_documents(),
            handle.search.segments()
        );
    }

    let rss_before = rss_bytes();
    let work_before = engine.as_ref().map(|(_, handle)| handle.sequencer_work());
    let started = Instant::now();
    let mut spike_figures = None;
    let mut open_loop_figures = None;
    let mut total = if let Some(rate) = options.rate {
        // The peers get as many connections as the closed loop's clients, used in turn.
        let drivers = runtime.block_on(async {
            let mut drivers = Vec::new();
            let connections = if options.target == Target::Elevens { 1 } else { options.clients() };
            for _ in 0..connections {
                drivers.push(connect(options.target, options.mode, &shared, &sha, &hello).await?);
            }
            anyhow::Ok(drivers)
        })?;
        eprintln!("open loop: {rate:.0} arrivals/s for {:.1?}", options.duration);
        let (figures, tally) = open_loop::at_rate(&runtime, drivers, &options, rate)?;
        open_loop_figures = Some(figures);
        tally
    } else if options.workload == Workload::Spike {
        let driver = shared.clone().context("no elevens driver")?;
        let (figures, tally) = spike::run(&runtime, driver, &options, || gate.stats())?;
        spike_figures = Some(figures);
        tally
    } else {
        let drivers = runtime.block_on(async {
            let mut drivers = Vec::new();
            for _ in 0..options.clients() {
                drivers.push(connect(options.target, options.mode, &shared, &sha, &hello).await?);
            }
            anyhow::Ok(drivers)
        })?;
        let progress = Arc::new(AtomicU64::new(0));
        let next_claimer = Arc::new(AtomicU64::new(0));
        let bar = progress_bar(options.duration);
        let deadline = started + options.duration;
        let clients: Vec<_> = drivers
            .into_iter()
            .enumerate()
            .map(|(id, driver)| {
                let client = Client {
                    id: id as u64,
                    driver,
                    options: options.clone(),
                    deadline,
                    progress: progress.clone(),
                    next_claimer: next_claimer.clone(),
                };
                match options.workload {
                    Workload::Flash | Workload::Spike | Workload::Fulfil => runtime.spawn(client.flash()),
                    Workload::Redpacket => runtime.spawn(client.redpacket()),
                    Workload::Mixed => runtime.spawn(client.mixed()),
                    Workload::Checkout => runtime.spawn(client.checkout()),
                }
            })
            .collect();
        let unit = match options.workload {
            Workload::Flash | Workload::Spike | Workload::Fulfil | Workload::Checkout => "orders/s",
            Workload::Redpacket => "claims/s",
            Workload::Mixed => "ops/s",
        };
        while Instant::now() < deadline && !clients.iter().all(|c| c.is_finished()) {
            std::thread::sleep(Duration::from_millis(200));
            bar.set_position(started.elapsed().as_secs());
            let rate = progress.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
            bar.set_message(format!("{rate:.0} {unit}"));
        }
        let mut total = Tally::new()?;
        for client in clients {
            total.merge(runtime.block_on(client)??)?;
        }
        bar.finish_and_clear();
        total
    };
    let elapsed = started.elapsed().as_secs_f64();
    let rss_after = rss_bytes();
    let sequencer_ns_per_item = engine.as_ref().zip(work_before).map(|((_, handle), (busy, items))| {
        let (busy_after, items_after) = handle.sequencer_work();
        (busy_after - busy).as_nanos() as f64 / (items_after - items).max(1) as f64
    });
    let mut fulfil_figures = match (&engine, options.workload) {
        (Some((_, handle)), Workload::Fulfil) => {
            eprintln!("fulfil: dispatching and tracking {} shipments", total.payments);
            Some(fulfil::run(handle, total.payments, 1 << 60)?)
        }
        _ => None,
    };

    let mut invariants =
        Invariants { applicable: options.target != Target::HyperHello, ..Invariants::default() };
    match (&engine, options.target) {
        (Some((_, handle)), _) => {
            let audit = handle.auditor.audit_blocking().map_err(|e| anyhow::anyhow!("the audit: {e}"))?;
            let audit = elevens_http::views::AuditView::from(audit);
            invariants.ledger_balanced = audit.checks.iter().any(|c| c.name == "money_conserved" && c.ok);
            invariants.audit_ok = audit.ok;
            match options.workload {
                Workload::Flash | Workload::Fulfil => {
                    let View::Sku(hot) = read(handle, Query::Sku(SkuId(1)))? else { bail!("not a SKU view") };
                    invariants.sold_exactly_stock = sold_exactly(hot.sold, &total);
                    if let Some(f) = fulfil_figures.as_mut() {
                        let passed = |name: &str| audit.checks.iter().any(|c| c.name == name && c.ok);
                        f.every_paid_order_shipped = passed("every_paid_line_shipped_once");
                        f.capacity_never_overbooked = passed("capacity_never_overbooked");
                        f.refunds_within_paid = passed("refunds_within_paid");
                        f.tracking_forward_only = passed("tracking_forward_only");
                        let query = Query::Logistics(elevens_http::views::logistics::LogisticsQuery::Stats);
                        let View::Logistics(elevens_http::views::logistics::LogisticsView::Stats(stats)) =
                            read(handle, query)?
                        else {
                            bail!("not the logistics figures")
                        };
                        f.table_bytes_per_shipment = stats.table_bytes as f64 / f.shipments.max(1) as f64;
                        f.delivered = stats.delivered;
                    }
                }
                // Open-loop payments are not matched to SKUs: the audit's no-oversell check
                // (sold + reserved never above stock, for every SKU) stands in.
                Workload::Spike | Workload::Checkout => {
                    invariants.sold_exactly_stock =
                        audit.checks.iter().any(|c| c.name == "no_oversell" && c.ok);
                }
                // Unpaid orders keep their units reserved: sold is exactly the acknowledged
                // payments, and sold + reserved never above the stock.
                Workload::Mixed => {
                    let View::Sku(hot) = read(handle, Query::Sku(SkuId(1)))? else { bail!("not a SKU view") };
                    invariants.sold_exactly_stock = hot.sold == total.hot_paid
                        && audit.checks.iter().any(|c| c.name == "no_oversell" && c.ok);
                }
                Workload::Redpacket => {
                    let View::RedPacket(packet) = read(handle, Query::RedPacket(RedPacketId(1)))? else {
                        bail!("not a red packet view")
                    };
                    let expected = u64::from(options.shares).min(total.claims);
                    invariants.sold_exactly_stock =
                        packet.claimed_count == expected && total.shares == expected;
                    let whole = packet.claimed_count < u64::from(options.shares)
                        || packet.claimed_amount == options.pool;
                    invariants.share_sum_exact = Some(packet.claimed_amount == total.share_sum && whole);
                }
            }
        }
        (None, Target::Postgres | Target::RedisAlways | Target::RedisEverysec) => {
            let (sold, balanced) = runtime.block_on(async {
                match options.target {
                    Target::Postgres => peers::postgres_check().await,
                    target => peers::redis_check(target == Target::RedisEverysec).await,
                }
            })?;
            invariants.sold_exactly_stock = sold_exactly(sold, &total);
            invariants.ledger_balanced = balanced;
            invariants.audit_ok = balanced && sold <= HOT_UNITS;
        }
        (None, _) => {} // the hello server holds no state: `applicable` is false
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    let worst_batch_ms = engine.as_ref().map(|(_, handle)| handle.worst_batch().as_secs_f64() * 1e3);
    if let Some((engine, handle)) = engine {
        drop(shared);
        drop(handle);
        engine.shutdown();
    }
    let latency = total.latency.take().unwrap_or(Histogram::new(3)?);
    let faceted_search = total.facets.take().map(|h| FacetedSearch {
        products,
        idle_latency_us: facets_idle.take(),
        queries: h.len(),
        latency_us: Latency::of(&h),
    });
    let backlog = (options.workload == Workload::Fulfil && options.backlog_orders > 0)
        .then(|| {
            eprintln!(
                "backlog: {} orders at midnight, {} parcels a day",
                options.backlog_orders, options.backlog_capacity
            );
            fulfil::backlog(options.backlog_orders, options.backlog_capacity)
        })
        .transpose()?;
    if let Some(nats) = &options.journal {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(elevens_replication::nats::delete_stream(nats))?;
    }
    Ok(Report {
        workload: options.workload,
        mode: options.mode,
        target: options.target,
        journal: if options.journal.is_some() { "nats" } else { "local" },
        duration_s: elapsed,
        orders: total.orders,
        payments: total.payments,
        orders_per_s: total.orders as f64 / elapsed,
        payments_per_s: total.payments as f64 / elapsed,
        ops: total.ops,
        ops_per_s: total.ops as f64 / elapsed,
        browses: total.browses,
        searches: total.searches,
        search_hits: total.search_hits,
        faceted_search,
        claims: total.claims,
        claims_per_s: total.claims as f64 / elapsed,
        shares_paid: total.shares,
        latency_us: Latency::of(&latency),
        errors: total.errors,
        rss_bytes_per_order: rss_after.saturating_sub(rss_before) as f64 / total.orders.max(1) as f64,
        rss_bytes_per_sku,
        invariants,
        clients: options.clients(),
        batch: options.batch(),
        batch_encoding: (options.mode == Mode::HttpBatch && options.target == Target::Elevens)
            .then_some(options.batch_encoding),
        buyers: options.buyers,
        seed: options.seed,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        sequencer_ns_per_item,
        worst_batch_ms,
        spike: spike_figures,
        open_loop: open_loop_figures,
        fulfil: fulfil_figures,
        backlog,
    })
}

/// How long a replicated engine may take to lead its fresh stream (take the lease, store its
/// fence) before the bench gives up.
const LEAD_WAIT: Duration = Duration::from_secs(60);

fn wait_writable(handle: &EngineHandle) -> anyhow::Result<()> {
    let deadline = Instant::now() + LEAD_WAIT;
    while !handle.writable() {
        if Instant::now() > deadline {
            bail!("the engine did not lead its stream within {LEAD_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// One workload on the local journal and then on the stream, in one run: the replicated
/// figure as a share of the local one.
#[derive(Debug, Serialize)]
pub struct Compared {
    pub local: Report,
    pub replicated: Report,
    /// Replicated over local: orders (or claims) per second, and p99 latency.
    pub throughput_ratio: f64,
    pub p99_ratio: f64,
}

/// `options.journal` must name the NATS servers; the stream gets a fresh name for the run.
pub fn run_compared(options: Options) -> anyhow::Result<Compared> {
    let Some(mut nats) = options.journal.clone() else { bail!("no NATS journal to compare with") };
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
    nats.stream = format!("{}_BENCH_{stamp}", nats.stream);
    // Each run on a data directory of its own.
    let data = |name: &str| options.data.as_ref().map(|d| d.join(name));
    eprintln!("== the local journal");
    let local = run(Options { journal: None, data: data("local"), ..options.clone() })?;
    eprintln!("== the journal on NATS JetStream (stream {}, {} replicas)", nats.stream, nats.replicas);
    let replicated = run(Options { journal: Some(nats), data: data("nats"), ..options })?;
    let rate = |r: &Report| r.orders_per_s.max(r.claims_per_s);
    Ok(Compared {
        throughput_ratio: rate(&replicated) / rate(&local).max(f64::MIN_POSITIVE),
        p99_ratio: replicated.latency_us.p99 as f64 / local.latency_us.p99.max(1) as f64,
        local,
        replicated,
    })
}

/// The table printed at the end of a run.
pub fn table(report: &Report) -> String {
    let l = &report.latency_us;
    let mut out = String::new();
    let load = match &report.open_loop {
        Some(o) => format!("open loop at {:.0} arrivals/s", o.rate_per_s),
        None => format!("{} clients", report.clients),
    };
    out += &format!(
        "workload {:?}, mode {:?}, target {:?}, journal {}, {load} x {} per request{}\n",
        report.workload,
        report.mode,
        report.target,
        report.journal,
        report.batch,
        report.batch_encoding.map_or(String::new(), |e| format!(", {e:?} batches").to_lowercase()),
    );
    out += &format!("  duration        {:>12.2} s\n", report.duration_s);
    match report.workload {
        Workload::Flash | Workload::Fulfil | Workload::Checkout => {
            if report.workload == Workload::Checkout {
                let checkouts = report.orders / CHECKOUT_STORES;
                let per_s = report.orders_per_s / CHECKOUT_STORES as f64;
                out += &format!(
                    "  checkouts       {checkouts:>12} ({per_s:.0}/s, {CHECKOUT_STORES} stores each)\n"
                );
            }
            out += &format!("  orders          {:>12} ({:.0}/s)\n", report.orders, report.orders_per_s);
            out += &format!("  payments        {:>12} ({:.0}/s)\n", report.payments, report.payments_per_s);
            out += &format!("  rss per order   {:>12.0} bytes\n", report.rss_bytes_per_order);
            if let Some(per_sku) = report.rss_bytes_per_sku {
                out += &format!("  rss per sku     {per_sku:>12.0} bytes\n");
            }
            if let Some(o) = &report.open_loop {
                out += &format!(
                    "  open loop       {:>12.0} arrivals/s asked, {} offered, {} dropped by the generator, {} shed\n",
                    o.rate_per_s, o.offered, o.generator_dropped, o.shed
                );
                out += &format!("  latency from    {}\n", o.latency_from);
            }
            if let Some(f) = &report.fulfil {
                out += &fulfil::table(f, report.backlog.as_ref());
            }
        }
        Workload::Spike => {
            if let Some(f) = &report.spike {
                out += &spike::table(f);
            }
        }
        Workload::Mixed => {
            out += &format!("  operations      {:>12} ({:.0}/s)\n", report.ops, report.ops_per_s);
            out += &format!("  product pages   {:>12}\n", report.browses);
            out += &format!(
                "  searches        {:>12} ({:.1} hits each)\n",
                report.searches,
                report.search_hits as f64 / report.searches.max(1) as f64
            );
            if let Some(idle) = report.faceted_search.as_ref().and_then(|f| f.idle_latency_us.as_ref()) {
                out += &format!(
                    "  faceted, idle   {:>12} (p50 {} µs, p99 {} µs, max {} µs)\n",
                    FACETS_IDLE_QUERIES, idle.p50, idle.p99, idle.max
                );
            }
            if let Some(f) = &report.faceted_search {
                out += &format!(
                    "  faceted search  {:>12} (over {} products; p50 {} µs, p99 {} µs, max {} µs)\n",
                    f.queries, f.products, f.latency_us.p50, f.latency_us.p99, f.latency_us.max
                );
            }
            out += &format!("  orders          {:>12} ({:.0}/s)\n", report.orders, report.orders_per_s);
            out += &format!("  payments        {:>12} ({:.0}/s)\n", report.payments, report.payments_per_s);
        }
        Workload::Redpacket => {
            out += &format!("  claims          {:>12} ({:.0}/s)\n", report.claims, report.claims_per_s);
            out += &format!("  shares paid     {:>12}\n", report.shares_paid);
        }
    }
    out += &format!("  latency us      p50 {} p99 {} p99.9 {} max {}\n", l.p50, l.p99, l.p999, l.max);
    if let Some(ns) = report.sequencer_ns_per_item {
        out += &format!("  sequencer       {ns:>12.0} ns busy per command\n");
    }
    if let Some(ms) = report.worst_batch_ms {
        out += &format!("  worst batch     {ms:>12.1} ms on the sequencer\n");
    }
    let i = &report.invariants;
    out += &format!(
        "  invariants      sold_exactly_stock {} ledger_balanced {} audit_ok {}{}\n",
        i.sold_exactly_stock,
        i.ledger_balanced,
        i.audit_ok,
        i.share_sum_exact.map_or(String::new(), |e| format!(" share_sum_exact {e}"))
    );
    for (code, n) in &report.errors {
        out += &format!("  refused         {n:>12} {code}\n");
    }
    out
}
