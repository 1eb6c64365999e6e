//! Flash-sale campaigns: a SKU at a flash price, a quantity, a window and a per-buyer limit.
//! Units are taken by placed orders and given back when an unpaid order closes, so a campaign
//! never sells more than its quantity nor a buyer more than the limit.

use crate::command::*;
use crate::error::{out_of_bounds, CoreError};
use crate::limits::*;
use crate::state::State;
use crate::types::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub sku: SkuId,
    pub flash_price: Amount,
    pub quantity: u64,
    pub starts_at: Millis,
    pub ends_at: Millis,
    pub per_buyer_limit: u32,
    /// Units held by pending or paid orders at the flash price. Never above `quantity`.
    pub taken: u64,
    /// Units per buyer, held by pending or paid orders. Never above `per_buyer_limit`.
    pub taken_by_buyer: BTreeMap<BuyerId, u32>,
    /// When it was created: its creation's answer is rendered as of then.
    pub created_at: Millis,
}

impl Campaign {
    pub fn is_open(&self, now: Millis) -> bool {
        self.starts_at <= now && now < self.ends_at
    }
}

impl State {
    pub(crate) fn create_campaign(
        &mut self,
        actor: Actor,
        now: Millis,
        new: &NewCampaign,
    ) -> Result<Outcome, CoreError> {
        let NewCampaign { sku: sku_id, flash_price, currency, quantity, starts_at, ends_at, per_buyer_limit } =
            *new;
        let sku = self.sku(sku_id)?;
        if !actor.may_manage_merchant(sku.merchant()) {
            return Err(CoreError::Forbidden("create campaigns on another merchant's SKU"));
        }
        if currency != sku.currency {
            return Err(CoreError::CurrencyMismatch("the flash price must be in the SKU's currency"));
        }
        Self::check_positive_amount(flash_price)?;
        if flash_price > sku.price {
            return Err(out_of_bounds("flash_price", "must not exceed the SKU's price"));
        }
        if quantity == 0 || quantity > STOCK_QUANTITY_MAX {
            return Err(out_of_bounds("quantity", "must be between 1 and 1000000000"));
        }
        if per_buyer_limit == 0 || per_buyer_limit > LINE_QUANTITY_MAX {
            return Err(out_of_bounds("per_buyer_limit", "must be between 1 and 10000"));
        }
        if ends_at <= starts_at {
            return Err(out_of_bounds("ends_at", "must be after starts_at"));
        }
        if ends_at.0 - starts_at.0 > CAMPAIGN_DURATION_MS_MAX {
            return Err(out_of_bounds("ends_at", "a campaign lasts at most 31 days"));
        }
        let overlaps = sku
            .campaigns
            .iter()
            .filter_map(|&c| self.campaign(c).ok())
            .any(|c| starts_at < c.ends_at && c.starts_at < ends_at);
        if overlaps {
            return Err(CoreError::CampaignOverlap);
        }
        if self.campaigns.len() as u64 >= CAMPAIGNS_MAX {
            return Err(CoreError::Overflow("campaigns ever created"));
        }
        let campaign = CampaignId::from_index(self.campaigns.len());
        self.campaigns.push(Campaign {
            sku: sku_id,
            flash_price,
            quantity,
            starts_at,
            ends_at,
            per_buyer_limit,
            taken: 0,
            taken_by_buyer: BTreeMap::new(),
            created_at: now,
        });
        self.skus[sku_id.index().unwrap_or_default()].campaigns.push(campaign);
        Ok(Outcome::CampaignCreated { campaign })
    }
}
