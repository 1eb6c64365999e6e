//! Remembered results of commands, by idempotency key, for a bounded time and count.

use crate::chunked::ChunkedDeque;
use crate::command::{Idempotency, Outcome};
use crate::key_index::{wrapped, KeyIndex};
use crate::limits::{IDEMPOTENCY_KEYS_MAX, IDEMPOTENCY_RETENTION_MS};
use crate::types::Millis;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    pub key: u128,
    pub fingerprint: u64,
    pub at: Millis,
    pub outcome: Outcome,
}

// The index holds positions wrapped to 32 bits ([`wrapped`]): the store's span must stay below.
const _: () = assert!(IDEMPOTENCY_KEYS_MAX < u32::MAX as usize / 2);

/// Keys in the order they were first used (which is also command-time order), so forgetting the
/// oldest is a pop from the front.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IdempotencyStore {
    entries: ChunkedDeque<Remembered>,
    /// The absolute position of `entries[0]`.
    first_position: u64,
    /// Key to absolute position; sharded so that it never stops the sequencer to grow, and
    /// prefetchable (see `key_index`).
    #[serde(skip)]
    index: KeyIndex,
}

impl IdempotencyStore {
    pub(crate) fn rebuild_index(&mut self) {
        self.index =
            self.entries.iter().enumerate().map(|(i, e)| (e.key, self.first_position + i as u64)).collect();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: u128) -> Option<&Remembered> {
        let position = self.index.get(key, |p| self.at(p).map(|e| e.key))?;
        self.at(position)
    }

    /// The entry at a [`wrapped`] position: the entries hold fewer than 2^32 consecutive
    /// positions, so the wrapped distance from the first is the distance.
    fn at(&self, position: u32) -> Option<&Remembered> {
        self.entries.get(position.wrapping_sub(wrapped(self.first_position)) as usize)
    }

    pub(crate) fn remember(&mut self, idempotency: Idempotency, at: Millis, outcome: Outcome) {
        let position = self.first_position + self.entries.len() as u64;
        self.entries.push_back(Remembered {
            key: idempotency.key,
            fingerprint: idempotency.fingerprint,
            at,
            outcome,
        });
        self.index.insert_new(idempotency.key, position);
    }

    /// Starts loading where a lookup of `key` will look (a hint: changes nothing).
    pub fn prefetch(&self, key: u128) {
        self.index.prefetch(key);
    }

    /// Forgets keys older than the retention window, and the oldest beyond the count bound.
    pub(crate) fn forget_old(&mut self, now: Millis) {
        let horizon = now.0.saturating_sub(IDEMPOTENCY_RETENTION_MS);
        while let Some(front) = self.entries.front() {
            if front.at.0 >= horizon && self.entries.len() <= IDEMPOTENCY_KEYS_MAX {
                break;
            }
            self.index.remove(front.key, self.first_position);
            self.entries.drop_front();
            self.first_position += 1;
        }
    }

    /// Every indexed key points at an entry with that key, and every entry is indexed.
    pub(crate) fn is_consistent(&self) -> bool {
        // Each lookup is a cache miss; start each a few entries early, as the sequencer does.
        const AHEAD: usize = 8;
        self.index.len() == self.entries.len()
            && self.entries.iter().enumerate().all(|(i, e)| {
                if let Some(ahead) = self.entries.get(i + AHEAD) {
                    self.index.prefetch(ahead.key);
                }
                self.get(e.key).map(|r| r.key) == Some(e.key)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Outcome;
    use crate::types::OrderId;

    /// Positions past 2^32, which the index holds wrapped: keys on both sides of the wrap are
    /// found at their own entries, and forgotten ones are not found.
    #[test]
    fn positions_wrap_past_32_bits() {
        let mut store = IdempotencyStore { first_position: u64::from(u32::MAX) - 100, ..Default::default() };
        let key = |n: u64| u128::from(n) << 64 | 7;
        let remember = |store: &mut IdempotencyStore, n: u64| {
            let outcome = Outcome::OrderCancelled { order: OrderId(n) };
            store.remember(Idempotency { key: key(n), fingerprint: n }, Millis(n), outcome);
        };
        for n in 0..300 {
            remember(&mut store, n);
        }
        store.rebuild_index();
        for n in 300..400 {
            remember(&mut store, n);
        }
        for n in 0..400 {
            assert_eq!(store.get(key(n)).map(|r| r.fingerprint), Some(n), "key {n}");
        }
        // Forget the first 250 (by age), across the wrap.
        store.forget_old(Millis(IDEMPOTENCY_RETENTION_MS + 250));
        for n in 0..400 {
            assert_eq!(store.get(key(n)).is_some(), n >= 250, "key {n}");
        }
        assert!(store.is_consistent());
    }
}
