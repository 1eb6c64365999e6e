//! What the API shows: read queries and the rendering of outcomes, run on the sequencer thread
//! against the state, and the JSON shapes they produce.
//!
//! A write's answer is rendered from its [`Outcome`] plus fields that never change once written
//! (an order's lines, a transfer), so a repeated idempotency key gets the first answer again.

use elevens_core::ledger::Account;
use elevens_core::*;
use serde::Serialize;
use utoipa::ToSchema;

pub mod listing;
pub mod logistics;

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
    RedPackets,
    /// Coupons a buyer can use now, with what is left of its allowance.
    BuyerCoupons(BuyerId),
    /// A buyer's red-packet shares.
    BuyerClaims(BuyerId),
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
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SkuList {
    pub skus: Vec<SkuView>,
}

/// Labels by id: `(id, title)` for SKUs, `(id, name)` for merchants.
#[derive(Debug, Serialize, ToSchema)]
pub struct NamesView {
    pub skus: Vec<(u64, String)>,
    pub merchants: Vec<(u64, String)>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VariantView {
    pub name: String,
    pub weight: u32,
}

/// An A/B experiment's definition; its results are at `/v1/experiments/{id}/results`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentView {
    pub experiment_id: u64,
    pub name: String,
    /// The first is the control.
    pub variants: Vec<VariantView>,
    pub starts_at: u64,
    pub ends_at: u64,
}

pub fn experiment_view(id: ExperimentId, e: &NewExperiment) -> View {
    View::Experiment(ExperimentView {
        experiment_id: id.0,
        name: e.name.clone(),
        variants: e.variants.iter().map(|v| VariantView { name: v.name.clone(), weight: v.weight }).collect(),
        starts_at: e.starts_at.0,
        ends_at: e.ends_at.0,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CouponView {
    pub coupon_id: u64,
    /// `platform`, or `merchant:<id>`: who pays for the discount.
    pub funded_by: String,
    pub merchant_id: Option<u64>,
    /// `fixed` or `percent`.
    pub kind: &'static str,
    pub amount_off: Option<u64>,
    pub percent_bps: Option<u16>,
    pub cap: Option<u64>,
    #[schema(value_type = String)]
    pub currency: Code,
    pub min_spend: u64,
    pub starts_at: u64,
    pub ends_at: u64,
    pub per_buyer_limit: u32,
    pub budget_amount: Option<u64>,
    pub budget_uses: Option<u64>,
    pub used_amount: u64,
    pub used_count: u64,
    pub disabled: bool,
    /// For a buyer's list: uses left to that buyer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses_left: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CouponList {
    pub coupons: Vec<CouponView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedPacketView {
    pub red_packet_id: u64,
    pub funded_by: String,
    pub merchant_id: Option<u64>,
    pub amount: u64,
    pub count: u32,
    #[schema(value_type = String)]
    pub currency: Code,
    pub starts_at: u64,
    pub ends_at: u64,
    pub claimed_count: u64,
    pub claimed_amount: u64,
    /// What went back to the sponsor when the pool closed.
    pub returned: u64,
    /// `scheduled`, `open`, `ended` (time is up, closing) or `closed`.
    pub status: &'static str,
    pub server_time: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedPacketList {
    pub red_packets: Vec<RedPacketView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimView {
    pub red_packet_id: u64,
    pub buyer_id: u64,
    pub amount: u64,
    #[schema(value_type = String)]
    pub currency: Code,
    /// Set in the answer to the claim itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimList {
    pub claims: Vec<ClaimView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DiscountView {
    pub coupon_id: u64,
    pub amount: u64,
    pub funded_by: String,
}

fn sponsor_name(sponsor: Sponsor) -> (String, Option<u64>) {
    match sponsor {
        Sponsor::Platform => ("platform".into(), None),
        Sponsor::Merchant(m) => (format!("merchant:{m}"), Some(m.0)),
    }
}

fn coupon_view(id: CouponId, c: &Coupon, uses_left: Option<u32>) -> CouponView {
    let (funded_by, merchant_id) = sponsor_name(c.terms.sponsor);
    let (kind, amount_off, percent_bps, cap) = match c.terms.rule {
        DiscountRule::Fixed { amount } => ("fixed", Some(amount.0), None, None),
        DiscountRule::Percent { bps, cap } => ("percent", None, Some(bps), cap.map(|c| c.0)),
    };
    CouponView {
        coupon_id: id.0,
        funded_by,
        merchant_id,
        kind,
        amount_off,
        percent_bps,
        cap,
        currency: Code(c.terms.currency),
        min_spend: c.terms.min_spend.0,
        starts_at: c.terms.starts_at.0,
        ends_at: c.terms.ends_at.0,
        per_buyer_limit: c.terms.per_buyer_limit,
        budget_amount: c.terms.budget_amount.map(|a| a.0),
        budget_uses: c.terms.budget_uses,
        used_amount: c.used_amount.0,
        used_count: c.used_count,
        disabled: c.disabled,
        uses_left,
    }
}

fn red_packet_status(p: &RedPacket, closed: bool, now: Millis) -> &'static str {
    if closed {
        "closed"
    } else if now < p.terms.starts_at {
        "scheduled"
    } else if now < p.terms.ends_at {
        "open"
    } else {
        "ended"
    }
}

fn red_packet_view(id: RedPacketId, p: &RedPacket, now: Millis) -> RedPacketView {
    let (funded_by, merchant_id) = sponsor_name(p.terms.sponsor);
    let status = red_packet_status(p, p.closed, now);
    RedPacketView {
        red_packet_id: id.0,
        funded_by,
        merchant_id,
        amount: p.terms.amount.0,
        count: p.terms.count,
        currency: Code(p.terms.currency),
        starts_at: p.terms.starts_at.0,
        ends_at: p.terms.ends_at.0,
        claimed_count: p.claims.len() as u64,
        claimed_amount: p.claimed_amount.0,
        returned: p.returned.0,
        status,
        server_time: now.0,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub api_key_id: u64,
    pub role: &'static str,
    pub merchant_id: Option<u64>,
    pub buyer_id: Option<u64>,
    pub carrier_id: Option<u64>,
    pub revoked: bool,
    /// The secret, shown once, in the answer that creates the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantView {
    pub merchant_id: u64,
    pub name: String,
    pub commission_bps: u16,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BuyerView {
    pub buyer_id: u64,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SkuView {
    pub sku_id: u64,
    pub merchant_id: u64,
    pub title: String,
    pub description: String,
    /// Minor units.
    pub price: u64,
    #[schema(value_type = String)]
    pub currency: Code,
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
    pub received: u64,
    pub campaign_ids: Vec<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RestockView {
    pub sku_id: u64,
    pub received: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopUpView {
    pub transfer_id: u64,
    pub buyer_id: u64,
    pub amount: u64,
    #[schema(value_type = String)]
    pub currency: Code,
    /// The wallet's balance right after this top-up.
    pub balance: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignView {
    pub campaign_id: u64,
    pub sku_id: u64,
    pub flash_price: u64,
    #[schema(value_type = String)]
    pub currency: Code,
    pub quantity: u64,
    pub taken: u64,
    pub remaining: u64,
    pub per_buyer_limit: u32,
    /// Milliseconds since the Unix epoch.
    pub starts_at: u64,
    pub ends_at: u64,
    /// `scheduled`, `open` or `ended`, at `server_time`.
    pub status: &'static str,
    /// The sequencer's clock when this was read: draw the countdown as `starts_at - server_time`.
    pub server_time: u64,
    pub starts_in_ms: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LineView {
    pub sku_id: u64,
    pub quantity: u32,
    pub unit_price: u64,
    pub campaign_id: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub order_id: u64,
    pub buyer_id: u64,
    pub merchant_id: u64,
    /// `pending_payment`, `paid`, `shipped`, `delivered`, `cancelled`, `expired` or `refunded`.
    pub status: &'static str,
    #[schema(value_type = String)]
    pub currency: Code,
    pub total: u64,
    pub commission: u64,
    pub placed_at: u64,
    /// When the reservation lapses if the order is not paid.
    pub expires_at: u64,
    pub restocked: bool,
    #[schema(value_type = Vec<LineView>)]
    pub lines: smallvec::SmallVec<[LineView; 1]>,
    /// The lines' sum, before coupons.
    pub subtotal: u64,
    /// The shipping fee, once per order (in `total`).
    pub shipping: u64,
    /// Refunded so far, lines and shipping.
    pub refunded: u64,
    pub discounts: Vec<DiscountView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExpiredView {
    /// Reservations released.
    pub expired: u32,
    /// Parcels booked again after missing their dispatch day.
    pub repromised: u32,
    /// Service tickets the engine opened for breaches.
    pub tickets_opened: u32,
    /// Red packets closed, their rest returned to the sponsor.
    pub closed_red_packets: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    pub transfer_id: u64,
    pub kind: &'static str,
    /// Positive for a credit to this account, negative for a debit.
    pub amount: i64,
    pub counterparty: String,
    pub order_id: Option<u64>,
    pub at: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    #[schema(value_type = String)]
    pub currency: Code,
    pub balance: i64,
    pub entries_total: u64,
    /// The newest entries (older than `before`, if asked), newest first.
    pub entries: Vec<EntryView>,
    /// The cursor of the next, older page (`?before=`), absent at the oldest entry.
    pub next_before: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WalletView {
    pub owner: String,
    pub accounts: Vec<AccountView>,
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

pub fn owner_name(owner: Owner) -> String {
    match owner {
        Owner::External => "external".into(),
        Owner::Platform => "platform".into(),
        Owner::Merchant(m) => format!("merchant:{m}"),
        Owner::Buyer(b) => format!("buyer:{b}"),
        Owner::Escrow(p) => format!("escrow:red_packet:{p}"),
    }
}

pub(crate) fn role_of(actor: Actor) -> (&'static str, Option<u64>, Option<u64>, Option<u64>) {
    match actor {
        Actor::Admin => ("admin", None, None, None),
        Actor::Service => ("service", None, None, None),
        Actor::Merchant(m) => ("merchant", Some(m.0), None, None),
        Actor::Buyer(b) => ("buyer", None, Some(b.0), None),
        Actor::Carrier(c) => ("carrier", None, None, Some(c.0)),
        Actor::Viewer => ("viewer", None, None, None),
    }
}

pub(crate) fn merchant_view(state: &State, id: MerchantId) -> Result<View, CoreError> {
    let m = state.merchant(id)?;
    Ok(View::Merchant(MerchantView {
        merchant_id: id.0,
        name: m.name.clone(),
        commission_bps: m.commission_bps,
    }))
}

pub(crate) fn buyer_view(state: &State, id: BuyerId) -> Result<View, CoreError> {
    Ok(View::Buyer(BuyerView { buyer_id: id.0, name: state.buyer(id)?.name.clone() }))
}

pub(crate) fn sku_view(state: &State, id: SkuId, s: &Sku) -> SkuView {
    SkuView {
        sku_id: id.0,
        merchant_id: s.merchant().0,
        title: state.sku_title(s).to_string(),
        description: state.sku_description(s).to_string(),
        price: s.price.0,
        currency: Code(s.currency),
        available: s.available,
        reserved: s.reserved,
        sold: s.sold,
        received: s.received,
        campaign_ids: s.campaigns.iter().map(|c| c.0).collect(),
    }
}

fn campaign_view(state: &State, id: CampaignId, now: Millis) -> Result<View, CoreError> {
    Ok(View::Campaign(campaign_fields(state, id, state.campaign(id)?, now)?))
}

pub(crate) fn campaign_fields(
    state: &State,
    id: CampaignId,
    c: &Campaign,
    now: Millis,
) -> Result<CampaignView, CoreError> {
    let currency = state.sku(c.sku)?.currency;
    let status = if now < c.starts_at {
        "scheduled"
    } else if now < c.ends_at {
        "open"
    } else {
        "ended"
    };
    Ok(CampaignView {
        campaign_id: id.0,
        sku_id: c.sku.0,
        flash_price: c.flash_price.0,
        currency: Code(currency),
        quantity: c.quantity,
        taken: c.taken,
        remaining: c.quantity - c.taken,
        per_buyer_limit: c.per_buyer_limit,
        starts_at: c.starts_at.0,
        ends_at: c.ends_at.0,
        status,
        server_time: now.0,
        starts_in_ms: c.starts_at.0.saturating_sub(now.0),
    })
}

/// An order as it is now, or, with `as_of`, as the outcome that is being answered left it.
pub(crate) fn order_view(
    state: &State,
    id: OrderId,
    as_of: Option<(OrderStatus, Amount, bool)>,
) -> Result<View, CoreError> {
    let o = state.order(id)?;
    let (status, commission, restocked) = as_of.unwrap_or((o.status, o.commission, o.restocked()));
    Ok(View::Order(OrderView {
        order_id: id.0,
        buyer_id: o.buyer().0,
        merchant_id: o.merchant().0,
        status: status.name(),
        currency: Code(o.currency),
        total: o.total.0,
        commission: commission.0,
        placed_at: o.placed_at.0,
        expires_at: o.expires_at().0,
        restocked,
        shipping: state.order_shipping(id).0,
        // As of an answer: a refund's answer shows the order refunded whole, the others none.
        refunded: match as_of {
            None => state.refund_account(id).map_or(0, |a| a.total.0),
            Some((OrderStatus::Refunded, ..)) => o.total.0,
            Some(_) => 0,
        },
        subtotal: o.total.0 + state.order_discounts(id).iter().map(|d| d.amount.0).sum::<u64>()
            - state.order_shipping(id).0,
        discounts: state
            .order_discounts(id)
            .iter()
            .map(|d| DiscountView {
                coupon_id: d.coupon.0,
                amount: d.amount.0,
                funded_by: sponsor_name(d.funded_by).0,
            })
            .collect(),
        lines: o
            .lines
            .iter()
            .map(|l| LineView {
                sku_id: l.sku.0,
                quantity: l.quantity(),
                unit_price: l.unit_price.0,
                campaign_id: l.campaign().map(|c| c.0),
            })
            .collect(),
    }))
}

fn account_view(
    state: &State,
    account: &Account,
    entries_max: usize,
    before: Option<TransferId>,
) -> AccountView {
    let ledger = state.ledger();
    let mut history: Box<dyn Iterator<Item = _>> = match before {
        None => Box::new(ledger.history(account.owner, account.currency)),
        Some(before) => Box::new(ledger.history_before(account.owner, account.currency, before)),
    };
    let entries: Vec<EntryView> = history
        .by_ref()
        .take(entries_max)
        .map(|(id, t)| {
            let (sign, counterparty) = if t.credit == account.owner { (1, t.debit) } else { (-1, t.credit) };
            EntryView {
                transfer_id: id.0,
                kind: t.kind.name(),
                amount: sign * t.amount.0 as i64,
                counterparty: owner_name(counterparty),
                order_id: t.order.map(|o| o.0),
                at: t.at.0,
            }
        })
        .collect();
    let more = history.next().is_some();
    AccountView {
        currency: Code(account.currency),
        balance: account.balance,
        entries_total: account.entries,
        next_before: entries.last().filter(|_| more).map(|e| e.transfer_id),
        entries,
    }
}

/// Who may read what. Writes are checked by the state machine itself; reads here.
fn may_read(state: &State, actor: Actor, query: &Query) -> Result<bool, CoreError> {
    Ok(match *query {
        Query::Sku(_) | Query::Campaign(_) | Query::Merchant(_) => true,
        Query::Coupon(_) | Query::Coupons { .. } | Query::RedPacket(_) | Query::RedPackets => true,
        Query::Buyer(b) | Query::BuyerCoupons(b) | Query::BuyerClaims(b) => actor.may_act_for_buyer(b),
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
        Query::Order(id) => order_view(state, id, None),
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
        Query::RedPackets => {
            let red_packets = state
                .red_packets()
                .rev()
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
            let (role, merchant_id, buyer_id, carrier_id) = role_of(k.acts_as);
            Ok(View::ApiKey(ApiKeyView {
                api_key_id: key.0,
                role,
                merchant_id,
                buyer_id,
                carrier_id,
                revoked: matches!(outcome, Outcome::ApiKeyRevoked { .. }),
                key: None,
            }))
        }
        Outcome::MerchantCreated { merchant } => merchant_view(state, merchant),
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
        // Answered by `logistics::outcome` above.
        _ => Err(CoreError::NotFound("the answer to this command")),
    }
}
