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
    /// What merchants and the big screen call it; empty for a sale created without one.
    pub name: String,
    pub flash_price: Amount,
    pub quantity: u64,
    pub starts_at: Millis,
    /// When it ends: set to the time it was ended if ended early.
    pub ends_at: Millis,
    pub per_buyer_limit: u32,
    /// Cancelled before it started: it never opens and holds no SKU's window.
    pub cancelled: bool,
    /// Units held by pending or paid orders at the flash price. Never above `quantity`.
    pub taken: u64,
    /// Units per buyer, held by pending or paid orders. Never above `per_buyer_limit`.
    pub taken_by_buyer: BTreeMap<BuyerId, u32>,
    /// When it was created: its creation's answer is rendered as of then.
    pub created_at: Millis,
}

impl Campaign {
    pub fn is_open(&self, now: Millis) -> bool {
        !self.cancelled && self.starts_at <= now && now < self.ends_at
    }

    /// Cancelled, or past its end: it sells nothing more and can change no more.
    pub fn is_over(&self, now: Millis) -> bool {
        self.cancelled || now >= self.ends_at
    }

    /// Where a sale is in its life at `now`, as its views and refusals name it.
    pub fn status(&self, now: Millis) -> &'static str {
        status(self.cancelled, self.starts_at, self.ends_at, now)
    }
}

/// A sale's status at `now` from its window: `scheduled`, `open`, `ended` or `cancelled` (the
/// read models, which keep the window and not the sale, name it the same way).
pub fn status(cancelled: bool, starts_at: Millis, ends_at: Millis, now: Millis) -> &'static str {
    if cancelled {
        "cancelled"
    } else if now >= ends_at {
        "ended"
    } else if now >= starts_at {
        "open"
    } else {
        "scheduled"
    }
}

impl State {
    pub(crate) fn create_campaign(
        &mut self,
        actor: Actor,
        now: Millis,
        name: &str,
        new: &NewCampaign,
    ) -> Result<Outcome, CoreError> {
        let NewCampaign { sku: sku_id, flash_price, currency, quantity, starts_at, ends_at, per_buyer_limit } =
            *new;
        if !name.is_empty() {
            Self::check_name("name", name, NAME_BYTES_MAX)?;
        }
        let sku = self.sku(sku_id)?;
        if !actor.may_manage_merchant(sku.merchant()) {
            return Err(CoreError::Forbidden("create campaigns on another merchant's SKU"));
        }
        if currency != sku.currency {
            return Err(CoreError::CurrencyMismatch("the flash price must be in the SKU's currency"));
        }
        self.check_campaign_terms(sku_id, None, flash_price, quantity, starts_at, ends_at, per_buyer_limit)?;
        if self.campaigns.len() as u64 >= CAMPAIGNS_MAX {
            return Err(CoreError::Overflow("campaigns ever created"));
        }
        let campaign = CampaignId::from_index(self.campaigns.len());
        self.campaigns.push(Campaign {
            sku: sku_id,
            name: name.to_owned(),
            flash_price,
            quantity,
            starts_at,
            ends_at,
            per_buyer_limit,
            cancelled: false,
            taken: 0,
            taken_by_buyer: BTreeMap::new(),
            created_at: now,
        });
        self.skus[sku_id.index().unwrap_or_default()].campaigns.push(campaign);
        Ok(Outcome::CampaignCreated { campaign })
    }

    /// The bounds every sale's terms keep, and no overlap with another sale of the SKU that is
    /// not cancelled (`except`: the sale being changed).
    #[allow(clippy::too_many_arguments)]
    fn check_campaign_terms(
        &self,
        sku_id: SkuId,
        except: Option<CampaignId>,
        flash_price: Amount,
        quantity: u64,
        starts_at: Millis,
        ends_at: Millis,
        per_buyer_limit: u32,
    ) -> Result<(), CoreError> {
        let sku = self.sku(sku_id)?;
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
            .filter(|&&c| Some(c) != except)
            .filter_map(|&c| self.campaign(c).ok())
            .any(|c| !c.cancelled && starts_at < c.ends_at && c.starts_at < ends_at);
        if overlaps {
            return Err(CoreError::CampaignOverlap);
        }
        Ok(())
    }

    /// The sale `id` if `actor` manages its SKU's merchant and it is not over.
    fn campaign_to_change(&self, actor: Actor, now: Millis, id: CampaignId) -> Result<&Campaign, CoreError> {
        let campaign = self.campaign(id)?;
        if !actor.may_manage_merchant(self.sku(campaign.sku)?.merchant()) {
            return Err(CoreError::Forbidden("change another merchant's campaigns"));
        }
        if campaign.is_over(now) {
            return Err(CoreError::CampaignState { status: campaign.status(now) });
        }
        Ok(campaign)
    }

    pub(crate) fn update_campaign(
        &mut self,
        actor: Actor,
        now: Millis,
        edit: &CampaignEdit,
    ) -> Result<Outcome, CoreError> {
        let id = edit.campaign;
        let c = self.campaign_to_change(actor, now, id)?;
        let flash_price = edit.flash_price.unwrap_or(c.flash_price);
        let quantity = edit.quantity.unwrap_or(c.quantity);
        let starts_at = edit.starts_at.unwrap_or(c.starts_at);
        let ends_at = edit.ends_at.unwrap_or(c.ends_at);
        let per_buyer_limit = edit.per_buyer_limit.unwrap_or(c.per_buyer_limit);
        if let Some(name) = &edit.name {
            Self::check_name("name", name, NAME_BYTES_MAX)?;
        }
        if c.starts_at <= now {
            // Orders were taken on these terms: the price, the start and the per-buyer limit
            // they were taken under stay.
            let fixed = [
                ("flash_price", flash_price != c.flash_price),
                ("starts_at", starts_at != c.starts_at),
                ("per_buyer_limit", per_buyer_limit != c.per_buyer_limit),
            ];
            if let Some((field, _)) = fixed.iter().find(|(_, changed)| *changed) {
                return Err(out_of_bounds(field, "cannot change once the sale has started"));
            }
            if ends_at <= now {
                return Err(out_of_bounds("ends_at", "must be after now; end the sale to stop it now"));
            }
        }
        if quantity < c.taken {
            return Err(out_of_bounds("quantity", "must not be below the units already taken"));
        }
        self.check_campaign_terms(
            c.sku,
            Some(id),
            flash_price,
            quantity,
            starts_at,
            ends_at,
            per_buyer_limit,
        )?;
        let c = &mut self.campaigns[id.index().unwrap_or_default()];
        if let Some(name) = &edit.name {
            c.name.clone_from(name);
        }
        (c.flash_price, c.quantity, c.starts_at, c.ends_at, c.per_buyer_limit) =
            (flash_price, quantity, starts_at, ends_at, per_buyer_limit);
        Ok(Outcome::CampaignUpdated { campaign: id })
    }

    pub(crate) fn end_campaign(
        &mut self,
        actor: Actor,
        now: Millis,
        id: CampaignId,
    ) -> Result<Outcome, CoreError> {
        let started = self.campaign_to_change(actor, now, id)?.starts_at <= now;
        let c = &mut self.campaigns[id.index().unwrap_or_default()];
        if started {
            c.ends_at = now;
        } else {
            c.cancelled = true;
        }
        Ok(Outcome::CampaignEnded { campaign: id })
    }

    pub(crate) fn feature_campaign(
        &mut self,
        actor: Actor,
        campaign: Option<CampaignId>,
    ) -> Result<Outcome, CoreError> {
        Self::require_admin(actor, "choose the featured sale")?;
        if let Some(id) = campaign {
            self.campaign(id)?;
        }
        self.featured_campaign = campaign;
        Ok(Outcome::CampaignFeatured { campaign })
    }

    /// The sale the operator chose for the big screen, if any.
    pub fn featured_campaign(&self) -> Option<CampaignId> {
        self.featured_campaign
    }
}
