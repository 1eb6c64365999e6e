//! The idempotency keys of orders recently admitted past the rate limits, so a client resending
//! one (it lost the answer) is not rate-limited again: the engine answers a repeat with the
//! first answer at the cost of a lookup. Only the rate limits are passed over; the in-flight
//! limit, which protects the engine, still applies. Bounded: the oldest keys go first.

use rustc_hash::FxHashSet;
use std::collections::VecDeque;

#[derive(Debug)]
pub struct RecentKeys {
    set: FxHashSet<u128>,
    order: VecDeque<u128>,
    capacity: usize,
}

impl RecentKeys {
    pub fn new(capacity: usize) -> RecentKeys {
        RecentKeys { set: FxHashSet::default(), order: VecDeque::new(), capacity: capacity.max(1) }
    }

    pub fn contains(&self, key: u128) -> bool {
        self.set.contains(&key)
    }

    pub fn insert(&mut self, key: u128) {
        if !self.set.insert(key) {
            return;
        }
        self.order.push_back(key);
        if self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_newest_keys_up_to_its_capacity() {
        let mut recent = RecentKeys::new(3);
        for key in 1..=4 {
            recent.insert(key);
        }
        recent.insert(4);
        assert_eq!(recent.len(), 3);
        assert!(!recent.contains(1));
        assert!((2..=4).all(|k| recent.contains(k)));
    }
}
