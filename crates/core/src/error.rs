//! Typed errors of the state machine. Each has a stable `code` that clients may match on; the
//! HTTP layer maps the [`ErrorKind`] to a status code in one place.

use crate::types::{Amount, CampaignId, CouponId, Millis, RedPacketId, ShipmentId, SkuId, WarehouseId};

/// What family an error belongs to; decides the HTTP status at the edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command is malformed or out of bounds (400).
    Invalid,
    /// The actor may not do this (403).
    Forbidden,
    /// A referenced entity does not exist (404).
    NotFound,
    /// The command is well-formed but conflicts with the current state (409).
    Conflict,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    #[error("{what} is out of bounds: {why}")]
    OutOfBounds { what: &'static str, why: &'static str },
    #[error("amount exceeds the largest accepted amount")]
    AmountTooLarge,
    #[error("the arithmetic overflowed: {0}")]
    Overflow(&'static str),
    #[error("{currency}: the platform has brought in as much money as it may ({max} minor units)")]
    IssuanceLimit { currency: crate::types::Currency, max: u64 },
    #[error("this is the last admin key: create another admin key before revoking it")]
    LastAdminKey,
    #[error("the actor may not {0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("currency does not match: {0}")]
    CurrencyMismatch(&'static str),
    #[error("all lines of an order must belong to one merchant")]
    MixedMerchants,
    #[error("the same SKU appears twice in one order")]
    DuplicateSku,
    #[error("not enough stock: {available} available")]
    InsufficientStock { available: u64 },
    #[error("not enough money in the wallet")]
    InsufficientFunds,
    #[error("campaign {campaign} has not started; it opens in {starts_in_ms} ms")]
    CampaignNotStarted { campaign: CampaignId, starts_in_ms: u64 },
    #[error("campaign {campaign} is sold out: {remaining} units left")]
    CampaignSoldOut { campaign: CampaignId, remaining: u64 },
    #[error("campaign {campaign} allows {limit} units per buyer; this buyer has {used}")]
    CampaignLimitExceeded { campaign: CampaignId, limit: u32, used: u32 },
    #[error("the campaign window overlaps another campaign on the same SKU")]
    CampaignOverlap,
    #[error("the order is {status}, which does not allow this")]
    OrderState { status: &'static str },
    #[error("the campaign is {status}, which does not allow this")]
    CampaignState { status: &'static str },
    #[error("the reservation expired at {expired_at:?}")]
    ReservationExpired { expired_at: Millis },
    #[error("this idempotency key was used for a different command")]
    IdempotencyKeyReused,
    #[error("coupon {0} is not active now")]
    CouponNotActive(CouponId),
    #[error("coupon {0} does not apply to this order: {1}")]
    CouponNotApplicable(CouponId, &'static str),
    #[error("coupon {coupon} needs a subtotal of at least {min_spend}")]
    CouponMinSpend { coupon: CouponId, min_spend: u64 },
    #[error("coupon {coupon} allows {limit} uses per buyer")]
    CouponLimitExceeded { coupon: CouponId, limit: u32 },
    #[error("coupon {0} has no budget left")]
    CouponBudgetExhausted(CouponId),
    #[error("red packet {0} is not open")]
    RedPacketNotOpen(RedPacketId),
    #[error("red packet {0} has no shares left")]
    RedPacketEmpty(RedPacketId),
    #[error("this buyer already claimed red packet {0}")]
    RedPacketAlreadyClaimed(RedPacketId),
    #[error("warehouse {warehouse} has no dispatch day with room within the booking horizon")]
    NoDispatchCapacity { warehouse: WarehouseId },
    #[error("the shipment is {status}, which does not allow this")]
    ShipmentState { status: &'static str },
    #[error("shipment {shipment} has as many history records as it may keep")]
    TrackingHistoryFull { shipment: ShipmentId },
    #[error("sku {sku}: more units than are left to return or refund ({left})")]
    MoreThanBought { sku: SkuId, left: u32 },
    #[error("the refund is above what is left to refund ({} minor units)", left.0)]
    RefundAboveLeft { left: Amount },
    #[error("a return of this order is open: settle it first")]
    ReturnOpen,
    #[error("the return is {status}, which does not allow this")]
    ReturnState { status: &'static str },
    #[error("the ticket is {status}, which does not allow this")]
    TicketState { status: &'static str },
    #[error("item {index}: {error}")]
    InBatch { index: u32, error: Box<CoreError> },
}

impl CoreError {
    /// The stable, machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::OutOfBounds { .. } => "out_of_bounds",
            CoreError::AmountTooLarge => "amount_too_large",
            CoreError::Overflow(_) => "overflow",
            CoreError::IssuanceLimit { .. } => "issuance_limit_reached",
            CoreError::LastAdminKey => "last_admin_key",
            CoreError::Forbidden(_) => "forbidden",
            CoreError::NotFound(_) => "not_found",
            CoreError::CurrencyMismatch(_) => "currency_mismatch",
            CoreError::MixedMerchants => "mixed_merchants",
            CoreError::DuplicateSku => "duplicate_sku",
            CoreError::InsufficientStock { .. } => "insufficient_stock",
            CoreError::InsufficientFunds => "insufficient_funds",
            CoreError::CampaignNotStarted { .. } => "campaign_not_started",
            CoreError::CampaignSoldOut { .. } => "campaign_sold_out",
            CoreError::CampaignLimitExceeded { .. } => "campaign_limit_exceeded",
            CoreError::CampaignOverlap => "campaign_overlap",
            CoreError::OrderState { .. } => "invalid_order_state",
            CoreError::CampaignState { .. } => "invalid_campaign_state",
            CoreError::ReservationExpired { .. } => "reservation_expired",
            CoreError::IdempotencyKeyReused => "idempotency_key_reused",
            CoreError::CouponNotActive(_) => "coupon_not_active",
            CoreError::CouponNotApplicable(..) => "coupon_not_applicable",
            CoreError::CouponMinSpend { .. } => "coupon_min_spend_not_met",
            CoreError::CouponLimitExceeded { .. } => "coupon_limit_exceeded",
            CoreError::CouponBudgetExhausted(_) => "coupon_budget_exhausted",
            CoreError::RedPacketNotOpen(_) => "red_packet_not_open",
            CoreError::RedPacketEmpty(_) => "red_packet_empty",
            CoreError::RedPacketAlreadyClaimed(_) => "red_packet_already_claimed",
            CoreError::NoDispatchCapacity { .. } => "no_dispatch_capacity",
            CoreError::ShipmentState { .. } => "invalid_shipment_state",
            CoreError::TrackingHistoryFull { .. } => "tracking_history_full",
            CoreError::MoreThanBought { .. } => "more_than_bought",
            CoreError::RefundAboveLeft { .. } => "refund_above_left",
            CoreError::ReturnOpen => "return_open",
            CoreError::ReturnState { .. } => "invalid_return_state",
            CoreError::TicketState { .. } => "invalid_ticket_state",
            CoreError::InBatch { error, .. } => error.code(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            CoreError::OutOfBounds { .. }
            | CoreError::AmountTooLarge
            | CoreError::Overflow(_)
            | CoreError::CurrencyMismatch(_)
            | CoreError::MixedMerchants
            | CoreError::DuplicateSku
            | CoreError::CouponNotApplicable(..) => ErrorKind::Invalid,
            CoreError::Forbidden(_) => ErrorKind::Forbidden,
            CoreError::InBatch { error, .. } => error.kind(),
            CoreError::NotFound(_) => ErrorKind::NotFound,
            CoreError::InsufficientStock { .. }
            | CoreError::InsufficientFunds
            | CoreError::IssuanceLimit { .. }
            | CoreError::LastAdminKey
            | CoreError::CampaignNotStarted { .. }
            | CoreError::CampaignSoldOut { .. }
            | CoreError::CampaignLimitExceeded { .. }
            | CoreError::CampaignOverlap
            | CoreError::OrderState { .. }
            | CoreError::CampaignState { .. }
            | CoreError::ReservationExpired { .. }
            | CoreError::IdempotencyKeyReused
            | CoreError::CouponNotActive(_)
            | CoreError::CouponMinSpend { .. }
            | CoreError::CouponLimitExceeded { .. }
            | CoreError::CouponBudgetExhausted(_)
            | CoreError::RedPacketNotOpen(_)
            | CoreError::RedPacketEmpty(_)
            | CoreError::RedPacketAlreadyClaimed(_)
            | CoreError::NoDispatchCapacity { .. }
            | CoreError::ShipmentState { .. }
            | CoreError::TrackingHistoryFull { .. }
            | CoreError::MoreThanBought { .. }
            | CoreError::RefundAboveLeft { .. }
            | CoreError::ReturnOpen
            | CoreError::ReturnState { .. }
            | CoreError::TicketState { .. } => ErrorKind::Conflict,
        }
    }
}

pub(crate) fn out_of_bounds(what: &'static str, why: &'static str) -> CoreError {
    CoreError::OutOfBounds { what, why }
}
