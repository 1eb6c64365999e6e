//! API keys as the API shows them, and the role a key acts as.

use crate::*;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub api_key_id: u64,
    pub role: &'static str,
    pub merchant_id: Option<u64>,
    pub buyer_id: Option<u64>,
    pub carrier_id: Option<u64>,
    pub revoked: bool,
    /// What the operator calls it; empty if none was given.
    pub label: String,
    /// When it was last used to authenticate (ms since the epoch), as this node saw it since
    /// it started; null if not since then. Not journaled: use is not a change of state.
    pub last_used_at: Option<u64>,
    /// The secret, shown once, in the answer that creates the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A key as the API shows it (never its secret, which only its creation's answer adds).
pub(crate) fn api_key_view(id: u64, k: &elevens_core::keys::ApiKey, revoked: bool) -> ApiKeyView {
    let (role, merchant_id, buyer_id, carrier_id) = role_of(k.acts_as);
    ApiKeyView {
        api_key_id: id,
        role,
        merchant_id,
        buyer_id,
        carrier_id,
        revoked,
        label: k.label.clone(),
        last_used_at: None,
        key: None,
    }
}

pub(crate) fn role_of(actor: Actor) -> (&'static str, Option<u64>, Option<u64>, Option<u64>) {
    match actor {
        Actor::Admin => ("admin", None, None, None),
        Actor::Service => ("service", None, None, None),
        Actor::Merchant(m) => ("merchant", Some(m.0), None, None),
        Actor::Buyer(b) => ("buyer", None, Some(b.0), None),
        Actor::Carrier(c) => ("carrier", None, None, Some(c.0)),
        Actor::Viewer => ("viewer", None, None, None),
    }
}
