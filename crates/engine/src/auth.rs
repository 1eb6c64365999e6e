//! API keys: a secret is shown once, only its SHA-256 is kept (in the journaled state). The cache
//! here answers "who is this key?" on every request without a trip to the sequencer; the
//! sequencer keeps it in step as keys are created and revoked.

use elevens_core::{Actor, Outcome, State};
use parking_lot::RwLock;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

#[derive(Default)]
pub struct KeyCache {
    by_hash: RwLock<HashMap<[u8; 32], Actor>>,
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
        cache.registered.store(state.api_keys().len(), std::sync::atomic::Ordering::Relaxed);
        cache
            .by_hash
            .write()
            .extend(state.api_keys().iter().filter(|k| !k.revoked).map(|k| (k.secret_sha256, k.acts_as)));
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
        let mut keys = self.by_hash.write();
        if created {
            self.registered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            keys.insert(key.secret_sha256, key.acts_as);
        } else {
            keys.remove(&key.secret_sha256);
        }
    }

    pub fn authenticate(&self, secret: &str) -> Option<Actor> {
        self.by_hash.read().get(&hash_secret(secret)).copied()
    }

    /// Whether no key was ever registered: a new data directory.
    pub fn none_ever(&self) -> bool {
        self.registered.load(std::sync::atomic::Ordering::Relaxed) == 0
    }

    /// Whether some admin key works.
    pub fn has_admin(&self) -> bool {
        self.by_hash.read().values().any(|&actor| actor == Actor::Admin)
    }
}
