//! The catalogue as the API shows it: merchants and SKUs.

use crate::*;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct SkuList {
    pub skus: Vec<SkuView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantView {
    pub merchant_id: u64,
    pub name: String,
    pub commission_bps: u16,
    /// The store's time zone, as its offset from UTC in minutes, and as a name (`UTC+08:00`).
    pub utc_offset_minutes: i16,
    pub time_zone: String,
}

/// A UTC offset as people name it: `UTC+08:00`, `UTC-03:30`, `UTC+00:00`.
pub fn zone_name(utc_offset_minutes: i16) -> String {
    let sign = if utc_offset_minutes < 0 { '-' } else { '+' };
    let minutes = utc_offset_minutes.unsigned_abs();
    format!("UTC{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SkuView {
    pub sku_id: u64,
    pub merchant_id: u64,
    pub title: String,
    pub description: String,
    /// Minor units.
    pub price: u64,
    #[schema(value_type = String)]
    pub currency: Code,
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
    pub received: u64,
    pub campaign_ids: Vec<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RestockView {
    pub sku_id: u64,
    pub received: u64,
}

pub(crate) fn merchant_view(state: &State, id: MerchantId) -> Result<View, CoreError> {
    let m = state.merchant(id)?;
    Ok(View::Merchant(MerchantView {
        merchant_id: id.0,
        name: m.name.clone(),
        commission_bps: m.commission_bps,
        utc_offset_minutes: m.utc_offset_minutes,
        time_zone: zone_name(m.utc_offset_minutes),
    }))
}

pub(crate) fn sku_view(state: &State, id: SkuId, s: &Sku) -> SkuView {
    SkuView {
        sku_id: id.0,
        merchant_id: s.merchant().0,
        title: state.sku_title(s).to_string(),
        description: state.sku_description(s).to_string(),
        price: s.price.0,
        currency: Code(s.currency),
        available: s.available,
        reserved: s.reserved,
        sold: s.sold,
        received: s.received,
        campaign_ids: s.campaigns.iter().map(|c| c.0).collect(),
    }
}
