//! API keys: a secret is shown once, only its SHA-256 is kept (in the journaled state). The cache
//! here answers "who is this key?" on every request without a trip to the sequencer; the
//! sequencer keeps it in step as keys are created and revoked.

use elevens_core::{Actor, Outcome, State};
use parking_lot::RwLock;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A key in force: what it acts as, and when it last authenticated (ms since the epoch; 0: not
/// since start), shared with [`KeyCache::last_used`]'s index by id.
struct Entry {
    actor: Actor,
    last_used: Arc<AtomicU64>,
}

#[derive(Default)]
pub struct KeyCache {
    /// The keys in force, by their secret's hash: one lookup per request.
    by_hash: RwLock<HashMap<[u8; 32], Entry>>,
    /// The same last-use counters by key id, for the keys' list. Kept in memory, per node: a use
    /// is not a change of state.
    last_used: RwLock<HashMap<u64, Arc<AtomicU64>>>,
    /// Keys ever registered, revoked ones included.
    registered: std::sync::atomic::AtomicUsize,
}

pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A new secret: "ek_" and 160 random bits in hex.
pub fn new_secret() -> String {
    format!("ek_{}", hex::encode(rand::random::<[u8; 20]>()))
}

impl KeyCache {
    pub fn from_state(state: &State) -> KeyCache {
        let cache = KeyCache::default();
        cache.registered.store(state.api_keys().len(), Ordering::Relaxed);
        for (i, k) in state.api_keys().iter().enumerate().filter(|(_, k)| !k.revoked) {
            cache.insert(k.secret_sha256, k.acts_as, i as u64 + 1);
        }
        cache
    }

    /// Called by the sequencer after a command changed state.
    pub fn observe(&self, state: &State, outcome: &Outcome) {
        let (id, created) = match outcome {
            Outcome::ApiKeyCreated { key } => (key, true),
            Outcome::ApiKeyRevoked { key } => (key, false),
            _ => return,
        };
        let Some(key) = usize::try_from(id.0).ok().and_then(|i| state.api_keys().get(i.wrapping_sub(1)))
        else {
            return;
        };
        if created {
            self.registered.fetch_add(1, Ordering::Relaxed);
            self.insert(key.secret_sha256, key.acts_as, id.0);
        } else {
            self.by_hash.write().remove(&key.secret_sha256);
            self.last_used.write().remove(&id.0);
        }
    }

    fn insert(&self, hash: [u8; 32], actor: Actor, id: u64) {
        let last_used = Arc::clone(self.last_used.write().entry(id).or_default());
        self.by_hash.write().insert(hash, Entry { actor, last_used });
    }

    /// Who `secret` acts as, noting the use: at most one store a second per key, so a key used
    /// by every thread of a storefront does not bounce its counter between cores on each request.
    pub fn authenticate(&self, secret: &str) -> Option<Actor> {
        let keys = self.by_hash.read();
        let entry = keys.get(&hash_secret(secret))?;
        let now = crate::engine::now_ms().0;
        if entry.last_used.load(Ordering::Relaxed) + 1_000 <= now {
            entry.last_used.store(now, Ordering::Relaxed);
        }
        Some(entry.actor)
    }

    /// When key `id` last authenticated on this node since it started (to the second).
    pub fn last_used(&self, id: u64) -> Option<u64> {
        let at = self.last_used.read().get(&id)?.load(Ordering::Relaxed);
        (at > 0).then_some(at)
    }

    /// Whether no key was ever registered: a new data directory.
    pub fn none_ever(&self) -> bool {
        self.registered.load(Ordering::Relaxed) == 0
    }

    /// Whether some admin key works.
    pub fn has_admin(&self) -> bool {
        self.by_hash.read().values().any(|e| e.actor == Actor::Admin)
    }
}
