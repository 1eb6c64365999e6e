//! Whose orders, returns and tickets are whose: for each merchant and each buyer, the ids of
//! each kind in the order they were made, and for each order its returns and tickets. (An
//! owner's parcels are its orders' parcels: their lists take the orders' candidates.)
//! The lists a merchant works through (`GET /v1/merchants/{id}/orders` and the like) take
//! their candidates here, so a store with 40 orders among 10 M reaches them in one page rather
//! than by walking every id on the sequencer; the sequencer then filters and renders them.
//!
//! A read model like the search index: rebuilt from the recovered state on start
//! ([`Owners::from_state`]) and fed from the durable events ([`Owners::fold`]) on the
//! read-model thread, which every order passes through at the flash path's rate. So the two
//! sides are kept as cheaply as each allows:
//! - a store's list is a vector of its ids (a few thousand stores, each list long, the map's
//!   entries hot in cache): a page is found by binary search;
//! - a buyer's list is a chain through the ids (millions of buyers, each list short): for each
//!   id, the previous id of the same buyer, and for each buyer its newest id, both in vectors
//!   indexed by id (ids are dense from 1), so adding an id allocates nothing per buyer. A page
//!   walks the buyer's chain, at most [`CHAIN_WALK_MAX`] links.
//!
//! Ids of each kind are made in increasing order; an event folded twice (a restart deriving a
//! tail again) adds nothing, since an id not above the last one taken is already in.

use elevens_core::State;
use elevens_feed::{FeedEvent, Kind};
use rustc_hash::FxHashMap as HashMap;

/// The most links one page of a buyer's list follows: a buyer with more ids than this sees its
/// newest this many.
pub const CHAIN_WALK_MAX: usize = 100_000;

/// What a list is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows {
    Orders = 0,
    Returns = 1,
    Tickets = 2,
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

/// An order's returns and tickets, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AfterSales {
    pub returns: Vec<u64>,
    pub tickets: Vec<u64>,
}

/// One kind's lists.
#[derive(Default)]
struct Table {
    /// Each merchant's ids, at the merchant's id (ids are dense from 1).
    merchants: Vec<Vec<u64>>,
    /// The newest id of each buyer, at the buyer's id (0: none yet).
    buyer_newest: Vec<u64>,
    /// The previous id of the same buyer, at each id (0: none).
    buyer_previous: Vec<u64>,
}

impl Table {
    fn add(&mut self, merchant: u64, buyer: u64, id: u64) {
        // Ids come in increasing order: one not above the last taken is a fold repeated.
        let (Ok(index), Ok(b), Ok(m)) =
            (usize::try_from(id), usize::try_from(buyer), usize::try_from(merchant))
        else {
            return;
        };
        if index < self.buyer_previous.len() || index == 0 {
            return;
        }
        if m >= self.merchants.len() {
            self.merchants.resize_with(m + 1, Vec::new);
        }
        self.merchants[m].push(id);
        if b >= self.buyer_newest.len() {
            self.buyer_newest.resize(b + 1, 0);
        }
        // Ids skipped (none are, but a gap costs nothing) chain to nothing.
        if self.buyer_previous.len() < index {
            self.buyer_previous.resize(index, 0);
        }
        self.buyer_previous.push(self.buyer_newest[b]);
        self.buyer_newest[b] = id;
    }

    /// The buyer's ids, newest first, at most [`CHAIN_WALK_MAX`].
    fn buyer_chain(&self, buyer: u64) -> Vec<u64> {
        let mut chain = Vec::new();
        let newest = usize::try_from(buyer).ok().and_then(|b| self.buyer_newest.get(b));
        let mut id = newest.copied().unwrap_or(0);
        while id != 0 && chain.len() < CHAIN_WALK_MAX {
            chain.push(id);
            id = usize::try_from(id).ok().and_then(|i| self.buyer_previous.get(i)).copied().unwrap_or(0);
        }
        chain
    }

    fn bytes(&self) -> usize {
        let merchants = self.merchants.iter().map(|v| v.capacity() * 8).sum::<usize>()
            + self.merchants.capacity() * std::mem::size_of::<Vec<u64>>();
        merchants + (self.buyer_newest.capacity() + self.buyer_previous.capacity()) * 8
    }
}

/// A page of an ascending list: up to `max` ids after `cursor` in the list's order (ascending,
/// or descending with `newest_first`).
fn page_of(list: &[u64], cursor: Option<u64>, newest_first: bool, max: usize) -> Candidates {
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

#[derive(Default)]
pub struct Owners {
    tables: [Table; 3],
    after_sales: HashMap<u64, AfterSales>,
}

impl Owners {
    pub fn from_state(state: &State) -> Owners {
        let mut owners = Owners::default();
        for (id, o) in state.orders() {
            owners.add(o.merchant().0, o.buyer().0, Rows::Orders, id.0);
        }
        for (id, r) in state.returns() {
            if let Ok(o) = state.order(r.order) {
                owners.add(o.merchant().0, o.buyer().0, Rows::Returns, id.0);
                owners.after_sales.entry(r.order.0).or_default().returns.push(id.0);
            }
        }
        for (id, t) in state.tickets() {
            owners.add(t.merchant.0, t.buyer.0, Rows::Tickets, id.0);
            owners.after_sales.entry(t.order.0).or_default().tickets.push(id.0);
        }
        owners
    }

    fn add(&mut self, merchant: u64, buyer: u64, rows: Rows, id: u64) {
        self.tables[rows as usize].add(merchant, buyer, id);
    }

    /// Whether `id` of `rows` is new here (not folded before).
    fn is_new(&self, rows: Rows, id: u64) -> bool {
        usize::try_from(id).is_ok_and(|i| i >= self.tables[rows as usize].buyer_previous.len())
    }

    /// Takes in an event's new order, parcel, return or ticket; other events change no owner.
    pub fn fold(&mut self, event: &FeedEvent) {
        let (Some(merchant), Some(buyer)) = (event.merchant, event.buyer) else { return };
        match event.kind {
            Kind::OrderPlaced { order, .. } => self.add(merchant, buyer, Rows::Orders, order),
            Kind::ReturnRequested { return_id, order, .. } if self.is_new(Rows::Returns, return_id) => {
                self.add(merchant, buyer, Rows::Returns, return_id);
                self.after_sales.entry(order).or_default().returns.push(return_id);
            }
            Kind::TicketOpened { ticket, order, .. } if self.is_new(Rows::Tickets, ticket) => {
                self.add(merchant, buyer, Rows::Tickets, ticket);
                self.after_sales.entry(order).or_default().tickets.push(ticket);
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
        let table = &self.tables[rows as usize];
        match owner {
            Owner::Merchant(m) => {
                let list = usize::try_from(m).ok().and_then(|m| table.merchants.get(m));
                list.map_or_else(Candidates::default, |list| page_of(list, cursor, newest_first, max))
            }
            Owner::Buyer(b) => {
                let mut chain = table.buyer_chain(b);
                chain.reverse();
                page_of(&chain, cursor, newest_first, max)
            }
        }
    }

    /// The order's returns and tickets.
    pub fn after_sales(&self, order: u64) -> AfterSales {
        self.after_sales.get(&order).cloned().unwrap_or_default()
    }

    /// What the lists hold, in bytes (their capacity, the maps' entries).
    pub fn bytes(&self) -> usize {
        let after = self
            .after_sales
            .values()
            .map(|a| (a.returns.capacity() + a.tickets.capacity()) * 8)
            .sum::<usize>()
            + self.after_sales.capacity() * (8 + std::mem::size_of::<AfterSales>());
        self.tables.iter().map(Table::bytes).sum::<usize>() + after
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
        // Merchant 7's orders are every third id, among others'; buyer b's are the ids ≡ b (mod 5).
        let entries: Vec<_> =
            (1..=30u64).map(|id| (if id.is_multiple_of(3) { 7 } else { 1 }, id % 5, id)).collect();
        let o = owners_of(&entries);
        for owner in [Owner::Merchant(7), Owner::Buyer(3)] {
            let all: Vec<u64> = entries
                .iter()
                .filter(|(m, b, _)| owner == Owner::Merchant(*m) || owner == Owner::Buyer(*b))
                .map(|e| e.2)
                .collect();
            // Page by page, both ways, with any page size: the owner's ids, each once, in order.
            for max in [1, 2, 4, 100] {
                for newest_first in [false, true] {
                    let (mut seen, mut cursor): (Vec<u64>, Option<u64>) = (Vec::new(), None);
                    loop {
                        let page = o.page(owner, Rows::Orders, cursor, newest_first, max);
                        assert!(page.ids.len() <= max);
                        seen.extend(&page.ids);
                        if !page.more {
                            break;
                        }
                        cursor = page.ids.last().copied();
                    }
                    let mut want = all.clone();
                    if newest_first {
                        want.reverse();
                    }
                    assert_eq!(seen, want, "{owner:?} by {max}, newest first: {newest_first}");
                }
            }
        }
        let mine = Owner::Merchant(7);
        assert_eq!(
            o.page(mine, Rows::Orders, None, false, 4),
            Candidates { ids: vec![3, 6, 9, 12], more: true }
        );
        // A cursor between two of its ids (another's id) resumes after it.
        assert_eq!(o.page(mine, Rows::Orders, Some(13), false, 1).ids, vec![15]);
        assert_eq!(o.page(Owner::Buyer(3), Rows::Orders, Some(18), true, 2).ids, vec![13, 8]);
        assert_eq!(o.page(Owner::Merchant(99), Rows::Orders, None, true, 4), Candidates::default());
        assert_eq!(o.page(Owner::Buyer(99), Rows::Orders, None, true, 4), Candidates::default());
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
        assert_eq!(o.page(Owner::Merchant(2), Rows::Tickets, None, true, 10).ids, vec![3, 2, 1]);
        assert_eq!(o.after_sales(2).tickets, vec![2]);
        assert!(o.bytes() > 0);
    }
}
