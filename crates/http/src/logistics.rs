//! The HTTP side of logistics and after-sales: warehouses, carriers, addresses, delivery
//! estimates, shipments and tracking, refunds per line, returns, service tickets, and the lists
//! a merchant works from (cursor pagination, bounded work per page).

use crate::api::{page_limit, read, write, AppJson, AppPath, AppQuery, AppState, Auth, IdempotencyKey};
use crate::error::{ApiError, ErrorBody};
use crate::views::logistics::*;
use crate::views::Query;
use axum::http::StatusCode;
use elevens_core::logistics::calendar::parse_date;
use elevens_core::logistics::*;
use elevens_core::*;
use elevens_search::owners::{Candidates, Owner, Rows};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

// ---- requests ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWarehouseRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// A region code, such as `CN-ZJ`.
    #[schema(min_length = 1, max_length = 32, pattern = "^[A-Za-z0-9_-]+$")]
    pub region: String,
    /// Parcels it dispatches per day.
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub capacity_per_day: u32,
    /// Orders paid before this local time (`HH:MM`) leave the same day; default 16:00.
    #[schema(pattern = "^[0-2][0-9]:[0-5][0-9]$")]
    pub cutoff: Option<String>,
    /// Minutes east of UTC (480 for China); default 0.
    #[schema(minimum = -840, maximum = 840)]
    pub utc_offset_minutes: Option<i16>,
    /// Weekdays without dispatch: `monday` .. `sunday`.
    #[serde(default)]
    pub closed_weekdays: Vec<String>,
    /// Dates without dispatch (`YYYY-MM-DD`).
    #[serde(default)]
    pub closed_dates: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LaneRequest {
    #[schema(min_length = 1, max_length = 32)]
    pub from: String,
    #[schema(min_length = 1, max_length = 32)]
    pub to: String,
    #[schema(maximum = 60)]
    pub p50_days: u16,
    #[schema(maximum = 60)]
    pub p90_days: u16,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCarrierRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub lanes: Vec<LaneRequest>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressRequest {
    #[schema(min_length = 1, max_length = 32)]
    pub region: String,
    #[schema(min_length = 1, max_length = 500)]
    pub address: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkuWarehouseRequest {
    pub warehouse_id: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingFeeRequest {
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// Per order, however many parcels; 0 for free shipping.
    #[schema(maximum = 1_000_000_000_u64)]
    pub fee: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackingEventRequest {
    pub shipment_id: u64,
    /// The carrier's id of the event: the same id twice is recorded once.
    #[schema(min_length = 1, max_length = 64)]
    pub event_id: String,
    /// `pre_transit`, `in_transit`, `out_for_delivery`, `attempt_fail`,
    /// `available_for_pickup`, `delivered`, `return_to_sender`, `exception` or `expired`.
    pub status: String,
    /// When it happened (ms since the epoch).
    pub occurred_at: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackingRequest {
    /// 1 to 5,000 events; refused whole if one is.
    pub events: Vec<TrackingEventRequest>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineQuantity {
    pub sku_id: u64,
    #[schema(minimum = 1, maximum = 10_000)]
    pub quantity: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundLinesRequest {
    #[serde(default)]
    pub lines: Vec<LineQuantity>,
    /// Of the order's shipping fee, in minor units.
    #[serde(default)]
    pub shipping: u64,
    #[serde(default)]
    pub restock: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnRequestBody {
    pub lines: Vec<LineQuantity>,
    /// `damaged`, `wrong_item`, `not_as_described`, `no_longer_wanted`, `not_received`, `other`.
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveReturnRequest {
    /// Put the units back on sale.
    #[serde(default)]
    pub restock: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundReturnRequest {
    /// Of the order's shipping fee, in minor units.
    #[serde(default)]
    pub shipping: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenTicketRequest {
    #[schema(min_length = 1, max_length = 500)]
    pub subject: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketStatusRequest {
    /// `open`, `pending`, `resolved` or `closed`.
    pub status: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EstimateParams {
    /// The buyer's region; without it, the dispatch day only.
    pub region: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Only entries of this status.
    pub status: Option<String>,
    /// Only shipments of this warehouse (shipments only).
    pub warehouse_id: Option<u64>,
    /// Words to find, ignoring case: an entry's or its order's id, the buyer's name, a line's
    /// title, a ticket's subject (1 to 100 bytes).
    pub q: Option<String>,
    /// Only parcels still awaiting dispatch after their booked day (shipments only).
    pub late: Option<bool>,
    /// Only tickets the store has not answered by their deadline (tickets only).
    pub overdue: Option<bool>,
    /// `oldest` first (the default) or `newest` first.
    #[param(inline)]
    pub sort: Option<Sort>,
    /// The cursor: the entries after this one in the list's order (the previous page's
    /// `next_after`; for parcels, an order's id: a page holds whole orders' parcels). A page may
    /// come back short, even empty, with a cursor: it looked at 10,000 entries; follow it.
    pub after: Option<u64>,
    /// At most 100; default 50.
    pub limit: Option<usize>,
}

/// A list's order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    #[default]
    Oldest,
    Newest,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DaysParams {
    /// The first day (`YYYY-MM-DD`); default: the warehouse's first booked day.
    pub from: Option<String>,
    /// At most 62 days; default 14.
    pub days: Option<usize>,
}

fn weekday_bit(name: &str) -> Option<u8> {
    ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
        .iter()
        .position(|d| *d == name)
        .map(|i| 1 << i)
}

fn parse_cutoff(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    match (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?) {
        (h @ 0..=23, m @ 0..=59) => Some(h * 60 + m),
        (24, 0) => Some(24 * 60),
        _ => None,
    }
}

fn lines(requested: Vec<LineQuantity>) -> Vec<LineRequest> {
    requested.into_iter().map(|l| LineRequest { sku: SkuId(l.sku_id), quantity: l.quantity }).collect()
}

/// A carrier's event id as the 64-bit key the state machine keeps (scoped to the shipment).
fn event_key(shipment: u64, event_id: &str) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&shipment.to_le_bytes());
    hasher.update(event_id.as_bytes());
    let mut key = [0u8; 8];
    key.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    u64::from_le_bytes(key)
}

impl CreateWarehouseRequest {
    fn command(self, merchant: u64) -> Result<Command, ApiError> {
        let cutoff_minute = match &self.cutoff {
            None => 16 * 60,
            Some(t) => parse_cutoff(t).ok_or_else(|| {
                ApiError::bad_request("invalid_cutoff", "a cut-off is HH:MM, 00:00 to 24:00")
            })?,
        };
        let mut closed_weekdays = 0;
        for day in &self.closed_weekdays {
            closed_weekdays |= weekday_bit(day)
                .ok_or_else(|| ApiError::bad_request("invalid_weekday", "a weekday is monday .. sunday"))?;
        }
        let closed_days = self
            .closed_dates
            .iter()
            .map(|d| {
                parse_date(d).ok_or_else(|| ApiError::bad_request("invalid_date", "a date is YYYY-MM-DD"))
            })
            .collect::<Result<Vec<u32>, ApiError>>()?;
        Ok(Command::CreateWarehouse(Box::new(NewWarehouse {
            merchant: MerchantId(merchant),
            name: self.name,
            region: self.region,
            capacity_per_day: self.capacity_per_day,
            cutoff_minute,
            utc_offset_minutes: self.utc_offset_minutes.unwrap_or(0),
            closed_weekdays,
            closed_days,
        })))
    }
}

impl TrackingRequest {
    fn command(self) -> Result<Command, ApiError> {
        let events = self
            .events
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let status = TrackingStatus::parse(&e.status).ok_or_else(|| {
                    ApiError::bad_request("invalid_status", format!("event {i}: unknown tracking status"))
                })?;
                if e.event_id.is_empty() || e.event_id.len() > 64 {
                    return Err(ApiError::out_of_bounds(
                        "event_id",
                        format!("event {i}: event_id is 1 to 64 bytes"),
                    ));
                }
                Ok(NewTrackingEvent {
                    shipment: ShipmentId(e.shipment_id),
                    key: event_key(e.shipment_id, &e.event_id),
                    status,
                    occurred_at: Millis(e.occurred_at),
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok(Command::RecordTracking { events })
    }
}

// ---- handlers ----

type Answer = crate::api::Answer;
const CREATED: StatusCode = StatusCode::CREATED;
const OK: StatusCode = StatusCode::OK;

async fn lq(app: &AppState, actor: Actor, q: LogisticsQuery) -> Answer {
    read(app, actor, Query::Logistics(q)).await
}

/// An owner's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum List {
    Orders,
    Shipments,
    Returns,
    Tickets,
}

impl List {
    /// Where its candidates come from: a parcel's are its order's.
    fn rows(self) -> Rows {
        match self {
            List::Orders | List::Shipments => Rows::Orders,
            List::Returns => Rows::Returns,
            List::Tickets => Rows::Tickets,
        }
    }
}

/// A list's page: its filter checked, its candidates taken from the owners index once the
/// index holds every write made durable before this request.
pub(crate) async fn page_query(
    app: &AppState,
    owner: ListOwner,
    list: List,
    p: PageParams,
) -> Result<PageQuery, ApiError> {
    let limit = page_limit(p.limit)?;
    let only = |set: bool, param: &str, of: List| {
        if set && list != of {
            return Err(ApiError::bad_request("bad_request", format!("{param}: not a filter of this list")));
        }
        Ok(())
    };
    only(p.warehouse_id.is_some(), "warehouse_id", List::Shipments)?;
    only(p.late.is_some(), "late", List::Shipments)?;
    only(p.overdue.is_some(), "overdue", List::Tickets)?;
    let text = crate::api::words(p.q)?;
    let index_owner = match owner {
        ListOwner::Merchant(m) => Owner::Merchant(m.0),
        ListOwner::Buyer(b) => Owner::Buyer(b.0),
    };
    app.engine.read_models_caught_up().await;
    let newest = p.sort == Some(Sort::Newest);
    let Candidates { ids, more } = app.engine.owners.read().page(
        index_owner,
        list.rows(),
        p.after,
        newest,
        crate::views::owned::CANDIDATES_MAX,
    );
    Ok(PageQuery {
        owner,
        filter: crate::views::owned::Filter {
            status: p.status,
            warehouse: p.warehouse_id.map(WarehouseId),
            text,
            late: p.late == Some(true),
            overdue: p.overdue == Some(true),
        },
        candidates: ids,
        more,
        newest_first: newest,
        limit,
    })
}

/// Logistics figures for the big screen: on-time rates, re-promises, tickets, backlogs.
#[utoipa::path(get, path = "/v1/logistics/stats", tag = "logistics",
    responses((status = 200, body = LogisticsStatsView), (status = "4XX", body = ErrorBody)))]
pub async fn get_stats(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
) -> Answer {
    lq(&app, actor, LogisticsQuery::Stats).await
}

/// Create a warehouse (the merchant, or admin).
#[utoipa::path(post, path = "/v1/merchants/{id}/warehouses", tag = "logistics", request_body = CreateWarehouseRequest,
    responses((status = 201, body = WarehouseView), (status = "4XX", body = ErrorBody)))]
pub async fn create_warehouse(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<CreateWarehouseRequest>,
) -> Answer {
    write(&app, actor, &key, request.command(id)?, CREATED).await
}

/// A warehouse with its backlog (its merchant, or admin).
#[utoipa::path(get, path = "/v1/warehouses/{id}", tag = "logistics",
    responses((status = 200, body = WarehouseView), (status = "4XX", body = ErrorBody)))]
pub async fn get_warehouse(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    lq(&app, actor, LogisticsQuery::Warehouse(WarehouseId(id))).await
}

/// Parcels booked, dispatched and rolled over per day, against capacity.
#[utoipa::path(get, path = "/v1/warehouses/{id}/days", tag = "logistics", params(DaysParams),
    responses((status = 200, body = DaysView), (status = "4XX", body = ErrorBody)))]
pub async fn get_warehouse_days(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
    AppQuery(params): AppQuery<DaysParams>,
) -> Answer {
    let from = params
        .from
        .map(|d| parse_date(&d).ok_or_else(|| ApiError::bad_request("invalid_date", "a date is YYYY-MM-DD")))
        .transpose()?;
    let days = params.days.unwrap_or(14);
    if days == 0 || days > DAYS_PER_PAGE_MAX {
        return Err(ApiError::out_of_bounds("days", "days: 1 to 62"));
    }
    lq(&app, actor, LogisticsQuery::Days { warehouse: WarehouseId(id), from, days }).await
}

/// Create a carrier with its lanes and transit times (admin).
#[utoipa::path(post, path = "/v1/carriers", tag = "logistics", request_body = CreateCarrierRequest,
    responses((status = 201, body = CarrierView), (status = "4XX", body = ErrorBody)))]
pub async fn create_carrier(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CreateCarrierRequest>,
) -> Answer {
    let lanes = request
        .lanes
        .into_iter()
        .map(|l| NewLane { from: l.from, to: l.to, p50_days: l.p50_days, p90_days: l.p90_days })
        .collect();
    write(
        &app,
        actor,
        &key,
        Command::CreateCarrier(Box::new(NewCarrier { name: request.name, lanes })),
        CREATED,
    )
    .await
}

/// A carrier and its lanes.
#[utoipa::path(get, path = "/v1/carriers/{id}", tag = "logistics",
    responses((status = 200, body = CarrierView), (status = "4XX", body = ErrorBody)))]
pub async fn get_carrier(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    lq(&app, actor, LogisticsQuery::Carrier(CarrierId(id))).await
}

/// Set a buyer's delivery address (the buyer, service or admin).
#[utoipa::path(put, path = "/v1/buyers/{id}/address", tag = "logistics", request_body = AddressRequest,
    responses((status = 200, body = ReceiptView), (status = "4XX", body = ErrorBody)))]
pub async fn set_address(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<AddressRequest>,
) -> Answer {
    let command = Command::SetAddress { buyer: BuyerId(id), region: request.region, text: request.address };
    write(&app, actor, &key, command, OK).await
}

/// An order's returns and tickets, oldest first (whoever may read the order).
#[utoipa::path(get, path = "/v1/orders/{id}/after-sales", tag = "after-sales",
    responses((status = 200, body = crate::views::owned::AfterSalesView), (status = "4XX", body = ErrorBody)))]
pub async fn get_after_sales(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    app.engine.read_models_caught_up().await;
    let found = app.engine.owners.read().after_sales(id);
    let query = crate::views::owned::AfterSalesQuery {
        order: OrderId(id),
        returns: found.returns,
        tickets: found.tickets,
    };
    lq(&app, actor, LogisticsQuery::AfterSales(query)).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderNoteRequest {
    #[schema(min_length = 1, max_length = 1000)]
    pub body: String,
}

/// Keep a note on an order, for the store's own people: never shown to the buyer (the order's
/// merchant, or admin; at most 20 an order).
#[utoipa::path(post, path = "/v1/orders/{id}/notes", tag = "after-sales", request_body = OrderNoteRequest,
    responses((status = 201, body = crate::views::owned::OrderNoteView), (status = "4XX", body = ErrorBody)))]
pub async fn note_order(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<OrderNoteRequest>,
) -> Answer {
    write(&app, actor, &key, Command::NoteOrder { order: OrderId(id), body: request.body }, CREATED).await
}

/// Move a SKU to another of its merchant's warehouses.
#[utoipa::path(put, path = "/v1/skus/{id}/warehouse", tag = "logistics", request_body = SkuWarehouseRequest,
    responses((status = 200, body = ReceiptView), (status = "4XX", body = ErrorBody)))]
pub async fn set_sku_warehouse(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<SkuWarehouseRequest>,
) -> Answer {
    let command = Command::SetSkuWarehouse { sku: SkuId(id), warehouse: WarehouseId(request.warehouse_id) };
    write(&app, actor, &key, command, OK).await
}

/// Set the merchant's shipping fee per order in a currency.
#[utoipa::path(put, path = "/v1/merchants/{id}/shipping-fee", tag = "logistics", request_body = ShippingFeeRequest,
    responses((status = 200, body = ReceiptView), (status = "4XX", body = ErrorBody)))]
pub async fn set_shipping_fee(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<ShippingFeeRequest>,
) -> Answer {
    let currency = crate::api::currency(&request.currency)?;
    let command = Command::SetShippingFee { merchant: MerchantId(id), currency, fee: Amount(request.fee) };
    write(&app, actor, &key, command, OK).await
}

/// When a SKU would leave and arrive if paid now: the first dispatch day with room from the
/// cut-off, plus the fastest carrier's p50 and p90 transit to `region`.
#[utoipa::path(get, path = "/v1/skus/{id}/delivery-estimate", tag = "logistics", params(EstimateParams),
    responses((status = 200, body = EstimateView), (status = "4XX", body = ErrorBody)))]
pub async fn get_estimate(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
    AppQuery(params): AppQuery<EstimateParams>,
) -> Answer {
    lq(&app, actor, LogisticsQuery::Estimate { sku: SkuId(id), region: params.region }).await
}

/// A shipment with its tracking history (its buyer, merchant or carrier).
#[utoipa::path(get, path = "/v1/shipments/{id}", tag = "logistics",
    responses((status = 200, body = ShipmentView), (status = "4XX", body = ErrorBody)))]
pub async fn get_shipment(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    lq(&app, actor, LogisticsQuery::Shipment(ShipmentId(id))).await
}

/// An order's shipments.
#[utoipa::path(get, path = "/v1/orders/{id}/shipments", tag = "logistics",
    responses((status = 200, body = Page<ShipmentView>), (status = "4XX", body = ErrorBody)))]
pub async fn get_order_shipments(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    lq(&app, actor, LogisticsQuery::OrderShipments(OrderId(id))).await
}

/// Mark a shipment dispatched (its merchant).
#[utoipa::path(post, path = "/v1/shipments/{id}/dispatch", tag = "logistics",
    responses((status = 200, body = ReceiptView), (status = "4XX", body = ErrorBody)))]
pub async fn dispatch_shipment(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
) -> Answer {
    write(&app, actor, &key, Command::DispatchShipment { shipment: ShipmentId(id) }, OK).await
}

/// Cancel a shipment not yet dispatched, freeing its slot (its merchant).
#[utoipa::path(post, path = "/v1/shipments/{id}/cancel", tag = "logistics",
    responses((status = 200, body = ReceiptView), (status = "4XX", body = ErrorBody)))]
pub async fn cancel_shipment(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
) -> Answer {
    write(&app, actor, &key, Command::CancelShipment { shipment: ShipmentId(id) }, OK).await
}

/// Record carrier events, one or a feed of thousands (a carrier for the parcels it carries, a
/// merchant for its own). The same event id twice is recorded once; a late event is kept in
/// the history but never moves a parcel back.
#[utoipa::path(post, path = "/v1/tracking-events", tag = "logistics", request_body = TrackingRequest,
    responses((status = 200, body = ReceiptView), (status = "4XX", body = ErrorBody)))]
pub async fn record_tracking(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<TrackingRequest>,
) -> Answer {
    write(&app, actor, &key, request.command()?, OK).await
}

/// Refund some units of some lines and some of the shipping (the merchant, or admin).
#[utoipa::path(post, path = "/v1/orders/{id}/refunds", tag = "after-sales", request_body = RefundLinesRequest,
    responses((status = 200, body = ReceiptView), (status = "4XX", body = ErrorBody)))]
pub async fn refund_lines(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<RefundLinesRequest>,
) -> Answer {
    let command = Command::RefundLines {
        order: OrderId(id),
        lines: lines(request.lines),
        shipping: Amount(request.shipping),
        restock: request.restock,
    };
    write(&app, actor, &key, command, OK).await
}

/// Ask to return lines of an order (its buyer).
#[utoipa::path(post, path = "/v1/orders/{id}/returns", tag = "after-sales", request_body = ReturnRequestBody,
    responses((status = 201, body = ReturnView), (status = "4XX", body = ErrorBody)))]
pub async fn request_return(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<ReturnRequestBody>,
) -> Answer {
    let reason = ReturnReason::parse(&request.reason)
        .ok_or_else(|| ApiError::bad_request("invalid_reason", "not a return reason"))?;
    let command = Command::RequestReturn { order: OrderId(id), lines: lines(request.lines), reason };
    write(&app, actor, &key, command, CREATED).await
}

/// A return.
#[utoipa::path(get, path = "/v1/returns/{id}", tag = "after-sales",
    responses((status = 200, body = ReturnView), (status = "4XX", body = ErrorBody)))]
pub async fn get_return(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    lq(&app, actor, LogisticsQuery::Return(ReturnId(id))).await
}

/// Approve a return (its merchant).
#[utoipa::path(post, path = "/v1/returns/{id}/approve", tag = "after-sales",
    responses((status = 200, body = ReturnView), (status = "4XX", body = ErrorBody)))]
pub async fn approve_return(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
) -> Answer {
    write(&app, actor, &key, Command::DecideReturn { ret: ReturnId(id), approve: true }, OK).await
}

/// Reject a return (its merchant).
#[utoipa::path(post, path = "/v1/returns/{id}/reject", tag = "after-sales",
    responses((status = 200, body = ReturnView), (status = "4XX", body = ErrorBody)))]
pub async fn reject_return(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
) -> Answer {
    write(&app, actor, &key, Command::DecideReturn { ret: ReturnId(id), approve: false }, OK).await
}

/// The returned parcel arrived; receiving never refunds by itself.
#[utoipa::path(post, path = "/v1/returns/{id}/receive", tag = "after-sales", request_body = ReceiveReturnRequest,
    responses((status = 200, body = ReturnView), (status = "4XX", body = ErrorBody)))]
pub async fn receive_return(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<ReceiveReturnRequest>,
) -> Answer {
    write(&app, actor, &key, Command::ReceiveReturn { ret: ReturnId(id), restock: request.restock }, OK).await
}

/// Refund a return's lines, and some of the shipping if given.
#[utoipa::path(post, path = "/v1/returns/{id}/refund", tag = "after-sales", request_body = RefundReturnRequest,
    responses((status = 200, body = ReturnView), (status = "4XX", body = ErrorBody)))]
pub async fn refund_return(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<RefundReturnRequest>,
) -> Answer {
    write(
        &app,
        actor,
        &key,
        Command::RefundReturn { ret: ReturnId(id), shipping: Amount(request.shipping) },
        OK,
    )
    .await
}

/// Open a service ticket on an order (its buyer).
#[utoipa::path(post, path = "/v1/orders/{id}/tickets", tag = "after-sales", request_body = OpenTicketRequest,
    responses((status = 201, body = ServiceTicketView), (status = "4XX", body = ErrorBody)))]
pub async fn open_ticket(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<OpenTicketRequest>,
) -> Answer {
    write(&app, actor, &key, Command::OpenTicket { order: OrderId(id), subject: request.subject }, CREATED)
        .await
}

/// A service ticket.
#[utoipa::path(get, path = "/v1/tickets/{id}", tag = "after-sales",
    responses((status = 200, body = ServiceTicketView), (status = "4XX", body = ErrorBody)))]
pub async fn get_service_ticket(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    lq(&app, actor, LogisticsQuery::Ticket(TicketId(id))).await
}

/// Move a ticket (its merchant to any state; its buyer may close it or reopen a resolved one).
#[utoipa::path(post, path = "/v1/tickets/{id}/status", tag = "after-sales", request_body = TicketStatusRequest,
    responses((status = 200, body = ServiceTicketView), (status = "4XX", body = ErrorBody)))]
pub async fn update_ticket(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<TicketStatusRequest>,
) -> Answer {
    let status = TicketStatus::parse(&request.status)
        .ok_or_else(|| ApiError::bad_request("invalid_status", "not a ticket status"))?;
    write(&app, actor, &key, Command::UpdateTicket { ticket: TicketId(id), status }, OK).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketReplyRequest {
    /// At most 2,000 bytes.
    pub body: String,
}

/// Write in a ticket's conversation (its store, the operator, or its buyer). The store's first
/// message is its first response; a closed ticket takes no more.
#[utoipa::path(post, path = "/v1/tickets/{id}/replies", tag = "after-sales", request_body = TicketReplyRequest,
    responses((status = 201, body = ServiceTicketView), (status = "4XX", body = ErrorBody)))]
pub async fn reply_ticket(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<TicketReplyRequest>,
) -> Answer {
    write(&app, actor, &key, Command::ReplyTicket { ticket: TicketId(id), body: request.body }, CREATED).await
}

macro_rules! list_handler {
    ($name:ident, $path:literal, $owner:ident, $id:ident, $query:ident, $body:ty, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(get, path = $path, tag = "logistics", params(PageParams),
                            responses((status = 200, body = $body), (status = "4XX", body = ErrorBody)))]
        pub async fn $name(
            axum::extract::State(app): axum::extract::State<AppState>,
            Auth(actor): Auth,
            AppPath(id): AppPath<u64>,
            AppQuery(params): AppQuery<PageParams>,
        ) -> Answer {
            let page = page_query(&app, ListOwner::$owner($id(id)), List::$query, params).await?;
            lq(&app, actor, LogisticsQuery::$query(page)).await
        }
    };
}

list_handler!(
    merchant_orders,
    "/v1/merchants/{id}/orders",
    Merchant,
    MerchantId,
    Orders,
    OrderPage,
    "A merchant's orders, by status (`paid`: what to ship)."
);
list_handler!(
    merchant_shipments,
    "/v1/merchants/{id}/shipments",
    Merchant,
    MerchantId,
    Shipments,
    Page<ShipmentView>,
    "A merchant's shipments, by status and warehouse."
);
list_handler!(
    merchant_returns,
    "/v1/merchants/{id}/returns",
    Merchant,
    MerchantId,
    Returns,
    Page<ReturnView>,
    "A merchant's returns, by status."
);
list_handler!(
    merchant_tickets,
    "/v1/merchants/{id}/tickets",
    Merchant,
    MerchantId,
    Tickets,
    Page<ServiceTicketView>,
    "A merchant's service tickets, by status."
);
list_handler!(buyer_orders, "/v1/buyers/{id}/orders", Buyer, BuyerId, Orders, OrderPage, "A buyer's orders.");
list_handler!(
    buyer_shipments,
    "/v1/buyers/{id}/shipments",
    Buyer,
    BuyerId,
    Shipments,
    Page<ShipmentView>,
    "A buyer's shipments."
);
list_handler!(
    buyer_tickets,
    "/v1/buyers/{id}/tickets",
    Buyer,
    BuyerId,
    Tickets,
    Page<ServiceTicketView>,
    "A buyer's service tickets."
);

/// The logistics routes, for the router and the OpenAPI document.
pub fn routes(
    router: utoipa_axum::router::OpenApiRouter<AppState>,
) -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    router
        .routes(routes!(create_warehouse, crate::listing::merchant_warehouses))
        .routes(routes!(get_warehouse))
        .routes(routes!(get_warehouse_days))
        .routes(routes!(create_carrier, crate::listing::list_carriers))
        .routes(routes!(get_carrier))
        .routes(routes!(set_address))
        .routes(routes!(set_sku_warehouse))
        .routes(routes!(set_shipping_fee))
        .routes(routes!(get_estimate))
        .routes(routes!(get_shipment))
        .routes(routes!(get_order_shipments))
        .routes(routes!(get_after_sales))
        .routes(routes!(note_order))
        .routes(routes!(dispatch_shipment))
        .routes(routes!(cancel_shipment))
        .routes(routes!(record_tracking))
        .routes(routes!(refund_lines))
        .routes(routes!(request_return))
        .routes(routes!(get_return))
        .routes(routes!(approve_return))
        .routes(routes!(reject_return))
        .routes(routes!(receive_return))
        .routes(routes!(refund_return))
        .routes(routes!(open_ticket))
        .routes(routes!(get_service_ticket))
        .routes(routes!(update_ticket))
        .routes(routes!(reply_ticket))
        .routes(routes!(merchant_orders))
        .routes(routes!(merchant_shipments))
        .routes(routes!(merchant_returns))
        .routes(routes!(merchant_tickets))
        .routes(routes!(buyer_orders))
        .routes(routes!(buyer_shipments))
        .routes(routes!(buyer_tickets))
        .routes(routes!(get_stats))
}
