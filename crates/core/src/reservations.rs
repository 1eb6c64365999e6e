//! Pending orders by the end of their reservation: which ones a `Tick` expires, and when the
//! shell must send the next one.
//!
//! Most orders are placed with the same reservation length, so their expiries rise with their
//! ids. Those form the *run*: one bit per order, set while it is pending, read in id order,
//! which is their expiry order. Placing or paying one sets or clears a bit. An order whose
//! expiry is below the latest in the run (a shorter reservation after a longer one) goes to a
//! sorted set instead. So the common order costs a bit set and cleared, not a walk down a tree
//! to insert and another to remove.
//!
//! What it answers depends only on which orders are pending (the audit checks it against the
//! orders); where each one sits depends on the order of placement, and is encoded as it is, so
//! a state decoded from a snapshot goes on exactly as the live one did.

use std::collections::{BTreeSet, VecDeque};

use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::types::{Millis, OrderId};

#[derive(Clone, Debug, Default)]
pub(crate) struct Reservations {
    /// Bit `i` of word `w` is set while order index `64 * (first_word + w) + i` is pending and in
    /// the run. The front word is never zero: emptied words leave from the front, so the run's
    /// first pending order is always in it.
    run: VecDeque<u64>,
    /// The word index of `run`'s front.
    first_word: usize,
    /// The latest expiry placed in the run (while it is not empty).
    run_last: Millis,
    /// Pending orders that expire before the run's latest when placed.
    others: BTreeSet<(Millis, OrderId)>,
    /// The run's order indexes as decoded, until [`Reservations::finish_decode`] checks them
    /// against the orders and lays out the bits: decoded bytes alone never size the run.
    decoded_run: Vec<usize>,
}

impl Reservations {
    pub(crate) fn bytes(&self) -> u64 {
        crate::footprint::deque(&self.run) + crate::footprint::set(&self.others)
    }

    /// After decoding: every pending order is one of the `orders` that exist, and the run is
    /// laid out (at most `orders / 64` words).
    pub(crate) fn finish_decode(&mut self, orders: usize) -> Result<(), &'static str> {
        let decoded = std::mem::take(&mut self.decoded_run);
        if decoded.last().is_some_and(|&i| i >= orders)
            || self.others.iter().any(|(_, o)| o.index().is_none_or(|i| i >= orders))
        {
            return Err("a reservation names an order that does not exist");
        }
        for index in decoded {
            self.push_run(index);
        }
        Ok(())
    }

    /// A newly placed order, pending until `expires_at`. Ids are placed in increasing order.
    pub(crate) fn insert(&mut self, order: OrderId, expires_at: Millis) {
        let Some(index) = order.index() else { return };
        if !self.run.is_empty() && expires_at < self.run_last {
            self.others.insert((expires_at, order));
            return;
        }
        self.push_run(index);
        self.run_last = expires_at;
    }

    /// Sets the bit of an order index past the run's last.
    fn push_run(&mut self, index: usize) {
        let word = index / 64;
        if self.run.is_empty() {
            self.first_word = word;
        }
        // Ids rise, so the word is at or past the back.
        while self.first_word + self.run.len() <= word {
            self.run.push_back(0);
        }
        if let Some(bits) = word.checked_sub(self.first_word).and_then(|w| self.run.get_mut(w)) {
            *bits |= 1 << (index % 64);
        }
    }

    /// The order was paid, cancelled or expired.
    pub(crate) fn remove(&mut self, order: OrderId, expires_at: Millis) {
        let Some(index) = order.index() else { return };
        let bit = 1u64 << (index % 64);
        let slot = (index / 64).checked_sub(self.first_word).and_then(|w| self.run.get_mut(w));
        match slot {
            Some(bits) if *bits & bit != 0 => {
                *bits &= !bit;
                while self.run.front() == Some(&0) {
                    self.run.pop_front();
                    self.first_word += 1;
                }
            }
            _ => {
                self.others.remove(&(expires_at, order));
            }
        }
    }

    /// The pending order that expires first (by expiry, then id), `expires_at` giving an
    /// order's expiry.
    pub(crate) fn first(&self, expires_at: impl Fn(OrderId) -> Millis) -> Option<Millis> {
        let run = self.run_orders().next().map(&expires_at);
        let other = self.others.first().map(|(at, _)| *at);
        match (run, other) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The pending orders due by `now`, in order of expiry then id, at most `max` of them.
    pub(crate) fn due(
        &self,
        now: Millis,
        max: usize,
        expires_at: impl Fn(OrderId) -> Millis,
    ) -> Vec<OrderId> {
        let mut run = self.run_orders().map(|id| (expires_at(id), id)).take_while(|(at, _)| *at <= now);
        let mut others = self.others.iter().copied().take_while(|(at, _)| *at <= now);
        let (mut a, mut b) = (run.next(), others.next());
        let mut due = Vec::new();
        while due.len() < max {
            let next = match (a, b) {
                (Some(x), Some(y)) if x <= y => std::mem::replace(&mut a, run.next()),
                (Some(_), Some(_)) | (None, Some(_)) => std::mem::replace(&mut b, others.next()),
                (Some(_), None) => std::mem::replace(&mut a, run.next()),
                (None, None) => None,
            };
            let Some((_, id)) = next else { break };
            due.push(id);
        }
        due
    }

    /// The run's pending orders, in id order (zero words between set ones are skipped a word
    /// at a time).
    fn run_orders(&self) -> impl Iterator<Item = OrderId> + '_ {
        self.run.iter().enumerate().flat_map(move |(w, &word)| {
            let base = (self.first_word + w) * 64;
            Bits(word).map(move |bit| OrderId::from_index(base + bit))
        })
    }
}

/// Encoded as built: the run's order ids (ascending), its latest expiry, the others. Written
/// without allocating (a forked snapshot writer encodes it, see `State::write_to`).
impl Serialize for Reservations {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (RunIds(self), self.run_last, &self.others).serialize(serializer)
    }
}

struct RunIds<'a>(&'a Reservations);

impl Serialize for RunIds<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = self.0.run.iter().map(|w| w.count_ones() as usize).sum();
        let mut seq = serializer.serialize_seq(Some(len))?;
        for id in self.0.run_orders() {
            seq.serialize_element(&id)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Reservations {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Reservations, D::Error> {
        let (run, run_last, others): (Vec<OrderId>, Millis, BTreeSet<(Millis, OrderId)>) =
            Deserialize::deserialize(deserializer)?;
        let mut reservations = Reservations { run_last, others, ..Reservations::default() };
        let mut last = None;
        for id in run {
            let index = id.index().filter(|&i| last.is_none_or(|l| i > l));
            let index = index.ok_or_else(|| serde::de::Error::custom("run ids not ascending"))?;
            reservations.decoded_run.push(index);
            last = Some(index);
        }
        Ok(reservations)
    }
}

/// The set bits of a word, lowest first.
struct Bits(u64);

impl Iterator for Bits {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let bit = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(bit)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Step {
        /// Place the next order with this reservation length.
        Place(u64),
        /// Pay or cancel the pending order at this position (modulo how many are pending).
        Close(usize),
        /// Expire what is due, at most `max`.
        Tick { max: usize },
        /// Time passes.
        Wait(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => prop_oneof![Just(1_000u64), Just(1_000), Just(5_000), 1..10_000u64].prop_map(Step::Place),
            3 => any::<usize>().prop_map(Step::Close),
            1 => (1..20usize).prop_map(|max| Step::Tick { max }),
            2 => (0..3_000u64).prop_map(Step::Wait),
        ]
    }

    proptest! {
        /// Against the sorted set it replaced: the same first expiry and the same due orders,
        /// in the same order, whatever the mix of reservation lengths, closes and ticks.
        #[test]
        fn answers_as_a_sorted_set_would(steps in proptest::collection::vec(step(), 1..300)) {
            let mut model: BTreeSet<(Millis, OrderId)> = BTreeSet::new();
            let mut expiry: BTreeMap<OrderId, Millis> = BTreeMap::new();
            let mut reservations = Reservations::default();
            let (mut now, mut placed) = (Millis(0), 0usize);
            for step in steps {
                match step {
                    Step::Place(ttl) => {
                        let id = OrderId::from_index(placed);
                        placed += 1;
                        let expires_at = now.saturating_add(ttl);
                        expiry.insert(id, expires_at);
                        model.insert((expires_at, id));
                        reservations.insert(id, expires_at);
                    }
                    Step::Close(n) if !model.is_empty() => {
                        let (expires_at, id) = *model.iter().nth(n % model.len()).unwrap();
                        model.remove(&(expires_at, id));
                        reservations.remove(id, expires_at);
                    }
                    Step::Close(_) => {}
                    Step::Tick { max } => {
                        let want: Vec<OrderId> =
                            model.iter().take_while(|(t, _)| *t <= now).take(max).map(|(_, id)| *id).collect();
                        prop_assert_eq!(reservations.due(now, max, |id| expiry[&id]), want.clone());
                        for id in want {
                            model.remove(&(expiry[&id], id));
                            reservations.remove(id, expiry[&id]);
                        }
                    }
                    Step::Wait(ms) => now = now.saturating_add(ms),
                }
                let at = |id: OrderId| expiry[&id];
                prop_assert_eq!(reservations.first(at), model.first().map(|(t, _)| *t));
                let bytes = postcard::to_allocvec(&reservations).unwrap();
                let mut decoded: Reservations = postcard::from_bytes(&bytes).unwrap();
                decoded.finish_decode(placed).unwrap();
                prop_assert_eq!(postcard::to_allocvec(&decoded).unwrap(), bytes);
                prop_assert_eq!(
                    decoded.due(Millis(u64::MAX), usize::MAX, at),
                    reservations.due(Millis(u64::MAX), usize::MAX, at)
                );
                reservations = decoded;
            }
        }
    }

    #[test]
    fn one_reservation_length_stays_in_the_run_and_empty_words_leave() {
        let mut r = Reservations::default();
        for i in 0..1_000 {
            r.insert(OrderId::from_index(i), Millis(i as u64));
        }
        assert!(r.others.is_empty());
        for i in 0..999 {
            r.remove(OrderId::from_index(i), Millis(i as u64));
        }
        assert_eq!(r.run.len(), 1, "only the last order's word is left");
        assert_eq!(r.first(|id| Millis(id.index().unwrap() as u64)), Some(Millis(999)));
    }
}
