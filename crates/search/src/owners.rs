//! Whose orders, parcels, returns and tickets are whose: for each merchant and each buyer, the
//! ids of each kind in the order they were made, and for each order its returns and tickets.
//! The lists a merchant works through (`GET /v1/merchants/{id}/orders` and the like) take
//! their candidates here, so a store with 40 orders among 10 M reaches them in one page rather
//! than by walking every id on the sequencer; the sequencer then filters and renders them.
//!
//! A read model like the search index: rebuilt from the recovered state on start
//! ([`Owners::from_state`]) and fed from the durable events ([`Owners::fold`]). Ids of each
//! kind are made in increasing order, so every list is sorted by construction and a position is
//! found by binary search; an event folded twice (a restart deriving a tail again) adds
//! nothing, since an id not above a list's last is already in it.

use elevens_core::State;
use elevens_feed::{FeedEvent, Kind};
use rustc_hash::FxHashMap as HashMap;

/// What a list is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows {
    Orders = 0,
    Shipments = 1,
    Returns = 2,
    Tickets = 3,
}

/// Whose list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Merchant(u64),
    Buyer(u64),
}

/// One page's candidates, in the list's order, and whether the list goes on past them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Candidates {
    pub ids: Vec<u64>,
    pub more: bool,
}

#[derive(Default)]
struct Lists([Vec<u64>; 4]);

/// An order's returns and tickets, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AfterSales {
    pub returns: Vec<u64>,
    pub tickets: Vec<u64>,
}

#[derive(Default)]
pub struct Owners {
    merchants: HashMap<u64, Lists>,
    buyers: HashMap<u64, Lists>,
    after_sales: HashMap<u64, AfterSales>,
}

/// Appends `id` unless the list already ends at or past it (an event folded again).
fn push_new(list: &mut Vec<u64>, id: u64) {
    if list.last().is_none_or(|&last| last < id) {
        list.push(id);
    }
}

impl Owners {
    pub fn from_state(state: &State) -> Owners {
        let mut owners = Owners::default();
        for (id, o) in state.orders() {
            owners.add(o.merchant().0, o.buyer().0, Rows::Orders, id.0);
        }
        for (id, s) in state.shipments() {
            if let Ok(o) = state.order(s.order()) {
                owners.add(o.merchant().0, o.buyer().0, Rows::Shipments, id.0);
            }
        }
        for (id, r) in state.returns() {
            if let Ok(o) = state.order(r.order) {
                owners.add(o.merchant().0, o.buyer().0, Rows::Returns, id.0);
                push_new(&mut owners.after_sales.entry(r.order.0).or_default().returns, id.0);
            }
        }
        for (id, t) in state.tickets() {
            owners.add(t.merchant.0, t.buyer.0, Rows::Tickets, id.0);
            push_new(&mut owners.after_sales.entry(t.order.0).or_default().tickets, id.0);
        }
        owners
    }

    fn add(&mut self, merchant: u64, buyer: u64, rows: Rows, id: u64) {
        push_new(&mut self.merchants.entry(merchant).or_default().0[rows as usize], id);
        push_new(&mut self.buyers.entry(buyer).or_default().0[rows as usize], id);
    }

    /// Takes in an event's new order, parcel, return or ticket; other events change no owner.
    pub fn fold(&mut self, event: &FeedEvent) {
        let (Some(merchant), Some(buyer)) = (event.merchant, event.buyer) else { return };
        match event.kind {
            Kind::OrderPlaced { order, .. } => self.add(merchant, buyer, Rows::Orders, order),
            Kind::ShipmentCreated { shipment, .. } => self.add(merchant, buyer, Rows::Shipments, shipment),
            Kind::ReturnRequested { return_id, order, .. } => {
                self.add(merchant, buyer, Rows::Returns, return_id);
                push_new(&mut self.after_sales.entry(order).or_default().returns, return_id);
            }
            Kind::TicketOpened { ticket, order, .. } => {
                self.add(merchant, buyer, Rows::Tickets, ticket);
                push_new(&mut self.after_sales.entry(order).or_default().tickets, ticket);
            }
            _ => {}
        }
    }

    /// Up to `max` of the owner's ids after `cursor` in the list's order: ascending ids
    /// (oldest first), or descending with `newest_first`; without a cursor, from the start.
    pub fn page(
        &self,
        owner: Owner,
        rows: Rows,
        cursor: Option<u64>,
        newest_first: bool,
        max: usize,
    ) -> Candidates {
        let lists = match owner {
            Owner::Merchant(m) => self.merchants.get(&m),
            Owner::Buyer(b) => self.buyers.get(&b),
        };
        let Some(list) = lists.map(|l| &l.0[rows as usize]) else { return Candidates::default() };
        if newest_first {
            let end = cursor.map_or(list.len(), |c| list.partition_point(|&id| id < c));
            let start = end.saturating_sub(max);
            Candidates { ids: list[start..end].iter().rev().copied().collect(), more: start > 0 }
        } else {
            let start = cursor.map_or(0, |c| list.partition_point(|&id| id <= c));
            let end = list.len().min(start.saturating_add(max));
            Candidates { ids: list[start..end].to_vec(), more: end < list.len() }
        }
    }

    /// The order's returns and tickets.
    pub fn after_sales(&self, order: u64) -> AfterSales {
        self.after_sales.get(&order).cloned().unwrap_or_default()
    }

    /// What the lists hold, in bytes (their capacity, the maps' entries).
    pub fn bytes(&self) -> usize {
        let lists = |m: &HashMap<u64, Lists>| {
            m.values().map(|l| l.0.iter().map(|v| v.capacity() * 8).sum::<usize>()).sum::<usize>()
                + m.capacity() * (8 + std::mem::size_of::<Lists>())
        };
        let after = self
            .after_sales
            .values()
            .map(|a| (a.returns.capacity() + a.tickets.capacity()) * 8)
            .sum::<usize>()
            + self.after_sales.capacity() * (8 + std::mem::size_of::<AfterSales>());
        lists(&self.merchants) + lists(&self.buyers) + after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners_of(entries: &[(u64, u64, u64)]) -> Owners {
        let mut o = Owners::default();
        for &(merchant, buyer, id) in entries {
            o.add(merchant, buyer, Rows::Orders, id);
        }
        o
    }

    #[test]
    fn pages_follow_the_cursor_both_ways_and_end_exactly() {
        // Merchant 7's orders are every third id, among others'.
        let entries: Vec<_> =
            (1..=30u64).map(|id| (if id.is_multiple_of(3) { 7 } else { 1 }, id % 5, id)).collect();
        let o = owners_of(&entries);
        let mine = Owner::Merchant(7);
        let first = o.page(mine, Rows::Orders, None, false, 4);
        assert_eq!(first, Candidates { ids: vec![3, 6, 9, 12], more: true });
        let next = o.page(mine, Rows::Orders, Some(12), false, 4);
        assert_eq!(next, Candidates { ids: vec![15, 18, 21, 24], more: true });
        assert_eq!(
            o.page(mine, Rows::Orders, Some(24), false, 4),
            Candidates { ids: vec![27, 30], more: false }
        );
        // A cursor between two of its ids (another's id) resumes after it.
        assert_eq!(o.page(mine, Rows::Orders, Some(13), false, 1).ids, vec![15]);
        let newest = o.page(mine, Rows::Orders, None, true, 4);
        assert_eq!(newest, Candidates { ids: vec![30, 27, 24, 21], more: true });
        assert_eq!(o.page(mine, Rows::Orders, Some(9), true, 4), Candidates { ids: vec![6, 3], more: false });
        assert_eq!(o.page(Owner::Merchant(99), Rows::Orders, None, true, 4), Candidates::default());
        assert!(o.page(mine, Rows::Tickets, None, false, 4).ids.is_empty());
    }

    #[test]
    fn an_event_folded_twice_is_listed_once() {
        let event = |order| FeedEvent {
            record: order,
            at: 0,
            merchant: Some(2),
            buyer: Some(3),
            kind: Kind::TicketOpened { ticket: order, order, kind: "other".into() },
        };
        let mut o = Owners::default();
        for id in [1, 2, 2, 1, 3] {
            o.fold(&event(id));
        }
        assert_eq!(o.page(Owner::Buyer(3), Rows::Tickets, None, false, 10).ids, vec![1, 2, 3]);
        assert_eq!(o.after_sales(2).tickets, vec![2]);
        assert!(o.bytes() > 0);
    }
}
