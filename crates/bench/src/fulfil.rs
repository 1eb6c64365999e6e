//! The fulfil workload: the flash workload with the logistics behind it (a warehouse per
//! merchant, a carrier, an address per buyer), then every paid order dispatched, tracked
//! through four carrier events and delivered; and the 11.11 backlog scenario, run on the state
//! machine itself with its own clock (days must pass).

use crate::{call, cny, rss_bytes, run_setup, MERCHANTS};
use anyhow::{bail, Context};
use elevens_core::logistics::calendar::{date_string, local_day_and_minute, parse_date, DAY_MS};
use elevens_core::logistics::TrackingStatus;
use elevens_core::*;
use elevens_http::engine::{EngineHandle, Item, ReplyWith};
use serde::Serialize;
use std::time::Instant;

/// Each merchant's warehouse dispatches this many parcels a day: more than a run pays, so the
/// workload measures the engine, not a full calendar.
const CAPACITY_PER_DAY: u32 = 10_000_000;
/// Commands per submission, and events per tracking command (a carrier's feed).
const BATCH: usize = 1_000;
/// Threads submitting at once: enough to keep the sequencer busy while the journal syncs.
const SUBMITTERS: u64 = 4;
/// The four carrier events of every parcel.
const EVENTS: [TrackingStatus; 4] = [
    TrackingStatus::PreTransit,
    TrackingStatus::InTransit,
    TrackingStatus::OutForDelivery,
    TrackingStatus::Delivered,
];

#[derive(Debug, Default, Serialize)]
pub struct FulfilFigures {
    pub shipments: u64,
    pub shipments_per_s: f64,
    pub tracking_events: u64,
    pub tracking_events_per_s: f64,
    /// The process's RSS growth over dispatch, tracking and delivery, per shipment, plus each
    /// shipment's record and order index (created with the payment, where their RSS cannot be
    /// told from the order's and the ledger's).
    pub rss_bytes_per_shipment: f64,
    /// The same, counted by the state machine's tables (records, histories, the order index).
    pub table_bytes_per_shipment: f64,
    pub every_paid_order_shipped: bool,
    pub capacity_never_overbooked: bool,
    pub refunds_within_paid: bool,
    pub tracking_forward_only: bool,
    pub delivered: u64,
}

/// A warehouse per merchant, one carrier serving the lane, and every buyer's address.
pub(crate) fn setup(engine: &EngineHandle, buyers: u64) -> anyhow::Result<()> {
    let admin =
        |command| Item::Write { actor: Actor::Admin, idempotency: None, command, reply: ReplyWith::Outcome };
    let mut commands = Vec::new();
    for m in 1..=MERCHANTS {
        commands.push(admin(Command::CreateWarehouse(Box::new(NewWarehouse {
            merchant: MerchantId(m),
            name: format!("warehouse {m}"),
            region: "CN-ZJ".into(),
            capacity_per_day: CAPACITY_PER_DAY,
            cutoff_minute: 24 * 60,
            utc_offset_minutes: 480,
            closed_weekdays: 0,
            closed_days: vec![],
        }))));
    }
    let lanes = vec![NewLane { from: "CN-ZJ".into(), to: "CN-BJ".into(), p50_days: 1, p90_days: 3 }];
    commands.push(admin(Command::CreateCarrier(Box::new(NewCarrier { name: "carrier".into(), lanes }))));
    for b in 1..=buyers {
        let text = format!("{b} Chang'an Avenue");
        commands.push(admin(Command::SetAddress { buyer: BuyerId(b), region: "CN-BJ".into(), text }));
    }
    run_setup(engine, commands)
}

/// Runs every id of `1..=count` through the engine from several threads: `make(first, n)` is
/// the command for `n` ids from `first` (each thread takes every [`SUBMITTERS`]-th id), and
/// each submission carries about [`BATCH`] ids' worth. Returns the seconds it took and the
/// refusals.
fn drive(
    engine: &EngineHandle,
    count: u64,
    ids_per_command: usize,
    make: impl Fn(u64, u64) -> Item + Sync,
) -> anyhow::Result<(f64, u64)> {
    let started = Instant::now();
    let commands_per_submission = (BATCH / ids_per_command).max(1);
    let refused = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..SUBMITTERS)
            .map(|t| {
                let make = &make;
                scope.spawn(move || -> anyhow::Result<u64> {
                    let mut refused = 0;
                    let ids: Vec<u64> = (1..=count).filter(|id| id % SUBMITTERS == t).collect();
                    for submission in ids.chunks(ids_per_command * commands_per_submission) {
                        let items =
                            submission.chunks(ids_per_command).map(|c| make(c[0], c.len() as u64)).collect();
                        let results = call(engine, items)?;
                        refused += results.iter().filter(|r| r.is_err()).count() as u64;
                    }
                    Ok(refused)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().map_err(|_| anyhow::anyhow!("a submitter panicked"))?)
            .sum::<anyhow::Result<u64>>()
    })?;
    Ok((started.elapsed().as_secs_f64(), refused))
}

/// Dispatches every shipment (`shipments` of them, ids from 1), then records four events for
/// each in carrier feeds of [`BATCH`] events, the last one `delivered`.
pub(crate) fn run(engine: &EngineHandle, shipments: u64, key_base: u64) -> anyhow::Result<FulfilFigures> {
    let rss_before = rss_bytes();
    let key = |n: u64| Some(Idempotency { key: u128::from(key_base + n) | (1 << 101), fingerprint: 0 });
    let (dispatch_s, refused) = drive(engine, shipments, 1, |id, _| Item::Write {
        actor: Actor::Admin,
        idempotency: key(id),
        command: Command::DispatchShipment { shipment: ShipmentId(id) },
        reply: ReplyWith::Outcome,
    })?;
    if refused > 0 {
        bail!("{refused} dispatches refused");
    }
    let carrier = Actor::Carrier(CarrierId(1));
    let now = elevens_http::engine::now_ms();
    let per_feed = BATCH / EVENTS.len();
    let (tracking_s, refused) = drive(engine, shipments, per_feed, |first, n| {
        // The feed of the `n` shipments from `first` (every SUBMITTERS-th id): four events each.
        let mut events = Vec::with_capacity(n as usize * EVENTS.len());
        for (step, status) in EVENTS.iter().enumerate() {
            for i in 0..n {
                let id = first + i * SUBMITTERS;
                events.push(NewTrackingEvent {
                    shipment: ShipmentId(id),
                    key: id << 3 | step as u64,
                    status: *status,
                    occurred_at: Millis(now.0 + step as u64 * 1_000),
                });
            }
        }
        Item::Write {
            actor: carrier,
            idempotency: key(shipments + first),
            command: Command::RecordTracking { events },
            reply: ReplyWith::Outcome,
        }
    })?;
    if refused > 0 {
        bail!("{refused} tracking feeds refused");
    }
    let rss_after = rss_bytes();
    let events = shipments * EVENTS.len() as u64;
    Ok(FulfilFigures {
        shipments,
        shipments_per_s: shipments as f64 / dispatch_s,
        tracking_events: events,
        tracking_events_per_s: events as f64 / tracking_s,
        rss_bytes_per_shipment: rss_after.saturating_sub(rss_before) as f64 / shipments.max(1) as f64
            + (std::mem::size_of::<logistics::Shipment>() + 5) as f64,
        ..FulfilFigures::default()
    })
}

fn apply(state: &mut State, actor: Actor, command: Command, at: u64) -> anyhow::Result<Outcome> {
    match state.apply(&Envelope { actor, idempotency: None, at: Millis(at), command }) {
        Ok(applied) => Ok(applied.outcome().clone()),
        Err(e) => bail!("{e}"),
    }
}

/// One day of the backlog scenario.
#[derive(Debug, Serialize)]
pub struct BacklogDay {
    pub date: String,
    /// Parcels booked to leave that day when the midnight rush was paid.
    pub booked_at_midnight: u32,
    /// The dispatch date promised to an order paid at noon that day.
    pub promise_at_noon: String,
    pub promised_days_out: u32,
}

#[derive(Debug, Serialize)]
pub struct BacklogFigures {
    pub capacity_per_day: u32,
    pub orders: u64,
    pub days: Vec<BacklogDay>,
    pub repromised: u64,
    pub audit_ok: bool,
}

/// The 11.11 backlog: a warehouse of 100,000 parcels a day takes 1,000,000 orders at midnight;
/// its promises spread over ten days, and each day it dispatches its bookings, so that the
/// promise for an order paid at noon comes back in as the backlog drains.
pub fn backlog(orders: u64, capacity: u32) -> anyhow::Result<BacklogFigures> {
    let day0 = parse_date("2026-11-11").context("a date")?;
    let mut state = State::new();
    let now = u64::from(day0) * DAY_MS - 8 * 3_600_000; // midnight in Beijing
    apply(
        &mut state,
        Actor::Admin,
        Command::CreateMerchant { name: "store".into(), commission_bps: 200 },
        now,
    )?;
    apply(&mut state, Actor::Admin, Command::CreateBuyer { name: "buyers".into() }, now)?;
    let warehouse = NewWarehouse {
        merchant: MerchantId(1),
        name: "Hangzhou".into(),
        region: "CN-ZJ".into(),
        capacity_per_day: capacity,
        cutoff_minute: 16 * 60,
        utc_offset_minutes: 480,
        closed_weekdays: 0,
        closed_days: vec![],
    };
    apply(&mut state, Actor::Admin, Command::CreateWarehouse(Box::new(warehouse)), now)?;
    let sku = NewSku {
        merchant: MerchantId(1),
        title: "phone".into(),
        description: String::new(),
        price: Amount(100),
        currency: cny(),
        initial_stock: orders + 100,
        warehouse: None,
    };
    apply(&mut state, Actor::Admin, Command::CreateSku(Box::new(sku)), now)?;
    let funds = Command::TopUp { buyer: BuyerId(1), amount: Amount(100 * (orders + 100)), currency: cny() };
    apply(&mut state, Actor::Admin, funds, now)?;
    let buy = |state: &mut State, at: u64| -> anyhow::Result<u32> {
        let lines = vec![LineRequest { sku: SkuId(1), quantity: 1 }];
        let place =
            Command::PlaceOrder { buyer: BuyerId(1), lines, coupons: vec![], reservation_ttl_ms: 60_000 };
        let Outcome::OrderPlaced { order, .. } = apply(state, Actor::Admin, place, at)? else {
            bail!("not placed")
        };
        apply(state, Actor::Admin, Command::PayOrder { order }, at)?;
        let (_, s) = state.order_shipments(order).next().context("a shipment")?;
        Ok(s.dispatch_day)
    };
    for _ in 0..orders {
        buy(&mut state, now)?;
    }
    let w = state.warehouse(WarehouseId(1))?;
    let booked: Vec<u32> = (0..14).map(|d| w.booked(day0 + d)).collect();
    let mut days = Vec::new();
    let mut next = 1u64;
    for d in 0..14u32 {
        // Noon: a new order's promise; then the day's bookings leave.
        let noon = now + u64::from(d) * DAY_MS + 12 * 3_600_000;
        let (today, _) = local_day_and_minute(noon, 480);
        let promise = buy(&mut state, noon)?;
        days.push(BacklogDay {
            date: date_string(today),
            booked_at_midnight: booked[d as usize],
            promise_at_noon: date_string(promise),
            promised_days_out: promise - today,
        });
        let total = state.shipments().len() as u64;
        let due: Vec<ShipmentId> = (next..=total)
            .map(ShipmentId)
            .filter(|&id| {
                state.shipment(id).is_ok_and(|s| {
                    s.dispatch_day <= today && s.lifecycle == logistics::Lifecycle::AwaitingDispatch
                })
            })
            .collect();
        for id in due {
            apply(&mut state, Actor::Admin, Command::DispatchShipment { shipment: id }, noon + 3_600_000)?;
        }
        while next <= total
            && state
                .shipment(ShipmentId(next))
                .is_ok_and(|s| s.lifecycle != logistics::Lifecycle::AwaitingDispatch)
        {
            next += 1;
        }
        apply(&mut state, Actor::Admin, Command::Tick, noon + 12 * 3_600_000)?;
    }
    Ok(BacklogFigures {
        capacity_per_day: capacity,
        orders,
        days,
        repromised: state.logistics().counters().repromised,
        audit_ok: state.audit().ok(),
    })
}

/// The fulfil workload's lines of the printed table.
pub fn table(f: &FulfilFigures, backlog: Option<&BacklogFigures>) -> String {
    let mut out = String::new();
    out += &format!("  shipments       {:>12} ({:.0}/s dispatched)\n", f.shipments, f.shipments_per_s);
    out += &format!("  tracking events {:>12} ({:.0}/s)\n", f.tracking_events, f.tracking_events_per_s);
    out += &format!("  delivered       {:>12}\n", f.delivered);
    out += &format!(
        "  per shipment    {:>12.0} bytes RSS ({:.0} in the tables)\n",
        f.rss_bytes_per_shipment, f.table_bytes_per_shipment
    );
    out += &format!(
        "  invariants      every_paid_order_shipped {} capacity_never_overbooked {} refunds_within_paid {} tracking_forward_only {}\n",
        f.every_paid_order_shipped, f.capacity_never_overbooked, f.refunds_within_paid, f.tracking_forward_only
    );
    if let Some(b) = backlog {
        out += &format!(
            "  backlog         {} orders at midnight, {} parcels a day\n",
            b.orders, b.capacity_per_day
        );
        for d in &b.days {
            out += &format!(
                "    {}  booked {:>8}  an order paid at noon leaves {} ({} days out)\n",
                d.date, d.booked_at_midnight, d.promise_at_noon, d.promised_days_out
            );
        }
    }
    out
}
