//! The catalogue: SKUs, their prices and their stock (`available + reserved + sold ==
//! received`, always).

use crate::command::*;
use crate::error::{out_of_bounds, CoreError};
use crate::limits::*;
use crate::state::State;
use crate::types::*;
use serde::{Deserialize, Serialize};
use thin_vec::ThinVec;

/// One SKU and its inventory. `available + reserved + sold == received`, always.
///
/// 64 bytes: a catalogue holds millions. The title and description are in the state's text
/// arena ([`State::sku_title`], [`crate::texts`]), found from a five-byte position and two
/// lengths; the campaigns a `ThinVec` (8 bytes, no allocation for a SKU that never had one);
/// the merchant in four bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sku {
    /// The merchant's id value (there are at most [`MERCHANTS_MAX`]): [`Sku::merchant`].
    merchant: u32,
    /// Where the title begins in the text arena; the description follows it.
    texts_at: U40,
    /// At most [`NAME_BYTES_MAX`].
    title_len: u8,
    /// At most [`DESCRIPTION_BYTES_MAX`].
    description_len: u16,
    pub price: Amount,
    pub currency: Currency,
    /// Free to reserve.
    pub available: u64,
    /// Held by unpaid orders.
    pub reserved: u64,
    /// Paid for (and not put back by a refund with restock).
    pub sold: u64,
    /// All stock ever received: initial stock plus restocks plus refunds with restock.
    pub received: u64,
    /// Campaigns on this SKU, in creation order; their windows never overlap.
    pub campaigns: ThinVec<CampaignId>,
    /// Where it ships from: a 1-based position among its merchant's warehouses (0: the first).
    pub(crate) warehouse_slot: u8,
}

const _: () = assert!(std::mem::size_of::<Sku>() == 64);
const _: () = assert!(NAME_BYTES_MAX <= u8::MAX as usize && DESCRIPTION_BYTES_MAX <= u16::MAX as usize);

impl Sku {
    pub fn merchant(&self) -> MerchantId {
        MerchantId(self.merchant.into())
    }
}

impl State {
    pub fn sku_title(&self, sku: &Sku) -> &str {
        self.sku_texts.get(sku.texts_at.get(), sku.title_len.into())
    }

    pub fn sku_description(&self, sku: &Sku) -> &str {
        self.sku_texts.get(sku.texts_at.get() + u64::from(sku.title_len), sku.description_len.into())
    }

    pub(crate) fn create_sku(&mut self, actor: Actor, new: &NewSku) -> Result<Outcome, CoreError> {
        let NewSku { merchant, ref title, ref description, price, currency, initial_stock, warehouse } = *new;
        self.merchant(merchant)?;
        if !actor.may_manage_merchant(merchant) {
            return Err(CoreError::Forbidden("create SKUs for another merchant"));
        }
        Self::check_name("title", title, NAME_BYTES_MAX)?;
        if description.len() > DESCRIPTION_BYTES_MAX {
            return Err(out_of_bounds("description", "too long"));
        }
        Self::check_positive_amount(price)?;
        if initial_stock > STOCK_QUANTITY_MAX {
            return Err(out_of_bounds("initial_stock", "too large"));
        }
        let warehouse_slot = match warehouse {
            Some(w) => self.warehouse_slot(merchant, w)?,
            None => 0,
        };
        if !self.sku_texts.has_room() {
            return Err(CoreError::Overflow("bytes of SKU texts ever stored"));
        }
        let texts_at = U40::new(self.sku_texts.push(&[title, description]));
        self.skus.push(Sku {
            // These fit: merchant ids are at most MERCHANTS_MAX (and this one exists), the
            // texts' lengths were checked above, and the arena's positions with `has_room`.
            merchant: u32::try_from(merchant.0).unwrap_or(0),
            texts_at,
            title_len: u8::try_from(title.len()).unwrap_or(0),
            description_len: u16::try_from(description.len()).unwrap_or(0),
            price,
            currency,
            available: initial_stock,
            reserved: 0,
            sold: 0,
            received: initial_stock,
            campaigns: ThinVec::new(),
            warehouse_slot,
        });
        Ok(Outcome::SkuCreated { sku: SkuId::from_index(self.skus.len() - 1), initial_stock })
    }

    /// Edits a SKU's texts or price. New texts are appended to the arena (texts already there
    /// never move) and the SKU points at them; the old bytes stay, counted against the arena's
    /// bound like any text stored. A price may not drop below the flash price of a campaign of
    /// this SKU that has not ended, which would make the "sale" dearer than the shelf.
    pub(crate) fn update_sku(
        &mut self,
        actor: Actor,
        now: Millis,
        edit: &SkuEdit,
    ) -> Result<Outcome, CoreError> {
        let SkuEdit { sku: sku_id, ref title, ref description, price } = *edit;
        let sku = self.sku(sku_id)?;
        if !actor.may_manage_merchant(sku.merchant()) {
            return Err(CoreError::Forbidden("edit another merchant's SKU"));
        }
        if title.is_none() && description.is_none() && price.is_none() {
            return Err(out_of_bounds("edit", "give a title, a description or a price"));
        }
        if let Some(title) = title {
            Self::check_name("title", title, NAME_BYTES_MAX)?;
        }
        if description.as_ref().is_some_and(|d| d.len() > DESCRIPTION_BYTES_MAX) {
            return Err(out_of_bounds("description", "too long"));
        }
        if let Some(price) = price {
            Self::check_positive_amount(price)?;
            let undercut = sku
                .campaigns
                .iter()
                .filter_map(|c| self.campaign(*c).ok())
                .any(|c| !c.is_over(now) && c.flash_price > price);
            if undercut {
                return Err(out_of_bounds(
                    "price",
                    "must not be below the flash price of a campaign not ended",
                ));
            }
        }
        let texts = (title.is_some() || description.is_some()).then(|| {
            let title = title.as_deref().unwrap_or_else(|| self.sku_title(sku)).to_owned();
            let description = description.as_deref().unwrap_or_else(|| self.sku_description(sku)).to_owned();
            (title, description)
        });
        if texts.is_some() && !self.sku_texts.has_room() {
            return Err(CoreError::Overflow("bytes of SKU texts ever stored"));
        }
        let texts_at =
            texts.as_ref().map(|(t, d)| (U40::new(self.sku_texts.push(&[t, d])), t.len(), d.len()));
        let sku = &mut self.skus[sku_id.index().unwrap_or_default()];
        if let Some((at, title_len, description_len)) = texts_at {
            // Checked above against the bounds that fit these widths.
            sku.texts_at = at;
            sku.title_len = u8::try_from(title_len).unwrap_or(0);
            sku.description_len = u16::try_from(description_len).unwrap_or(0);
        }
        if let Some(price) = price {
            sku.price = price;
        }
        Ok(Outcome::SkuUpdated { sku: sku_id })
    }

    pub(crate) fn restock(
        &mut self,
        actor: Actor,
        sku_id: SkuId,
        quantity: u64,
    ) -> Result<Outcome, CoreError> {
        let sku = self.sku(sku_id)?;
        if !actor.may_manage_merchant(sku.merchant()) {
            return Err(CoreError::Forbidden("restock another merchant's SKU"));
        }
        if quantity == 0 || quantity > STOCK_QUANTITY_MAX {
            return Err(out_of_bounds("quantity", "must be between 1 and 1000000000"));
        }
        let received = sku.received.checked_add(quantity).ok_or_else(|| CoreError::Overflow("stock"))?;
        let sku = &mut self.skus[sku_id.index().unwrap_or_default()];
        sku.available += quantity; // available <= received, which did not overflow.
        sku.received = received;
        Ok(Outcome::Restocked { sku: sku_id, received })
    }
}
