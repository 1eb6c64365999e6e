//! The HTTP side of `GET /v1/me` and the lists ([`crate::views::listing`]).

use crate::api::{page_limit, read, AppPath, AppQuery, AppState, Auth};
use crate::error::{ApiError, ErrorBody};
use crate::views::listing::*;
use crate::views::Query;
use elevens_core::*;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Words to find in the name or title, ignoring case (merchants, buyers, carriers, a store's
    /// campaigns and products; 1 to 100 bytes). A page may come back short, even empty, with a
    /// cursor: follow it.
    pub q: Option<String>,
    /// Only SKUs with fewer units than this free to order (a merchant's SKUs only).
    pub stock_below: Option<u64>,
    /// The cursor: entries with ids after this one (the previous page's `next_after`).
    pub after: Option<u64>,
    /// At most 100; default 50.
    pub limit: Option<usize>,
}

fn list_query(listing: Listing, p: ListParams) -> Result<Query, ApiError> {
    let limit = page_limit(p.limit)?;
    let named = matches!(
        listing,
        Listing::Merchants
            | Listing::Buyers
            | Listing::Campaigns(_)
            | Listing::Carriers
            | Listing::Products(_)
    );
    if p.q.is_some() && !named {
        return Err(ApiError::bad_request("bad_request", "q: not a filter of this list"));
    }
    let text = crate::api::words(p.q)?;
    if p.stock_below.is_some() && !matches!(listing, Listing::Skus(_)) {
        return Err(ApiError::bad_request("bad_request", "stock_below: not a filter of this list"));
    }
    Ok(Query::List(ListQuery {
        listing,
        text,
        stock_below: p.stock_below,
        after: p.after.unwrap_or(0),
        limit,
    }))
}

/// The key that asks: its role and the ids it acts for (any key).
#[utoipa::path(get, path = "/v1/me", tag = "admin",
    responses((status = 200, body = MeView), (status = "4XX", body = ErrorBody)))]
pub async fn get_me(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
) -> crate::api::Answer {
    read(&app, actor, Query::Me).await
}

macro_rules! list_handler {
    ($name:ident, $path:literal, $tag:literal, $listing:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(get, path = $path, tag = $tag, params(ListParams),
                            responses((status = 200, body = ListPage), (status = "4XX", body = ErrorBody)))]
        pub async fn $name(
            axum::extract::State(app): axum::extract::State<AppState>,
            Auth(actor): Auth,
            AppQuery(params): AppQuery<ListParams>,
        ) -> crate::api::Answer {
            read(&app, actor, list_query($listing, params)?).await
        }
    };
    ($name:ident, $path:literal, $tag:literal, $listing:ident of merchant, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(get, path = $path, tag = $tag, params(ListParams),
                            responses((status = 200, body = ListPage), (status = "4XX", body = ErrorBody)))]
        pub async fn $name(
            axum::extract::State(app): axum::extract::State<AppState>,
            Auth(actor): Auth,
            AppPath(id): AppPath<u64>,
            AppQuery(params): AppQuery<ListParams>,
        ) -> crate::api::Answer {
            read(&app, actor, list_query(Listing::$listing(MerchantId(id)), params)?).await
        }
    };
}

list_handler!(
    list_merchants,
    "/v1/merchants",
    "wallets",
    Listing::Merchants,
    "Merchants, oldest first (admin, service)."
);
list_handler!(
    list_buyers,
    "/v1/buyers",
    "wallets",
    Listing::Buyers,
    "Buyers, oldest first (admin, service)."
);
/// API keys, oldest first, with their labels and when each was last used on this node, without
/// their secrets (admin).
#[utoipa::path(get, path = "/v1/api-keys", tag = "admin", params(ListParams),
    responses((status = 200, body = ListPage), (status = "4XX", body = ErrorBody)))]
pub async fn list_api_keys(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppQuery(params): AppQuery<ListParams>,
) -> crate::api::Answer {
    let (status, axum::Json(mut page)) = read(&app, actor, list_query(Listing::ApiKeys, params)?).await?;
    if let crate::views::View::List(list) = &mut page {
        for item in &mut list.items {
            if let crate::views::View::ApiKey(key) = item {
                key.last_used_at = app.engine.keys.last_used(key.api_key_id);
            }
        }
    }
    Ok((status, axum::Json(page)))
}
list_handler!(
    list_carriers,
    "/v1/carriers",
    "logistics",
    Listing::Carriers,
    "Carriers with their lanes, oldest first, found by name with `q` (admin, service)."
);
list_handler!(
    list_experiments,
    "/v1/experiments",
    "analytics",
    Listing::Experiments,
    "A/B experiments, oldest first (admin, service)."
);
list_handler!(merchant_skus, "/v1/merchants/{id}/skus", "catalogue", Skus of merchant, "A merchant's SKUs with their stock (the merchant, or admin).");
list_handler!(
    merchant_campaigns,
    "/v1/merchants/{id}/campaigns",
    "promotions",
    Campaigns of merchant,
    "A merchant's campaigns, with the server's time for countdowns (the merchant, or admin)."
);
list_handler!(
    merchant_warehouses,
    "/v1/merchants/{id}/warehouses",
    "logistics",
    Warehouses of merchant,
    "A merchant's warehouses with their backlogs (the merchant, or admin)."
);
list_handler!(
    merchant_products,
    "/v1/merchants/{id}/products",
    "catalogue",
    Products of merchant,
    "A merchant's products with their variant grids, oldest first (any key: the public catalogue)."
);
list_handler!(
    category_tree,
    "/v1/category-tree",
    "catalogue",
    Listing::Categories,
    "Every category of the tree with its path, oldest first (any key)."
);
