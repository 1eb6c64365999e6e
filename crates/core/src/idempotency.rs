//! Remembered results of commands, by idempotency key, for a bounded time and count.

use crate::chunked::ChunkedDeque;
use crate::command::{Idempotency, Outcome};
use crate::limits::{IDEMPOTENCY_KEYS_MAX, IDEMPOTENCY_RETENTION_MS};
use crate::types::Millis;
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    pub key: u128,
    pub fingerprint: u64,
    pub at: Millis,
    pub outcome: Outcome,
}

/// Keys in the order they were first used (which is also command-time order), so forgetting the
/// oldest is a pop from the front.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IdempotencyStore {
    entries: ChunkedDeque<Remembered>,
    /// The absolute position of `entries[0]`.
    first_position: u64,
    /// Keys are BLAKE3 outputs (see the gateway), so a fast non-cryptographic hash is safe.
    /// griddle's map moves a few entries on each insert when it grows instead of all at once:
    /// at 10M keys an all-at-once rehash stopped the sequencer for ~350 ms.
    #[serde(skip)]
    index: griddle::HashMap<u128, u64, FxBuildHasher>,
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
        let position = *self.index.get(&key)?;
        self.entries.get((position - self.first_position) as usize)
    }

    pub(crate) fn remember(&mut self, idempotency: Idempotency, at: Millis, outcome: Outcome) {
        let position = self.first_position + self.entries.len() as u64;
        self.entries.push_back(Remembered {
            key: idempotency.key,
            fingerprint: idempotency.fingerprint,
            at,
            outcome,
        });
        self.index.insert(idempotency.key, position);
    }

    /// Forgets keys older than the retention window, and the oldest beyond the count bound.
    pub(crate) fn forget_old(&mut self, now: Millis) {
        let horizon = now.0.saturating_sub(IDEMPOTENCY_RETENTION_MS);
        while let Some(front) = self.entries.front() {
            if front.at.0 >= horizon && self.entries.len() <= IDEMPOTENCY_KEYS_MAX {
                break;
            }
            let key = front.key;
            if self.index.get(&key) == Some(&self.first_position) {
                self.index.remove(&key);
            }
            self.entries.drop_front();
            self.first_position += 1;
        }
    }

    /// Every indexed key points at an entry with that key, and every entry is indexed.
    pub(crate) fn is_consistent(&self) -> bool {
        self.index.len() == self.entries.len()
            && self.entries.iter().all(|e| self.get(e.key).map(|r| r.key) == Some(e.key))
    }
}
