//! API keys: who may act, as which role. A key is a SHA-256 of its secret; revoking one is
//! for good.

use crate::command::*;
use crate::error::{out_of_bounds, CoreError};
use crate::limits::NAME_BYTES_MAX;
use crate::state::State;
use crate::types::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub acts_as: Actor,
    pub secret_sha256: [u8; 32],
    pub revoked: bool,
    /// What the operator calls it ("storefront, Hangzhou"); empty if none was given.
    pub label: String,
}

impl State {
    pub(crate) fn create_api_key(
        &mut self,
        actor: Actor,
        acts_as: Actor,
        secret_sha256: [u8; 32],
        label: &str,
    ) -> Result<Outcome, CoreError> {
        Self::require_admin(actor, "create API keys")?;
        if !label.is_empty() {
            Self::check_name("label", label, NAME_BYTES_MAX)?;
        }
        match acts_as {
            Actor::Merchant(m) => {
                self.merchant(m)?;
            }
            Actor::Buyer(b) => {
                self.buyer(b)?;
            }
            Actor::Carrier(c) => {
                self.carrier(c)?;
            }
            Actor::Admin | Actor::Service | Actor::Viewer => {}
        }
        if self.api_keys.iter().any(|k| k.secret_sha256 == secret_sha256) {
            return Err(out_of_bounds("secret", "already registered"));
        }
        self.api_keys.push(ApiKey { acts_as, secret_sha256, revoked: false, label: label.to_owned() });
        Ok(Outcome::ApiKeyCreated { key: ApiKeyId::from_index(self.api_keys.len() - 1) })
    }

    pub(crate) fn revoke_api_key(&mut self, actor: Actor, key: ApiKeyId) -> Result<Outcome, CoreError> {
        Self::require_admin(actor, "revoke API keys")?;
        let entry =
            key.index().and_then(|i| self.api_keys.get(i)).ok_or_else(|| CoreError::NotFound("api key"))?;
        // Without an admin key nobody could create another one: the data directory would be
        // locked out for good. Rotate by creating the new key first.
        let admins = self.api_keys.iter().filter(|k| !k.revoked && k.acts_as == Actor::Admin).count();
        if !entry.revoked && entry.acts_as == Actor::Admin && admins == 1 {
            return Err(CoreError::LastAdminKey);
        }
        self.api_keys[key.index().unwrap_or_default()].revoked = true;
        Ok(Outcome::ApiKeyRevoked { key })
    }
}
