//! The idempotency keys of orders recently admitted past the rate limits, so a client resending
//! one (it lost the answer) is not rate-limited again: the engine answers a repeat with the
//! first answer at the cost of a lookup. Only the rate limits are passed over; the in-flight
//! limit, which protects the engine, still applies.
//!
//! A direct-mapped table: a key's low bits pick its slot, which keeps 63 of its high bits; a new
//! key takes the slot over. One store per admitted order and one load per check, in a fixed
//! block of memory, on the gateway's hot path (a hash set with a queue to evict from is a hash, a
//! probe and two writes per order). The keys are BLAKE3 digests (scoped by the gateway), so slots fill evenly
//! and a stranger's key matches a kept one once in 2^63.

#[derive(Debug)]
pub struct RecentKeys {
    /// A key's high bits with the lowest set (0 is an empty slot), by its low bits.
    slots: Vec<u64>,
}

impl RecentKeys {
    /// `capacity` is rounded up to a power of two.
    pub fn new(capacity: usize) -> RecentKeys {
        RecentKeys { slots: vec![0; capacity.max(1).next_power_of_two()] }
    }

    fn slot(&self, key: u128) -> (usize, u64) {
        let at = (key as u64 as usize) & (self.slots.len() - 1);
        (at, (key >> 64) as u64 | 1)
    }

    pub fn contains(&self, key: u128) -> bool {
        let (at, tag) = self.slot(key);
        self.slots[at] == tag
    }

    pub fn insert(&mut self, key: u128) {
        let (at, tag) = self.slot(key);
        self.slots[at] = tag;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_keys_until_another_takes_their_slot() {
        let mut recent = RecentKeys::new(4);
        let key = |low: u64, high: u64| u128::from(high) << 64 | u128::from(low);
        recent.insert(key(1, 7));
        recent.insert(key(2, 8));
        assert!(recent.contains(key(1, 7)) && recent.contains(key(2, 8)));
        assert!(!recent.contains(key(1, 9)), "same slot, another key");
        assert!(!recent.contains(key(3, 7)), "an empty slot");
        recent.insert(key(5, 9)); // 5 & 3 == 1: takes key (1, 7)'s slot
        assert!(!recent.contains(key(1, 7)) && recent.contains(key(5, 9)));
    }
}
