//! The waiting room of an oversubscribed campaign: a buyer who cannot be admitted now takes a
//! ticket; tickets are admitted first-in first-out at the room's rate (Sentinel's "queueing at a
//! uniform rate"), and an admitted ticket lets its buyer place one order past the rate limits.
//!
//! The room advances lazily, on each call, from the time given: no timer, so it is exact under a
//! manual clock. Waiting tickets that expire are skipped without using a slot. Bounded: at most
//! `capacity` tickets live at once; a buyer holds at most one ticket per campaign.

use crate::Nanos;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

const MS: u64 = 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomRate {
    pub campaign_id: u64,
    pub admit_per_s: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WaitingRoomRules {
    /// Live tickets across all rooms.
    pub capacity: usize,
    /// Tickets admitted per second in each room, unless the campaign has its own rate.
    pub admit_per_s: u32,
    pub campaign_rates: Vec<RoomRate>,
    /// A ticket still waiting this long after it was taken expires.
    pub ticket_ttl_ms: u64,
    /// An admitted ticket must be used within this long.
    pub admitted_ttl_ms: u64,
}

impl Default for WaitingRoomRules {
    fn default() -> WaitingRoomRules {
        WaitingRoomRules {
            capacity: 1_000_000,
            admit_per_s: 1_000,
            campaign_rates: Vec::new(),
            ticket_ttl_ms: 10 * 60_000,
            admitted_ttl_ms: 60_000,
        }
    }
}

impl WaitingRoomRules {
    pub fn check(&self) -> Result<(), String> {
        if self.capacity == 0
            || self.admit_per_s == 0
            || self.campaign_rates.iter().any(|r| r.admit_per_s == 0)
        {
            return Err("a waiting room needs a capacity and an admission rate of at least 1".into());
        }
        if self.ticket_ttl_ms == 0 || self.admitted_ttl_ms == 0 {
            return Err("ticket lifetimes must be positive".into());
        }
        Ok(())
    }

    fn rate(&self, campaign: u64) -> u32 {
        self.campaign_rates
            .iter()
            .find(|r| r.campaign_id == campaign)
            .map_or(self.admit_per_s, |r| r.admit_per_s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TicketState {
    /// `position` tickets at most are ahead; `wait_ms` is the estimate at the room's rate.
    Waiting {
        position: u64,
        wait_ms: u64,
    },
    /// May place one order until `use_within_ms` from now.
    Admitted {
        use_within_ms: u64,
    },
    Used,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TicketView {
    /// Opaque; 16 hex digits on the wire.
    pub ticket: u64,
    pub campaign_id: u64,
    pub buyer_id: u64,
    #[serde(flatten)]
    pub state: TicketState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("no such ticket (it may have expired)")]
    Unknown,
    #[error("this ticket belongs to another buyer")]
    NotYours,
    #[error("this ticket is still waiting: position {position}, about {wait_ms} ms")]
    NotAdmitted { position: u64, wait_ms: u64 },
    #[error("this ticket has been used")]
    Used,
    #[error("the waiting room is full")]
    Full,
    #[error("this ticket admits an order of its campaign's SKU only")]
    WrongOrder,
}

#[derive(Clone, Copy, Debug)]
enum Stage {
    Waiting,
    Admitted { at: Nanos },
    Used,
}

#[derive(Clone, Copy, Debug)]
struct Ticket {
    campaign: u64,
    /// The campaign's SKU: the only one an order redeeming the ticket may hold.
    sku: u64,
    buyer: u64,
    number: u64,
    issued_at: Nanos,
    stage: Stage,
}

#[derive(Debug, Default)]
struct Room {
    queue: VecDeque<u64>,
    next_number: u64,
    /// Admission credit runs from here; it does not build up while nobody waits.
    credit_from: Nanos,
}

#[derive(Debug)]
pub struct WaitingRoom {
    rules: WaitingRoomRules,
    rooms: FxHashMap<u64, Room>,
    tickets: FxHashMap<u64, Ticket>,
    holders: FxHashMap<(u64, u64), u64>,
    rng: u64,
}

impl WaitingRoom {
    /// `seed` makes the ticket numbers unpredictable in production and fixed in tests.
    pub fn new(rules: WaitingRoomRules, seed: u64) -> WaitingRoom {
        WaitingRoom {
            rules,
            rooms: FxHashMap::default(),
            tickets: FxHashMap::default(),
            holders: FxHashMap::default(),
            rng: seed,
        }
    }

    pub fn set_rules(&mut self, rules: WaitingRoomRules) {
        self.rules = rules;
    }

    /// Tickets still waiting, across rooms.
    pub fn waiting(&self) -> usize {
        self.rooms.values().map(|r| r.queue.len()).sum()
    }

    /// Takes a ticket for `buyer` in `campaign`'s room, or gives back the one the buyer holds.
    /// The caller has checked that the campaign exists and sells `sku`.
    pub fn take(
        &mut self,
        campaign: u64,
        sku: u64,
        buyer: u64,
        now: Nanos,
    ) -> Result<TicketView, TicketError> {
        if let Some(&id) = self.holders.get(&(campaign, buyer)) {
            if let Ok(view) = self.view(id, now) {
                if view.state != TicketState::Used {
                    return Ok(view);
                }
            }
        }
        if self.tickets.len() >= self.rules.capacity {
            self.forget_expired(now);
            if self.tickets.len() >= self.rules.capacity {
                return Err(TicketError::Full);
            }
        }
        let id = loop {
            let id = splitmix64(&mut self.rng);
            if !self.tickets.contains_key(&id) {
                break id;
            }
        };
        let room = self.rooms.entry(campaign).or_default();
        if room.queue.is_empty() {
            room.credit_from = now;
        }
        room.next_number += 1;
        room.queue.push_back(id);
        let ticket =
            Ticket { campaign, sku, buyer, number: room.next_number, issued_at: now, stage: Stage::Waiting };
        self.tickets.insert(id, ticket);
        self.holders.insert((campaign, buyer), id);
        self.view(id, now)
    }

    /// Where a ticket stands now.
    pub fn view(&mut self, id: u64, now: Nanos) -> Result<TicketView, TicketError> {
        let campaign = self.tickets.get(&id).ok_or(TicketError::Unknown)?.campaign;
        self.advance(campaign, now);
        let ticket = *self.tickets.get(&id).ok_or(TicketError::Unknown)?;
        let state = match ticket.stage {
            Stage::Used => TicketState::Used,
            Stage::Admitted { at } => {
                let until = at + self.rules.admitted_ttl_ms * MS;
                if now >= until {
                    self.remove(id);
                    return Err(TicketError::Unknown);
                }
                TicketState::Admitted { use_within_ms: (until - now) / MS }
            }
            Stage::Waiting => {
                let head =
                    self.rooms.get(&campaign).and_then(|r| r.queue.front()).and_then(|h| self.tickets.get(h));
                let position = ticket.number - head.map_or(ticket.number, |h| h.number) + 1;
                let wait_ms = position * 1_000 / u64::from(self.rules.rate(campaign));
                TicketState::Waiting { position, wait_ms }
            }
        };
        Ok(TicketView { ticket: id, campaign_id: ticket.campaign, buyer_id: ticket.buyer, state })
    }

    /// Checks that `buyer` may use ticket `id` now for an order of `skus`; with `consume`,
    /// marks it used.
    pub fn redeem(
        &mut self,
        id: u64,
        buyer: u64,
        skus: &[u64],
        now: Nanos,
        consume: bool,
    ) -> Result<(), TicketError> {
        let view = self.view(id, now)?;
        if view.buyer_id != buyer {
            return Err(TicketError::NotYours);
        }
        let sku = self.tickets.get(&id).map(|t| t.sku);
        if skus.is_empty() || skus.iter().any(|&s| Some(s) != sku) {
            return Err(TicketError::WrongOrder);
        }
        match view.state {
            TicketState::Waiting { position, wait_ms } => Err(TicketError::NotAdmitted { position, wait_ms }),
            TicketState::Used => Err(TicketError::Used),
            TicketState::Admitted { .. } => {
                if consume {
                    if let Some(ticket) = self.tickets.get_mut(&id) {
                        ticket.stage = Stage::Used;
                    }
                }
                Ok(())
            }
        }
    }

    /// Admits the tickets the room's rate has earned since it last moved, first come first
    /// served; expired waiting tickets leave without using a slot.
    fn advance(&mut self, campaign: u64, now: Nanos) {
        let rate = u64::from(self.rules.rate(campaign));
        let ttl = self.rules.ticket_ttl_ms * MS;
        let Some(room) = self.rooms.get_mut(&campaign) else { return };
        let interval = 1_000_000_000 / rate;
        while let Some(&head) = room.queue.front() {
            let Some(ticket) = self.tickets.get_mut(&head) else {
                room.queue.pop_front();
                continue;
            };
            if now >= ticket.issued_at + ttl {
                room.queue.pop_front();
                self.holders.remove(&(ticket.campaign, ticket.buyer));
                self.tickets.remove(&head);
                continue;
            }
            if now < room.credit_from + interval {
                break;
            }
            // Admitted when its slot was earned, not when somebody looked.
            room.credit_from += interval;
            ticket.stage = Stage::Admitted { at: room.credit_from };
            room.queue.pop_front();
        }
        if room.queue.is_empty() {
            room.credit_from = room.credit_from.max(now);
        }
    }

    fn remove(&mut self, id: u64) {
        if let Some(ticket) = self.tickets.remove(&id) {
            if self.holders.get(&(ticket.campaign, ticket.buyer)) == Some(&id) {
                self.holders.remove(&(ticket.campaign, ticket.buyer));
            }
        }
    }

    /// Drops every ticket past its lifetime (O(tickets); only when the room is full).
    fn forget_expired(&mut self, now: Nanos) {
        let campaigns: Vec<u64> = self.rooms.keys().copied().collect();
        for campaign in campaigns {
            self.advance(campaign, now);
        }
        let (ttl, admitted_ttl) = (self.rules.ticket_ttl_ms * MS, self.rules.admitted_ttl_ms * MS);
        let expired: Vec<u64> = self
            .tickets
            .iter()
            .filter(|(_, t)| match t.stage {
                Stage::Waiting => false, // still in a queue; advance() drops it when due
                Stage::Admitted { at } => now >= at + admitted_ttl,
                Stage::Used => now >= t.issued_at + ttl,
            })
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            self.remove(id);
        }
    }
}

/// SplitMix64: a tiny, well-mixed generator for ticket numbers.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(admit_per_s: u32) -> WaitingRoom {
        let rules = WaitingRoomRules {
            capacity: 5,
            admit_per_s,
            campaign_rates: vec![],
            ticket_ttl_ms: 10_000,
            admitted_ttl_ms: 2_000,
        };
        WaitingRoom::new(rules, 7)
    }

    fn waiting(position: u64, wait_ms: u64) -> TicketState {
        TicketState::Waiting { position, wait_ms }
    }

    #[test]
    fn first_in_first_out_at_the_rooms_rate() {
        let mut room = room(10); // one ticket per 100 ms
        let t: Vec<u64> = (1..=3).map(|buyer| room.take(1, 10, buyer, 0).unwrap().ticket).collect();
        assert_eq!(room.view(t[0], 0).unwrap().state, waiting(1, 100));
        assert_eq!(room.view(t[2], 0).unwrap().state, waiting(3, 300));
        assert_eq!(room.view(t[0], 99 * MS).unwrap().state, waiting(1, 100));
        // At 100 ms the first is admitted, the others move up.
        assert_eq!(room.view(t[0], 100 * MS).unwrap().state, TicketState::Admitted { use_within_ms: 2_000 });
        assert_eq!(room.view(t[1], 100 * MS).unwrap().state, waiting(1, 100));
        assert_eq!(room.view(t[2], 250 * MS).unwrap().state, waiting(1, 100));
        assert!(matches!(room.view(t[2], 300 * MS).unwrap().state, TicketState::Admitted { .. }));
        // A buyer asking again gets the same ticket, not a second place in the line.
        assert_eq!(room.take(1, 10, 2, 300 * MS).unwrap().ticket, t[1]);
    }

    #[test]
    fn a_ticket_is_its_buyers_and_is_used_once() {
        let mut room = room(10);
        let ticket = room.take(1, 10, 42, 0).unwrap().ticket;
        assert_eq!(
            room.redeem(ticket, 42, &[10], 0, true),
            Err(TicketError::NotAdmitted { position: 1, wait_ms: 100 })
        );
        assert_eq!(room.redeem(ticket, 43, &[10], 100 * MS, true), Err(TicketError::NotYours));
        assert_eq!(room.redeem(ticket, 42, &[10], 100 * MS, false), Ok(()));
        assert_eq!(room.redeem(ticket, 42, &[10], 100 * MS, true), Ok(()));
        assert_eq!(room.redeem(ticket, 42, &[10], 100 * MS, true), Err(TicketError::Used));
        assert_eq!(room.redeem(12345, 42, &[10], 100 * MS, true), Err(TicketError::Unknown));
        // Having used it, the buyer may queue again.
        assert_ne!(room.take(1, 10, 42, 200 * MS).unwrap().ticket, ticket);
        // A ticket admits only an order of its campaign's SKU, alone.
        let other = room.take(2, 20, 7, 200 * MS).unwrap().ticket;
        let at = 400 * MS;
        assert_eq!(room.redeem(other, 7, &[21], at, false), Err(TicketError::WrongOrder));
        assert_eq!(room.redeem(other, 7, &[20, 21], at, false), Err(TicketError::WrongOrder));
        assert_eq!(room.redeem(other, 7, &[], at, false), Err(TicketError::WrongOrder));
        assert_eq!(room.redeem(other, 7, &[20], at, false), Ok(()));
    }

    #[test]
    fn tickets_expire_waiting_and_admitted() {
        let mut room = room(1); // one per second
        let first = room.take(1, 10, 1, 0).unwrap().ticket;
        let second = room.take(1, 10, 2, 0).unwrap().ticket;
        let third = room.take(1, 10, 3, 0).unwrap().ticket;
        // The first is admitted at 1 s and must be used within 2 s.
        assert!(matches!(room.view(first, 1_000 * MS).unwrap().state, TicketState::Admitted { .. }));
        assert_eq!(room.view(first, 3_000 * MS), Err(TicketError::Unknown));
        // The third waited past its 10 s lifetime: the line was slow (1/s) but it was admitted at
        // 3 s, so it is the admitted-ticket lifetime that ran out.
        assert_eq!(room.view(third, 10_000 * MS), Err(TicketError::Unknown));
        assert_eq!(room.view(second, 10_000 * MS), Err(TicketError::Unknown));
        assert_eq!(room.waiting(), 0);
    }

    #[test]
    fn expired_waiting_tickets_do_not_use_a_slot() {
        let mut room = room(1);
        room.rules.ticket_ttl_ms = 500;
        let gone = room.take(1, 10, 1, 0).unwrap().ticket;
        // Buyer 2 arrives at 600 ms; buyer 1's ticket expired unadmitted at 500 ms.
        let next = room.take(1, 10, 2, 600 * MS).unwrap().ticket;
        assert_eq!(room.view(gone, 600 * MS), Err(TicketError::Unknown));
        assert_eq!(room.view(next, 600 * MS).unwrap().state, waiting(1, 1_000));
    }

    #[test]
    fn the_room_is_bounded() {
        let mut room = room(1);
        for buyer in 0..5 {
            room.take(1, 10, buyer, 0).unwrap();
        }
        assert_eq!(room.take(1, 10, 99, 0), Err(TicketError::Full));
        // Rooms of other campaigns share the bound.
        assert_eq!(room.take(2, 20, 99, 0), Err(TicketError::Full));
        // Once admitted tickets lapse unused, there is room again.
        assert!(room.take(1, 10, 99, 4_000 * MS).is_ok());
    }
}
