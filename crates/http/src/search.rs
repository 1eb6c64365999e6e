//! Product search over HTTP: words, filters (merchant, price, category subtree, attribute
//! values, stock), sorting (relevance, price, sales) and facet counts. The index answers the
//! words and every filter but stock; stock and sales change with every order, so they are read
//! from the state for the candidates, and are exact.

use crate::api::{read_view, AppState, Auth};
use crate::error::{ApiError, ErrorBody};
use crate::views::{Query, SkuView, View};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use elevens_search::{Sort, CANDIDATES_MAX};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The most a search answers.
pub const SEARCH_LIMIT_MAX: usize = 100;
/// The longest query text, in bytes.
pub const SEARCH_TEXT_BYTES_MAX: usize = 200;
/// The longest query string, in bytes (words, filters and all).
pub const SEARCH_QUERY_BYTES_MAX: usize = 4_096;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words to find in titles and descriptions (all of them); empty: every SKU.
    #[serde(default)]
    pub q: String,
    #[serde(default, deserialize_with = "present_number")]
    pub merchant_id: Option<u64>,
    /// Minor units, inclusive.
    #[serde(default, deserialize_with = "present_number")]
    pub min_price: Option<u64>,
    #[serde(default, deserialize_with = "present_number")]
    pub max_price: Option<u64>,
    /// Only variants of products in this category or any under it.
    #[serde(default, deserialize_with = "present_number")]
    pub category_id: Option<u64>,
    /// `name:value`, repeatable (`attribute=brand:Apple&attribute=colour:red`): values of one
    /// name are alternatives, every name is required. At most 16.
    #[serde(default)]
    #[param(style = Form, explode)]
    pub attribute: Vec<String>,
    /// Only SKUs with units available now.
    #[serde(default)]
    pub in_stock: bool,
    /// `relevance` (default), `price_asc`, `price_desc` or `sales` (units sold).
    pub sort: Option<String>,
    /// Count facets over the matches (categories, merchants, attribute values, price range).
    #[serde(default)]
    pub facets: bool,
    /// At most 100; default 20.
    #[serde(default, deserialize_with = "present_number")]
    pub limit: Option<usize>,
}

/// A number given in the query: absent is `None`, but given empty (`min_price=`) is refused,
/// where the form decoder alone would read it as absent and drop the filter in silence.
fn present_number<'de, D, N>(d: D) -> Result<Option<N>, D::Error>
where
    D: serde::Deserializer<'de>,
    N: std::str::FromStr,
    N::Err: std::fmt::Display,
{
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    pub score: f32,
    pub sku: SkuView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    pub hits: Vec<SearchHit>,
    /// The SKUs the words and the index's filters match (before the stock filter); absent for
    /// a words-only search by relevance without facets, which stops early rather than count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facets: Option<FacetsView>,
}

/// Counts of matching SKUs, the most frequent first, each list at most 20 long.
#[derive(Debug, Serialize, ToSchema)]
pub struct FacetsView {
    /// One level under `category_id` (the top level without it), each with its subtree's SKUs.
    pub categories: Vec<CategoryCount>,
    pub merchants: Vec<MerchantCount>,
    pub attributes: Vec<AttributeFacet>,
    /// The lowest and highest price among the matches, minor units.
    pub min_price: Option<u64>,
    pub max_price: Option<u64>,
    /// The matches counted: all of them, or the first 200,000 (then `matched` is larger).
    pub counted: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryCount {
    pub category_id: u64,
    pub name: String,
    pub count: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantCount {
    pub merchant_id: u64,
    pub count: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttributeFacet {
    pub name: String,
    pub values: Vec<ValueCount>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ValueCount {
    pub value: String,
    pub count: u64,
}

/// How the hits are ordered: by the index, or by units sold among the candidates.
enum Order {
    Index(Sort),
    Sales,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

/// The query string, read with repeated keys (`attribute=…&attribute=…`).
fn params(raw: Option<String>) -> Result<SearchParams, ApiError> {
    let raw = raw.unwrap_or_default();
    if raw.len() > SEARCH_QUERY_BYTES_MAX {
        return Err(invalid("a search's query string is at most 4,096 bytes"));
    }
    serde_html_form::from_str(&raw).map_err(|e| invalid(format!("the query string: {e}")))
}

/// Product search (tantivy, BM25 over titles and descriptions, Chinese segmented), filtered by
/// merchant, price, category (with its subtree), attribute values and stock, sorted by
/// relevance, price or sales, with facet counts if asked. New SKUs are found within a second.
#[utoipa::path(get, path = "/v1/search", tag = "catalogue", params(SearchParams),
    responses((status = 200, body = SearchResponse), (status = "4XX", body = ErrorBody)))]
pub async fn search(
    State(app): State<AppState>,
    Auth(actor): Auth,
    RawQuery(raw): RawQuery,
) -> Result<Json<SearchResponse>, ApiError> {
    let params = params(raw)?;
    let order = match params.sort.as_deref() {
        None | Some("relevance") => Order::Index(Sort::Relevance),
        Some("price_asc") => Order::Index(Sort::PriceAscending),
        Some("price_desc") => Order::Index(Sort::PriceDescending),
        Some("sales") => Order::Sales,
        Some(_) => return Err(invalid("sort is relevance, price_asc, price_desc or sales")),
    };
    if params.q.len() > SEARCH_TEXT_BYTES_MAX {
        return Err(invalid("a search is at most 200 bytes"));
    }
    if params.attribute.len() > elevens_search::ATTRIBUTE_FILTERS_MAX {
        return Err(invalid("at most 16 attribute filters"));
    }
    let attributes = (params.attribute.iter())
        .map(|a| {
            a.split_once(':')
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .ok_or_else(|| invalid("an attribute filter is name:value"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let limit = params.limit.unwrap_or(20).clamp(1, SEARCH_LIMIT_MAX);
    // Filtering by stock or sorting by sales happens after the index: take more candidates.
    let by_sales = matches!(order, Order::Sales);
    let candidates = if params.in_stock || by_sales { CANDIDATES_MAX } else { limit };
    let query = elevens_search::SearchQuery {
        text: params.q,
        merchant: params.merchant_id,
        min_price: params.min_price,
        max_price: params.max_price,
        category: params.category_id,
        attributes,
        sort: match order {
            Order::Index(sort) => sort,
            Order::Sales => Sort::Relevance,
        },
        facets: params.facets,
        limit: candidates,
    };
    let engine = app.engine.clone();
    let found = tokio::task::spawn_blocking(move || engine.search.search(&query))
        .await
        .map_err(|_| ApiError::shutting_down())?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "search_failed", e.to_string()))?;
    let ids = found.hits.iter().map(|h| elevens_core::SkuId(h.sku)).collect();
    let View::Skus(list) = read_view(&app, actor, Query::Skus(ids)).await? else {
        return Err(ApiError::shutting_down());
    };
    // The views come back in the hits' order; a SKU the reader may not see is left out.
    let scores: std::collections::HashMap<u64, f32> = found.hits.iter().map(|h| (h.sku, h.score)).collect();
    let mut hits: Vec<SearchHit> = list
        .skus
        .into_iter()
        .filter(|sku| !params.in_stock || sku.available > 0)
        .map(|sku| SearchHit { score: scores.get(&sku.sku_id).copied().unwrap_or(0.0), sku })
        .collect();
    if by_sales {
        hits.sort_by(|a, b| b.sku.sold.cmp(&a.sku.sold).then(a.sku.sku_id.cmp(&b.sku.sku_id)));
    }
    hits.truncate(limit);
    Ok(Json(SearchResponse { hits, matched: found.matched, facets: found.facets.map(facets_view) }))
}

fn facets_view(f: elevens_search::Facets) -> FacetsView {
    FacetsView {
        categories: (f.categories.into_iter())
            .map(|(category_id, name, count)| CategoryCount { category_id, name, count })
            .collect(),
        merchants: f
            .merchants
            .into_iter()
            .map(|(merchant_id, count)| MerchantCount { merchant_id, count })
            .collect(),
        attributes: (f.attributes.into_iter())
            .map(|(name, values)| AttributeFacet {
                name,
                values: values.into_iter().map(|(value, count)| ValueCount { value, count }).collect(),
            })
            .collect(),
        min_price: f.price.map(|(lo, _)| lo),
        max_price: f.price.map(|(_, hi)| hi),
        counted: f.counted,
    }
}
