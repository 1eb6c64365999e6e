//! Commands (what changes state), their envelope, and outcomes (what a success returns).

use crate::types::*;
use serde::{Deserialize, Serialize};

/// One command as the sequencer hands it to the state machine, and as the journal stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub actor: Actor,
    /// `None` only for commands the engine issues itself (reservation expiry, bootstrap).
    pub idempotency: Option<Idempotency>,
    /// The sequencer's clock when it took the command. The state machine never reads a clock.
    pub at: Millis,
    pub command: Command,
}

/// An idempotency key, already scoped to its actor and hashed by the gateway, and a fingerprint
/// of the command it was first used with (so a reuse with another command is caught).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Idempotency {
    pub key: u128,
    pub fingerprint: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Admin,
    Service,
    Merchant,
    Buyer,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LineRequest {
    pub sku: SkuId,
    pub quantity: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NewSku {
    pub merchant: MerchantId,
    pub title: String,
    pub description: String,
    pub price: Amount,
    pub currency: Currency,
    pub initial_stock: u64,
}

/// A flash sale: `quantity` units of `sku` at `flash_price` during `[starts_at, ends_at)`, at
/// most `per_buyer_limit` units per buyer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NewCampaign {
    pub sku: SkuId,
    pub flash_price: Amount,
    pub currency: Currency,
    pub quantity: u64,
    pub starts_at: Millis,
    pub ends_at: Millis,
    pub per_buyer_limit: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Command {
    /// Register an API key acting as `acts_as`. Only the SHA-256 of the secret is stored.
    CreateApiKey {
        acts_as: Actor,
        secret_sha256: [u8; 32],
    },
    RevokeApiKey {
        key: ApiKeyId,
    },
    CreateMerchant {
        name: String,
        commission_bps: u16,
    },
    CreateBuyer {
        name: String,
    },
    CreateSku(NewSku),
    Restock {
        sku: SkuId,
        quantity: u64,
    },
    /// Move money from the external funding account into a buyer's wallet.
    TopUp {
        buyer: BuyerId,
        amount: Amount,
        currency: Currency,
    },
    CreateCampaign(NewCampaign),
    /// Reserve stock for the lines; the reservation expires `reservation_ttl_ms` after `at`.
    PlaceOrder {
        buyer: BuyerId,
        lines: Vec<LineRequest>,
        reservation_ttl_ms: u64,
    },
    PayOrder {
        order: OrderId,
    },
    CancelOrder {
        order: OrderId,
    },
    /// Return the money of a paid order; `restock` puts the units back on sale.
    RefundOrder {
        order: OrderId,
        restock: bool,
    },
    /// Release every reservation whose expiry is at or before the envelope's time.
    ExpireReservations,
}

impl Command {
    /// A short, stable name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::CreateApiKey { .. } => "create_api_key",
            Command::RevokeApiKey { .. } => "revoke_api_key",
            Command::CreateMerchant { .. } => "create_merchant",
            Command::CreateBuyer { .. } => "create_buyer",
            Command::CreateSku(_) => "create_sku",
            Command::Restock { .. } => "restock",
            Command::TopUp { .. } => "top_up",
            Command::CreateCampaign(_) => "create_campaign",
            Command::PlaceOrder { .. } => "place_order",
            Command::PayOrder { .. } => "pay_order",
            Command::CancelOrder { .. } => "cancel_order",
            Command::RefundOrder { .. } => "refund_order",
            Command::ExpireReservations => "expire_reservations",
        }
    }
}

/// What a successful command returns. Stored with its idempotency key, so a repeat returns
/// exactly this, whatever happened to the entities since.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    ApiKeyCreated { key: ApiKeyId },
    ApiKeyRevoked { key: ApiKeyId },
    MerchantCreated { merchant: MerchantId },
    BuyerCreated { buyer: BuyerId },
    SkuCreated { sku: SkuId, initial_stock: u64 },
    Restocked { sku: SkuId, received: u64 },
    ToppedUp { transfer: TransferId, balance: i64 },
    CampaignCreated { campaign: CampaignId },
    OrderPlaced { order: OrderId, total: Amount, expires_at: Millis },
    OrderPaid { order: OrderId, total: Amount, commission: Amount },
    OrderCancelled { order: OrderId },
    OrderRefunded { order: OrderId, amount: Amount, restocked: bool },
    ReservationsExpired { count: u32 },
}
