//! Logistics and after-sales as the API shows them: warehouses, carriers, delivery estimates,
//! shipments and tracking, returns, service tickets, and the lists a merchant works from
//! (cursor pagination, bounded work per page), rendered on the sequencer thread.

pub use crate::owned::PageQuery;
use crate::View;
use elevens_core::logistics::calendar::date_string;
use elevens_core::logistics::*;
use elevens_core::*;
use serde::Serialize;
use utoipa::ToSchema;

/// The most entries one page of a list carries.
pub const PAGE_ENTRIES_MAX: usize = 100;
/// The most records one page looks at: a page of a rare status ends early with a cursor to go
/// on from, so no request costs the sequencer more than this.
pub const PAGE_SCAN_MAX: usize = 100_000;
/// Days one page of a warehouse's calendar shows.
pub const DAYS_PER_PAGE_MAX: usize = 62;

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
    /// The SKU's title now.
    pub title: String,
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
    /// The conversation after the subject, oldest first.
    pub messages: Vec<TicketMessageView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketMessageView {
    /// `store` or `buyer`.
    pub from: &'static str,
    pub at: u64,
    pub body: String,
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
    pub items: Vec<crate::OrderView>,
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
    AfterSales(crate::owned::AfterSalesView),
    Note(crate::owned::OrderNoteView),
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
    /// An order's returns and tickets.
    AfterSales(crate::owned::AfterSalesQuery),
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
pub(crate) fn check_list(state: &State, actor: Actor, owner: ListOwner) -> Result<(), CoreError> {
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

pub(crate) fn carrier_view(state: &State, id: CarrierId, c: &Carrier) -> CarrierView {
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

pub(crate) fn shipment_view(state: &State, id: ShipmentId, s: &Shipment) -> ShipmentView {
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

pub(crate) fn return_view(state: &State, id: ReturnId, r: &ReturnRequest) -> ReturnView {
    let lines = state.order(r.order).map(|o| o.lines.to_vec()).unwrap_or_default();
    ReturnView {
        return_id: id.0,
        order_id: r.order.0,
        lines: r
            .lines
            .iter()
            .map(|&(p, quantity)| {
                let sku = lines.get(usize::from(p)).map(|l| l.sku);
                let title = sku.and_then(|s| state.sku(s).ok()).map(|s| state.sku_title(s).to_owned());
                ReturnLineView { sku_id: sku.map_or(0, |s| s.0), title: title.unwrap_or_default(), quantity }
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

pub(crate) fn ticket_view(id: TicketId, t: &Ticket) -> ServiceTicketView {
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
        messages: t
            .messages
            .iter()
            .map(|m| TicketMessageView {
                from: if m.from_store { "store" } else { "buyer" },
                at: m.at.0,
                body: m.body.clone(),
            })
            .collect(),
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

pub(crate) fn status_filter<T: Copy>(
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
        LogisticsQuery::Shipments(p) => crate::owned::shipments(state, actor, p, now)?,
        LogisticsQuery::Returns(p) => crate::owned::returns(state, actor, p)?,
        LogisticsQuery::Tickets(p) => crate::owned::tickets(state, actor, p, now)?,
        LogisticsQuery::Orders(p) => crate::owned::orders(state, actor, p)?,
        LogisticsQuery::AfterSales(q) => crate::owned::after_sales(state, actor, q)?,
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
            // The ticket as it is now, with its conversation.
            Outcome::TicketReplied { ticket } => {
                LogisticsView::Ticket(ticket_view(ticket, state.ticket(ticket)?))
            }
            // The note it wrote, which never changes: the same answer for a repeat.
            Outcome::OrderNoted { order, note } => {
                let notes = state.order_notes(order);
                let written = (note as usize).checked_sub(1).and_then(|i| notes.get(i));
                let written = written.ok_or(CoreError::NotFound("order note"))?;
                LogisticsView::Note(crate::owned::note_view(order, note, written))
            }
            _ => return Err(CoreError::NotFound("a logistics outcome")),
        })
    })();
    match view {
        Err(CoreError::NotFound("a logistics outcome")) => None,
        other => Some(other.map(View::Logistics)),
    }
}
