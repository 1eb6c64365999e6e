//! CSV for the people who run a store, as a spreadsheet opens and saves it: a merchant's orders
//! out (one row per line), its catalogue in (one SKU per row, every row checked before any is
//! created, each error naming its line and field). Read and written with the `csv` crate
//! (quoting, embedded commas and newlines); money as decimal text, parsed to and printed from
//! integer minor units, never through floats.

use crate::api::*;
use crate::engine::{Item, ReplyWith};
use crate::error::{ApiError, ErrorBody};
use crate::fingerprint::{idempotency, Defaulted};
use crate::views::logistics::{ListOwner, LogisticsQuery, LogisticsView, PAGE_ENTRIES_MAX};
use crate::views::{Query, View};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use elevens_core::{Actor, Amount, Command, MerchantId, NewSku};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

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
        let page = crate::logistics::PageParams {
            status: params.status.clone(),
            after: Some(after),
            limit: Some(PAGE_ENTRIES_MAX.min(EXPORT_ORDERS_MAX - orders)),
            ..Default::default()
        };
        let owner = ListOwner::Merchant(MerchantId(id));
        let query = crate::logistics::page_query(&app, owner, crate::logistics::List::Orders, page).await?;
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

/// The most rows one catalogue import takes.
pub const IMPORT_ROWS_MAX: usize = 1_000;
/// The most row errors one refused import lists (the first ones, by line).
pub const IMPORT_ERRORS_LISTED_MAX: usize = 100;

/// The columns a catalogue import reads, by header name (others are refused, order is free).
const IMPORT_COLUMNS: [&str; 5] = ["title", "description", "price", "currency", "stock"];

/// What was wrong with a row: its line in the file (the header is line 1) and its field.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowError {
    pub line: u64,
    pub field: String,
    pub message: String,
}

/// A row's result once submitted: the SKU created, or the engine's refusal.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowResult {
    pub line: u64,
    pub sku_id: Option<u64>,
    pub code: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportAnswer {
    pub created: usize,
    pub refused: usize,
    pub rows: Vec<RowResult>,
}

/// "12.34" (at most two decimals) as minor units; `None` for anything else.
fn parse_decimal(text: &str) -> Option<u64> {
    let text = text.trim();
    let (units, cents) = text.split_once('.').unwrap_or((text, "0"));
    if units.is_empty()
        || !(1..=2).contains(&cents.len())
        || !units.bytes().chain(cents.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let cents: u64 = format!("{cents:0<2}").parse().ok()?;
    units.parse::<u64>().ok()?.checked_mul(100)?.checked_add(cents)
}

/// The rows of `body` as new SKUs of `merchant`, or every row error (at most
/// [`IMPORT_ERRORS_LISTED_MAX`]).
fn parse_catalogue(merchant: MerchantId, body: &str) -> Result<Vec<(u64, NewSku)>, Vec<RowError>> {
    let error = |line: u64, field: &str, message: String| RowError { line, field: field.into(), message };
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(body.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(vec![error(1, "header", format!("not CSV: {e}"))]),
    };
    let mut errors = Vec::new();
    for name in headers.iter().filter(|n| !IMPORT_COLUMNS.contains(n)) {
        errors.push(error(1, name, format!("unknown column; the columns are {}", IMPORT_COLUMNS.join(", "))));
    }
    for name in ["title", "price", "currency"].iter().filter(|n| !headers.iter().any(|h| h == **n)) {
        errors.push(error(1, name, "missing column".into()));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let column = |name: &str| headers.iter().position(|h| h == name);
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i as u64 + 2;
        if rows.len() + errors.len() >= IMPORT_ROWS_MAX {
            errors.push(error(line, "rows", format!("at most {IMPORT_ROWS_MAX} rows per import")));
            break;
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(error(line, "row", format!("not a CSV row: {e}")));
                continue;
            }
        };
        let field = |name: &str| column(name).and_then(|c| record.get(c)).unwrap_or("");
        let before = errors.len();
        let title = field("title");
        if title.is_empty() || title.len() > elevens_core::limits::NAME_BYTES_MAX {
            errors.push(error(line, "title", "1 to 200 bytes".into()));
        }
        let description = field("description");
        if description.len() > elevens_core::limits::DESCRIPTION_BYTES_MAX {
            errors.push(error(line, "description", "at most 4,000 bytes".into()));
        }
        let price = parse_decimal(field("price")).filter(|&p| p > 0 && p <= elevens_core::limits::AMOUNT_MAX);
        if price.is_none() {
            errors.push(error(line, "price", format!("an amount such as 12.34, not {:?}", field("price"))));
        }
        let currency = elevens_core::Currency::parse(field("currency"));
        if currency.is_none() {
            errors.push(error(
                line,
                "currency",
                format!("an ISO 4217 code such as CNY, not {:?}", field("currency")),
            ));
        }
        let stock = match field("stock") {
            "" => Some(0),
            text => text.parse::<u64>().ok().filter(|&s| s <= elevens_core::limits::STOCK_QUANTITY_MAX),
        };
        if stock.is_none() {
            errors.push(error(line, "stock", format!("a whole number of units, not {:?}", field("stock"))));
        }
        if let (true, Some(price), Some(currency), Some(stock)) =
            (errors.len() == before, price, currency, stock)
        {
            let sku = NewSku {
                merchant,
                title: title.to_owned(),
                description: description.to_owned(),
                price: Amount(price),
                currency,
                initial_stock: stock,
                warehouse: None,
            };
            rows.push((line, sku));
        }
    }
    errors.truncate(IMPORT_ERRORS_LISTED_MAX);
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// Import a catalogue from CSV (`text/csv`): one SKU per row, columns `title`, `price` (12.34),
/// `currency` and optionally `description` and `stock`. Every row is checked first: any error
/// refuses the whole file (422, each error with its line and field) and creates nothing. Then
/// each row is one SKU created under the request's idempotency key and its line, so the same
/// file sent again with the same key creates nothing twice. Its merchant or the operator.
#[utoipa::path(post, path = "/v1/merchants/{id}/skus.csv", tag = "catalogue",
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportAnswer), (status = "4XX", body = ErrorBody)))]
pub async fn import_catalogue(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    body: String,
) -> Result<Json<ImportAnswer>, ApiError> {
    if !matches!(actor, Actor::Admin) && actor != Actor::Merchant(MerchantId(id)) {
        return Err(ApiError::forbidden_key());
    }
    let rows = parse_catalogue(MerchantId(id), &body).map_err(|errors| {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_csv",
            format!("{} rows or columns are wrong; nothing was imported", errors.len()),
        );
        e.body.details = Some(serde_json::json!({ "rows": errors }));
        e
    })?;
    let lines: Vec<u64> = rows.iter().map(|(line, _)| *line).collect();
    let items = rows
        .into_iter()
        .map(|(line, sku)| {
            let command = Command::CreateSku(Box::new(sku));
            let idempotency =
                Some(idempotency(actor, &format!("{}#{line}", key.0), &command, Defaulted::NONE));
            Item::Write { actor, idempotency, command, reply: ReplyWith::View }
        })
        .collect();
    let results = submit(&app, items, None).await?;
    let rows: Vec<RowResult> = lines
        .into_iter()
        .zip(results)
        .map(|(line, result)| match result.and_then(view_of) {
            Ok(View::Sku(s)) => RowResult { line, sku_id: Some(s.sku_id), code: None, message: None },
            Ok(_) => RowResult { line, sku_id: None, code: Some("internal".into()), message: None },
            Err(e) => RowResult {
                line,
                sku_id: None,
                code: Some(e.body.code.to_string()),
                message: Some(e.body.message),
            },
        })
        .collect();
    let created = rows.iter().filter(|r| r.sku_id.is_some()).count();
    Ok(Json(ImportAnswer { created, refused: rows.len() - created, rows }))
}

fn csv_error(error: csv::Error) -> ApiError {
    ApiError::internal(format!("writing CSV: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_to_minor_units_exactly_or_not_at_all() {
        assert_eq!(parse_decimal("12.34"), Some(1_234));
        assert_eq!(parse_decimal("12.3"), Some(1_230));
        assert_eq!(parse_decimal("12"), Some(1_200));
        assert_eq!(parse_decimal(" 0.05 "), Some(5));
        for bad in ["", ".5", "1.234", "1,000", "-1", "1e3", "12.", "abc", "99999999999999999999"] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_catalogue_with_a_bad_row_names_each_error_by_line_and_field_and_yields_nothing() {
        let good = "title,price,currency,stock\n\"Tea, green\",12.50,CNY,3\nCup,9,CNY,\n";
        let rows = parse_catalogue(MerchantId(1), good).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].0, rows[0].1.title.as_str(), rows[0].1.price, rows[0].1.initial_stock),
            (2, "Tea, green", Amount(1_250), 3)
        );
        assert_eq!((rows[1].0, rows[1].1.initial_stock), (3, 0));
        let bad = "title,price,currency,stock\nTea,12.345,CNY,1\n,1,yuan,x\n";
        let errors = parse_catalogue(MerchantId(1), bad).unwrap_err();
        let found: Vec<(u64, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(found, [(2, "price"), (3, "title"), (3, "currency"), (3, "stock")]);
        let unknown = parse_catalogue(MerchantId(1), "title,colour\nTea,red\n").unwrap_err();
        let found: Vec<(u64, &str)> = unknown.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(found, [(1, "colour"), (1, "price"), (1, "currency")]);
    }

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
