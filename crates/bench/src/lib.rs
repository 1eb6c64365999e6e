//! elevens-bench: the 11.11 workloads of the brief (§6), seeded so that two runs offer the same
//! work, with latency percentiles (HdrHistogram) and the invariant checks run against the target
//! itself at the end.
//!
//! Modes: `in-process` drives the real engine (sequencer, journal thread, fsync'd group commit)
//! through its submission queue, with no network. Performance is shown here, never in tests.

use anyhow::{bail, Context};
use elevens_core::{Actor, Command, Idempotency, LineRequest, NewCampaign, NewSku};
use elevens_core::{Amount, BuyerId, Currency, MerchantId, Millis, OrderId, SkuId};
use elevens_server::config::Config;
use elevens_server::engine::{now_ms, Engine, EngineHandle, Item, ItemResult};
use elevens_server::views::{Query, View};
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
pub const TAIL_SKUS: u64 = 100_000;
const MERCHANTS: u64 = 100;
const SETUP_BATCH_COMMANDS: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    InProcess,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    Flash,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub workload: Workload,
    pub mode: Mode,
    pub buyers: u64,
    pub duration: Duration,
    /// Client threads, each with one batch in flight.
    pub clients: usize,
    /// Commands per submission.
    pub batch: usize,
    /// The share of orders that go for the hot SKU.
    pub hot_share: f64,
    pub seed: u64,
    /// Where the engine keeps its journal; a fresh directory under the current one if absent
    /// (not /tmp, which may be a RAM disk where fsync costs nothing).
    pub data: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

#[derive(Debug, Serialize)]
pub struct Invariants {
    /// The hot SKU sold exactly its stock: no more (oversell), no less (lost sales).
    pub sold_exactly_stock: bool,
    /// Every transfer balances and the balances sum to zero (the engine's own audit).
    pub ledger_balanced: bool,
    /// Every invariant of the audit.
    pub audit_ok: bool,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub workload: Workload,
    pub mode: Mode,
    pub target: &'static str,
    pub duration_s: f64,
    pub orders: u64,
    pub payments: u64,
    pub orders_per_s: f64,
    pub payments_per_s: f64,
    /// From submission to durable reply, per command.
    pub latency_us: Latency,
    /// Commands refused, by code (sold-out refusals are expected once the hot SKU is gone).
    pub errors: BTreeMap<String, u64>,
    pub rss_bytes_per_order: f64,
    pub invariants: Invariants,
    pub hot_sold: u64,
    pub clients: usize,
    pub batch: usize,
    pub buyers: u64,
    pub seed: u64,
    pub cores: usize,
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

fn cny() -> Currency {
    Currency::parse("CNY").expect("CNY is a currency")
}

/// Submits and waits, retrying while the sequencer's queue is full.
fn call(engine: &EngineHandle, items: Vec<Item>) -> anyhow::Result<Vec<ItemResult>> {
    let mut items = Some(items);
    loop {
        let batch = items.take().context("items")?;
        match engine.submit_or_return(batch) {
            Ok(rx) => return rx.blocking_recv().context("the engine stopped"),
            Err(back) => {
                items = Some(back);
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }
}

fn setup(engine: &EngineHandle, options: &Options, rng: &mut rand::rngs::StdRng) -> anyhow::Result<SkuId> {
    let admin = |command| Item::Write { actor: Actor::Admin, idempotency: None, command };
    let mut commands: Vec<Item> = Vec::new();
    for m in 0..MERCHANTS {
        commands.push(admin(Command::CreateMerchant { name: format!("merchant {m}"), commission_bps: 200 }));
    }
    // SKU 1 is the hot item; 2..=TAIL_SKUS+1 the tail.
    let sku = |merchant: u64, title: String, price: u64, stock: u64| {
        Command::CreateSku(NewSku {
            merchant: MerchantId(merchant % MERCHANTS + 1),
            title,
            description: String::new(),
            price: Amount(price),
            currency: cny(),
            initial_stock: stock,
        })
    };
    commands.push(admin(sku(0, "the hot item".into(), 599_900, HOT_UNITS)));
    for s in 0..TAIL_SKUS {
        commands.push(admin(sku(s, format!("sku {s}"), rng.random_range(100..100_000), 1_000_000_000)));
    }
    let now = now_ms();
    commands.push(admin(Command::CreateCampaign(NewCampaign {
        sku: SkuId(1),
        flash_price: Amount(99_900),
        currency: cny(),
        quantity: HOT_UNITS,
        starts_at: Millis(now.0.saturating_sub(1_000)),
        ends_at: now.saturating_add(24 * 3_600_000),
        per_buyer_limit: 1,
    })));
    for b in 1..=options.buyers {
        commands.push(admin(Command::CreateBuyer { name: format!("buyer {b}") }));
        commands.push(admin(Command::TopUp {
            buyer: BuyerId(b),
            amount: Amount(10_000_000_000),
            currency: cny(),
        }));
    }
    while !commands.is_empty() {
        let rest = commands.split_off(commands.len().min(SETUP_BATCH_COMMANDS));
        let results = call(engine, std::mem::replace(&mut commands, rest))?;
        if let Some(Err(error)) = results.into_iter().find(Result::is_err) {
            bail!("setup failed: {error}");
        }
    }
    Ok(SkuId(1))
}

struct ClientTally {
    orders: u64,
    payments: u64,
    errors: BTreeMap<String, u64>,
    latency: Histogram<u64>,
}

fn client(
    engine: EngineHandle,
    options: Options,
    id: usize,
    deadline: Instant,
    progress: Arc<AtomicU64>,
) -> anyhow::Result<ClientTally> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed ^ (id as u64 + 1).wrapping_mul(0x9e37_79b9));
    let zipf = Zipf::new(TAIL_SKUS as f64, 1.1).context("zipf")?;
    let mut tally = ClientTally {
        orders: 0,
        payments: 0,
        errors: BTreeMap::new(),
        latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
    };
    let mut key = (id as u128) << 64;
    let mut next_key = || {
        key += 1;
        Some(Idempotency { key, fingerprint: 0 })
    };
    let actor = Actor::Service;
    while Instant::now() < deadline {
        let orders: Vec<Item> = (0..options.batch)
            .map(|_| {
                let sku = if rng.random_bool(options.hot_share) {
                    SkuId(1)
                } else {
                    SkuId(1 + zipf.sample(&mut rng) as u64)
                };
                let buyer = BuyerId(rng.random_range(1..=options.buyers));
                let lines = vec![LineRequest { sku, quantity: 1 }];
                let command =
                    Command::PlaceOrder { buyer, lines, coupons: vec![], reservation_ttl_ms: 15 * 60_000 };
                Item::Write { actor, idempotency: next_key(), command }
            })
            .collect();
        let placed = timed(&engine, orders, &mut tally)?;
        let payments: Vec<Item> = placed
            .iter()
            .filter_map(|r| match r {
                Ok(View::Order(o)) => Some(o.order_id),
                _ => None,
            })
            .map(|order| Item::Write {
                actor,
                idempotency: next_key(),
                command: Command::PayOrder { order: OrderId(order) },
            })
            .collect();
        tally.orders += payments.len() as u64;
        let paid = timed(&engine, payments, &mut tally)?;
        tally.payments += paid.iter().filter(|r| r.is_ok()).count() as u64;
        progress.fetch_add(placed.len() as u64, Ordering::Relaxed);
    }
    Ok(tally)
}

fn timed(
    engine: &EngineHandle,
    items: Vec<Item>,
    tally: &mut ClientTally,
) -> anyhow::Result<Vec<ItemResult>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let started = Instant::now();
    let results = call(engine, items)?;
    let micros = started.elapsed().as_micros().max(1) as u64;
    tally.latency.saturating_record_n(micros, results.len() as u64);
    for error in results.iter().filter_map(|r| r.as_ref().err()) {
        *tally.errors.entry(error.code().to_owned()).or_default() += 1;
    }
    Ok(results)
}

fn read(engine: &EngineHandle, query: Query) -> anyhow::Result<View> {
    let mut results = call(engine, vec![Item::Read { actor: Actor::Admin, query }])?;
    Ok(results.pop().context("no reply")??)
}

pub fn run(options: Options) -> anyhow::Result<Report> {
    let Mode::InProcess = options.mode;
    let Workload::Flash = options.workload;
    if options.buyers == 0 || options.batch == 0 || options.clients == 0 {
        bail!("buyers, batch and clients must be positive");
    }
    let scratch;
    let data = match &options.data {
        Some(dir) => dir.clone(),
        None => {
            scratch = tempfile::Builder::new().prefix("elevens-bench-").tempdir_in(".")?;
            scratch.path().to_path_buf()
        }
    };
    let mut config = Config::new(data, "127.0.0.1:0".parse()?);
    config.snapshot_every_commands = u64::MAX; // a snapshot is a pause; measured on its own
    let (engine, _) = Engine::start(&config)?;
    let handle = engine.handle.clone();
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed);
    let setup_started = Instant::now();
    let hot = setup(&handle, &options, &mut rng)?;
    eprintln!("setup: {} buyers, {} SKUs in {:.1?}", options.buyers, TAIL_SKUS + 1, setup_started.elapsed());

    let rss_before = rss_bytes();
    let progress = Arc::new(AtomicU64::new(0));
    let bar = indicatif::ProgressBar::new(options.duration.as_secs().max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let deadline = started + options.duration;
    let clients: Vec<_> = (0..options.clients)
        .map(|id| {
            let (engine, options, progress) = (handle.clone(), options.clone(), progress.clone());
            std::thread::spawn(move || client(engine, options, id, deadline, progress))
        })
        .collect();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let done = progress.load(Ordering::Relaxed);
        bar.set_position(started.elapsed().as_secs());
        bar.set_message(format!("{:.0} orders/s", done as f64 / started.elapsed().as_secs_f64()));
    }
    let mut total =
        ClientTally { orders: 0, payments: 0, errors: BTreeMap::new(), latency: Histogram::new(3)? };
    for c in clients {
        let tally = c.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        total.orders += tally.orders;
        total.payments += tally.payments;
        total.latency.add(&tally.latency)?;
        for (code, n) in tally.errors {
            *total.errors.entry(code).or_default() += n;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let rss_after = rss_bytes();

    let View::Sku(hot_sku) = read(&handle, Query::Sku(hot))? else { bail!("not a SKU view") };
    let View::Audit(audit) = read(&handle, Query::Audit)? else { bail!("not an audit view") };
    drop(handle);
    engine.shutdown();
    let ledger_balanced = audit.checks.iter().any(|c| c.name == "money_conserved" && c.ok);
    let latency = &total.latency;
    Ok(Report {
        workload: options.workload,
        mode: options.mode,
        target: "elevens",
        duration_s: elapsed,
        orders: total.orders,
        payments: total.payments,
        orders_per_s: total.orders as f64 / elapsed,
        payments_per_s: total.payments as f64 / elapsed,
        latency_us: Latency {
            p50: latency.value_at_quantile(0.5),
            p99: latency.value_at_quantile(0.99),
            p999: latency.value_at_quantile(0.999),
            max: latency.max(),
        },
        errors: total.errors,
        rss_bytes_per_order: rss_after.saturating_sub(rss_before) as f64 / total.orders.max(1) as f64,
        invariants: Invariants {
            sold_exactly_stock: hot_sku.sold == HOT_UNITS,
            ledger_balanced,
            audit_ok: audit.ok,
        },
        hot_sold: hot_sku.sold,
        clients: options.clients,
        batch: options.batch,
        buyers: options.buyers,
        seed: options.seed,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// The table printed at the end of a run.
pub fn table(report: &Report) -> String {
    let l = &report.latency_us;
    let mut out = String::new();
    out += &format!("workload {:?}, mode {:?}, target {}\n", report.workload, report.mode, report.target);
    out += &format!("  duration        {:>12.2} s\n", report.duration_s);
    out += &format!("  orders          {:>12} ({:.0}/s)\n", report.orders, report.orders_per_s);
    out += &format!("  payments        {:>12} ({:.0}/s)\n", report.payments, report.payments_per_s);
    out += &format!("  latency us      p50 {} p99 {} p99.9 {} max {}\n", l.p50, l.p99, l.p999, l.max);
    out += &format!("  rss per order   {:>12.0} bytes\n", report.rss_bytes_per_order);
    out += &format!("  hot SKU sold    {:>12} of {HOT_UNITS}\n", report.hot_sold);
    let i = &report.invariants;
    out += &format!(
        "  invariants      sold_exactly_stock {} ledger_balanced {} audit_ok {}\n",
        i.sold_exactly_stock, i.ledger_balanced, i.audit_ok
    );
    for (code, n) in &report.errors {
        out += &format!("  refused         {n:>12} {code}\n");
    }
    out
}
