//! The feed's events: their types, their JSON, and how each is derived from a command's outcome.

use elevens_core::{
    Command, Currency, Envelope, OrderId, OrderStatus, Outcome, ShipmentId, SkuId, Sponsor, State,
};
use serde::{Deserialize, Serialize};

/// The events' schema version, in every event's JSON. A field is only ever added within a
/// version; a change of meaning or a removal takes a new one.
pub const VERSION: u32 = 1;

/// The encoding of events in the log on disk ([`crate::log`]): postcard is not self-describing,
/// so an added field changes it. Kept in the feed's directory; a log of another format is
/// refused at start rather than misread.
pub const LOG_FORMAT: u32 = 4;

/// A durable change, as the feed keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedEvent {
    /// The journal record (the command) it came from.
    pub record: u64,
    /// The command's time, in ms since the Unix epoch.
    pub at: u64,
    /// Whose data it is, for a merchant's feed and webhooks.
    pub merchant: Option<u64>,
    pub buyer: Option<u64>,
    pub kind: Kind,
}

/// A currency code: a string in JSON, its three bytes in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code(pub Currency);

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(self.0.as_str())
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Code, D::Error> {
        if d.is_human_readable() {
            let code = String::deserialize(d)?;
            Currency::parse(&code).map(Code).ok_or_else(|| serde::de::Error::custom("not a currency code"))
        } else {
            Currency::deserialize(d).map(Code)
        }
    }
}

/// An order's lines: inline when there is one (most orders), so the sequencer allocates
/// nothing for it.
pub type Lines = smallvec::SmallVec<[LineItem; 1]>;

/// One line of an order, with the SKU's stock free to reserve just after the command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    pub sku: u64,
    pub quantity: u32,
    pub unit_price: u64,
    pub campaign: Option<u64>,
    pub stock_available: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockReason {
    Created,
    Restocked,
    /// An unpaid order was cancelled or expired.
    Released,
    /// A refund put the units back on sale.
    Returned,
}

/// What happened. The variant's name is the event's `type`; its fields are the event's `data`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    #[serde(rename = "order.placed")]
    OrderPlaced { order: u64, currency: Code, total: u64, expires_at: u64, lines: Lines },
    #[serde(rename = "order.paid")]
    OrderPaid { order: u64, currency: Code, total: u64, commission: u64, lines: Lines },
    #[serde(rename = "order.cancelled")]
    OrderCancelled { order: u64 },
    #[serde(rename = "order.expired")]
    OrderExpired { order: u64 },
    /// `amount` is this refund's, not the order's refunded total, shipping included; `lines`
    /// are the units it refunded; `complete`: nothing is left to refund of the order.
    #[serde(rename = "order.refunded")]
    OrderRefunded {
        order: u64,
        currency: Code,
        amount: u64,
        restocked: bool,
        return_id: Option<u64>,
        lines: Lines,
        complete: bool,
    },
    #[serde(rename = "stock.changed")]
    StockChanged { sku: u64, available: u64, received: u64, reason: StockReason },
    #[serde(rename = "sku.created")]
    SkuCreated { sku: u64, title: String, description: String, currency: Code, price: u64, stock: u64 },
    #[serde(rename = "campaign.created")]
    CampaignCreated {
        campaign: u64,
        sku: u64,
        name: String,
        flash_price: u64,
        quantity: u64,
        starts_at: u64,
        ends_at: u64,
    },
    #[serde(rename = "coupon.used")]
    CouponUsed { coupon: u64, order: u64, amount: u64 },
    #[serde(rename = "red_packet.claimed")]
    RedPacketClaimed { red_packet: u64, amount: u64 },
    #[serde(rename = "red_packet.closed")]
    RedPacketClosed { red_packet: u64, returned: u64 },
    #[serde(rename = "shipment.created")]
    ShipmentCreated { shipment: u64, order: u64, warehouse: u64, dispatch_day: u32, promised_by: Option<u32> },
    #[serde(rename = "shipment.dispatched")]
    ShipmentDispatched { shipment: u64, order: u64 },
    #[serde(rename = "shipment.cancelled")]
    ShipmentCancelled { shipment: u64, order: u64 },
    /// The carrier's latest status for the parcel after the command.
    #[serde(rename = "shipment.tracked")]
    ShipmentTracked { shipment: u64, order: u64, status: String },
    /// It missed its dispatch day and was booked again.
    #[serde(rename = "shipment.delayed")]
    ShipmentDelayed { shipment: u64, order: u64, dispatch_day: u32, promised_by: Option<u32> },
    #[serde(rename = "return.requested")]
    ReturnRequested { return_id: u64, order: u64, reason: String },
    #[serde(rename = "return.decided")]
    ReturnDecided { return_id: u64, order: u64, approved: bool },
    #[serde(rename = "return.received")]
    ReturnReceived { return_id: u64, order: u64 },
    #[serde(rename = "ticket.opened")]
    TicketOpened { ticket: u64, order: u64, kind: String },
    #[serde(rename = "ticket.updated")]
    TicketUpdated { ticket: u64, order: u64, status: String },
    /// The SKU's texts and price as they are after the edit.
    #[serde(rename = "sku.updated")]
    SkuUpdated { sku: u64, title: String, description: String, currency: Code, price: u64 },
    #[serde(rename = "experiment.created")]
    ExperimentCreated {
        experiment: u64,
        name: String,
        variants: Vec<ExperimentVariant>,
        starts_at: u64,
        ends_at: u64,
    },
    /// A product, with the attributes buyers filter on and the names of the options its
    /// variants differ by.
    #[serde(rename = "product.created")]
    ProductCreated {
        product: u64,
        title: String,
        category: u64,
        attributes: Vec<Attribute>,
        options: Vec<String>,
    },
    /// A SKU became one of the product's variants, with its option values; the SKU's texts and
    /// price as they are now.
    #[serde(rename = "product.variant_added")]
    VariantAdded {
        product: u64,
        sku: u64,
        options: Vec<String>,
        title: String,
        description: String,
        currency: Code,
        price: u64,
    },
    /// The product in its new category, with its variants as they are now (the search index
    /// files each variant under its category).
    #[serde(rename = "product.moved")]
    ProductMoved { product: u64, category: u64, variants: Vec<Listed> },
    /// A node of the operator's category tree (`parent` null: a top-level one).
    #[serde(rename = "category.created")]
    CategoryCreated { category: u64, name: String, parent: Option<u64> },
    #[serde(rename = "category.moved")]
    CategoryMoved { category: u64, parent: Option<u64> },
    /// A sale's terms after an edit, an early end or a cancellation; `status` is `scheduled`,
    /// `open`, `ended` or `cancelled` at the command's time.
    #[serde(rename = "campaign.updated")]
    CampaignUpdated {
        campaign: u64,
        sku: u64,
        name: String,
        flash_price: u64,
        quantity: u64,
        starts_at: u64,
        ends_at: u64,
        status: String,
    },
    /// The sale the operator features on the big screen (null: the screen chooses).
    #[serde(rename = "campaign.featured")]
    CampaignFeatured { campaign: Option<u64> },
    /// A message in a ticket's conversation; `from` is `store` or `buyer`, `status` the
    /// ticket's after it.
    #[serde(rename = "ticket.replied")]
    TicketReplied { ticket: u64, order: u64, from: String, status: String },
    /// A store's settings after a change: its time zone, as its offset from UTC in minutes.
    #[serde(rename = "merchant.updated")]
    MerchantUpdated { utc_offset_minutes: i16 },
}

/// A SKU's texts and price as listed now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    pub sku: u64,
    pub title: String,
    pub description: String,
    pub currency: Code,
    pub price: u64,
}

/// A product's attribute: what a buyer filters on (brand: Apple).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    pub name: String,
    pub value: String,
}

/// A variant of an A/B experiment and its share of the buyers (weights are relative).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExperimentVariant {
    pub name: String,
    pub weight: u32,
}

/// Every event type, as filters and subscriptions name them.
pub const TYPES: &[&str] = &[
    "order.placed",
    "order.paid",
    "order.cancelled",
    "order.expired",
    "order.refunded",
    "stock.changed",
    "sku.created",
    "campaign.created",
    "coupon.used",
    "red_packet.claimed",
    "red_packet.closed",
    "shipment.created",
    "shipment.dispatched",
    "shipment.cancelled",
    "shipment.tracked",
    "shipment.delayed",
    "return.requested",
    "return.decided",
    "return.received",
    "ticket.opened",
    "ticket.updated",
    "sku.updated",
    "experiment.created",
    "product.created",
    "product.variant_added",
    "product.moved",
    "category.created",
    "category.moved",
    "campaign.updated",
    "campaign.featured",
    "ticket.replied",
    "merchant.updated",
];

impl Kind {
    /// The event's `type`: its place in [`TYPES`].
    pub fn type_index(&self) -> usize {
        match self {
            Kind::OrderPlaced { .. } => 0,
            Kind::OrderPaid { .. } => 1,
            Kind::OrderCancelled { .. } => 2,
            Kind::OrderExpired { .. } => 3,
            Kind::OrderRefunded { .. } => 4,
            Kind::StockChanged { .. } => 5,
            Kind::SkuCreated { .. } => 6,
            Kind::CampaignCreated { .. } => 7,
            Kind::CouponUsed { .. } => 8,
            Kind::RedPacketClaimed { .. } => 9,
            Kind::RedPacketClosed { .. } => 10,
            Kind::ShipmentCreated { .. } => 11,
            Kind::ShipmentDispatched { .. } => 12,
            Kind::ShipmentCancelled { .. } => 13,
            Kind::ShipmentTracked { .. } => 14,
            Kind::ShipmentDelayed { .. } => 15,
            Kind::ReturnRequested { .. } => 16,
            Kind::ReturnDecided { .. } => 17,
            Kind::ReturnReceived { .. } => 18,
            Kind::TicketOpened { .. } => 19,
            Kind::TicketUpdated { .. } => 20,
            Kind::SkuUpdated { .. } => 21,
            Kind::ExperimentCreated { .. } => 22,
            Kind::ProductCreated { .. } => 23,
            Kind::VariantAdded { .. } => 24,
            Kind::ProductMoved { .. } => 25,
            Kind::CategoryCreated { .. } => 26,
            Kind::CategoryMoved { .. } => 27,
            Kind::CampaignUpdated { .. } => 28,
            Kind::CampaignFeatured { .. } => 29,
            Kind::TicketReplied { .. } => 30,
            Kind::MerchantUpdated { .. } => 31,
        }
    }

    pub fn type_name(&self) -> &'static str {
        TYPES[self.type_index()]
    }
}

impl FeedEvent {
    /// The event as consumers see it: `{position, id, type, version, record, at, merchant,
    /// buyer, data}`.
    pub fn to_json(&self, position: u64) -> serde_json::Value {
        // `Kind` is externally tagged: one key, the type, whose value is the data.
        let data = match serde_json::to_value(&self.kind) {
            Ok(serde_json::Value::Object(map)) => map.into_iter().next().map(|(_, v)| v),
            _ => None,
        };
        serde_json::json!({
            "position": position,
            "id": format!("evt_{position}"),
            "type": self.kind.type_name(),
            "version": VERSION,
            "record": self.record,
            "at": self.at,
            "merchant": self.merchant,
            "buyer": self.buyer,
            "data": data.unwrap_or(serde_json::Value::Null),
        })
    }
}

/// The events of one command that changed the state, read from the state just after it:
/// appended to `out`. `record` is the command's place in the journal (`state.applied()`).
pub fn derive(state: &State, envelope: &Envelope, outcome: &Outcome, out: &mut Vec<FeedEvent>) {
    let Outcome::CheckedOut { first, orders, .. } = *outcome else {
        return derive_one(state, envelope, outcome, out);
    };
    // Each store's order of a checkout, as if placed and paid one after the other.
    for id in (first.0..first.0 + u64::from(orders)).map(OrderId) {
        let Ok(o) = state.order(id) else { continue };
        let (total, expires_at, commission) = (o.total, o.expires_at(), o.commission);
        derive_one(state, envelope, &Outcome::OrderPlaced { order: id, total, expires_at }, out);
        derive_one(state, envelope, &Outcome::OrderPaid { order: id, total, commission }, out);
    }
}

/// The events of one outcome that is not a checkout's (not recursive, so the flash path's
/// outcomes are derived inline).
#[inline(always)]
fn derive_one(state: &State, envelope: &Envelope, outcome: &Outcome, out: &mut Vec<FeedEvent>) {
    let mut ev = Events { state, record: state.applied(), at: envelope.at.0, out };
    match *outcome {
        Outcome::OrderPlaced { order, total, expires_at } => {
            let Ok(o) = state.order(order) else { return };
            let lines = ev.lines(o);
            let (merchant, buyer) = (Some(o.merchant().0), Some(o.buyer().0));
            ev.push(
                merchant,
                buyer,
                Kind::OrderPlaced {
                    order: order.0,
                    currency: Code(o.currency),
                    total: total.0,
                    expires_at: expires_at.0,
                    lines,
                },
            );
            for d in state.order_discounts(order) {
                ev.push(
                    merchant,
                    buyer,
                    Kind::CouponUsed { coupon: d.coupon.0, order: order.0, amount: d.amount.0 },
                );
            }
        }
        Outcome::OrderPaid { order, total, commission } => {
            let Ok(o) = state.order(order) else { return };
            let (merchant, buyer) = (Some(o.merchant().0), Some(o.buyer().0));
            let (currency, lines) = (Code(o.currency), ev.lines(o));
            ev.push(
                merchant,
                buyer,
                Kind::OrderPaid { order: order.0, currency, total: total.0, commission: commission.0, lines },
            );
            for (id, s) in state.order_shipments(order) {
                let (warehouse, dispatch_day, promised_by) =
                    (s.warehouse().0, s.dispatch_day, s.promised().map(|p| p.1));
                let kind = Kind::ShipmentCreated {
                    shipment: id.0,
                    order: order.0,
                    warehouse,
                    dispatch_day,
                    promised_by,
                };
                ev.push(merchant, buyer, kind);
            }
        }
        _ => derive_other(state, envelope, outcome, ev.out),
    }
}

/// The events of every outcome but the flash path's (placed, paid), kept out of line so the
/// rarer arms do not weigh on the code the order path runs.
#[inline(never)]
fn derive_other(state: &State, envelope: &Envelope, outcome: &Outcome, out: &mut Vec<FeedEvent>) {
    let mut ev = Events { state, record: state.applied(), at: envelope.at.0, out };
    match *outcome {
        Outcome::OrderCancelled { order } => ev.unpaid_closed(order, Kind::OrderCancelled { order: order.0 }),
        Outcome::Ticked { tickets, .. } => {
            let notice = state.last_tick();
            for &order in &notice.expired {
                ev.unpaid_closed(order, Kind::OrderExpired { order: order.0 });
            }
            for &packet in &notice.closed {
                ev.red_packet_closed(packet);
            }
            for &shipment in &notice.repromised {
                ev.shipment(shipment, |s, order| Kind::ShipmentDelayed {
                    shipment: shipment.0,
                    order,
                    dispatch_day: s.dispatch_day,
                    promised_by: s.promised().map(|p| p.1),
                });
            }
            // Ticket ids are dense: the tick's are the last ones.
            let count = state.tickets().len() as u64;
            for id in count.saturating_sub(tickets.into())..count {
                ev.ticket_opened(elevens_core::TicketId(id + 1));
            }
        }
        Outcome::OrderRefunded { order, amount, restocked } => ev.refunded(order, amount.0, restocked, None),
        Outcome::LinesRefunded { order, amount } => ev.refunded(order, amount.0, false, None),
        Outcome::ReturnRefunded { ret, amount } => {
            let Ok(r) = state.return_request(ret) else { return };
            ev.refunded(r.order, amount.0, r.restocked, Some(ret.0));
        }
        Outcome::SkuCreated { sku, initial_stock } => {
            let Ok(s) = state.sku(sku) else { return };
            let kind = Kind::SkuCreated {
                sku: sku.0,
                title: state.sku_title(s).to_string(),
                description: state.sku_description(s).to_string(),
                currency: Code(s.currency),
                price: s.price.0,
                stock: initial_stock,
            };
            ev.push(Some(s.merchant().0), None, kind);
            ev.stock(sku, StockReason::Created);
        }
        Outcome::SkuUpdated { sku } => {
            let Ok(s) = state.sku(sku) else { return };
            let kind = Kind::SkuUpdated {
                sku: sku.0,
                title: state.sku_title(s).to_string(),
                description: state.sku_description(s).to_string(),
                currency: Code(s.currency),
                price: s.price.0,
            };
            ev.push(Some(s.merchant().0), None, kind);
        }
        Outcome::Restocked { sku, .. } => ev.stock(sku, StockReason::Restocked),
        Outcome::CampaignCreated { campaign } => {
            let Ok(c) = state.campaign(campaign) else { return };
            let merchant = state.sku(c.sku).ok().map(|s| s.merchant().0);
            let kind = Kind::CampaignCreated {
                campaign: campaign.0,
                sku: c.sku.0,
                name: c.name.clone(),
                flash_price: c.flash_price.0,
                quantity: c.quantity,
                starts_at: c.starts_at.0,
                ends_at: c.ends_at.0,
            };
            ev.push(merchant, None, kind);
        }
        Outcome::CampaignUpdated { campaign } | Outcome::CampaignEnded { campaign } => {
            let Ok(c) = state.campaign(campaign) else { return };
            let merchant = state.sku(c.sku).ok().map(|s| s.merchant().0);
            let kind = Kind::CampaignUpdated {
                campaign: campaign.0,
                sku: c.sku.0,
                name: c.name.clone(),
                flash_price: c.flash_price.0,
                quantity: c.quantity,
                starts_at: c.starts_at.0,
                ends_at: c.ends_at.0,
                status: c.status(envelope.at).to_owned(),
            };
            ev.push(merchant, None, kind);
        }
        Outcome::CampaignFeatured { campaign } => {
            ev.push(None, None, Kind::CampaignFeatured { campaign: campaign.map(|c| c.0) });
        }
        Outcome::RedPacketClaimed { packet, amount, .. } => {
            let buyer = match envelope.command {
                Command::ClaimRedPacket { buyer, .. } => Some(buyer.0),
                _ => None,
            };
            let merchant = state.red_packet(packet).ok().and_then(|p| sponsor(p.terms.sponsor));
            ev.push(merchant, buyer, Kind::RedPacketClaimed { red_packet: packet.0, amount: amount.0 });
        }
        Outcome::RedPacketClosed { packet, .. } => ev.red_packet_closed(packet),
        Outcome::ShipmentDispatched { shipment } => {
            ev.shipment(shipment, |_, order| Kind::ShipmentDispatched { shipment: shipment.0, order })
        }
        Outcome::ShipmentCancelled { shipment } => {
            ev.shipment(shipment, |_, order| Kind::ShipmentCancelled { shipment: shipment.0, order })
        }
        Outcome::TrackingRecorded { recorded, .. } if recorded > 0 => {
            let Command::RecordTracking { events } = &envelope.command else { return };
            // One event per parcel the feed touched, with its status after all of them.
            let mut parcels: Vec<ShipmentId> = events.iter().map(|e| e.shipment).collect();
            parcels.sort_unstable_by_key(|s| s.0);
            parcels.dedup();
            for shipment in parcels {
                ev.shipment(shipment, |s, order| Kind::ShipmentTracked {
                    shipment: shipment.0,
                    order,
                    status: s.tracking.map_or("none", |t| t.name()).to_string(),
                });
            }
        }
        Outcome::ReturnRequested { ret } => ev.return_event(ret, |r, id| Kind::ReturnRequested {
            return_id: id,
            order: r.order.0,
            reason: r.reason.name().to_string(),
        }),
        Outcome::ReturnDecided { ret, approved } => {
            ev.return_event(ret, |r, id| Kind::ReturnDecided { return_id: id, order: r.order.0, approved })
        }
        Outcome::ReturnReceived { ret } => {
            ev.return_event(ret, |r, id| Kind::ReturnReceived { return_id: id, order: r.order.0 })
        }
        Outcome::TicketOpened { ticket } => ev.ticket_opened(ticket),
        Outcome::ProductCreated { product } | Outcome::ProductMoved { product } => {
            let Ok(p) = state.product(product) else { return };
            let (merchant, category) = (Some(p.terms.merchant.0), p.terms.category.0);
            let kind = match outcome {
                Outcome::ProductMoved { .. } => Kind::ProductMoved {
                    product: product.0,
                    category,
                    variants: (p.variants.iter())
                        .filter_map(|(sku, _)| {
                            let s = state.sku(*sku).ok()?;
                            Some(Listed {
                                sku: sku.0,
                                title: state.sku_title(s).to_string(),
                                description: state.sku_description(s).to_string(),
                                currency: Code(s.currency),
                                price: s.price.0,
                            })
                        })
                        .collect(),
                },
                _ => Kind::ProductCreated {
                    product: product.0,
                    title: p.terms.title.clone(),
                    category,
                    attributes: (p.terms.attributes.iter())
                        .map(|(name, value)| Attribute { name: name.clone(), value: value.clone() })
                        .collect(),
                    options: p.terms.options.clone(),
                },
            };
            ev.push(merchant, None, kind);
        }
        Outcome::VariantAdded { product, sku } => {
            let (Ok(p), Ok(s)) = (state.product(product), state.sku(sku)) else { return };
            let options =
                p.variants.iter().find(|(v, _)| *v == sku).map(|(_, o)| o.clone()).unwrap_or_default();
            let kind = Kind::VariantAdded {
                product: product.0,
                sku: sku.0,
                options,
                title: state.sku_title(s).to_string(),
                description: state.sku_description(s).to_string(),
                currency: Code(s.currency),
                price: s.price.0,
            };
            ev.push(Some(p.terms.merchant.0), None, kind);
        }
        Outcome::CategoryCreated { category } | Outcome::CategoryMoved { category } => {
            let Ok(c) = state.category(category) else { return };
            let parent = c.parent.map(|p| p.0);
            let kind = match outcome {
                Outcome::CategoryMoved { .. } => Kind::CategoryMoved { category: category.0, parent },
                _ => Kind::CategoryCreated { category: category.0, name: c.name.clone(), parent },
            };
            ev.push(None, None, kind);
        }
        Outcome::ExperimentCreated { experiment } => {
            let Ok(e) = state.experiment(experiment) else { return };
            ev.push(None, None, experiment_created(experiment.0, e));
        }
        Outcome::TicketReplied { ticket } => {
            let Ok(t) = state.ticket(ticket) else { return };
            let from = if t.messages.last().is_some_and(|m| m.from_store) { "store" } else { "buyer" };
            let kind = Kind::TicketReplied {
                ticket: ticket.0,
                order: t.order.0,
                from: from.to_owned(),
                status: t.status.name().to_owned(),
            };
            ev.push(Some(t.merchant.0), Some(t.buyer.0), kind);
        }
        Outcome::TicketUpdated { ticket, status, .. } => {
            let Ok(t) = state.ticket(ticket) else { return };
            let kind =
                Kind::TicketUpdated { ticket: ticket.0, order: t.order.0, status: status.name().to_string() };
            ev.push(Some(t.merchant.0), Some(t.buyer.0), kind);
        }
        Outcome::StoreZoneSet { merchant } => {
            let Ok(m) = state.merchant(merchant) else { return };
            ev.push(
                Some(merchant.0),
                None,
                Kind::MerchantUpdated { utc_offset_minutes: m.utc_offset_minutes },
            );
        }
        _ => {}
    }
}

/// The `experiment.created` event of an experiment (also what a restart folds from the state).
pub fn experiment_created(id: u64, e: &elevens_core::NewExperiment) -> Kind {
    Kind::ExperimentCreated {
        experiment: id,
        name: e.name.clone(),
        variants: e
            .variants
            .iter()
            .map(|v| ExperimentVariant { name: v.name.clone(), weight: v.weight })
            .collect(),
        starts_at: e.starts_at.0,
        ends_at: e.ends_at.0,
    }
}

/// An order's lines as events carry them, `units` of each (by position: `None` for all of
/// them), with `available(sku)` for each line's stock after the command.
pub fn order_lines(
    order: &elevens_core::Order,
    units: Option<&[(u8, u32)]>,
    available: impl Fn(SkuId) -> u64,
) -> Lines {
    let item = |l: &elevens_core::OrderLine, quantity: u32| LineItem {
        sku: l.sku.0,
        quantity,
        unit_price: l.unit_price.0,
        campaign: l.campaign().map(|c| c.0),
        stock_available: available(l.sku),
    };
    match units {
        // Most orders have one line: built in place, not pushed through `collect`'s growth
        // checks.
        None => match order.lines.as_slice() {
            [one] => Lines::from_buf([item(one, one.quantity())]),
            many => many.iter().map(|l| item(l, l.quantity())).collect(),
        },
        Some(units) => {
            units.iter().filter_map(|&(p, n)| order.lines.get(usize::from(p)).map(|l| item(l, n))).collect()
        }
    }
}

fn sponsor(sponsor: Sponsor) -> Option<u64> {
    match sponsor {
        Sponsor::Merchant(m) => Some(m.0),
        Sponsor::Platform => None,
    }
}

struct Events<'a> {
    state: &'a State,
    record: u64,
    at: u64,
    out: &'a mut Vec<FeedEvent>,
}

impl Events<'_> {
    /// Inlined: on the flash path each event is built in place in the list.
    #[inline(always)]
    fn push(&mut self, merchant: Option<u64>, buyer: Option<u64>, kind: Kind) {
        self.out.push(FeedEvent { record: self.record, at: self.at, merchant, buyer, kind });
    }

    fn lines(&self, order: &elevens_core::Order) -> Lines {
        order_lines(order, None, |sku| self.state.sku(sku).map_or(0, |s| s.available))
    }

    fn stock(&mut self, sku: SkuId, reason: StockReason) {
        let Ok(s) = self.state.sku(sku) else { return };
        let kind = Kind::StockChanged { sku: sku.0, available: s.available, received: s.received, reason };
        self.push(Some(s.merchant().0), None, kind);
    }

    /// An unpaid order closed (cancelled or expired): the event, then its stock back.
    fn unpaid_closed(&mut self, order: OrderId, kind: Kind) {
        let Ok(o) = self.state.order(order) else { return };
        debug_assert!(matches!(o.status, OrderStatus::Cancelled | OrderStatus::Expired));
        self.push(Some(o.merchant().0), Some(o.buyer().0), kind);
        for line in o.lines.iter() {
            self.stock(line.sku, StockReason::Released);
        }
    }

    fn refunded(&mut self, order: OrderId, amount: u64, restocked: bool, return_id: Option<u64>) {
        let Ok(o) = self.state.order(order) else { return };
        let state = self.state;
        let lines =
            order_lines(o, Some(state.last_refund()), |sku| state.sku(sku).map_or(0, |s| s.available));
        let kind = Kind::OrderRefunded {
            order: order.0,
            currency: Code(o.currency),
            amount,
            restocked,
            return_id,
            lines,
            complete: o.status == OrderStatus::Refunded,
        };
        self.push(Some(o.merchant().0), Some(o.buyer().0), kind);
        if restocked {
            for &(p, _) in state.last_refund() {
                if let Some(line) = o.lines.get(usize::from(p)) {
                    self.stock(line.sku, StockReason::Returned);
                }
            }
        }
    }

    fn red_packet_closed(&mut self, packet: elevens_core::RedPacketId) {
        let Ok(p) = self.state.red_packet(packet) else { return };
        let kind = Kind::RedPacketClosed { red_packet: packet.0, returned: p.returned.0 };
        self.push(sponsor(p.terms.sponsor), None, kind);
    }

    fn shipment(
        &mut self,
        id: ShipmentId,
        kind: impl FnOnce(&elevens_core::logistics::Shipment, u64) -> Kind,
    ) {
        let Ok(s) = self.state.shipment(id) else { return };
        let order = s.order();
        let parties = self.state.order(order).ok().map(|o| (o.merchant().0, o.buyer().0));
        let kind = kind(&s, order.0);
        self.push(parties.map(|p| p.0), parties.map(|p| p.1), kind);
    }

    fn return_event(
        &mut self,
        id: elevens_core::ReturnId,
        kind: impl FnOnce(&elevens_core::logistics::ReturnRequest, u64) -> Kind,
    ) {
        let Ok(r) = self.state.return_request(id) else { return };
        let parties = self.state.order(r.order).ok().map(|o| (o.merchant().0, o.buyer().0));
        let kind = kind(r, id.0);
        self.push(parties.map(|p| p.0), parties.map(|p| p.1), kind);
    }

    fn ticket_opened(&mut self, id: elevens_core::TicketId) {
        let Ok(t) = self.state.ticket(id) else { return };
        let kind = Kind::TicketOpened { ticket: id.0, order: t.order.0, kind: t.kind.name().to_string() };
        self.push(Some(t.merchant.0), Some(t.buyer.0), kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `TYPES` and `type_index` are a second list of the variants: each variant's JSON name
    /// must be the type it is filtered by.
    #[test]
    fn every_kind_is_filtered_by_its_own_name() {
        let c = Code(Currency::parse("CNY").unwrap());
        let s = String::new;
        let kinds = [
            Kind::OrderPlaced { order: 1, currency: c, total: 1, expires_at: 1, lines: Lines::new() },
            Kind::OrderPaid { order: 1, currency: c, total: 1, commission: 0, lines: Lines::new() },
            Kind::OrderCancelled { order: 1 },
            Kind::OrderExpired { order: 1 },
            Kind::OrderRefunded {
                order: 1,
                currency: c,
                amount: 1,
                restocked: false,
                return_id: None,
                lines: Lines::new(),
                complete: true,
            },
            Kind::StockChanged { sku: 1, available: 1, received: 1, reason: StockReason::Created },
            Kind::SkuCreated { sku: 1, title: s(), description: s(), currency: c, price: 1, stock: 1 },
            Kind::CampaignCreated {
                campaign: 1,
                sku: 1,
                name: s(),
                flash_price: 1,
                quantity: 1,
                starts_at: 0,
                ends_at: 1,
            },
            Kind::CouponUsed { coupon: 1, order: 1, amount: 1 },
            Kind::RedPacketClaimed { red_packet: 1, amount: 1 },
            Kind::RedPacketClosed { red_packet: 1, returned: 0 },
            Kind::ShipmentCreated { shipment: 1, order: 1, warehouse: 1, dispatch_day: 0, promised_by: None },
            Kind::ShipmentDispatched { shipment: 1, order: 1 },
            Kind::ShipmentCancelled { shipment: 1, order: 1 },
            Kind::ShipmentTracked { shipment: 1, order: 1, status: s() },
            Kind::ShipmentDelayed { shipment: 1, order: 1, dispatch_day: 0, promised_by: None },
            Kind::ReturnRequested { return_id: 1, order: 1, reason: s() },
            Kind::ReturnDecided { return_id: 1, order: 1, approved: true },
            Kind::ReturnReceived { return_id: 1, order: 1 },
            Kind::TicketOpened { ticket: 1, order: 1, kind: s() },
            Kind::TicketUpdated { ticket: 1, order: 1, status: s() },
            Kind::SkuUpdated { sku: 1, title: s(), description: s(), currency: c, price: 1 },
            Kind::ExperimentCreated { experiment: 1, name: s(), variants: vec![], starts_at: 0, ends_at: 1 },
            Kind::ProductCreated {
                product: 1,
                title: s(),
                category: 1,
                attributes: vec![Attribute { name: s(), value: s() }],
                options: vec![s()],
            },
            Kind::VariantAdded {
                product: 1,
                sku: 1,
                options: vec![s()],
                title: s(),
                description: s(),
                currency: c,
                price: 1,
            },
            Kind::ProductMoved {
                product: 1,
                category: 2,
                variants: vec![Listed { sku: 1, title: s(), description: s(), currency: c, price: 1 }],
            },
            Kind::CategoryCreated { category: 1, name: s(), parent: None },
            Kind::CategoryMoved { category: 2, parent: Some(1) },
            Kind::CampaignUpdated {
                campaign: 1,
                sku: 1,
                name: s(),
                flash_price: 1,
                quantity: 1,
                starts_at: 0,
                ends_at: 1,
                status: s(),
            },
            Kind::CampaignFeatured { campaign: None },
            Kind::TicketReplied { ticket: 1, order: 1, from: s(), status: s() },
            Kind::MerchantUpdated { utc_offset_minutes: -210 },
        ];
        assert_eq!(kinds.len(), TYPES.len());
        for (i, kind) in kinds.into_iter().enumerate() {
            let event = FeedEvent { record: 1, at: 0, merchant: None, buyer: None, kind };
            assert_eq!(event.kind.type_index(), i);
            assert_eq!(event.to_json(1)["type"], TYPES[i]);
            let json = serde_json::to_value(&event.kind).unwrap();
            assert!(json.get(TYPES[i]).is_some(), "{json} is not named {}", TYPES[i]);
            let bytes = postcard::to_allocvec(&event).unwrap();
            assert_eq!(postcard::from_bytes::<FeedEvent>(&bytes).unwrap(), event, "the log's encoding");
        }
    }
}
