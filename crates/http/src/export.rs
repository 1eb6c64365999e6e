//! CSV exports for the people who run a store: a merchant's orders, one row per line, as a
//! spreadsheet opens them. Written with the `csv` crate (quoting, embedded commas and newlines
//! in titles and names); money as decimal text from integer minor units, never through floats.

use crate::api::*;
use crate::error::{ApiError, ErrorBody};
use crate::views::logistics::{ListOwner, LogisticsQuery, LogisticsView, PageQuery, PAGE_ENTRIES_MAX};
use crate::views::{Query, View};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use elevens_core::{Actor, MerchantId};
use serde::Deserialize;
use utoipa::IntoParams;

/// The most orders one export holds; past it the answer carries `X-Next-After`, the cursor of
/// the next export.
pub const EXPORT_ORDERS_MAX: usize = 10_000;

/// The header naming the next export's cursor when this one stopped at [`EXPORT_ORDERS_MAX`].
pub const NEXT_AFTER_HEADER: &str = "x-next-after";

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Only orders of this status (`paid`, `shipped`, ...).
    pub status: Option<String>,
    /// Orders with ids after this one (a previous export's `X-Next-After`).
    pub after: Option<u64>,
}

/// The columns, in order.
const COLUMNS: [&str; 13] = [
    "order_id",
    "placed_at",
    "status",
    "buyer_id",
    "buyer_name",
    "sku_id",
    "title",
    "quantity",
    "unit_price",
    "line_amount",
    "order_total",
    "refunded",
    "currency",
];

/// `minor` (fen, cents) as decimal text with two places: 12345 → "123.45".
fn decimal(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// Milliseconds since the epoch as RFC 3339 in UTC.
fn rfc3339(ms: u64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A merchant's orders as CSV, one row per line, oldest first (its merchant or the operator).
#[utoipa::path(get, path = "/v1/merchants/{id}/orders.csv", tag = "logistics", params(ExportParams),
    responses((status = 200, content_type = "text/csv", body = String), (status = "4XX", body = ErrorBody)))]
pub async fn merchant_orders_csv(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
    AppQuery(params): AppQuery<ExportParams>,
) -> Result<Response, ApiError> {
    if !matches!(actor, Actor::Admin) && actor != Actor::Merchant(MerchantId(id)) {
        return Err(ApiError::forbidden_key());
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(COLUMNS).map_err(csv_error)?;
    let (mut after, mut orders) = (params.after.unwrap_or(0), 0);
    let next = loop {
        let query = PageQuery {
            owner: ListOwner::Merchant(MerchantId(id)),
            status: params.status.clone(),
            warehouse: None,
            after,
            limit: PAGE_ENTRIES_MAX.min(EXPORT_ORDERS_MAX - orders),
        };
        let View::Logistics(LogisticsView::Orders(page)) =
            read_view(&app, actor, Query::Logistics(LogisticsQuery::Orders(query))).await?
        else {
            return Err(ApiError::internal("an order listing answered with another view"));
        };
        for o in &page.items {
            for line in &o.lines {
                let amount = line.unit_price.saturating_mul(u64::from(line.quantity));
                out.write_record([
                    o.order_id.to_string(),
                    rfc3339(o.placed_at),
                    o.status.to_owned(),
                    o.buyer_id.to_string(),
                    o.buyer_name.clone().unwrap_or_default(),
                    line.sku_id.to_string(),
                    line.title.clone().unwrap_or_default(),
                    line.quantity.to_string(),
                    decimal(line.unit_price),
                    decimal(amount),
                    decimal(o.total),
                    decimal(o.refunded),
                    o.currency.0.to_string(),
                ])
                .map_err(csv_error)?;
            }
        }
        orders += page.items.len();
        match page.next_after {
            Some(n) if orders < EXPORT_ORDERS_MAX => after = n,
            next => break next,
        }
    };
    let body = out.into_inner().map_err(|e| csv_error(e.into_error().into()))?;
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response();
    let disposition = format!("attachment; filename=\"orders-merchant-{id}.csv\"");
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    }
    if let Some(n) = next {
        response.headers_mut().insert(NEXT_AFTER_HEADER, HeaderValue::from(n));
    }
    Ok(response)
}

fn csv_error(error: csv::Error) -> ApiError {
    ApiError::internal(format!("writing CSV: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_decimal_text_from_integers() {
        assert_eq!(decimal(0), "0.00");
        assert_eq!(decimal(5), "0.05");
        assert_eq!(decimal(12_345), "123.45");
        assert_eq!(decimal(u64::MAX), "184467440737095516.15");
    }

    #[test]
    fn times_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_762_790_400_123), "2025-11-10T16:00:00.123Z");
    }
}
