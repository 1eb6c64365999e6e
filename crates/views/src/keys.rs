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
    /// The secret, shown once, in the answer that creates the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
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
