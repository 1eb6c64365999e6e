//! The HTTP side of logistics and after-sales: warehouses, carriers, addresses, delivery
//! estimates, shipments and tracking, refunds per line, returns, service tickets, and the lists
//! a merchant works from (cursor pagination, bounded work per page).

use crate::api::{read, write, AppJson, AppPath, AppQuery, AppState, Auth, IdempotencyKey};
use crate::error::{ApiError, ErrorBody};
use crate::views::{Query, View};
use axum::http::StatusCode;
use elevens_core::logistics::calendar::{date_string, parse_date};
use elevens_core::logistics::*;
use elevens_core::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The most entries one page of a list carries.
pub const PAGE_ENTRIES_MAX: usize = 100;
/// The most records one page looks at: a page of a rare status ends early with a cursor to go
/// on from, so no request costs the sequencer more than this.
pub const PAGE_SCAN_MAX: usize = 100_000;
/// Days one page of a warehouse's calendar shows.
pub const DAYS_PER_PAGE_MAX: usize = 62;

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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Only entries of this status.
    pub status: Option<String>,
    /// Only shipments of this warehouse.
    pub warehouse_id: Option<u64>,
    /// The cursor: entries with ids after this one (the previous page's `next_after`).
    pub after: Option<u64>,
    /// At most 100; default 50.
    pub limit: Option<usize>,
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

// ---- views ----

#[derive(Debug, Serialize, ToSchema)]
pub struct WarehouseView {
    pub warehouse_id: u64,
    pub merchant_id: u64,
    pub name: String,
    pub region: String,
    pub capacity_per_day: u32,
    /// Local time, `HH:MM`.
    pub cutoff: String,
    pub utc_offset_minutes: i16,
    pub closed_weekdays: Vec<&'static str>,
    pub closed_dates: Vec<String>,
    /// Parcels waiting to be dispatched.
    pub backlog_parcels: u64,
    /// The backlog in days of capacity, in thousandths (2,500 = two and a half days).
    pub backlog_days_milli: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DayView {
    pub date: String,
    pub capacity: u32,
    pub booked: u32,
    pub dispatched: u32,
    pub rolled_over: u32,
    pub working: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DaysView {
    pub warehouse_id: u64,
    pub days: Vec<DayView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LaneView {
    pub from: String,
    pub to: String,
    pub p50_days: u16,
    pub p90_days: u16,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CarrierView {
    pub carrier_id: u64,
    pub name: String,
    pub lanes: Vec<LaneView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EstimateView {
    pub sku_id: u64,
    pub warehouse_id: u64,
    /// The day the parcel would leave, in the warehouse's local time.
    pub dispatch_date: String,
    pub carrier_id: Option<u64>,
    pub promised_from: Option<String>,
    pub promised_by: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    /// A tracking status, or `repromised`.
    pub kind: &'static str,
    /// When it happened (ms since the epoch).
    pub at: u64,
    /// The carrier event's key (hex), for a tracking event.
    pub event_key: Option<String>,
    /// Why, for a re-promise.
    pub reason: Option<&'static str>,
    /// The new dispatch date, for a re-promise.
    pub dispatch_date: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShipmentView {
    pub shipment_id: u64,
    pub order_id: u64,
    pub warehouse_id: Option<u64>,
    pub carrier_id: Option<u64>,
    /// `awaiting_dispatch`, `dispatched`, `delivered` or `cancelled`: the merchant's side.
    pub status: &'static str,
    /// The carrier's side; none before its first event.
    pub tracking_status: Option<&'static str>,
    pub destination_region: Option<String>,
    /// The SKUs in this parcel.
    pub sku_ids: Vec<u64>,
    pub dispatch_date: Option<String>,
    pub promised_from: Option<String>,
    pub promised_by: Option<String>,
    pub created_at: u64,
    pub dispatched_at: Option<u64>,
    pub delivered_at: Option<u64>,
    pub history: Vec<HistoryView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReturnView {
    pub return_id: u64,
    pub order_id: u64,
    pub lines: Vec<ReturnLineView>,
    pub reason: &'static str,
    /// `requested`, `approved`, `rejected`, `received` or `refunded`.
    pub status: &'static str,
    pub requested_at: u64,
    pub decided_at: Option<u64>,
    pub received_at: Option<u64>,
    pub refunded_at: Option<u64>,
    pub restocked: bool,
    pub refunded: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReturnLineView {
    pub sku_id: u64,
    pub quantity: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceTicketView {
    pub ticket_id: u64,
    pub order_id: u64,
    pub merchant_id: u64,
    pub buyer_id: u64,
    pub shipment_id: Option<u64>,
    /// `buyer`, or the breach that opened it: `missed_dispatch`, `missed_delivery`,
    /// `exception`, `attempt_fail`, `return_to_sender`.
    pub kind: &'static str,
    /// `new`, `open`, `pending`, `resolved` or `closed`.
    pub status: &'static str,
    pub subject: String,
    pub opened_at: u64,
    pub first_response_due: u64,
    pub first_response_at: Option<u64>,
    pub updated_at: u64,
}

/// The answer to a logistics write that changes no entity worth showing whole.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptView {
    /// What happened: `address_set`, `sku_warehouse_set`, `shipping_fee_set`,
    /// `shipment_dispatched`, `shipment_cancelled`, `tracking_recorded`, `lines_refunded`.
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buyer_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipment_id: Option<u64>,
    /// When it happened (ms since the epoch), for a dispatch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warehouse_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<u32>,
}

impl ReceiptView {
    fn new(result: &'static str) -> ReceiptView {
        ReceiptView {
            result,
            buyer_id: None,
            shipment_id: None,
            at: None,
            sku_id: None,
            warehouse_id: None,
            merchant_id: None,
            order_id: None,
            amount: None,
            recorded: None,
            duplicates: None,
        }
    }
}

/// One page of a list; `next_after` is the cursor of the next page, absent at the end.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_after: Option<u64>,
}

/// A page of orders.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<crate::views::OrderView>,
    pub next_after: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LogisticsView {
    Warehouse(WarehouseView),
    Days(DaysView),
    Carrier(CarrierView),
    Estimate(EstimateView),
    Shipment(ShipmentView),
    Return(ReturnView),
    Ticket(ServiceTicketView),
    Receipt(ReceiptView),
    Shipments(Page<ShipmentView>),
    Returns(Page<ReturnView>),
    Tickets(Page<ServiceTicketView>),
    Orders(OrderPage),
    Stats(LogisticsStatsView),
}

/// Logistics as the big screen shows it. Rates are in thousandths (ppt), counts as they are.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogisticsStatsView {
    pub shipments: u64,
    /// Parcels dispatched so far (difference two reads for parcels per second).
    pub dispatched: u64,
    pub delivered: u64,
    /// Dispatched by their booked day, in thousandths of those dispatched.
    pub on_time_dispatch_ppt: u64,
    /// Delivered by their promised day, in thousandths of those delivered with a promise.
    pub on_time_delivery_ppt: u64,
    /// Parcels promised again, and the days their dispatch moved out in all.
    pub repromised: u64,
    pub repromised_days: u64,
    pub tracking_events: u64,
    pub tickets: u64,
    /// Tickets per 1,000 paid orders (shipments stand for them), in thousandths.
    pub tickets_per_1000_orders_milli: u64,
    pub warehouses: Vec<WarehouseView>,
    /// What the shipment tables hold, in bytes (records, histories, the order index).
    pub table_bytes: u64,
}

// ---- queries (run on the sequencer, like every read) ----

/// Whose list.
#[derive(Clone, Copy, Debug)]
pub enum ListOwner {
    Merchant(MerchantId),
    Buyer(BuyerId),
}

#[derive(Clone, Debug)]
pub struct PageQuery {
    pub owner: ListOwner,
    pub status: Option<String>,
    pub warehouse: Option<WarehouseId>,
    pub after: u64,
    pub limit: usize,
}

#[derive(Clone, Debug)]
pub enum LogisticsQuery {
    Warehouse(WarehouseId),
    Days {
        warehouse: WarehouseId,
        from: Option<u32>,
        days: usize,
    },
    Carrier(CarrierId),
    Estimate {
        sku: SkuId,
        region: Option<String>,
    },
    Shipment(ShipmentId),
    OrderShipments(OrderId),
    Return(ReturnId),
    Ticket(TicketId),
    Shipments(PageQuery),
    Returns(PageQuery),
    Tickets(PageQuery),
    Orders(PageQuery),
    /// The figures of the big screen (admin, service).
    Stats,
}

fn forbidden() -> CoreError {
    CoreError::Forbidden("read this")
}

fn owns(actor: Actor, merchant: MerchantId, buyer: BuyerId) -> bool {
    actor.may_manage_merchant(merchant) || actor.may_act_for_buyer(buyer)
}

/// A list's owner exists (404 otherwise, like every read of an id) and the actor may read it.
fn check_list(state: &State, actor: Actor, owner: ListOwner) -> Result<(), CoreError> {
    let allowed = match owner {
        ListOwner::Merchant(m) => state.merchant(m).map(|_| actor.may_manage_merchant(m))?,
        ListOwner::Buyer(b) => state.buyer(b).map(|_| actor.may_act_for_buyer(b))?,
    };
    if allowed {
        Ok(())
    } else {
        Err(forbidden())
    }
}

pub(crate) fn warehouse_view(id: WarehouseId, w: &Warehouse, region: &str, backlog: u64) -> WarehouseView {
    let names = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    WarehouseView {
        warehouse_id: id.0,
        merchant_id: w.merchant.0,
        name: w.name.clone(),
        region: region.to_string(),
        capacity_per_day: w.capacity_per_day,
        cutoff: format!("{:02}:{:02}", w.cutoff_minute / 60, w.cutoff_minute % 60),
        utc_offset_minutes: w.utc_offset_minutes,
        closed_weekdays: (0..7).filter(|i| w.closed_weekdays & (1 << i) != 0).map(|i| names[i]).collect(),
        closed_dates: w.closed_days.iter().map(|&d| date_string(d)).collect(),
        backlog_parcels: backlog,
        backlog_days_milli: backlog * 1_000 / u64::from(w.capacity_per_day.max(1)),
    }
}

fn carrier_view(state: &State, id: CarrierId, c: &Carrier) -> CarrierView {
    let l = state.logistics();
    CarrierView {
        carrier_id: id.0,
        name: c.name.clone(),
        lanes: c
            .lanes
            .iter()
            .map(|lane| LaneView {
                from: l.region_name(lane.from).to_string(),
                to: l.region_name(lane.to).to_string(),
                p50_days: lane.p50_days,
                p90_days: lane.p90_days,
            })
            .collect(),
    }
}

fn shipment_view(state: &State, id: ShipmentId, s: &Shipment) -> ShipmentView {
    let l = state.logistics();
    let lines = state.order(s.order()).map(|o| o.lines.to_vec()).unwrap_or_default();
    let history = l
        .history(s)
        .into_iter()
        .map(|entry| match entry {
            HistoryEntry::Tracking { status, key, occurred_at_s } => HistoryView {
                kind: status.name(),
                at: u64::from(occurred_at_s) * 1_000,
                event_key: Some(format!("{key:012x}")),
                reason: None,
                dispatch_date: None,
            },
            HistoryEntry::Repromised { reason, dispatch_day, at_s } => HistoryView {
                kind: "repromised",
                at: u64::from(at_s) * 1_000,
                event_key: None,
                reason: Some(reason.name()),
                dispatch_date: Some(date_string(dispatch_day)),
            },
        })
        .collect();
    let time = |s: u32| (s != 0).then_some(u64::from(s) * 1_000);
    let warehouse = (s.warehouse().0 != 0).then_some(s.warehouse().0);
    let promised = s.promised();
    ShipmentView {
        shipment_id: id.0,
        order_id: s.order().0,
        warehouse_id: warehouse,
        carrier_id: s.carrier().map(|c| c.0),
        status: s.lifecycle.name(),
        tracking_status: s.tracking.map(TrackingStatus::name),
        destination_region: Some(l.region_name(s.destination).to_string()).filter(|r| !r.is_empty()),
        sku_ids: lines.iter().enumerate().filter(|(i, _)| s.has_line(*i)).map(|(_, l)| l.sku.0).collect(),
        dispatch_date: warehouse.map(|_| date_string(s.dispatch_day)),
        promised_from: promised.map(|(from, _)| date_string(from)),
        promised_by: promised.map(|(_, by)| date_string(by)),
        created_at: u64::from(s.created_at_s) * 1_000,
        dispatched_at: time(s.dispatched_at_s),
        delivered_at: time(s.delivered_at_s),
        history,
    }
}

fn return_view(state: &State, id: ReturnId, r: &ReturnRequest) -> ReturnView {
    let lines = state.order(r.order).map(|o| o.lines.to_vec()).unwrap_or_default();
    ReturnView {
        return_id: id.0,
        order_id: r.order.0,
        lines: r
            .lines
            .iter()
            .map(|&(p, quantity)| ReturnLineView {
                sku_id: lines.get(usize::from(p)).map_or(0, |l| l.sku.0),
                quantity,
            })
            .collect(),
        reason: r.reason.name(),
        status: r.status.name(),
        requested_at: r.requested_at.0,
        decided_at: r.decided_at.map(|t| t.0),
        received_at: r.received_at.map(|t| t.0),
        refunded_at: r.refunded_at.map(|t| t.0),
        restocked: r.restocked,
        refunded: r.refunded.0,
    }
}

fn ticket_view(id: TicketId, t: &Ticket) -> ServiceTicketView {
    ServiceTicketView {
        ticket_id: id.0,
        order_id: t.order.0,
        merchant_id: t.merchant.0,
        buyer_id: t.buyer.0,
        shipment_id: t.shipment.map(|s| s.0),
        kind: t.kind.name(),
        status: t.status.name(),
        subject: t.subject.clone(),
        opened_at: t.opened_at.0,
        first_response_due: t.first_response_due.0,
        first_response_at: t.first_response_at.map(|t| t.0),
        updated_at: t.updated_at.0,
    }
}

/// Walks ids after the cursor (ids are dense, from 1), at most [`PAGE_SCAN_MAX`] of them,
/// keeping up to `limit` entries that `keep` renders; the cursor goes on from the last id
/// looked at.
pub(crate) fn page<T, E>(
    after: u64,
    limit: usize,
    get: impl Fn(u64) -> Option<E>,
    mut keep: impl FnMut(u64, E) -> Option<T>,
) -> (Vec<T>, Option<u64>) {
    let mut out = Vec::new();
    let mut id = after;
    for _ in 0..PAGE_SCAN_MAX {
        // Past the last id (or a cursor at u64::MAX): the end.
        let Some(item) = id.checked_add(1).and_then(&get) else { return (out, None) };
        id += 1;
        if let Some(view) = keep(id, item) {
            out.push(view);
            if out.len() == limit {
                break;
            }
        }
    }
    (out, id.checked_add(1).and_then(&get).is_some().then_some(id))
}

fn status_filter<T: Copy>(
    status: &Option<String>,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<Option<T>, CoreError> {
    match status {
        None => Ok(None),
        Some(s) => all
            .iter()
            .copied()
            .find(|x| name(*x) == s)
            .map(Some)
            .ok_or(CoreError::OutOfBounds { what: "status", why: "not a status of this list" }),
    }
}

pub fn query(state: &State, actor: Actor, query: &LogisticsQuery, now: Millis) -> Result<View, CoreError> {
    let l = state.logistics();
    let view = match query {
        LogisticsQuery::Warehouse(id) => {
            let w = state.warehouse(*id)?;
            if !actor.may_manage_merchant(w.merchant) {
                return Err(forbidden());
            }
            LogisticsView::Warehouse(warehouse_view(*id, w, l.region_name(w.region), w.awaiting))
        }
        LogisticsQuery::Days { warehouse, from, days } => {
            let w = state.warehouse(*warehouse)?;
            if !actor.may_manage_merchant(w.merchant) {
                return Err(forbidden());
            }
            let (today, _) = calendar::local_day_and_minute(now.0, w.utc_offset_minutes);
            let from = from.unwrap_or_else(|| w.days.keys().next().copied().unwrap_or(today).min(today));
            let calendar = w.calendar();
            let days = (from..from.saturating_add(*days as u32))
                .map(|d| {
                    let book = w.days.get(&d);
                    DayView {
                        date: date_string(d),
                        capacity: w.capacity_per_day,
                        booked: book.map_or(0, |b| b.booked),
                        dispatched: book.map_or(0, |b| b.dispatched),
                        rolled_over: book.map_or(0, |b| b.rolled_over),
                        working: calendar.is_working(d),
                    }
                })
                .collect();
            LogisticsView::Days(DaysView { warehouse_id: warehouse.0, days })
        }
        LogisticsQuery::Carrier(id) => LogisticsView::Carrier(carrier_view(state, *id, state.carrier(*id)?)),
        LogisticsQuery::Estimate { sku, region } => {
            let s = state.sku(*sku)?;
            let warehouse = state.sku_warehouse(s).ok_or(CoreError::NotFound("warehouse of this SKU"))?;
            let destination = match region {
                None => None,
                Some(r) => Some(l.region(r).ok_or(CoreError::NotFound("region"))?),
            };
            let e = state.estimate(warehouse, destination, now)?;
            LogisticsView::Estimate(EstimateView {
                sku_id: sku.0,
                warehouse_id: warehouse.0,
                dispatch_date: date_string(e.dispatch_day),
                carrier_id: e.delivery.map(|(c, _, _)| c.0),
                promised_from: e.delivery.map(|(_, from, _)| date_string(from)),
                promised_by: e.delivery.map(|(_, _, by)| date_string(by)),
            })
        }
        LogisticsQuery::Shipment(id) => {
            let s = state.shipment(*id)?;
            let o = state.order(s.order())?;
            let carrier = matches!(actor, Actor::Carrier(c) if s.carrier() == Some(c));
            if !(owns(actor, o.merchant(), o.buyer()) || carrier) {
                return Err(forbidden());
            }
            LogisticsView::Shipment(shipment_view(state, *id, &s))
        }
        LogisticsQuery::OrderShipments(id) => {
            let o = state.order(*id)?;
            if !owns(actor, o.merchant(), o.buyer()) {
                return Err(forbidden());
            }
            let items = state.order_shipments(*id).map(|(sid, s)| shipment_view(state, sid, &s)).collect();
            LogisticsView::Shipments(Page { items, next_after: None })
        }
        LogisticsQuery::Return(id) => {
            let r = state.return_request(*id)?;
            let o = state.order(r.order)?;
            if !owns(actor, o.merchant(), o.buyer()) {
                return Err(forbidden());
            }
            LogisticsView::Return(return_view(state, *id, r))
        }
        LogisticsQuery::Ticket(id) => {
            let t = state.ticket(*id)?;
            if !owns(actor, t.merchant, t.buyer) {
                return Err(forbidden());
            }
            LogisticsView::Ticket(ticket_view(*id, t))
        }
        LogisticsQuery::Shipments(p) => {
            check_list(state, actor, p.owner)?;
            let status = status_filter(&p.status, &Lifecycle::ALL, Lifecycle::name)?;
            let (items, next_after) = page(
                p.after,
                p.limit,
                |id| state.shipment(ShipmentId(id)).ok(),
                |id, s| {
                    let id = ShipmentId(id);
                    let o = state.order(s.order()).ok()?;
                    let mine = match p.owner {
                        ListOwner::Merchant(m) => o.merchant() == m,
                        ListOwner::Buyer(b) => o.buyer() == b,
                    };
                    let wanted = status.is_none_or(|st| s.lifecycle == st)
                        && p.warehouse.is_none_or(|w| s.warehouse() == w);
                    (mine && wanted).then(|| shipment_view(state, id, &s))
                },
            );
            LogisticsView::Shipments(Page { items, next_after })
        }
        LogisticsQuery::Returns(p) => {
            check_list(state, actor, p.owner)?;
            let status = status_filter(&p.status, &ReturnStatus::ALL, ReturnStatus::name)?;
            let (items, next_after) = page(
                p.after,
                p.limit,
                |id| state.return_request(ReturnId(id)).ok(),
                |id, r| {
                    let id = ReturnId(id);
                    let o = state.order(r.order).ok()?;
                    let mine = match p.owner {
                        ListOwner::Merchant(m) => o.merchant() == m,
                        ListOwner::Buyer(b) => o.buyer() == b,
                    };
                    (mine && status.is_none_or(|s| r.status == s)).then(|| return_view(state, id, r))
                },
            );
            LogisticsView::Returns(Page { items, next_after })
        }
        LogisticsQuery::Tickets(p) => {
            check_list(state, actor, p.owner)?;
            let status = status_filter(&p.status, &TicketStatus::ALL, TicketStatus::name)?;
            let (items, next_after) = page(
                p.after,
                p.limit,
                |id| state.ticket(TicketId(id)).ok(),
                |id, t| {
                    let id = TicketId(id);
                    let mine = match p.owner {
                        ListOwner::Merchant(m) => t.merchant == m,
                        ListOwner::Buyer(b) => t.buyer == b,
                    };
                    (mine && status.is_none_or(|s| t.status == s)).then(|| ticket_view(id, t))
                },
            );
            LogisticsView::Tickets(Page { items, next_after })
        }
        LogisticsQuery::Stats => {
            if !matches!(actor, Actor::Admin | Actor::Service) {
                return Err(forbidden());
            }
            let c = l.counters();
            let ppt = |part: u64, whole: u64| (part * 1_000).checked_div(whole).unwrap_or(0);
            let dispatched = c.dispatched_on_time + c.dispatched_late;
            let delivered_promised = c.delivered_on_time + c.delivered_late;
            let delivered =
                state.shipments().filter(|(_, s)| s.lifecycle == Lifecycle::Delivered).count() as u64;
            let tickets = state.tickets().len() as u64;
            LogisticsView::Stats(LogisticsStatsView {
                shipments: l.shipment_count(),
                dispatched,
                delivered,
                on_time_dispatch_ppt: ppt(c.dispatched_on_time, dispatched),
                on_time_delivery_ppt: ppt(c.delivered_on_time, delivered_promised),
                repromised: c.repromised,
                repromised_days: c.repromised_days,
                tracking_events: l.tracking_events(),
                tickets,
                tickets_per_1000_orders_milli: (tickets * 1_000_000)
                    .checked_div(l.shipment_count())
                    .unwrap_or(0),
                warehouses: state
                    .warehouses()
                    .take(PAGE_ENTRIES_MAX)
                    .map(|(id, w)| warehouse_view(id, w, l.region_name(w.region), w.awaiting))
                    .collect(),
                table_bytes: l.bytes() as u64,
            })
        }
        LogisticsQuery::Orders(p) => {
            check_list(state, actor, p.owner)?;
            let status = status_filter(&p.status, &OrderStatus::ALL, OrderStatus::name)?;
            let (ids, next_after) = page(
                p.after,
                p.limit,
                |id| state.order(OrderId(id)).ok(),
                |id, o| {
                    let id = OrderId(id);
                    let mine = match p.owner {
                        ListOwner::Merchant(m) => o.merchant() == m,
                        ListOwner::Buyer(b) => o.buyer() == b,
                    };
                    (mine && status.is_none_or(|s| o.status == s)).then_some(id)
                },
            );
            let items = ids
                .into_iter()
                .filter_map(|id| match crate::views::order_view(state, id, None) {
                    Ok(View::Order(v)) => Some(v),
                    _ => None,
                })
                .collect();
            LogisticsView::Orders(OrderPage { items, next_after })
        }
    };
    Ok(View::Logistics(view))
}

/// The answer to a logistics write, from its outcome and what never changes once written.
pub fn outcome(state: &State, outcome: &Outcome) -> Option<Result<View, CoreError>> {
    let view = (|| -> Result<LogisticsView, CoreError> {
        Ok(match *outcome {
            Outcome::WarehouseCreated { warehouse } => {
                let w = state.warehouse(warehouse)?;
                LogisticsView::Warehouse(warehouse_view(
                    warehouse,
                    w,
                    state.logistics().region_name(w.region),
                    0,
                ))
            }
            Outcome::CarrierCreated { carrier } => {
                LogisticsView::Carrier(carrier_view(state, carrier, state.carrier(carrier)?))
            }
            Outcome::AddressSet { buyer } => LogisticsView::Receipt(ReceiptView {
                buyer_id: Some(buyer.0),
                ..ReceiptView::new("address_set")
            }),
            Outcome::SkuWarehouseSet { sku, warehouse } => LogisticsView::Receipt(ReceiptView {
                sku_id: Some(sku.0),
                warehouse_id: Some(warehouse.0),
                ..ReceiptView::new("sku_warehouse_set")
            }),
            Outcome::ShippingFeeSet { merchant, fee } => LogisticsView::Receipt(ReceiptView {
                merchant_id: Some(merchant.0),
                amount: Some(fee.0),
                ..ReceiptView::new("shipping_fee_set")
            }),
            // What the command did, not the parcel as it is later (the carrier's events go on):
            // the same answer for a repeat. `GET /v1/shipments/{id}` shows it now.
            Outcome::ShipmentDispatched { shipment } => LogisticsView::Receipt(ReceiptView {
                shipment_id: Some(shipment.0),
                at: Some(u64::from(state.shipment(shipment)?.dispatched_at_s) * 1_000),
                ..ReceiptView::new("shipment_dispatched")
            }),
            Outcome::ShipmentCancelled { shipment } => LogisticsView::Receipt(ReceiptView {
                shipment_id: Some(shipment.0),
                ..ReceiptView::new("shipment_cancelled")
            }),
            Outcome::TrackingRecorded { recorded, duplicates } => LogisticsView::Receipt(ReceiptView {
                recorded: Some(recorded),
                duplicates: Some(duplicates),
                ..ReceiptView::new("tracking_recorded")
            }),
            Outcome::LinesRefunded { order, amount } => LogisticsView::Receipt(ReceiptView {
                order_id: Some(order.0),
                amount: Some(amount.0),
                ..ReceiptView::new("lines_refunded")
            }),
            Outcome::ReturnRequested { ret }
            | Outcome::ReturnDecided { ret, .. }
            | Outcome::ReturnReceived { ret }
            | Outcome::ReturnRefunded { ret, .. } => {
                let r = state.return_request(ret)?;
                let mut view = return_view(state, ret, r);
                view.status = match *outcome {
                    Outcome::ReturnRequested { .. } => ReturnStatus::Requested.name(),
                    Outcome::ReturnDecided { approved: true, .. } => ReturnStatus::Approved.name(),
                    Outcome::ReturnDecided { .. } => ReturnStatus::Rejected.name(),
                    Outcome::ReturnReceived { .. } => ReturnStatus::Received.name(),
                    _ => ReturnStatus::Refunded.name(),
                };
                // As of the command: what happened after it (set once, later) is left out.
                let step = match *outcome {
                    Outcome::ReturnRequested { .. } => 0,
                    Outcome::ReturnDecided { .. } => 1,
                    Outcome::ReturnReceived { .. } => 2,
                    _ => 3,
                };
                if step < 3 {
                    (view.refunded, view.refunded_at) = (0, None);
                }
                if step < 2 {
                    (view.restocked, view.received_at) = (false, None);
                }
                if step < 1 {
                    view.decided_at = None;
                }
                LogisticsView::Return(view)
            }
            Outcome::TicketOpened { ticket } | Outcome::TicketUpdated { ticket, .. } => {
                let t = state.ticket(ticket)?;
                let mut view = ticket_view(ticket, t);
                // As of the command. A first response is set by the merchant's first change
                // and kept: for the answer to a later change it is already there.
                match *outcome {
                    Outcome::TicketUpdated { status, at, .. } => {
                        (view.status, view.updated_at) = (status.name(), at.0);
                    }
                    _ => {
                        (view.status, view.updated_at) = (TicketStatus::New.name(), t.opened_at.0);
                        view.first_response_at = None;
                    }
                }
                LogisticsView::Ticket(view)
            }
            _ => return Err(CoreError::NotFound("a logistics outcome")),
        })
    })();
    match view {
        Err(CoreError::NotFound("a logistics outcome")) => None,
        other => Some(other.map(View::Logistics)),
    }
}

// ---- handlers ----

type Answer = crate::api::Answer;
const CREATED: StatusCode = StatusCode::CREATED;
const OK: StatusCode = StatusCode::OK;

async fn lq(app: &AppState, actor: Actor, q: LogisticsQuery) -> Answer {
    read(app, actor, Query::Logistics(q)).await
}

/// A page's size: 50 unless asked, 1 to [`PAGE_ENTRIES_MAX`].
pub(crate) fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(50);
    if limit == 0 || limit > PAGE_ENTRIES_MAX {
        return Err(ApiError::out_of_bounds("limit", format!("limit: 1 to {PAGE_ENTRIES_MAX}")));
    }
    Ok(limit)
}

fn page_query(owner: ListOwner, p: PageParams) -> Result<PageQuery, ApiError> {
    let limit = page_limit(p.limit)?;
    Ok(PageQuery {
        owner,
        status: p.status,
        warehouse: p.warehouse_id.map(WarehouseId),
        after: p.after.unwrap_or(0),
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
            let page = page_query(ListOwner::$owner($id(id)), params)?;
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
        .routes(routes!(create_carrier))
        .routes(routes!(get_carrier))
        .routes(routes!(set_address))
        .routes(routes!(set_sku_warehouse))
        .routes(routes!(set_shipping_fee))
        .routes(routes!(get_estimate))
        .routes(routes!(get_shipment))
        .routes(routes!(get_order_shipments))
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
        .routes(routes!(merchant_orders))
        .routes(routes!(merchant_shipments))
        .routes(routes!(merchant_returns))
        .routes(routes!(merchant_tickets))
        .routes(routes!(buyer_orders))
        .routes(routes!(buyer_shipments))
        .routes(routes!(buyer_tickets))
        .routes(routes!(get_stats))
}
