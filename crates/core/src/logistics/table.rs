//! Every shipment, by id, at 10 bytes for a parcel nothing has happened to yet.
//!
//! A merchant without warehouses ships each paid order as one parcel of all its lines, with no
//! booking and no promise: until it is dispatched, cancelled or tracked, everything about it
//! follows from its order and the second it was created. Such a parcel is *implicit*: its id's
//! slot holds its order's id and nothing else is stored. The first change writes its record
//! out ([`ShipmentTable::record_mut`]); a parcel from a warehouse has a record from the start.
//! A flash sale's paid order so costs 10 bytes of shipment tables (its slot and its order's
//! first-shipment entry), not the 61 of a record and an index.

use super::{Lifecycle, RegionId, Shipment};
use crate::chunked::Chunked;
use crate::limits::ORDERS_MAX;
use crate::runs::Runs;
use crate::types::*;
use serde::{Deserialize, Serialize};

/// The slot bit that says the rest is a record's position, not an order's id.
const RECORD: u64 = 1 << 39;

const _: () = assert!(ORDERS_MAX < RECORD);

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct ShipmentTable {
    /// Per shipment (by position): its order's id value while implicit, else [`RECORD`] | the
    /// position of its record.
    slots: Chunked<U40>,
    records: Chunked<Shipment>,
    /// The second each shipment was created in: one entry per second with payments.
    created: Runs,
    /// For each order (by position), its first shipment's id value (0: none); an order's
    /// shipments have consecutive ids.
    by_order: Chunked<U40>,
}

impl ShipmentTable {
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The table's bytes.
    pub(crate) fn bytes(&self) -> u64 {
        self.slots.bytes() + self.records.bytes() + self.by_order.bytes() + self.created.bytes()
    }

    /// Shipments with records of their own.
    #[cfg(test)]
    fn records(&self) -> usize {
        self.records.len()
    }

    /// The shipment at `index`; `lines` gives an order's line count (an implicit parcel holds
    /// all of them).
    pub(crate) fn get(&self, index: usize, lines: impl FnOnce(OrderId) -> usize) -> Option<Shipment> {
        let slot = self.slots.get(index)?.get();
        if slot & RECORD != 0 {
            return self.records.get((slot & !RECORD) as usize).cloned();
        }
        let order = OrderId(slot);
        Some(implicit(order, lines(order), self.created_at_s(index)))
    }

    /// The record of the shipment at `index` for a change, written out first if the parcel
    /// is implicit (`lines` as for [`ShipmentTable::get`]).
    pub(crate) fn record_mut(
        &mut self,
        index: usize,
        lines: impl FnOnce(OrderId) -> usize,
    ) -> Option<&mut Shipment> {
        let slot = self.slots.get(index)?.get();
        let position = if slot & RECORD != 0 {
            slot & !RECORD
        } else {
            let order = OrderId(slot);
            let position = self.records.len() as u64;
            self.records.push(implicit(order, lines(order), self.created_at_s(index)));
            self.slots[index] = U40::new(RECORD | position);
            position
        };
        self.records.get_mut(position as usize)
    }

    /// The record of the shipment at `index` if it has one (a parcel from a warehouse always
    /// has).
    pub(crate) fn written_mut(&mut self, index: usize) -> Option<&mut Shipment> {
        let slot = self.slots.get(index)?.get();
        (slot & RECORD != 0).then(|| self.records.get_mut((slot & !RECORD) as usize)).flatten()
    }

    /// Starts an order's shipments: the next one created is its first.
    pub(crate) fn start_order(&mut self, order: OrderId) {
        let index = order.index().unwrap_or_default();
        while self.by_order.len() <= index {
            self.by_order.push(U40::default());
        }
        self.by_order[index] = U40::new(self.slots.len() as u64 + 1);
    }

    /// The id value of an order's first shipment (0: none).
    pub(crate) fn first_of(&self, order: OrderId) -> u64 {
        order.index().and_then(|i| self.by_order.get(i)).map_or(0, |f| f.get())
    }

    /// Adds an implicit parcel of every line of `order`, created at `at_s`.
    pub(crate) fn push_implicit(&mut self, order: OrderId, at_s: u32) {
        self.note_created(at_s);
        self.slots.push(U40::new(order.0));
    }

    /// Adds a shipment with its record.
    pub(crate) fn push_record(&mut self, shipment: Shipment) {
        self.note_created(shipment.created_at_s);
        self.slots.push(U40::new(RECORD | self.records.len() as u64));
        self.records.push(shipment);
    }

    fn note_created(&mut self, at_s: u32) {
        self.created.note(self.slots.len() as u64, u64::from(at_s));
    }

    fn created_at_s(&self, index: usize) -> u32 {
        self.created.get(index as u64) as u32
    }

    /// What a decoded table must hold before anything reads it by position: every slot names
    /// an order that exists or a record, each record once; runs in order; order entries within
    /// the shipments.
    pub(crate) fn check(&self, orders: u64) -> Result<(), &'static str> {
        let mut seen = vec![false; self.records.len()];
        for slot in self.slots.iter() {
            let slot = slot.get();
            if slot & RECORD == 0 {
                if !(1..=orders).contains(&slot) {
                    return Err("a shipment names an order that does not exist");
                }
                continue;
            }
            match seen.get_mut((slot & !RECORD) as usize) {
                Some(s) if !*s => *s = true,
                _ => return Err("a shipment's record is missing or shared"),
            }
        }
        if seen.iter().any(|s| !s) {
            return Err("a shipment record belongs to no shipment");
        }
        self.created.check(self.slots.len() as u64)?;
        let shipments = self.slots.len() as u64;
        if self.by_order.len() as u64 > orders || self.by_order.iter().any(|f| f.get() > shipments) {
            return Err("an order names a shipment that does not exist");
        }
        Ok(())
    }

    /// Every record, for checks.
    pub(crate) fn written(&self) -> impl Iterator<Item = &Shipment> {
        self.records.iter()
    }
}

/// An implicit parcel as a record: every line of its order, awaiting dispatch, from no
/// warehouse, to no region, promised nothing.
fn implicit(order: OrderId, lines: usize, created_at_s: u32) -> Shipment {
    Shipment {
        order: U40::new(order.0),
        last_event: U40::default(),
        warehouse: 0,
        carrier: 0,
        destination: RegionId::NONE,
        lifecycle: Lifecycle::AwaitingDispatch,
        tracking: None,
        events: 0,
        lines_mask: all_lines(lines),
        dispatch_day: 0,
        promised_from: 0,
        promised_by: 0,
        created_at_s,
        dispatched_at_s: 0,
        delivered_at_s: 0,
        tracking_at_s: 0,
    }
}

/// The mask of an order's `lines` lines (an order has at most 32).
pub(crate) fn all_lines(lines: usize) -> u32 {
    if lines >= 32 {
        u32::MAX
    } else {
        (1u32 << lines) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_implicit_parcel_reads_as_its_record_and_is_written_out_on_its_first_change() {
        let mut t = ShipmentTable::default();
        t.start_order(OrderId(7));
        t.push_implicit(OrderId(7), 100);
        t.start_order(OrderId(8));
        t.push_implicit(OrderId(8), 100);
        t.push_implicit(OrderId(8), 101);
        let lines = |_: OrderId| 3;
        let s = t.get(1, lines).unwrap();
        assert_eq!(
            (s.order(), s.lines_mask, s.created_at_s, s.lifecycle),
            (OrderId(8), 0b111, 100, Lifecycle::AwaitingDispatch)
        );
        assert_eq!(t.get(2, lines).unwrap().created_at_s, 101);
        assert_eq!(t.records(), 0);
        t.record_mut(1, lines).unwrap().lifecycle = Lifecycle::Dispatched;
        t.record_mut(1, lines).unwrap().dispatched_at_s = 5;
        assert_eq!(t.records(), 1, "written out once");
        let s = t.get(1, lines).unwrap();
        assert_eq!(
            (s.order(), s.lifecycle, s.dispatched_at_s, s.created_at_s),
            (OrderId(8), Lifecycle::Dispatched, 5, 100)
        );
        assert_eq!((t.first_of(OrderId(7)), t.first_of(OrderId(8)), t.first_of(OrderId(9))), (1, 2, 0));
        assert!(t.check(8).is_ok());
        assert!(t.check(7).is_err(), "a slot names order 8");
        assert!(t.get(3, lines).is_none());
    }
}
