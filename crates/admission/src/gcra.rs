//! Rate limits as GCRA (the generic cell rate algorithm): one `u64` per key, the key's
//! *theoretical arrival time*. Exact, O(1), and nothing to refill on a timer.
//!
//! Written here rather than taken from `governor`: the rules change at runtime (a key's quota is
//! looked up on every check, so a new rule applies at once without losing the buckets), keys have
//! per-value exceptions (Sentinel's hot-parameter items), time is an argument (tests run on a
//! manual clock), and the table is bounded with an exact eviction rule.

use crate::Nanos;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::hash::Hash;

/// A rate and the burst allowed on top of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Requests per second, sustained.
    pub per_s: u32,
    /// Requests that may arrive at once after a quiet spell (at least 1).
    pub burst: u32,
}

impl Quota {
    pub const fn new(per_s: u32, burst: u32) -> Quota {
        Quota { per_s, burst }
    }

    pub fn is_valid(&self) -> bool {
        self.per_s >= 1 && self.burst >= 1
    }

    /// The time one request uses up.
    fn interval(&self) -> u64 {
        1_000_000_000 / u64::from(self.per_s.max(1))
    }

    /// How far ahead of `now` the theoretical arrival time may run.
    fn tolerance(&self) -> u64 {
        self.interval() * u64::from(self.burst.max(1) - 1)
    }

    /// One GCRA step: the key's new theoretical arrival time if the request conforms, else how
    /// long until it would.
    pub fn check(&self, tat: Nanos, now: Nanos) -> Result<Nanos, Nanos> {
        let tat = tat.max(now);
        let ahead = tat - now;
        if ahead > self.tolerance() {
            Err(ahead - self.tolerance())
        } else {
            Ok(tat + self.interval())
        }
    }
}

/// Why a keyed limiter said no.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limited {
    /// The key is over its quota; it conforms again after this long.
    Over { retry_after: Nanos },
    /// The table of keys is full of keys that are all still limited (it never grows past its bound).
    TableFull,
}

/// One GCRA bucket per key, with a default quota and per-key exceptions; `None` means unlimited.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    default: Option<Quota>,
    exceptions: FxHashMap<K, Option<Quota>>,
    tats: FxHashMap<K, Nanos>,
    keys_max: usize,
    /// No sweep before this time, after one that freed too little (so a full table costs O(1)).
    sweep_not_before: Nanos,
}

impl<K: Hash + Eq + Copy> KeyedLimiter<K> {
    pub fn new(default: Option<Quota>, keys_max: usize) -> KeyedLimiter<K> {
        KeyedLimiter {
            default,
            exceptions: FxHashMap::default(),
            tats: FxHashMap::default(),
            keys_max: keys_max.max(1),
            sweep_not_before: 0,
        }
    }

    /// New rules; the buckets are kept, so nobody gets a fresh burst from a rule change.
    pub fn set_rules(
        &mut self,
        default: Option<Quota>,
        exceptions: impl IntoIterator<Item = (K, Option<Quota>)>,
    ) {
        self.default = default;
        self.exceptions = exceptions.into_iter().collect();
    }

    pub fn quota(&self, key: K) -> Option<Quota> {
        self.exceptions.get(&key).copied().unwrap_or(self.default)
    }

    /// Admits one request of `key` at `now`, or says when to come back.
    pub fn check(&mut self, key: K, now: Nanos) -> Result<(), Limited> {
        let Some(quota) = self.quota(key) else {
            return Ok(());
        };
        if let Some(tat) = self.tats.get_mut(&key) {
            *tat = quota.check(*tat, now).map_err(|retry_after| Limited::Over { retry_after })?;
            return Ok(());
        }
        if self.tats.len() >= self.keys_max && !self.sweep(now) {
            return Err(Limited::TableFull);
        }
        // A key never seen (or swept) has a full bucket: its arrival time is "now".
        let tat = quota.check(now, now).map_err(|retry_after| Limited::Over { retry_after })?;
        self.tats.insert(key, tat);
        Ok(())
    }

    /// Whether one request of `key` would be admitted at `now`, without spending anything.
    pub fn conforms(&self, key: K, now: Nanos) -> Result<(), Nanos> {
        match (self.quota(key), self.tats.get(&key)) {
            (Some(quota), Some(&tat)) => quota.check(tat, now).map(|_| ()),
            _ => Ok(()),
        }
    }

    /// Drops every key whose bucket is full again (its arrival time has passed): such a key
    /// behaves exactly like one never seen, so nothing is lost. Returns whether room was made.
    fn sweep(&mut self, now: Nanos) -> bool {
        if now < self.sweep_not_before {
            return false;
        }
        self.tats.retain(|_, tat| *tat > now);
        if self.tats.len() > self.keys_max - self.keys_max / 8 {
            self.sweep_not_before = now + 100_000_000;
        }
        self.tats.len() < self.keys_max
    }

    pub fn tracked_keys(&self) -> usize {
        self.tats.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn burst_then_the_sustained_rate() {
        let mut limiter = KeyedLimiter::new(Some(Quota::new(10, 3)), 100);
        let t0 = 5_000 * MS;
        for _ in 0..3 {
            assert_eq!(limiter.check(7u64, t0), Ok(()));
        }
        // The fourth at the same instant waits exactly one interval (100 ms).
        assert_eq!(limiter.check(7, t0), Err(Limited::Over { retry_after: 100 * MS }));
        assert_eq!(limiter.check(7, t0 + 100 * MS - 1), Err(Limited::Over { retry_after: 1 }));
        assert_eq!(limiter.check(7, t0 + 100 * MS), Ok(()));
        // Another key has its own bucket.
        assert_eq!(limiter.check(8, t0), Ok(()));
    }

    #[test]
    fn exceptions_and_rule_changes_keep_the_buckets() {
        let mut limiter = KeyedLimiter::new(Some(Quota::new(1, 1)), 100);
        limiter.set_rules(Some(Quota::new(1, 1)), [(42u64, None), (43, Some(Quota::new(1000, 5)))]);
        for _ in 0..1000 {
            assert_eq!(limiter.check(42, 0), Ok(()), "an unlimited exception");
        }
        for _ in 0..5 {
            assert_eq!(limiter.check(43, 0), Ok(()));
        }
        assert!(limiter.check(43, 0).is_err());
        assert_eq!(limiter.check(1, 0), Ok(()));
        assert!(limiter.check(1, 0).is_err());
        // Loosening the default does not hand key 1 a fresh bucket: its arrival time stands.
        limiter.set_rules(Some(Quota::new(1, 2)), []);
        assert_eq!(limiter.check(1, 0), Ok(()));
        assert!(limiter.check(1, 0).is_err());
    }

    #[test]
    fn the_table_is_bounded_and_sweeps_only_full_buckets() {
        let mut limiter = KeyedLimiter::new(Some(Quota::new(1, 1)), 4);
        for key in 0..4u64 {
            assert_eq!(limiter.check(key, 0), Ok(()));
        }
        // Every bucket is still empty at t=0: no room, and the answer says so.
        assert_eq!(limiter.check(99, 0), Err(Limited::TableFull));
        assert_eq!(limiter.tracked_keys(), 4);
        // A second later every bucket is full again; the sweep makes room.
        assert_eq!(limiter.check(99, 1_000 * MS + 200 * MS), Ok(()));
        assert_eq!(limiter.tracked_keys(), 1);
    }

    proptest! {
        /// Over any window, a key is admitted at most burst + rate × window times, and a key that
        /// asks no faster than its rate is never refused.
        #[test]
        fn never_more_than_the_quota(
            per_s in 1u32..1_000,
            burst in 1u32..50,
            gaps in proptest::collection::vec(0u64..20 * MS, 1..400),
        ) {
            let quota = Quota::new(per_s, burst);
            let mut limiter = KeyedLimiter::new(Some(quota), 10);
            let mut now = 0;
            let mut admitted = 0u64;
            for gap in &gaps {
                now += gap;
                if limiter.check(1u64, now).is_ok() {
                    admitted += 1;
                }
            }
            let allowed = u64::from(burst) + now / quota.interval();
            prop_assert!(admitted <= allowed, "{admitted} > {allowed}");

            let mut polite = KeyedLimiter::new(Some(quota), 10);
            let mut t = 0;
            for _ in 0..gaps.len() {
                prop_assert!(polite.check(1u64, t).is_ok());
                t += quota.interval();
            }
        }
    }
}
