//! Who the key is (`GET /v1/me`) and the lists a person works through: merchants, buyers and API
//! keys (the operator's), a merchant's SKUs, campaigns and warehouses, experiments. Each pages by
//! id with the logistics lists' cursor (`after`, `next_after`) and bounded work per page.

use crate::logistics::{page, warehouse_view};
use crate::{self as views, View};
use elevens_core::*;
use serde::Serialize;
use utoipa::ToSchema;

/// What a list is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    Merchants,
    Buyers,
    ApiKeys,
    Skus(MerchantId),
    Campaigns(MerchantId),
    Warehouses(MerchantId),
    Experiments,
    /// A merchant's products (the public catalogue: any key).
    Products(MerchantId),
    /// The whole category tree, oldest first (any key).
    Categories,
    /// Carriers with their lanes (admin, service).
    Carriers,
}

#[derive(Clone, Debug)]
pub struct ListQuery {
    pub listing: Listing,
    /// Words to find in the name (lower-cased): merchants, buyers, campaigns.
    pub text: Option<String>,
    /// Only SKUs with fewer units than this free to order.
    pub stock_below: Option<u64>,
    pub after: u64,
    pub limit: usize,
}

/// One page of a list, oldest first; `next_after` is the next page's cursor, absent at the end.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListPage {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<View>,
    pub next_after: Option<u64>,
}

/// The key that asks: its role, the merchant, buyer or carrier it acts for, and that one's name.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    /// `admin`, `service`, `merchant`, `buyer`, `carrier` or `viewer`.
    pub role: &'static str,
    pub merchant_id: Option<u64>,
    pub buyer_id: Option<u64>,
    pub carrier_id: Option<u64>,
    /// The merchant's or buyer's name.
    pub name: Option<String>,
}

pub fn me(state: &State, actor: Actor) -> View {
    let (role, merchant_id, buyer_id, carrier_id) = views::role_of(actor);
    let name = match actor {
        Actor::Merchant(m) => state.merchant(m).ok().map(|m| m.name.clone()),
        Actor::Buyer(b) => state.buyer(b).ok().map(|b| b.name.clone()),
        _ => None,
    };
    View::Me(MeView { role, merchant_id, buyer_id, carrier_id, name })
}

fn may_list(state: &State, actor: Actor, listing: Listing) -> Result<bool, CoreError> {
    Ok(match listing {
        Listing::Merchants | Listing::Buyers | Listing::Experiments | Listing::Carriers => {
            matches!(actor, Actor::Admin | Actor::Service)
        }
        Listing::ApiKeys => actor == Actor::Admin,
        Listing::Products(m) => {
            state.merchant(m)?;
            true
        }
        Listing::Categories => true,
        Listing::Skus(m) | Listing::Campaigns(m) | Listing::Warehouses(m) => {
            state.merchant(m)?;
            actor.may_manage_merchant(m)
        }
    })
}

pub fn query(state: &State, actor: Actor, q: &ListQuery, now: Millis) -> Result<View, CoreError> {
    if !may_list(state, actor, q.listing)? {
        return Err(CoreError::Forbidden("read this list"));
    }
    let (after, limit) = (q.after, q.limit);
    let named = |name: &str| q.text.as_deref().is_none_or(|t| crate::owned::holds(name, t));
    let (items, next_after) = match q.listing {
        Listing::Merchants => page(
            after,
            limit,
            |id| state.merchant(MerchantId(id)).ok(),
            |id, m| named(&m.name).then(|| views::merchant_view(state, MerchantId(id)).ok())?,
        ),
        Listing::Buyers => page(
            after,
            limit,
            |id| state.buyer(BuyerId(id)).ok(),
            |id, b| named(&b.name).then(|| views::buyer_view(state, BuyerId(id)).ok())?,
        ),
        Listing::ApiKeys => page(
            after,
            limit,
            |id| state.api_keys().get(usize::try_from(id).ok()?.checked_sub(1)?),
            |id, key| Some(View::ApiKey(views::keys::api_key_view(id, key, key.revoked))),
        ),
        Listing::Skus(m) => page(
            after,
            limit,
            |id| state.sku(SkuId(id)).ok(),
            |id, s| {
                let low = q.stock_below.is_none_or(|below| s.available < below);
                (s.merchant() == m && low).then(|| View::Sku(views::sku_view(state, SkuId(id), s)))
            },
        ),
        Listing::Campaigns(m) => page(
            after,
            limit,
            |id| state.campaign(CampaignId(id)).ok(),
            |id, c| {
                let mine = state.sku(c.sku).is_ok_and(|s| s.merchant() == m) && named(&c.name);
                mine.then(|| views::campaign_fields(state, CampaignId(id), c, now).ok().map(View::Campaign))?
            },
        ),
        Listing::Warehouses(m) => {
            // A merchant's own warehouses, by their place in its list (a handful).
            let own = &state.merchant(m)?.warehouses;
            page(
                after,
                limit,
                |i| own.get(usize::try_from(i).ok()?.checked_sub(1)?),
                |_, &w| {
                    let wh = state.warehouse(w).ok()?;
                    let region = state.logistics().region_name(wh.region);
                    Some(View::Logistics(crate::logistics::LogisticsView::Warehouse(warehouse_view(
                        w,
                        wh,
                        region,
                        wh.awaiting,
                    ))))
                },
            )
        }
        Listing::Experiments => page(
            after,
            limit,
            |id| state.experiment(ExperimentId(id)).ok(),
            |id, e| Some(views::experiment_view(ExperimentId(id), e)),
        ),
        Listing::Products(m) => page(
            after,
            limit,
            |id| state.product(ProductId(id)).ok(),
            |id, p| {
                (p.terms.merchant == m && named(&p.terms.title))
                    .then(|| views::product_view(state, ProductId(id)).ok())?
            },
        ),
        Listing::Carriers => page(
            after,
            limit,
            |id| state.carrier(CarrierId(id)).ok(),
            |id, c| {
                let view = crate::logistics::carrier_view(state, CarrierId(id), c);
                named(&c.name).then(|| View::Logistics(crate::logistics::LogisticsView::Carrier(view)))
            },
        ),
        Listing::Categories => page(
            after,
            limit,
            |id| state.category(CategoryId(id)).ok(),
            |id, _| views::category_view(state, CategoryId(id)).ok().map(View::Category),
        ),
    };
    Ok(View::List(ListPage { items, next_after }))
}
