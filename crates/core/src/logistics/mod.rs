//! Logistics and after-sales: warehouses and their dispatch capacity, carriers and their transit
//! times, shipments with two separate states (the merchant's lifecycle and the carrier's
//! tracking), promised delivery dates booked against capacity, returns, partial refunds and
//! service tickets.
//!
//! A delivery promise is a capacity booking: a paid order books one parcel per shipment on the
//! first working day, from its cut-off, whose booked count is below the warehouse's daily
//! capacity; the carrier's p50 and p90 transit days on the lane give `promised_from` and
//! `promised_by`. A day is never booked beyond its capacity. Parcels not dispatched by the end
//! of their day roll into the next days' backlog: each is booked again on the first day with
//! room (so the backlog takes capacity from new orders, whose promises move out) and the move
//! is recorded in its history with its reason, and opens a service ticket.
//!
//! Tracking statuses only move forward ([`TrackingStatus::rank`]): a late or duplicate event is
//! kept in the history but never moves a delivered parcel back to in transit.

mod after_sales;
mod audit;
pub mod calendar;
mod shipments;
mod table;

pub use after_sales::{
    line_nets, RefundAccount, ReturnReason, ReturnRequest, ReturnStatus, Ticket, TicketKind, TicketStatus,
};
pub use shipments::Estimate;
pub(crate) use shipments::Plan;

use crate::chunked::Chunked;
use crate::types::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A merchant's warehouse: where its SKUs ship from, and how many parcels leave it per day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warehouse {
    pub merchant: MerchantId,
    pub name: String,
    pub region: RegionId,
    pub capacity_per_day: u32,
    /// Orders paid before this minute of the local day can leave the same day.
    pub cutoff_minute: u16,
    /// Local time is UTC plus this many minutes (a fixed offset: no daylight saving).
    pub utc_offset_minutes: i16,
    /// Bit 0 Monday .. bit 6 Sunday: weekdays without dispatch.
    pub closed_weekdays: u8,
    /// Days without dispatch (holidays), sorted.
    pub closed_days: Vec<u32>,
    /// Every local day with bookings.
    pub days: BTreeMap<u32, DayBook>,
    /// Parcels waiting to be dispatched: the backlog.
    pub awaiting: u64,
}

impl Warehouse {
    pub fn calendar(&self) -> calendar::Calendar<'_> {
        calendar::Calendar { closed_weekdays: self.closed_weekdays, closed_days: &self.closed_days }
    }

    pub fn booked(&self, day: u32) -> u32 {
        self.days.get(&day).map_or(0, |d| d.booked)
    }
}

/// One warehouse day: how many parcels are booked to leave on it (never above the capacity),
/// how many left, how many rolled over to a later day.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayBook {
    pub booked: u32,
    pub dispatched: u32,
    pub rolled_over: u32,
}

/// An interned region code ("CN-ZJ"): warehouses, lanes and addresses name regions by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RegionId(pub u16);

impl RegionId {
    /// No region: a parcel of a merchant without warehouses, a buyer without an address.
    pub const NONE: RegionId = RegionId(u16::MAX);
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carrier {
    pub name: String,
    pub lanes: Vec<Lane>,
}

/// Transit time from a warehouse's region to a buyer's region, as a distribution in days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lane {
    pub from: RegionId,
    pub to: RegionId,
    pub p50_days: u16,
    pub p90_days: u16,
}

/// The merchant's side of a shipment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lifecycle {
    AwaitingDispatch,
    Dispatched,
    Delivered,
    Cancelled,
}

impl Lifecycle {
    pub fn name(self) -> &'static str {
        match self {
            Lifecycle::AwaitingDispatch => "awaiting_dispatch",
            Lifecycle::Dispatched => "dispatched",
            Lifecycle::Delivered => "delivered",
            Lifecycle::Cancelled => "cancelled",
        }
    }

    pub const ALL: [Lifecycle; 4] =
        [Lifecycle::AwaitingDispatch, Lifecycle::Dispatched, Lifecycle::Delivered, Lifecycle::Cancelled];
}

/// The carrier's side of a shipment (the EasyPost and AfterShip statuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TrackingStatus {
    PreTransit,
    InTransit,
    OutForDelivery,
    AttemptFail,
    AvailableForPickup,
    Delivered,
    ReturnToSender,
    Exception,
    Expired,
}

impl TrackingStatus {
    pub const ALL: [TrackingStatus; 9] = [
        TrackingStatus::PreTransit,
        TrackingStatus::InTransit,
        TrackingStatus::OutForDelivery,
        TrackingStatus::AttemptFail,
        TrackingStatus::AvailableForPickup,
        TrackingStatus::Delivered,
        TrackingStatus::ReturnToSender,
        TrackingStatus::Exception,
        TrackingStatus::Expired,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TrackingStatus::PreTransit => "pre_transit",
            TrackingStatus::InTransit => "in_transit",
            TrackingStatus::OutForDelivery => "out_for_delivery",
            TrackingStatus::AttemptFail => "attempt_fail",
            TrackingStatus::AvailableForPickup => "available_for_pickup",
            TrackingStatus::Delivered => "delivered",
            TrackingStatus::ReturnToSender => "return_to_sender",
            TrackingStatus::Exception => "exception",
            TrackingStatus::Expired => "expired",
        }
    }

    pub fn parse(name: &str) -> Option<TrackingStatus> {
        TrackingStatus::ALL.into_iter().find(|s| s.name() == name)
    }

    /// How far along a parcel is. A status moves only to one of the same rank or higher (an
    /// exception while in transit, out for delivery again after a failed attempt), never from a
    /// final one (rank [`TrackingStatus::FINAL_RANK`]).
    pub fn rank(self) -> u8 {
        match self {
            TrackingStatus::PreTransit => 1,
            TrackingStatus::InTransit | TrackingStatus::Exception => 2,
            TrackingStatus::OutForDelivery | TrackingStatus::AttemptFail => 3,
            TrackingStatus::AvailableForPickup => 4,
            TrackingStatus::Delivered | TrackingStatus::ReturnToSender | TrackingStatus::Expired => {
                TrackingStatus::FINAL_RANK
            }
        }
    }

    pub const FINAL_RANK: u8 = 5;

    fn from_byte(byte: u8) -> Option<TrackingStatus> {
        TrackingStatus::ALL.get(usize::from(byte)).copied()
    }
}

/// A parcel from one warehouse for one order: 56 bytes, one per paid order and warehouse, kept
/// by the million through an 11.11. Times are kept in seconds (`u32`, until 2106), days as day
/// numbers ([`calendar`]); the tracking history is a chain through [`State`]'s event table, so
/// a shipment allocates nothing of its own.
///
/// [`State`]: crate::State
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    order: U40,
    /// The newest history record's position + 1 (0: none yet).
    last_event: U40,
    warehouse: u32,
    /// The carrier's id value, 0 for none (no carrier serves the lane).
    carrier: u16,
    /// The buyer's region at payment, for a parcel from a warehouse ([`RegionId::NONE`]
    /// otherwise).
    pub destination: RegionId,
    pub lifecycle: Lifecycle,
    pub tracking: Option<TrackingStatus>,
    /// History records, saturating.
    pub events: u16,
    /// The order's lines in this parcel, by their position (an order has at most 32).
    pub lines_mask: u32,
    /// The day booked for dispatch.
    pub dispatch_day: u32,
    /// Delivery promised from and by these days, when a carrier serves the lane
    /// ([`Shipment::promised`]).
    pub promised_from: u32,
    pub promised_by: u32,
    pub created_at_s: u32,
    pub dispatched_at_s: u32,
    pub delivered_at_s: u32,
    /// When the carrier reported the current tracking status.
    pub tracking_at_s: u32,
}

const _: () = assert!(std::mem::size_of::<Shipment>() == 56);
const _: () = assert!(crate::limits::ORDER_LINES_MAX <= 32);

impl Shipment {
    pub fn order(&self) -> OrderId {
        OrderId(self.order.get())
    }

    pub fn warehouse(&self) -> WarehouseId {
        WarehouseId(self.warehouse.into())
    }

    pub fn carrier(&self) -> Option<CarrierId> {
        (self.carrier != 0).then_some(CarrierId(self.carrier.into()))
    }

    /// The promised delivery window (first and last day), when a carrier serves the lane.
    pub fn promised(&self) -> Option<(u32, u32)> {
        (self.carrier != 0).then_some((self.promised_from, self.promised_by))
    }

    /// The last promised day, if any.
    pub(crate) fn promise(&self) -> Option<u32> {
        self.promised().map(|(_, by)| by)
    }

    /// Whether it holds a slot of its warehouse's day `dispatch_day`.
    pub fn is_booked(&self) -> bool {
        self.warehouse != 0 && self.lifecycle != Lifecycle::Cancelled
    }

    pub fn has_line(&self, position: usize) -> bool {
        position < 32 && self.lines_mask & (1 << position) != 0
    }
}

/// One record of a shipment's history, 16 bytes: a carrier's event, or a re-promise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HistoryRecord {
    /// The previous record of the same shipment, position + 1 (0: this is the first).
    prev: U40,
    /// A tracking status (its position in [`TrackingStatus::ALL`]), or [`REPROMISED`] + reason.
    kind: u8,
    /// A carrier event's id, as 48 bits of its key; a re-promise's new dispatch day.
    key: [u8; 6],
    at_s: u32,
}

const _: () = assert!(std::mem::size_of::<HistoryRecord>() == 16);

/// History kinds from here on are re-promises; the reason is the offset.
const REPROMISED: u8 = 100;

/// Why a shipment was promised again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepromiseReason {
    /// Not dispatched by the end of its booked day: booked again on the first day with room.
    MissedDispatch,
}

impl RepromiseReason {
    pub fn name(self) -> &'static str {
        match self {
            RepromiseReason::MissedDispatch => "missed_dispatch",
        }
    }
}

/// One entry of a shipment's history as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryEntry {
    Tracking { status: TrackingStatus, key: u64, occurred_at_s: u32 },
    Repromised { reason: RepromiseReason, dispatch_day: u32, at_s: u32 },
}

fn key48(key: u64) -> [u8; 6] {
    let b = key.to_le_bytes();
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}

fn from_key48(key: [u8; 6]) -> u64 {
    let [a, b, c, d, e, f] = key;
    u64::from_le_bytes([a, b, c, d, e, f, 0, 0])
}

impl HistoryRecord {
    fn entry(&self) -> Option<HistoryEntry> {
        if self.kind >= REPROMISED {
            let reason = match self.kind - REPROMISED {
                0 => RepromiseReason::MissedDispatch,
                _ => return None,
            };
            let day = from_key48(self.key) as u32;
            return Some(HistoryEntry::Repromised { reason, dispatch_day: day, at_s: self.at_s });
        }
        let status = TrackingStatus::from_byte(self.kind)?;
        Some(HistoryEntry::Tracking { status, key: from_key48(self.key), occurred_at_s: self.at_s })
    }
}

/// Counts kept as shipments move, for the big screen (on-time rates, promise drift).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogisticsCounters {
    pub dispatched_on_time: u64,
    pub dispatched_late: u64,
    pub delivered_on_time: u64,
    pub delivered_late: u64,
    /// Every parcel delivered (with a promise or without).
    pub delivered: u64,
    pub repromised: u64,
    /// Days the re-promises moved dispatch dates out, in total.
    pub repromised_days: u64,
}

/// Everything logistics and after-sales keep, one part of [`crate::State`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Logistics {
    pub(crate) regions: Vec<String>,
    /// Region codes to their ids: derived from `regions`, rebuilt on decode.
    #[serde(skip)]
    region_index: BTreeMap<String, RegionId>,
    pub(crate) warehouses: Vec<Warehouse>,
    pub(crate) carriers: Vec<Carrier>,
    /// Buyers' delivery addresses (their regions are in their records, `Buyer::region`).
    pub(crate) addresses: BTreeMap<BuyerId, String>,
    /// A merchant's shipping fee per order, by currency: charged once however many parcels.
    pub(crate) shipping_fees: BTreeMap<(MerchantId, Currency), Amount>,
    pub(crate) shipments: table::ShipmentTable,
    pub(crate) history: Chunked<HistoryRecord>,
    /// Shipments to check when the warehouse day they are booked on ends, by (end, warehouse
    /// id value, day); an entry goes when its list is drained.
    pub(crate) dispatch_due: BTreeMap<(Millis, u32, u32), Vec<U40>>,
    /// Shipments to check when their promised delivery day ends.
    pub(crate) delivery_due: BTreeMap<Millis, Vec<U40>>,
    pub(crate) order_shipping: BTreeMap<OrderId, Amount>,
    pub(crate) refunds: BTreeMap<OrderId, RefundAccount>,
    pub(crate) returns: Vec<ReturnRequest>,
    pub(crate) tickets: Vec<Ticket>,
    /// (shipment id value, ticket kind) of every breach a ticket was opened for.
    pub(crate) breaches: BTreeSet<(u64, u8)>,
    /// Tickets buyers opened, per order.
    pub(crate) buyer_tickets: BTreeMap<OrderId, u32>,
    pub(crate) counters: LogisticsCounters,
}

impl Logistics {
    /// Its tables' bytes (see [`crate::footprint`]).
    pub fn footprint(&self, footprint: &mut crate::Footprint) {
        use crate::footprint::{map, map_of_lists, set, vec};
        let addresses: u64 = self.addresses.values().map(|a| a.len() as u64).sum();
        footprint.add("shipments", self.shipments.bytes());
        footprint.add("shipment history", self.history.bytes());
        footprint.add("shipments due", map_of_lists(&self.dispatch_due) + map_of_lists(&self.delivery_due));
        footprint.add(
            "after-sales",
            map(&self.order_shipping)
                + map(&self.refunds)
                + vec(&self.returns)
                + vec(&self.tickets)
                + set(&self.breaches)
                + map(&self.buyer_tickets),
        );
        footprint.add(
            "logistics set-up",
            vec(&self.regions)
                + vec(&self.warehouses)
                + vec(&self.carriers)
                + map(&self.addresses)
                + addresses,
        );
    }

    pub fn region_name(&self, region: RegionId) -> &str {
        self.regions.get(usize::from(region.0)).map_or("", String::as_str)
    }

    pub fn region(&self, name: &str) -> Option<RegionId> {
        self.region_index.get(name).copied()
    }

    /// The id of a region code, added if new (the caller checked there is room).
    pub(crate) fn intern_region(&mut self, name: &str) -> RegionId {
        if let Some(id) = self.region(name) {
            return id;
        }
        let id = RegionId(self.regions.len() as u16);
        self.regions.push(name.to_owned());
        self.region_index.insert(name.to_owned(), id);
        id
    }

    pub(crate) fn rebuild_index(&mut self) {
        self.region_index =
            self.regions.iter().enumerate().map(|(i, r)| (r.clone(), RegionId(i as u16))).collect();
    }

    pub fn counters(&self) -> &LogisticsCounters {
        &self.counters
    }

    /// Every shipment created.
    pub fn shipment_count(&self) -> u64 {
        self.shipments.len() as u64
    }

    /// Carrier events recorded: the history less its re-promises.
    pub fn tracking_events(&self) -> u64 {
        self.history.len() as u64 - self.counters.repromised
    }

    /// Appends a record to a shipment's history chain (the shipment has its record).
    fn append_history(&mut self, shipment: usize, kind: u8, key: [u8; 6], at_s: u32) {
        let position = self.history.len() as u64;
        let Some(s) = self.shipments.written_mut(shipment) else { return };
        self.history.push(HistoryRecord { prev: s.last_event, kind, key, at_s });
        s.last_event = U40::new(position + 1);
        s.events = s.events.saturating_add(1);
    }

    /// A shipment's history, oldest first.
    pub fn history(&self, shipment: &Shipment) -> Vec<HistoryEntry> {
        let mut entries = Vec::with_capacity(usize::from(shipment.events));
        let mut at = shipment.last_event.get();
        while let Some(record) = at.checked_sub(1).and_then(|i| self.history.get(i as usize)) {
            entries.extend(record.entry());
            at = record.prev.get();
        }
        entries.reverse();
        entries
    }

    /// Heap and table bytes held by the shipment tables (records, histories and the order
    /// index), for the bench's report beside the process's RSS.
    pub fn bytes(&self) -> usize {
        (self.shipments.bytes() + self.history.bytes()) as usize
    }
}

impl crate::State {
    /// What a decoded state's logistics must hold before anything reads them by index (see
    /// `State::check_references`).
    pub(crate) fn check_logistics_references(&self) -> Result<(), &'static str> {
        let l = &self.logistics;
        let (orders, warehouses, carriers) =
            (self.orders.len() as u64, l.warehouses.len() as u64, l.carriers.len() as u64);
        let regions = l.regions.len();
        if l.regions.iter().collect::<BTreeSet<_>>().len() != regions || regions >= usize::from(u16::MAX) {
            return Err("a region code appears twice, or too many");
        }
        let region_ok = |r: RegionId| usize::from(r.0) < regions || r == RegionId::NONE;
        l.shipments.check(orders)?;
        for s in l.shipments.written() {
            let order_ok = (1..=orders).contains(&s.order.get());
            let warehouse_ok = u64::from(s.warehouse) <= warehouses;
            let carrier_ok = u64::from(s.carrier) <= carriers;
            let history_ok = s.last_event.get() <= l.history.len() as u64;
            if !(order_ok && warehouse_ok && carrier_ok && history_ok && region_ok(s.destination)) {
                return Err("a shipment names what does not exist");
            }
        }
        if l.history.iter().enumerate().any(|(i, h)| h.prev.get() > i as u64) {
            return Err("a history record names a later one");
        }
        let shipments = l.shipments.len() as u64;
        let pending_ok = |v: &[U40]| v.iter().all(|s| (1..=shipments).contains(&s.get()));
        if l.warehouses
            .iter()
            .any(|w| w.merchant.index().is_none_or(|m| m >= self.merchants.len()) || !region_ok(w.region))
        {
            return Err("a warehouse names what does not exist");
        }
        let warehouse_ok = |w: u32| w != 0 && u64::from(w) <= warehouses;
        if l.dispatch_due.iter().any(|(&(_, w, _), v)| !warehouse_ok(w) || !pending_ok(v))
            || l.delivery_due.values().any(|v| !pending_ok(v))
        {
            return Err("a due entry names what does not exist");
        }
        if l.carriers.iter().any(|c| c.lanes.iter().any(|lane| !region_ok(lane.from) || !region_ok(lane.to)))
            || self.buyers.iter().any(|b| b.region.is_some_and(|r| !region_ok(r)))
        {
            return Err("a lane or address names a region that does not exist");
        }
        let lines_ok =
            |order: OrderId, position: usize| self.order(order).is_ok_and(|o| position < o.lines.len());
        if l.returns.iter().any(|r| r.lines.iter().any(|&(p, _)| !lines_ok(r.order, usize::from(p)))) {
            return Err("a return names an order line that does not exist");
        }
        if l.refunds.iter().any(|(o, a)| {
            self.order(*o).map_or(true, |o| a.units.len() > o.lines.len() || a.lines.len() > o.lines.len())
        }) {
            return Err("a refund names an order line that does not exist");
        }
        if l.tickets
            .iter()
            .any(|t| self.order(t.order).is_err() || t.shipment.is_some_and(|s| s.0 == 0 || s.0 > shipments))
        {
            return Err("a ticket names what does not exist");
        }
        for m in &self.merchants {
            if m.warehouses.iter().any(|w| w.0 == 0 || w.0 > warehouses) {
                return Err("a merchant names a warehouse that does not exist");
            }
        }
        Ok(())
    }
}
