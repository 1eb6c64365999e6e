//! Work on a data directory with no server running: the directory locked, the state recovered,
//! commands applied by the same state machine and journaled like any other, then let go.

use crate::auth::{hash_secret, new_secret};
use crate::engine::{lock_data_dir, recover};
use crate::write_private;
use elevens_core::{Actor, ApiKeyId, Applied, Command, Envelope, Millis};
use elevens_journal::JournalOptions;
use std::path::Path;

/// What [`admin_key`] did.
#[derive(Debug)]
pub struct MintedKey {
    pub secret: String,
    pub key: ApiKeyId,
    /// Admin keys revoked with `revoke_others`.
    pub revoked: Vec<ApiKeyId>,
}

/// Mints an admin key and writes its secret to `<data>/admin.key` (mode 0600); with
/// `revoke_others`, revokes every other admin key in the same durable batch (rotation after a
/// leak). The recovery path when no admin key works, or when the one there is may be known to
/// someone else. Fails if a server holds the directory.
pub fn admin_key(data_dir: &Path, revoke_others: bool) -> anyhow::Result<MintedKey> {
    if !data_dir.join("journal").is_dir() {
        anyhow::bail!("{} holds no journal", data_dir.display());
    }
    let _lock = lock_data_dir(data_dir)?;
    let (mut state, mut journal, _) = recover(data_dir, JournalOptions::default(), true)?;
    let secret = new_secret();
    let at = Millis(crate::engine::now_ms().0.max(state.clock().0));
    let mut commands =
        vec![Command::CreateApiKey { acts_as: Actor::Admin, secret_sha256: hash_secret(&secret) }];
    let others: Vec<ApiKeyId> = state
        .api_keys()
        .iter()
        .enumerate()
        .filter(|(_, k)| revoke_others && !k.revoked && k.acts_as == Actor::Admin)
        .map(|(i, _)| ApiKeyId(i as u64 + 1))
        .collect();
    commands.extend(others.iter().map(|&key| Command::RevokeApiKey { key }));
    let mut records = Vec::with_capacity(commands.len());
    let mut key = None;
    for command in commands {
        let envelope = Envelope { actor: Actor::Admin, idempotency: None, at, command };
        match state.apply(&envelope)? {
            Applied::Changed(elevens_core::Outcome::ApiKeyCreated { key: created }) => key = Some(created),
            Applied::Changed(_) => {}
            Applied::Repeated(_) => anyhow::bail!("an offline command was taken for a repeat"),
        }
        records.push(postcard::to_stdvec(&envelope)?);
    }
    // The secret is on disk before its key is journaled: a crash in between leaves a file with a
    // key that does not work yet, never a working key nobody knows.
    let pending = data_dir.join("admin.key.new");
    write_private(&pending, &secret)?;
    journal.append_batch(records.iter().map(Vec::as_slice))?;
    journal.close_clean()?;
    std::fs::rename(&pending, data_dir.join("admin.key"))?;
    let key = key.ok_or_else(|| anyhow::anyhow!("the key was not created"))?;
    Ok(MintedKey { secret, key, revoked: others })
}
