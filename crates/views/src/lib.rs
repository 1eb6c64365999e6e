//! What the API shows: read queries and the rendering of outcomes, run on the sequencer thread
//! against the state, and the JSON shapes they produce.
//!
//! A write's answer is rendered from its [`Outcome`] plus fields that never change once written
//! (an order's lines, a transfer), so a repeated idempotency key gets the first answer again.

use elevens_core::*;
use serde::Serialize;
use utoipa::ToSchema;

pub mod catalogue;
pub mod checkout;
pub mod experiments;
pub mod keys;
pub mod ledger;
pub mod listing;
pub mod logistics;
pub mod orders;
pub mod owned;
pub mod products;
pub mod promotions;

pub use catalogue::*;
pub use checkout::*;
pub use experiments::*;
pub use keys::*;
pub use ledger::*;
pub use orders::*;
pub use products::*;
pub use promotions::*;

/// A read, checked against the actor's rights on the sequencer thread.
/// A currency as its ISO 4217 code in JSON ("CNY"), without a `String` per view.
#[derive(Clone, Copy, Debug)]
pub struct Code(pub Currency);

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

#[derive(Clone, Debug)]
pub enum Query {
    Merchant(MerchantId),
    Buyer(BuyerId),
    Sku(SkuId),
    Campaign(CampaignId),
    Order(OrderId),
    Wallet {
        owner: Owner,
        entries_max: usize,
        /// Entries older than this one (a page's `next_before`).
        before: Option<TransferId>,
    },
    Coupon(CouponId),
    /// The newest coupons, of one sponsor if given.
    Coupons {
        sponsor: Option<Sponsor>,
    },
    RedPacket(RedPacketId),
    /// The newest red packets, of one sponsor if given.
    RedPackets {
        sponsor: Option<Sponsor>,
    },
    /// Coupons a buyer can use now, with what is left of its allowance.
    BuyerCoupons(BuyerId),
    /// A buyer's red-packet shares.
    BuyerClaims(BuyerId),
    /// A buyer's cart, priced as of now.
    Cart(BuyerId),
    Product(ProductId),
    Category(CategoryId),
    /// The children of a category (the roots if `None`).
    Categories(Option<CategoryId>),
    Experiment(ExperimentId),
    /// Several SKUs at once (search results), in the order given; unknown ids are left out.
    Skus(Vec<SkuId>),
    /// Warehouses, shipments, returns, tickets and their lists ([`crate::logistics`]).
    Logistics(crate::logistics::LogisticsQuery),
    /// The titles of SKUs and the names of merchants (the big screen's labels); unknown ids
    /// are left out.
    Names {
        skus: Vec<SkuId>,
        merchants: Vec<MerchantId>,
    },
    /// The asking key's role and ids ([`crate::listing`]).
    Me,
    /// A page of merchants, buyers, keys, SKUs, campaigns, warehouses or experiments.
    List(crate::listing::ListQuery),
}

/// The most entries one list answer carries.
pub const LIST_ENTRIES_MAX: usize = 1_000;

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum View {
    ApiKey(ApiKeyView),
    Merchant(MerchantView),
    Buyer(BuyerView),
    Sku(SkuView),
    Restocked(RestockView),
    TopUp(TopUpView),
    Campaign(CampaignView),
    Order(OrderView),
    Expired(ExpiredView),
    Wallet(WalletView),
    Audit(AuditView),
    Coupon(CouponView),
    Coupons(CouponList),
    RedPacket(RedPacketView),
    RedPackets(RedPacketList),
    Claim(ClaimView),
    Claims(ClaimList),
    Experiment(ExperimentView),
    Skus(SkuList),
    Names(NamesView),
    Logistics(crate::logistics::LogisticsView),
    Me(crate::listing::MeView),
    List(crate::listing::ListPage),
    Cart(CartView),
    Checkout(CheckoutView),
    Product(ProductView),
    Category(CategoryView),
    Categories(CategoryList),
    Featured(FeaturedView),
}

/// The sale the operator features on the big screen; null when the screen chooses.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeaturedView {
    pub campaign_id: Option<u64>,
}

/// Labels by id: `(id, title)` for SKUs, `(id, name)` for merchants.
#[derive(Debug, Serialize, ToSchema)]
pub struct NamesView {
    pub skus: Vec<(u64, String)>,
    pub merchants: Vec<(u64, String)>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckView {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub ok: bool,
    pub digest: String,
    /// Commands applied (= journal records): the audit is of the durable state after this record.
    pub applied: u64,
    pub checks: Vec<CheckView>,
}

impl From<elevens_core::AuditReport> for AuditView {
    fn from(report: elevens_core::AuditReport) -> AuditView {
        AuditView {
            ok: report.ok(),
            digest: report.digest,
            applied: report.applied,
            checks: report
                .checks
                .into_iter()
                .map(|c| CheckView { name: c.name, ok: c.ok, detail: c.detail })
                .collect(),
        }
    }
}

/// Who may read what. Writes are checked by the state machine itself; reads here.
fn may_read(state: &State, actor: Actor, query: &Query) -> Result<bool, CoreError> {
    Ok(match *query {
        Query::Sku(_) | Query::Campaign(_) | Query::Merchant(_) => true,
        Query::Product(_) | Query::Category(_) | Query::Categories(_) => true,
        Query::Coupon(_) | Query::Coupons { .. } | Query::RedPacket(_) | Query::RedPackets { .. } => true,
        Query::Buyer(b) | Query::BuyerCoupons(b) | Query::BuyerClaims(b) | Query::Cart(b) => {
            actor.may_act_for_buyer(b)
        }
        Query::Order(id) => {
            let order = state.order(id)?;
            actor.may_act_for_buyer(order.buyer()) || actor == Actor::Merchant(order.merchant())
        }
        Query::Wallet { owner, .. } => match owner {
            Owner::Buyer(b) => actor.may_act_for_buyer(b),
            Owner::Merchant(m) => actor.may_manage_merchant(m),
            Owner::Platform | Owner::External | Owner::Escrow(_) => actor == Actor::Admin,
        },
        Query::Experiment(_) => matches!(actor, Actor::Admin | Actor::Service),
        Query::Skus(_) | Query::Names { .. } => true,
        // Checked by `logistics::query`, which knows each entity's owners, and by
        // `listing::query`, by list.
        Query::Logistics(_) | Query::List(_) => true,
        Query::Me => true,
    })
}

pub fn query(state: &State, actor: Actor, query: &Query, now: Millis) -> Result<View, CoreError> {
    if !may_read(state, actor, query)? {
        return Err(CoreError::Forbidden("read this"));
    }
    match *query {
        Query::Merchant(id) => merchant_view(state, id),
        Query::Buyer(id) => buyer_view(state, id),
        Query::Sku(id) => Ok(View::Sku(sku_view(state, id, state.sku(id)?))),
        Query::Campaign(id) => campaign_view(state, id, now),
        Query::Order(id) => named_order_view(state, id),
        Query::Cart(buyer) => cart_view(state, buyer, now),
        Query::Product(id) => product_view(state, id),
        Query::Category(id) => Ok(View::Category(category_view(state, id)?)),
        Query::Categories(parent) => categories_view(state, parent),
        Query::Wallet { owner, entries_max, before } => {
            match owner {
                Owner::Buyer(b) => drop(state.buyer(b)?),
                Owner::Merchant(m) => drop(state.merchant(m)?),
                Owner::Platform | Owner::External | Owner::Escrow(_) => {}
            }
            let accounts = state
                .ledger()
                .accounts_of(owner)
                .map(|a| account_view(state, a, entries_max, before))
                .collect();
            Ok(View::Wallet(WalletView { owner: owner_name(owner), accounts }))
        }
        Query::Coupon(id) => Ok(View::Coupon(coupon_view(id, state.coupon(id)?, None))),
        Query::Coupons { sponsor } => {
            let coupons = state
                .coupons()
                .rev()
                .filter(|(_, c)| sponsor.is_none_or(|s| c.terms.sponsor == s))
                .take(LIST_ENTRIES_MAX)
                .map(|(id, c)| coupon_view(id, c, None))
                .collect();
            Ok(View::Coupons(CouponList { coupons }))
        }
        Query::BuyerCoupons(buyer) => {
            state.buyer(buyer)?;
            let coupons = state
                .coupons()
                .rev()
                .filter(|(_, c)| c.is_active(now))
                .take(LIST_ENTRIES_MAX)
                .map(|(id, c)| {
                    let used = c.used_by_buyer.get(&buyer).copied().unwrap_or(0);
                    coupon_view(id, c, Some(c.terms.per_buyer_limit.saturating_sub(used)))
                })
                .collect();
            Ok(View::Coupons(CouponList { coupons }))
        }
        Query::RedPacket(id) => Ok(View::RedPacket(red_packet_view(id, state.red_packet(id)?, now))),
        Query::Experiment(id) => Ok(experiment_view(id, state.experiment(id)?)),
        Query::Logistics(ref q) => crate::logistics::query(state, actor, q, now),
        Query::Me => Ok(crate::listing::me(state, actor)),
        Query::List(ref q) => crate::listing::query(state, actor, q, now),
        Query::Names { ref skus, ref merchants } => Ok(View::Names(NamesView {
            skus: skus
                .iter()
                .take(LIST_ENTRIES_MAX)
                .filter_map(|&id| Some((id.0, state.sku_title(state.sku(id).ok()?).to_string())))
                .collect(),
            merchants: merchants
                .iter()
                .take(LIST_ENTRIES_MAX)
                .filter_map(|&id| Some((id.0, state.merchant(id).ok()?.name.clone())))
                .collect(),
        })),
        Query::Skus(ref ids) => Ok(View::Skus(SkuList {
            skus: ids
                .iter()
                .take(LIST_ENTRIES_MAX)
                .filter_map(|&id| Some(sku_view(state, id, state.sku(id).ok()?)))
                .collect(),
        })),
        Query::RedPackets { sponsor } => {
            let red_packets = state
                .red_packets()
                .rev()
                .filter(|(_, p)| sponsor.is_none_or(|s| p.terms.sponsor == s))
                .take(LIST_ENTRIES_MAX)
                .map(|(id, p)| red_packet_view(id, p, now))
                .collect();
            Ok(View::RedPackets(RedPacketList { red_packets }))
        }
        Query::BuyerClaims(buyer) => {
            state.buyer(buyer)?;
            let claims = state
                .red_packets()
                .rev()
                .filter_map(|(id, p)| {
                    let amount = p.claims.get(&buyer)?;
                    Some(ClaimView {
                        red_packet_id: id.0,
                        buyer_id: buyer.0,
                        amount: amount.0,
                        currency: Code(p.terms.currency),
                        transfer_id: None,
                    })
                })
                .take(LIST_ENTRIES_MAX)
                .collect();
            Ok(View::Claims(ClaimList { claims }))
        }
    }
}

/// The answer to a write, from its outcome and what the state keeps unchanged since the
/// command: never from the clock or from counters that move later, so a repeat of the command
/// gets exactly its first answer.
pub fn outcome(state: &State, outcome: &Outcome) -> Result<View, CoreError> {
    if let Some(view) = crate::logistics::outcome(state, outcome) {
        return view;
    }
    match *outcome {
        Outcome::ApiKeyCreated { key } | Outcome::ApiKeyRevoked { key } => {
            let k = usize::try_from(key.0)
                .ok()
                .and_then(|i| state.api_keys().get(i.wrapping_sub(1)))
                .ok_or(CoreError::NotFound("api key"))?;
            Ok(View::ApiKey(api_key_view(key.0, k, matches!(outcome, Outcome::ApiKeyRevoked { .. }))))
        }
        Outcome::MerchantCreated { merchant } | Outcome::StoreZoneSet { merchant } => {
            merchant_view(state, merchant)
        }
        // The SKU as it is now: an edit's repeat shows the SKU, not a copy of it as then.
        Outcome::SkuUpdated { sku } => Ok(View::Sku(sku_view(state, sku, state.sku(sku)?))),
        Outcome::BuyerCreated { buyer } => buyer_view(state, buyer),
        Outcome::SkuCreated { sku, initial_stock } => {
            let mut view = sku_view(state, sku, state.sku(sku)?);
            (view.available, view.reserved, view.sold, view.received) = (initial_stock, 0, 0, initial_stock);
            view.campaign_ids.clear();
            Ok(View::Sku(view))
        }
        Outcome::Restocked { sku, received } => Ok(View::Restocked(RestockView { sku_id: sku.0, received })),
        Outcome::ToppedUp { transfer, balance } => {
            let t = state.ledger().transfer(transfer).ok_or(CoreError::NotFound("transfer"))?;
            let buyer_id = match t.credit {
                Owner::Buyer(b) => b.0,
                _ => 0,
            };
            Ok(View::TopUp(TopUpView {
                transfer_id: transfer.0,
                buyer_id,
                amount: t.amount.0,
                currency: Code(t.currency),
                balance,
            }))
        }
        // Promotions are answered as their command left them, at its time: a repeat gets the
        // first answer, whatever was taken, used or claimed since.
        Outcome::CampaignCreated { campaign } => {
            let c = state.campaign(campaign)?;
            let mut view = campaign_fields(state, campaign, c, c.created_at)?;
            (view.taken, view.remaining) = (0, c.quantity);
            Ok(View::Campaign(view))
        }
        Outcome::OrderPlaced { order, .. } => {
            order_view(state, order, Some((OrderStatus::PendingPayment, Amount::ZERO, false)))
        }
        Outcome::OrderPaid { order, commission, .. } => {
            order_view(state, order, Some((OrderStatus::Paid, commission, false)))
        }
        Outcome::OrderCancelled { order } => {
            order_view(state, order, Some((OrderStatus::Cancelled, Amount::ZERO, false)))
        }
        Outcome::OrderRefunded { order, restocked, .. } => {
            let commission = state.order(order)?.commission;
            order_view(state, order, Some((OrderStatus::Refunded, commission, restocked)))
        }
        Outcome::Ticked { expired, closed, repromised, tickets } => Ok(View::Expired(ExpiredView {
            expired,
            closed_red_packets: closed,
            repromised,
            tickets_opened: tickets,
        })),
        Outcome::CouponCreated { coupon } => {
            let mut view = coupon_view(coupon, state.coupon(coupon)?, None);
            (view.used_amount, view.used_count, view.disabled) = (0, 0, false);
            Ok(View::Coupon(view))
        }
        Outcome::CouponDisabled { coupon } => {
            let c = state.coupon(coupon)?;
            let mut view = coupon_view(coupon, c, None);
            let (amount, count) = c.used_when_disabled.unwrap_or((c.used_amount, c.used_count));
            (view.used_amount, view.used_count, view.disabled) = (amount.0, count, true);
            Ok(View::Coupon(view))
        }
        Outcome::RedPacketCreated { packet } => {
            let p = state.red_packet(packet)?;
            let mut view = red_packet_view(packet, p, p.created_at);
            (view.claimed_count, view.claimed_amount, view.returned) = (0, 0, 0);
            view.status = red_packet_status(p, false, p.created_at);
            Ok(View::RedPacket(view))
        }
        // A closed pool takes no more claims: as it closed, it stays.
        Outcome::RedPacketClosed { packet, .. } => {
            let p = state.red_packet(packet)?;
            Ok(View::RedPacket(red_packet_view(packet, p, p.closed_at)))
        }
        Outcome::ExperimentCreated { experiment } => {
            Ok(experiment_view(experiment, state.experiment(experiment)?))
        }
        Outcome::RedPacketClaimed { packet, amount, transfer } => Ok(View::Claim(ClaimView {
            red_packet_id: packet.0,
            buyer_id: match state.ledger().transfer(transfer).map(|t| t.credit) {
                Some(Owner::Buyer(b)) => b.0,
                _ => 0,
            },
            amount: amount.0,
            currency: Code(state.red_packet(packet)?.terms.currency),
            transfer_id: Some(transfer.0),
        })),
        // The cart as it is now, like an edited SKU: a repeat shows the cart, not a copy.
        Outcome::CartChanged { buyer, .. } => cart_view(state, buyer, state.clock()),
        Outcome::CheckedOut { first, orders, total } => checkout_view(state, first, orders, total),
        // As they are now, like an edited SKU.
        Outcome::CategoryCreated { category } | Outcome::CategoryMoved { category } => {
            Ok(View::Category(category_view(state, category)?))
        }
        Outcome::ProductCreated { product }
        | Outcome::VariantAdded { product, .. }
        | Outcome::ProductMoved { product } => product_view(state, product),
        // As it is now: a sale's terms change after the command that changed them.
        Outcome::CampaignUpdated { campaign } | Outcome::CampaignEnded { campaign } => {
            campaign_view(state, campaign, state.clock())
        }
        Outcome::CampaignFeatured { campaign } => {
            Ok(View::Featured(FeaturedView { campaign_id: campaign.map(|c| c.0) }))
        }
        // Answered by `logistics::outcome` above.
        _ => Err(CoreError::NotFound("the answer to this command")),
    }
}
