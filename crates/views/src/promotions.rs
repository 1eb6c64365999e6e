//! Promotions as the API shows them: campaigns, coupons, red packets and their claims.

use crate::*;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct CouponView {
    pub coupon_id: u64,
    /// `platform`, `merchant:<id>`, or `merchants` (a cross-store discount each store pays its
    /// share of): who pays for the discount.
    pub funded_by: String,
    pub merchant_id: Option<u64>,
    /// `fixed`, `percent` or `cross_store` (the platform's, at checkout).
    pub kind: &'static str,
    pub amount_off: Option<u64>,
    pub percent_bps: Option<u16>,
    pub cap: Option<u64>,
    /// A cross-store discount's step: `amount_off` for every `every` spent across stores.
    pub every: Option<u64>,
    #[schema(value_type = String)]
    pub currency: Code,
    pub min_spend: u64,
    pub starts_at: u64,
    pub ends_at: u64,
    pub per_buyer_limit: u32,
    pub budget_amount: Option<u64>,
    pub budget_uses: Option<u64>,
    pub used_amount: u64,
    pub used_count: u64,
    pub disabled: bool,
    /// For a buyer's list: uses left to that buyer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses_left: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CouponList {
    pub coupons: Vec<CouponView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedPacketView {
    pub red_packet_id: u64,
    pub funded_by: String,
    pub merchant_id: Option<u64>,
    pub amount: u64,
    pub count: u32,
    #[schema(value_type = String)]
    pub currency: Code,
    pub starts_at: u64,
    pub ends_at: u64,
    pub claimed_count: u64,
    pub claimed_amount: u64,
    /// What went back to the sponsor when the pool closed.
    pub returned: u64,
    /// `scheduled`, `open`, `ended` (time is up, closing) or `closed`.
    pub status: &'static str,
    pub server_time: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedPacketList {
    pub red_packets: Vec<RedPacketView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimView {
    pub red_packet_id: u64,
    pub buyer_id: u64,
    pub amount: u64,
    #[schema(value_type = String)]
    pub currency: Code,
    /// Set in the answer to the claim itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimList {
    pub claims: Vec<ClaimView>,
}

pub(crate) fn sponsor_name(sponsor: Sponsor) -> (String, Option<u64>) {
    match sponsor {
        Sponsor::Platform => ("platform".into(), None),
        Sponsor::Merchant(m) => (format!("merchant:{m}"), Some(m.0)),
    }
}

pub(crate) fn coupon_view(id: CouponId, c: &Coupon, uses_left: Option<u32>) -> CouponView {
    let (mut funded_by, merchant_id) = sponsor_name(c.terms.sponsor);
    let (kind, amount_off, percent_bps, cap, every) = match c.terms.rule {
        DiscountRule::Fixed { amount } => ("fixed", Some(amount.0), None, None, None),
        DiscountRule::Percent { bps, cap } => ("percent", None, Some(bps), cap.map(|c| c.0), None),
        DiscountRule::CrossStore { every, off, cap, merchants_fund } => {
            if merchants_fund {
                funded_by = "merchants".into();
            }
            ("cross_store", Some(off.0), None, cap.map(|c| c.0), Some(every.0))
        }
    };
    CouponView {
        coupon_id: id.0,
        funded_by,
        merchant_id,
        kind,
        amount_off,
        percent_bps,
        cap,
        every,
        currency: Code(c.terms.currency),
        min_spend: c.terms.min_spend.0,
        starts_at: c.terms.starts_at.0,
        ends_at: c.terms.ends_at.0,
        per_buyer_limit: c.terms.per_buyer_limit,
        budget_amount: c.terms.budget_amount.map(|a| a.0),
        budget_uses: c.terms.budget_uses,
        used_amount: c.used_amount.0,
        used_count: c.used_count,
        disabled: c.disabled,
        uses_left,
    }
}

pub(crate) fn red_packet_status(p: &RedPacket, closed: bool, now: Millis) -> &'static str {
    if closed {
        "closed"
    } else if now < p.terms.starts_at {
        "scheduled"
    } else if now < p.terms.ends_at {
        "open"
    } else {
        "ended"
    }
}

pub(crate) fn red_packet_view(id: RedPacketId, p: &RedPacket, now: Millis) -> RedPacketView {
    let (funded_by, merchant_id) = sponsor_name(p.terms.sponsor);
    let status = red_packet_status(p, p.closed, now);
    RedPacketView {
        red_packet_id: id.0,
        funded_by,
        merchant_id,
        amount: p.terms.amount.0,
        count: p.terms.count,
        currency: Code(p.terms.currency),
        starts_at: p.terms.starts_at.0,
        ends_at: p.terms.ends_at.0,
        claimed_count: p.claims.len() as u64,
        claimed_amount: p.claimed_amount.0,
        returned: p.returned.0,
        status,
        server_time: now.0,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignView {
    pub campaign_id: u64,
    /// Empty for a sale created without a name.
    pub name: String,
    pub sku_id: u64,
    pub flash_price: u64,
    #[schema(value_type = String)]
    pub currency: Code,
    pub quantity: u64,
    pub taken: u64,
    pub remaining: u64,
    pub per_buyer_limit: u32,
    /// Milliseconds since the Unix epoch.
    pub starts_at: u64,
    pub ends_at: u64,
    /// `scheduled`, `open`, `ended` or `cancelled`, at `server_time`.
    pub status: &'static str,
    /// The operator features it on the big screen.
    pub featured: bool,
    /// The sequencer's clock when this was read: draw the countdown as `starts_at - server_time`.
    pub server_time: u64,
    pub starts_in_ms: u64,
}

pub(crate) fn campaign_view(state: &State, id: CampaignId, now: Millis) -> Result<View, CoreError> {
    Ok(View::Campaign(campaign_fields(state, id, state.campaign(id)?, now)?))
}

pub(crate) fn campaign_fields(
    state: &State,
    id: CampaignId,
    c: &Campaign,
    now: Millis,
) -> Result<CampaignView, CoreError> {
    let currency = state.sku(c.sku)?.currency;
    Ok(CampaignView {
        campaign_id: id.0,
        name: c.name.clone(),
        sku_id: c.sku.0,
        flash_price: c.flash_price.0,
        currency: Code(currency),
        quantity: c.quantity,
        taken: c.taken,
        remaining: c.quantity - c.taken,
        per_buyer_limit: c.per_buyer_limit,
        starts_at: c.starts_at.0,
        ends_at: c.ends_at.0,
        status: c.status(now),
        featured: state.featured_campaign() == Some(id),
        server_time: now.0,
        starts_in_ms: c.starts_at.0.saturating_sub(now.0),
    })
}
