//! `elevens bench --workload budget`: the flash path counted, not timed.
//!
//! The flash marketplace (as `--workload flash` builds it, from the same seed) is set up in a
//! bare [`State`], then `--orders` flash orders are placed and paid, one command at a time, on
//! this thread: no engine, no clock, no other thread, so every run does exactly the same work.
//! Two figures come out of it:
//!
//! - **bytes** per order, per SKU and per shipment, table by table ([`State::footprint`]),
//!   printed and written to the JSON report;
//! - **instructions** per order, when the run is under `valgrind --tool=callgrind`: each
//!   measured command goes through [`apply_order`] (the state machine), [`derive_order`]
//!   (what the sequencer derives from it) and [`fold_order`] (what the read-model thread does
//!   with those events), functions that nothing else calls, so callgrind's inclusive count of
//!   each, over the orders, is the cost of one order there.
//!   `bench/budget.py` runs it and checks both figures against `bench/budget.toml`.

use crate::{cny, flash_sku, tail_prices, FLASH_PRICE, HOT_PRICE, HOT_UNITS, MERCHANTS};
use anyhow::{bail, Context};
use elevens_core::{
    Actor, Amount, Applied, BuyerId, CategoryId, Command, Envelope, Footprint, Idempotency, LineRequest,
    MerchantId, Millis, NewCampaign, OrderId, Outcome, SkuId, State,
};
use elevens_http::engine::derive_events;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use serde::Serialize;

/// The time of the first command: 11.11 2026, midnight in Beijing.
const START_MS: u64 = 1_794_326_400_000;
/// Commands per millisecond of the clock. The sequencer stamps a whole batch with one time,
/// and at the flash sale's rates a batch is hundreds to thousands of commands: 256 a
/// millisecond is a quarter of a million commands a second, below them.
const COMMANDS_PER_MS: u64 = 256;

pub struct Options {
    pub orders: u64,
    pub buyers: u64,
    pub skus: u64,
    pub hot_share: f64,
    pub seed: u64,
    /// Group the second half of the catalogue into products of this many variants (0: none).
    pub variants_per_product: u64,
}

#[derive(Serialize)]
pub struct Report {
    pub orders: u64,
    pub skus: u64,
    pub shipments: u64,
    pub seed: u64,
    /// The tables' bytes per order placed and paid, by table, and their sum.
    pub bytes_per_order: f64,
    pub bytes_per_order_by_table: Vec<(&'static str, f64)>,
    /// The second half of the catalogue's bytes per SKU (the first half takes the tables'
    /// first allocations).
    pub bytes_per_sku: f64,
    /// With `variants_per_product`: the products' and categories' bytes per variant, apart
    /// from the SKUs' own.
    pub bytes_per_variant: Option<f64>,
    /// The shipment tables' bytes per shipment the orders' payments created.
    pub bytes_per_shipment: f64,
    /// The owners index (a read model beside the state, rebuilt as on start) per order, its
    /// shipment included: what the lists of a store or a buyer cost apart from the state.
    pub owners_index_bytes_per_order: f64,
}

/// The state machine's work for one measured command. Never inlined: callgrind names it.
#[inline(never)]
pub fn apply_order(state: &mut State, envelope: &Envelope) -> Result<Outcome, elevens_core::CoreError> {
    state.apply(envelope).map(|applied| match applied {
        Applied::Changed(outcome) | Applied::Repeated(outcome) => outcome,
    })
}

/// What the sequencer derives from one measured command. Never inlined: callgrind names it.
#[inline(never)]
pub fn derive_order(
    state: &State,
    envelope: &Envelope,
    outcome: &Outcome,
    feed: &mut Vec<elevens_feed::FeedEvent>,
) {
    derive_events(state, envelope, outcome, feed);
}

/// The read models at start, as the engine builds them from the state.
pub struct ReadModels {
    analytics: elevens_analytics::Analytics,
    owners: elevens_search::owners::Owners,
}

impl ReadModels {
    fn of(state: &State) -> ReadModels {
        ReadModels {
            analytics: elevens_analytics::Analytics::catalogue_of(state),
            owners: elevens_search::owners::Owners::from_state(state),
        }
    }
}

/// What the read-model thread does with one measured command's events: the figures and the
/// owners' lists (the search index takes no order's events). Never inlined: callgrind names it,
/// and each model's part apart.
#[inline(never)]
pub fn fold_order(models: &mut ReadModels, feed: &mut Vec<elevens_feed::FeedEvent>) {
    fold_analytics(&mut models.analytics, feed);
    fold_owners(&mut models.owners, feed);
    // The sequencer hands these on each batch; here they go at once, so they never grow.
    feed.clear();
}

#[inline(never)]
fn fold_analytics(analytics: &mut elevens_analytics::Analytics, feed: &[elevens_feed::FeedEvent]) {
    for event in feed {
        analytics.fold(event);
    }
}

#[inline(never)]
fn fold_owners(owners: &mut elevens_search::owners::Owners, feed: &[elevens_feed::FeedEvent]) {
    for event in feed {
        owners.fold(event);
    }
}

/// The time the sequencer stamps on each command: `START_MS` plus one millisecond per
/// [`COMMANDS_PER_MS`] commands.
struct Clock {
    commands: u64,
}

impl Clock {
    fn envelope(&mut self, actor: Actor, key: Option<u128>, command: Command) -> Envelope {
        self.commands += 1;
        let idempotency = key.map(|key| Idempotency { key, fingerprint: 0 });
        Envelope { actor, idempotency, at: Millis(START_MS + self.commands / COMMANDS_PER_MS), command }
    }
}

fn set_up(state: &mut State, clock: &mut Clock, command: Command) -> anyhow::Result<Outcome> {
    let envelope = clock.envelope(Actor::Admin, None, command);
    Ok(state
        .apply(&envelope)
        .with_context(|| format!("setting up: {:?}", envelope.command))?
        .outcome()
        .clone())
}

fn table(footprint: &Footprint, name: &str) -> u64 {
    footprint.tables.iter().find(|(n, _)| *n == name).map_or(0, |(_, bytes)| *bytes)
}

pub fn run(options: &Options) -> anyhow::Result<Report> {
    if options.orders == 0 || options.buyers == 0 || options.skus < 2 {
        bail!("orders and buyers must be positive, and there must be two SKUs or more");
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed);
    let mut state = State::new();
    let mut clock = Clock { commands: 0 };
    for m in 0..MERCHANTS {
        set_up(
            &mut state,
            &mut clock,
            Command::CreateMerchant { name: format!("merchant {m}"), commission_bps: 200 },
        )?;
    }
    set_up(&mut state, &mut clock, flash_sku(0, "the hot item".into(), HOT_PRICE, HOT_UNITS))?;
    let prices = tail_prices(&mut rng, options.skus);
    let half = prices.len() / 2;
    let catalogue =
        |state: &mut State, clock: &mut Clock, skus: std::ops::Range<usize>| -> anyhow::Result<()> {
            for s in skus {
                let title = crate::driver::sku_title(s as u64);
                set_up(state, clock, flash_sku(s as u64, title, prices[s], 1_000_000_000))?;
            }
            Ok(())
        };
    catalogue(&mut state, &mut clock, 0..half)?;
    let before_skus = state.footprint().total();
    catalogue(&mut state, &mut clock, half..prices.len())?;
    let bytes_per_sku = (state.footprint().total() - before_skus) as f64 / (prices.len() - half) as f64;
    let bytes_per_variant = match options.variants_per_product {
        0 => None,
        n => Some(group_into_products(&mut state, &mut clock, half as u64..prices.len() as u64, n)?),
    };
    for b in 1..=options.buyers {
        set_up(&mut state, &mut clock, Command::CreateBuyer { name: format!("buyer {b}") })?;
        set_up(
            &mut state,
            &mut clock,
            Command::TopUp { buyer: BuyerId(b), amount: Amount(crate::BUYER_BALANCE), currency: cny() },
        )?;
    }
    set_up(
        &mut state,
        &mut clock,
        Command::CreateCampaign(NewCampaign {
            sku: SkuId(1),
            flash_price: Amount(FLASH_PRICE),
            currency: cny(),
            quantity: HOT_UNITS,
            starts_at: Millis(START_MS),
            ends_at: Millis(START_MS + 24 * 3_600_000),
            per_buyer_limit: 1,
        }),
    )?;

    let zipf = Zipf::new(options.skus as f64, 1.1).context("zipf")?;
    let before = state.footprint();
    let mut models = ReadModels::of(&state);
    let mut feed = Vec::new();
    let mut key: u128 = 1 << 100;
    let mut orders = 0;
    while orders < options.orders {
        let sku = if rng.random_bool(options.hot_share) { 1 } else { 1 + zipf.sample(&mut rng) as u64 };
        let buyer = BuyerId(rng.random_range(1..=options.buyers));
        let place = Command::PlaceOrder {
            buyer,
            lines: vec![LineRequest { sku: SkuId(sku), quantity: 1 }],
            coupons: Vec::new(),
            reservation_ttl_ms: crate::driver::RESERVATION_TTL_MS,
        };
        key += 1;
        let envelope = clock.envelope(Actor::Service, Some(key), place);
        // Refused: the hot item sold out, or this buyer's one unit of it taken.
        let Ok(placed) = apply_order(&mut state, &envelope) else { continue };
        derive_order(&state, &envelope, &placed, &mut feed);
        fold_order(&mut models, &mut feed);
        let Outcome::OrderPlaced { order, .. } = placed else { bail!("placing gave {placed:?}") };
        key += 1;
        let envelope =
            clock.envelope(Actor::Service, Some(key), Command::PayOrder { order: OrderId(order.0) });
        let paid = apply_order(&mut state, &envelope).with_context(|| format!("paying order {}", order.0))?;
        derive_order(&state, &envelope, &paid, &mut feed);
        fold_order(&mut models, &mut feed);
        orders += 1;
    }
    let grown = state.footprint().since(&before);
    let per_order = |bytes: u64| bytes as f64 / orders as f64;
    let shipment_tables = ["shipments", "shipment history", "shipments due"];
    let shipments = state.logistics().shipment_count();
    let shipment_bytes: u64 = shipment_tables.iter().map(|name| table(&grown, name)).sum();
    Ok(Report {
        orders,
        skus: options.skus,
        shipments,
        seed: options.seed,
        bytes_per_order: per_order(grown.total()),
        bytes_per_order_by_table: grown
            .tables
            .iter()
            .map(|(name, bytes)| (*name, per_order(*bytes)))
            // What the set-up's few accounts and the like add, spread over the orders.
            .filter(|(_, bytes)| *bytes >= 0.05)
            .collect(),
        bytes_per_sku,
        bytes_per_variant,
        bytes_per_shipment: shipment_bytes as f64 / shipments.max(1) as f64,
        owners_index_bytes_per_order: per_order(models.owners.bytes() as u64),
    })
}

/// Groups the tail's SKUs at `positions` into products of `variants` each (a merchant's SKUs
/// are 100 apart in the tail), each variant with two option values, under one category: the
/// products' and categories' bytes per variant.
fn group_into_products(
    state: &mut State,
    clock: &mut Clock,
    positions: std::ops::Range<u64>,
    variants: u64,
) -> anyhow::Result<f64> {
    let before = state.footprint().total();
    set_up(state, clock, Command::CreateCategory { name: "Phones".into(), parent: None })?;
    let mut grouped = 0u64;
    let block = MERCHANTS * variants;
    let mut start = positions.start;
    while start + block <= positions.end {
        for first in start..start + MERCHANTS {
            // Tail position s is SKU s + 2, of merchant s % MERCHANTS + 1.
            let merchant = MerchantId(first % MERCHANTS + 1);
            let Outcome::ProductCreated { product } = set_up(
                state,
                clock,
                Command::CreateProduct(Box::new(elevens_core::products::NewProduct {
                    merchant,
                    title: crate::driver::sku_title(first),
                    description: String::new(),
                    category: CategoryId(1),
                    attributes: vec![("brand".into(), format!("brand {}", first % 50))],
                    options: vec!["colour".into(), "size".into()],
                })),
            )?
            else {
                bail!("not a product")
            };
            for v in 0..variants {
                let sku = SkuId(first + v * MERCHANTS + 2);
                let options = vec![format!("colour {v}"), format!("size {}", v % 3)];
                set_up(state, clock, Command::AddVariant { product, sku, options })?;
                grouped += 1;
            }
        }
        start += block;
    }
    Ok((state.footprint().total() - before) as f64 / grouped.max(1) as f64)
}

pub fn table_of(report: &Report) -> String {
    let mut out = format!(
        "budget: {} flash orders placed and paid, {} SKUs, seed {}\n  bytes per order  {:>7.1}\n",
        report.orders, report.skus, report.seed, report.bytes_per_order
    );
    for (name, bytes) in &report.bytes_per_order_by_table {
        out += &format!("    {name:<22} {bytes:>7.1}\n");
    }
    out += &format!("  bytes per SKU    {:>7.1}\n", report.bytes_per_sku);
    if let Some(bytes) = report.bytes_per_variant {
        out += &format!("  bytes per variant {bytes:>6.1} (products and categories, apart from the SKU)\n");
    }
    out += &format!(
        "  bytes per shipment {:>5.1} ({} shipments)\n",
        report.bytes_per_shipment, report.shipments
    );
    out += &format!(
        "  owners index     {:>7.1} per order (a read model, not the state's)\n",
        report.owners_index_bytes_per_order
    );
    out += "  instructions per order: under callgrind (python3 bench/budget.py)\n";
    out
}
