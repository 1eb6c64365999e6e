//! Remembered results of commands, by idempotency key, for a bounded time and count.

use crate::chunked::ChunkedDeque;
use crate::command::{Idempotency, Outcome};
use crate::key_index::KeyIndex;
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

    fn at(&self, position: u64) -> Option<&Remembered> {
        self.entries.get(usize::try_from(position.checked_sub(self.first_position)?).ok()?)
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
