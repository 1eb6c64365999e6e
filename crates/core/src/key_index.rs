//! The idempotency index: 128-bit keys to positions in the idempotency log.
//!
//! Written by hand rather than taken from a crate because it is a fifth of the sequencer's time
//! and the crates cost it in two ways (profiled: `elevens bench --workload flash --mode
//! in-process`, `perf record -g`):
//!
//! - Every command looks up a key that is almost never there, in a table of millions: one cache
//!   and TLB miss each. A batch knows its keys in advance, so [`KeyIndex::prefetch`] asks for the
//!   slot a few commands ahead and the miss overlaps the commands before it. No map crate exposes
//!   where a key's slot is.
//! - The table must never stop the sequencer to grow. A single table rehashing 10 M keys stalled
//!   it for ~350 ms; griddle's incremental resize fixed that by carrying entries on each insert
//!   and probing two tables meanwhile, which cost a quarter of the lookups' time again. Here the
//!   table is 256 shards that each grow on their own: growing one moves at most 1/256 of the
//!   keys (under 100,000 at the 20 M bound, about a millisecond).
//!
//! Each shard is open addressing with linear probing (a miss reads one or two adjacent cache
//! lines, which the hardware prefetcher follows) and backward-shift deletion (no tombstones, so
//! probes stay short as keys are forgotten in the order they came).
//!
//! A slot is 8 bytes: 32 bits of the key's hash (its home slot and a tag) and the position's
//! low 32 bits, not the key: the log at that position holds the key, and a lookup confirms it
//! there (`key_at`). Lookups of new keys, the common case, end at an empty slot without reading
//! the log; a tag that matches by chance (one in 2^14 or better among keys of the same home)
//! costs one read of the log. Positions are wrapped to 32 bits: the caller holds at most a few
//! million consecutive positions at a time, so the low 32 bits name one of them (its
//! [`wrapped`] difference from the first). With 16-byte slots (the whole hash, the whole
//! position) the index took ~35 of the ~400 bytes per order.

/// Shards, by the top bits of the key's hash.
const SHARD_BITS: u32 = 8;
const SHARDS: usize = 1 << SHARD_BITS;
/// The first allocation of a shard, in slots.
const SHARD_SLOTS_MIN: usize = 64;
/// A shard grows by half when more than 60% to 80% of its slots are used, the share staggered
/// by shard: with one share for all, the shards (keys hash evenly) grow at nearly the same
/// counts, most of a rehash of the table again (with doubling shards and one share the slowest
/// 2,000-insert batch up to 10 M keys took 9.6 ms, staggered 5.3 ms). Growing by half rather
/// than doubling keeps a shard between 40% and 80% full instead of 25% and 75%. Computed from
/// these rules for 1 to 40 M keys: 27 to 30 bytes per order (two keys) at every count, where
/// doubling swung between 32 and 42; by linear probing's expected length, a miss probes 2 to 13
/// slots of 8 bytes (3.7 on average over the shards' cycles, 2.4 with doubling).
const LOAD_PERCENT_MIN: usize = 60;
const LOAD_PERCENT_SPREAD: usize = 20;

/// Whether shard `s` holding `len` keys in `slots` slots is past its load limit (above).
fn too_full(s: usize, len: usize, slots: usize) -> bool {
    // In 1/256ths of a percent: this shard's share between the minimum and the spread.
    let load_max = LOAD_PERCENT_MIN * SHARDS + LOAD_PERCENT_SPREAD * s;
    len * 100 * SHARDS > slots * load_max
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Slot {
    /// [`tag`] of the key's hash; 0 marks an empty slot.
    tag: u32,
    /// The position's low 32 bits.
    position: u32,
}

impl Slot {
    fn is_empty(&self) -> bool {
        self.tag == 0
    }
}

/// The hash's low 32 bits with the top one set (so never 0): its other 31 bits pick the home
/// slot in the shard ([`home`]) and tell keys of the same home apart. The shard is picked by
/// the hash's top bits, which the tag does not hold (they are the same for a whole shard).
fn tag(hash: u64) -> u32 {
    hash as u32 | 1 << 31
}

/// The home slot of a tag in a shard of `len` slots: the tag's 31 free bits scaled to the
/// length (a multiply and a shift, Lemire's "fast range"), so that a shard of any length,
/// not only a power of two, spreads its keys evenly.
fn home(tag: u32, len: usize) -> usize {
    ((u64::from(tag & !(1 << 31)) * len as u64) >> 31) as usize
}

/// A position as the index holds it.
pub fn wrapped(position: u64) -> u32 {
    position as u32
}

/// Keys come from BLAKE3 at the gateway, but in-process callers choose their own (the bench's
/// are sequential): mix both halves so every bit of the hash depends on the whole key.
fn hash(key: u128) -> u64 {
    let mut h = (key as u64) ^ ((key >> 64) as u64).rotate_left(29);
    // The finalizer of MurmurHash3.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[derive(Clone, Debug, Default)]
struct Shard {
    /// Empty, or [`SHARD_SLOTS_MIN`] grown by half some number of times.
    slots: Vec<Slot>,
    len: usize,
}

impl Shard {
    /// The slot after `i`, around the end.
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() {
            0
        } else {
            i + 1
        }
    }

    /// The slot whose entry satisfies `is_it` among those with this tag, or the empty slot
    /// that ends the probe.
    fn find(&self, tag: u32, is_it: impl Fn(u32) -> bool) -> Option<(usize, bool)> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = home(tag, self.slots.len());
        loop {
            let slot = &self.slots[i];
            if slot.is_empty() {
                return Some((i, false));
            }
            if slot.tag == tag && is_it(slot.position) {
                return Some((i, true));
            }
            i = self.next(i);
        }
    }

    fn grow(&mut self) {
        let slots = (self.slots.len() * 3 / 2).max(SHARD_SLOTS_MIN);
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); slots]);
        old.into_iter().filter(|s| !s.is_empty()).for_each(|slot| self.place(slot));
    }

    /// Puts an entry known to be absent in the first empty slot from its home (the shard has
    /// room: the caller sized it).
    fn place(&mut self, slot: Slot) {
        let mut i = home(slot.tag, self.slots.len());
        while !self.slots[i].is_empty() {
            i = self.next(i);
        }
        self.slots[i] = slot;
    }

    /// Empties slot `i` and shifts back the entries after it that probed past it (Knuth's
    /// algorithm R), so that every entry stays reachable from its home slot.
    fn remove_at(&mut self, mut i: usize) {
        let mut j = i;
        loop {
            j = self.next(j);
            if self.slots[j].is_empty() {
                break;
            }
            let home_j = home(self.slots[j].tag, self.slots.len());
            // The entry at j stays if its home lies cyclically in (i, j].
            let stays = if i <= j { i < home_j && home_j <= j } else { i < home_j || home_j <= j };
            if !stays {
                self.slots[i] = self.slots[j];
                i = j;
            }
        }
        self.slots[i] = Slot::default();
        self.len -= 1;
    }
}

/// A map from idempotency keys to positions (see the module documentation).
#[derive(Clone, Debug)]
pub struct KeyIndex {
    shards: Vec<Shard>,
    len: usize,
}

impl Default for KeyIndex {
    fn default() -> Self {
        KeyIndex { shards: vec![Shard::default(); SHARDS], len: 0 }
    }
}

impl KeyIndex {
    pub fn len(&self) -> usize {
        self.len
    }

    /// The slots' bytes, empty ones included: an open-addressing index costs its capacity.
    pub fn bytes(&self) -> u64 {
        self.shards.iter().map(|shard| (shard.slots.len() * std::mem::size_of::<Slot>()) as u64).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn shard(&self, hash: u64) -> usize {
        (hash >> (64 - SHARD_BITS)) as usize
    }

    /// The [`wrapped`] position of `key`; `key_at` reads the key stored at a wrapped position
    /// (the log's).
    pub fn get(&self, key: u128, key_at: impl Fn(u32) -> Option<u128>) -> Option<u32> {
        let h = hash(key);
        let shard = &self.shards[self.shard(h)];
        match shard.find(tag(h), |position| key_at(position) == Some(key))? {
            (i, true) => Some(shard.slots[i].position),
            (_, false) => None,
        }
    }

    /// Maps `key`, which must not be in the index, to `position`.
    pub fn insert_new(&mut self, key: u128, position: u64) {
        let h = hash(key);
        let s = self.shard(h);
        let shard = &mut self.shards[s];
        if too_full(s, shard.len + 1, shard.slots.len()) {
            shard.grow();
        }
        // The shard has room now, so the probe ends at an empty slot.
        if let Some((i, _)) = shard.find(tag(h), |_| false) {
            shard.slots[i] = Slot { tag: tag(h), position: wrapped(position) };
            shard.len += 1;
            self.len += 1;
        }
    }

    /// Removes `key` if it maps to `position`; says whether it did.
    pub fn remove(&mut self, key: u128, position: u64) -> bool {
        let h = hash(key);
        let s = self.shard(h);
        let shard = &mut self.shards[s];
        let Some((i, true)) = shard.find(tag(h), |p| p == wrapped(position)) else { return false };
        shard.remove_at(i);
        self.len -= 1;
        true
    }

    /// Asks the CPU to start loading the slot where a lookup of `key` begins, so that the
    /// lookup, a few commands later, finds it in cache. Changes nothing; a hint only.
    #[inline]
    pub fn prefetch(&self, key: u128) {
        let h = hash(key);
        let shard = &self.shards[self.shard(h)];
        if let Some(slot) = shard.slots.get(home(tag(h), shard.slots.len())) {
            crate::hint::prefetch(slot);
        }
    }
}

impl FromIterator<(u128, u64)> for KeyIndex {
    /// From distinct keys and their positions (a restart's rebuild: millions of keys). The keys
    /// are first sorted by shard, then each shard is allocated once at its final size and filled
    /// while it is in cache: inserting them one by one into the whole table missed the cache on
    /// every key and doubled every shard a dozen times (a fifth of a restart's rebuild).
    fn from_iter<I: IntoIterator<Item = (u128, u64)>>(iter: I) -> Self {
        let mut by_shard: Vec<Vec<Slot>> = vec![Vec::new(); SHARDS];
        let mut index = KeyIndex::default();
        for (key, position) in iter {
            let h = hash(key);
            by_shard[index.shard(h)].push(Slot { tag: tag(h), position: wrapped(position) });
        }
        for (s, slots) in by_shard.into_iter().enumerate() {
            let shard = &mut index.shards[s];
            let mut size = SHARD_SLOTS_MIN;
            while too_full(s, slots.len() + 1, size) {
                size = size * 3 / 2;
            }
            if !slots.is_empty() {
                shard.slots = vec![Slot::default(); size];
            }
            shard.len = slots.len();
            index.len += slots.len();
            slots.into_iter().for_each(|slot| shard.place(slot));
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u128),
        Remove(u128),
        Get(u128),
    }

    /// Keys from a small pool (so removes and re-inserts hit), spread over both halves and
    /// sequential ones (the bench's), which must not crowd one shard.
    fn key() -> impl Strategy<Value = u128> {
        prop_oneof![
            (0u128..64).prop_map(|k| k | (1 << 100)),
            (0u128..64).prop_map(|k| k << 64),
            (0u128..64).prop_map(|k| k.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834)),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![3 => key().prop_map(Op::Insert), 2 => key().prop_map(Op::Remove), 1 => key().prop_map(Op::Get)]
    }

    /// The index beside a log of keys by position, as the idempotency store keeps it.
    #[derive(Default)]
    struct Model {
        index: KeyIndex,
        log: Vec<u128>,
        live: HashMap<u128, u64>,
    }

    impl Model {
        fn get(&self, key: u128) -> Option<u64> {
            self.index.get(key, |p| self.log.get(p as usize).copied()).map(u64::from)
        }
    }

    proptest! {
        /// Whatever the sequence of inserts and removes (growth, and the backward shifts of
        /// deletion across the end of a shard), it answers as a HashMap does.
        #[test]
        fn answers_as_a_hash_map_does(ops in proptest::collection::vec(op(), 1..2_000)) {
            let mut m = Model::default();
            for op in ops {
                match op {
                    Op::Insert(k) => {
                        if m.get(k).is_none() {
                            let position = m.log.len() as u64;
                            m.log.push(k);
                            m.index.insert_new(k, position);
                            m.live.insert(k, position);
                        }
                    }
                    Op::Remove(k) => {
                        let expected = m.live.remove(&k);
                        let removed = expected.is_some_and(|p| m.index.remove(k, p));
                        prop_assert_eq!(removed, expected.is_some());
                    }
                    Op::Get(k) => prop_assert_eq!(m.get(k), m.live.get(&k).copied()),
                }
                prop_assert_eq!(m.index.len(), m.live.len());
            }
            for (k, p) in &m.live {
                prop_assert_eq!(m.get(*k), Some(*p));
            }
            // A restart's bulk rebuild from the live keys answers the same, and takes new keys.
            let mut rebuilt: KeyIndex = m.live.iter().map(|(k, p)| (*k, *p)).collect();
            prop_assert_eq!(rebuilt.len(), m.live.len());
            let fresh = u128::MAX - 1;
            if !m.live.contains_key(&fresh) {
                rebuilt.insert_new(fresh, m.log.len() as u64);
                m.log.push(fresh);
                m.live.insert(fresh, m.log.len() as u64 - 1);
            }
            m.index = rebuilt;
            for (k, p) in &m.live {
                prop_assert_eq!(m.get(*k), Some(*p));
            }
            prop_assert_eq!(m.get(u128::MAX - 2), m.live.get(&(u128::MAX - 2)).copied());
        }
    }

    /// Growth is spread out: in no window of 2,000 inserts (a group commit) past the first
    /// million keys do the growing shards hold more than a small share of the keys (1.96% at
    /// worst), so no batch pays for rehashing the table at once (with doubling shards and one
    /// load limit for all: 7.4%).
    #[test]
    fn shards_grow_at_different_times() {
        let mut index = KeyIndex::default();
        let mut sizes: Vec<usize> = index.shards.iter().map(|s| s.slots.len()).collect();
        let mut worst = 0.0f64;
        for window in 0..1_000u64 {
            for i in 0..2_000u64 {
                let n = window * 2_000 + i;
                index.insert_new(u128::from(n) | (1 << 100), n);
            }
            let now: Vec<usize> = index.shards.iter().map(|s| s.slots.len()).collect();
            let moved: usize = index
                .shards
                .iter()
                .zip(sizes.iter().zip(&now))
                .filter(|(_, (a, b))| a != b)
                .map(|(s, _)| s.len)
                .sum();
            if index.len() > 1_000_000 {
                worst = worst.max(moved as f64 / index.len() as f64);
            }
            sizes = now;
        }
        assert!(worst < 0.03, "one window rehashed {:.1}% of the keys", worst * 100.0);
    }

    /// The log's pattern at scale: keys forgotten oldest first while new ones come, with
    /// sequential keys; every shard stays small and every key is found until it is forgotten.
    #[test]
    fn a_sliding_window_of_sequential_keys() {
        let key = |n: u64| u128::from(n) | (1 << 100);
        let key_at = |p: u32| Some(key(u64::from(p)));
        let mut index = KeyIndex::default();
        let window = 50_000u64;
        for n in 0..300_000u64 {
            index.insert_new(key(n), n);
            if n >= window {
                assert!(index.remove(key(n - window), n - window));
            }
        }
        assert_eq!(index.len() as u64, window);
        for n in 250_000..300_000u64 {
            assert_eq!(index.get(key(n), key_at), Some(wrapped(n)));
        }
        assert_eq!(index.get(key(0), key_at), None);
        let largest = index.shards.iter().map(|s| s.len).max().unwrap_or(0);
        assert!(largest < 2 * window as usize / SHARDS, "one shard holds {largest} keys");
    }
}
