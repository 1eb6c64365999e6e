//! elevens-analytics: the live business figures of the big screen, folded from the engine's
//! events — never from the state machine's hot path.
//!
//! The figures fold the event feed's events ([`elevens_feed::FeedEvent`]): one derivation of
//! each outcome serves the feed, the webhooks and these figures alike. The engine hands a
//! batch's events to [`Analytics::fold`] once the feed has them, after the batch is durable,
//! so no figure ever counts a command that could still be lost. Sums are exact integers in minor units: GMV is what buyers paid for orders,
//! less what was refunded. On start, [`Analytics::from_state`] rebuilds the cumulative figures
//! from the recovered orders; the per-second window restarts empty (it is live by nature).
//! Views come from storefronts through the API and are not journaled: a funnel's view count
//! restarts at zero with the process.

pub mod experiments;

use elevens_core::{Currency, Millis, OrderId, OrderStatus, State};
use elevens_feed::{Code, FeedEvent, Kind, LineItem};
use experiments::{Experiment, ExperimentResults, VariantStats};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

/// Seconds kept for the per-second figures: 15 minutes.
pub const WINDOW_S: usize = 900;

/// A campaign as the big screen shows it: its name, window and quantity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CampaignTimes {
    pub campaign_id: u64,
    pub sku_id: u64,
    /// Empty for a sale created without a name.
    pub name: String,
    pub starts_at: u64,
    pub ends_at: u64,
    pub quantity: u64,
    pub cancelled: bool,
}

impl CampaignTimes {
    fn of(id: u64, c: &elevens_core::Campaign) -> CampaignTimes {
        CampaignTimes {
            campaign_id: id,
            sku_id: c.sku.0,
            name: c.name.clone(),
            starts_at: c.starts_at.0,
            ends_at: c.ends_at.0,
            quantity: c.quantity,
            cancelled: c.cancelled,
        }
    }

    pub fn is_open(&self, now: Millis) -> bool {
        !self.cancelled && self.starts_at <= now.0 && now.0 < self.ends_at
    }

    fn is_over(&self, now: Millis) -> bool {
        self.cancelled || now.0 >= self.ends_at
    }

    /// `scheduled`, `open`, `ended` or `cancelled` at `now`, as the core names them.
    pub fn status(&self, now: Millis) -> &'static str {
        elevens_core::promotions::campaigns::status(
            self.cancelled,
            Millis(self.starts_at),
            Millis(self.ends_at),
            now,
        )
    }
}

/// A line's amount before order-level coupons: what the figures by SKU and campaign count.
fn amount(line: &LineItem) -> u64 {
    line.unit_price.saturating_mul(u64::from(line.quantity))
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Second {
    /// Seconds since the Unix epoch.
    pub t: u64,
    pub orders: u64,
    pub payments: u64,
    /// GMV paid in this second, less refunds, in the primary currency's minor units.
    pub gmv: i64,
}

/// One currency's cumulative figures, since the first order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Paid, less refunded, in minor units.
    pub gmv: i128,
    pub paid_orders: u64,
    pub refunded_orders: u64,
    /// Refunded, in minor units.
    pub refunds: u128,
    pub placed_orders: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Funnel {
    pub views: u64,
    /// Orders with a line of the campaign.
    pub orders: u64,
    pub paid: u64,
    /// Paid minus refunded, at the campaign's prices (line amounts).
    pub gmv: i128,
}

/// Cumulative figures add up part by part ([`Analytics::absorb`]).
impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, part: Totals) {
        let Totals { gmv, paid_orders, refunded_orders, refunds, placed_orders } = part;
        self.gmv += gmv;
        self.paid_orders += paid_orders;
        self.refunded_orders += refunded_orders;
        self.refunds += refunds;
        self.placed_orders += placed_orders;
    }
}

impl std::ops::AddAssign for Funnel {
    fn add_assign(&mut self, part: Funnel) {
        let Funnel { views, orders, paid, gmv } = part;
        self.views += views;
        self.orders += orders;
        self.paid += paid;
        self.gmv += gmv;
    }
}

/// A store's figures: since the start, and for the day (in the store's time zone) of its latest
/// payment or refund.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MerchantFigures {
    /// Paid minus refunded, in minor units.
    pub gmv: i128,
    pub paid_orders: u64,
    /// Days since the Unix epoch, in the store's time zone: the day the two figures below are of.
    pub day: u64,
    pub day_gmv: i128,
    pub day_paid_orders: u64,
    /// Storefront views of the store's SKUs that day (not journaled: since this process
    /// started).
    pub day_views: u64,
}

/// The day of `at` in a zone `utc_offset_minutes` from UTC, in days since the Unix epoch.
fn local_day(at: Millis, utc_offset_minutes: i16) -> u64 {
    u64::from(elevens_core::logistics::calendar::local_day_and_minute(at.0, utc_offset_minutes).0)
}

impl MerchantFigures {
    fn add(&mut self, at: Millis, utc_offset_minutes: i16, gmv: i128, paid_orders: u64) {
        self.gmv += gmv;
        self.paid_orders += paid_orders;
        if self.roll(local_day(at, utc_offset_minutes)) {
            self.day_gmv += gmv;
            self.day_paid_orders += paid_orders;
        }
    }

    fn view(&mut self, at: Millis, utc_offset_minutes: i16) {
        if self.roll(local_day(at, utc_offset_minutes)) {
            self.day_views += 1;
        }
    }

    /// Moves the day's figures on to `day` if it is later; whether `day` is the figures' day.
    fn roll(&mut self, day: u64) -> bool {
        if day > self.day {
            (self.day, self.day_gmv, self.day_paid_orders, self.day_views) = (day, 0, 0, 0);
        }
        day == self.day
    }

    fn absorb(&mut self, part: MerchantFigures) {
        self.gmv += part.gmv;
        self.paid_orders += part.paid_orders;
        if part.day > self.day {
            (self.day, self.day_gmv, self.day_paid_orders, self.day_views) =
                (part.day, part.day_gmv, part.day_paid_orders, part.day_views);
        } else if part.day == self.day {
            self.day_gmv += part.day_gmv;
            self.day_paid_orders += part.day_paid_orders;
            self.day_views += part.day_views;
        }
    }

    /// The figures as of `now`: the day's are zero once its day has passed.
    pub fn as_of(mut self, now: Millis, utc_offset_minutes: i16) -> MerchantFigures {
        self.roll(local_day(now, utc_offset_minutes));
        self
    }
}

/// The time zones of the stores not at UTC.
fn zones_of(state: &State) -> FxHashMap<u64, i16> {
    state
        .merchants()
        .filter(|(_, m)| m.utc_offset_minutes != 0)
        .map(|(id, m)| (id.0, m.utc_offset_minutes))
        .collect()
}

#[derive(Debug, Default)]
pub struct Analytics {
    by_currency: BTreeMap<Currency, Totals>,
    seconds: VecDeque<Second>,
    sku_gmv: FxHashMap<u64, (i128, i64)>,
    merchants: FxHashMap<u64, MerchantFigures>,
    /// The stores' time zones, as offsets from UTC in minutes (those not at UTC).
    zones: FxHashMap<u64, i16>,
    /// Each SKU's merchant, at the SKU's index (ids are dense from 1): a view names its SKU
    /// only. 4 bytes a SKU.
    sku_merchants: Vec<u32>,
    funnels: BTreeMap<u64, Funnel>,
    campaigns: BTreeMap<u64, CampaignTimes>,
    /// The operator's choice for the big screen.
    featured: Option<u64>,
    experiments: BTreeMap<u64, Experiment>,
    sku_edits: u64,
}

/// The headline figures (`GET /v1/analytics/summary`).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The currency of the figures below: the one with the most paid orders.
    pub currency: Option<String>,
    pub gmv: i128,
    pub paid_orders: u64,
    /// GMV over paid orders, rounded down; 0 before the first.
    pub aov: i128,
    pub refunded_orders: u64,
    pub refunds: u128,
    pub placed_orders: u64,
    /// In the last complete second before `now`.
    pub orders_per_s: u64,
    pub payments_per_s: u64,
    /// The most in any one second of the window.
    pub peak_orders_per_s: u64,
    pub peak_payments_per_s: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Ranked {
    pub id: u64,
    pub gmv: i128,
    /// Units sold, net of refunds (SKUs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<i64>,
}

impl Analytics {
    /// The cumulative figures of every order in `state` (the per-second window starts empty).
    pub fn from_state(state: &State) -> Analytics {
        let mut analytics = Analytics::catalogue_of(state);
        analytics.absorb(Analytics::of_orders(state, 0..state.orders().len()));
        analytics
    }

    /// The campaigns and experiments of `state`, without its orders: the base a restart adds
    /// [`Analytics::of_orders`] parts to.
    pub fn catalogue_of(state: &State) -> Analytics {
        let mut analytics = Analytics { zones: zones_of(state), ..Analytics::default() };
        analytics.sku_merchants = state.skus().map(|(_, s)| s.merchant().0 as u32).collect();
        for (id, c) in state.campaigns() {
            analytics.campaigns.insert(id.0, CampaignTimes::of(id.0, c));
        }
        analytics.featured = state.featured_campaign().map(|c| c.0);
        for (id, e) in state.experiments() {
            analytics.fold_kind(Millis(0), None, None, &elevens_feed::experiment_created(id.0, e));
        }
        analytics
    }

    /// The cumulative figures of the orders at `positions` (oldest first) alone, so that a
    /// restart folds ten million orders in parts on both cores. Experiments count nothing here:
    /// a rebuilt experiment has no exposures yet (views are not journaled), so its buyers'
    /// payments would not count either.
    pub fn of_orders(state: &State, positions: std::ops::Range<usize>) -> Analytics {
        let mut analytics = Analytics { zones: zones_of(state), ..Analytics::default() };
        // Looked up by position: `orders().skip(n)` would walk the first n orders one by one.
        let ids = OrderId(positions.start as u64 + 1)..OrderId(positions.end as u64 + 1);
        for order in positions.filter_map(|i| state.order(OrderId(i as u64 + 1)).ok()) {
            let (at, currency) = (order.placed_at, order.currency);
            let lines = elevens_feed::order_lines(order, None, |_| 0);
            analytics.placed(at, currency, &lines);
            if matches!(order.status, OrderStatus::Paid | OrderStatus::Refunded) {
                let (buyer, merchant) = (order.buyer().0, order.merchant().0);
                analytics.paid(at, buyer, merchant, currency, order.total.0, &lines);
            }
        }
        // The refunds so far, each order's as one: what the figures subtract adds up alike.
        // Walked apart, over the few orders with a refund: a lookup for every order would cost
        // a restart of ten million orders as many map searches.
        for (id, account) in state.refund_accounts(ids) {
            let Ok(order) = state.order(id) else { continue };
            let units: Vec<(u8, u32)> =
                account.units.iter().enumerate().map(|(p, &n)| (p as u8, n)).filter(|l| l.1 > 0).collect();
            let refunded = elevens_feed::order_lines(order, Some(&units), |_| 0);
            let complete = order.status == OrderStatus::Refunded;
            let (merchant, currency) = (order.merchant().0, order.currency);
            analytics.refunded(order.placed_at, merchant, currency, account.total.0, &refunded, complete);
        }
        analytics.seconds.clear();
        analytics
    }

    /// Adds `part`'s cumulative figures to these (totals by currency, GMV by SKU and merchant,
    /// funnels; its campaigns and experiments where these have none). The per-second window
    /// stays this one's.
    pub fn absorb(&mut self, part: Analytics) {
        for (currency, totals) in part.by_currency {
            *self.by_currency.entry(currency).or_default() += totals;
        }
        for (sku, (gmv, units)) in part.sku_gmv {
            let entry = self.sku_gmv.entry(sku).or_default();
            entry.0 += gmv;
            entry.1 += units;
        }
        for (merchant, figures) in part.merchants {
            self.merchants.entry(merchant).or_default().absorb(figures);
        }
        for (merchant, zone) in part.zones {
            self.zones.entry(merchant).or_insert(zone);
        }
        for (campaign, funnel) in part.funnels {
            *self.funnels.entry(campaign).or_default() += funnel;
        }
        for (id, times) in part.campaigns {
            self.campaigns.entry(id).or_insert(times);
        }
        self.featured = self.featured.or(part.featured);
        for (id, experiment) in part.experiments {
            self.experiments.entry(id).or_insert(experiment);
        }
    }

    fn second(&mut self, at: Millis) -> &mut Second {
        let t = at.0 / 1_000;
        // Nearly every event is of the newest second: found without the window's arithmetic.
        let newest = self.seconds.len().wrapping_sub(1);
        if self.seconds.get(newest).is_some_and(|s| s.t == t) {
            return &mut self.seconds[newest];
        }
        let last = self.seconds.back().map_or(0, |s| s.t);
        if self.seconds.is_empty() || t > last {
            // Seconds with nothing in them are there too, so the chart's x axis is time.
            let from =
                if self.seconds.is_empty() { t } else { (last + 1).max(t.saturating_sub(WINDOW_S as u64)) };
            for s in from..=t {
                self.seconds.push_back(Second { t: s, ..Second::default() });
                if self.seconds.len() > WINDOW_S {
                    self.seconds.pop_front();
                }
            }
        }
        // Time never goes backwards in the engine; an older event lands in its own second if
        // that is still in the window, else in the oldest.
        let back = self.seconds.back().map_or(t, |s| s.t);
        let index = self.seconds.len() - 1 - (back.saturating_sub(t) as usize).min(self.seconds.len() - 1);
        &mut self.seconds[index]
    }

    /// Folds one event of the feed (the events without a figure are ignored).
    pub fn fold(&mut self, event: &FeedEvent) {
        self.fold_kind(Millis(event.at), event.merchant, event.buyer, &event.kind);
    }

    fn fold_kind(&mut self, at: Millis, merchant: Option<u64>, buyer: Option<u64>, kind: &Kind) {
        let (merchant, buyer) = (merchant.unwrap_or(0), buyer.unwrap_or(0));
        match kind {
            Kind::OrderPlaced { currency: Code(currency), lines, .. } => self.placed(at, *currency, lines),
            Kind::OrderPaid { currency: Code(currency), total, lines, .. } => {
                self.paid(at, buyer, merchant, *currency, *total, lines)
            }
            Kind::OrderRefunded { currency: Code(currency), amount, lines, complete, .. } => {
                self.refunded(at, merchant, *currency, *amount, lines, *complete)
            }
            Kind::SkuUpdated { .. } => self.sku_edits += 1,
            Kind::SkuCreated { sku, .. } => self.sku_created(*sku, merchant),
            Kind::ExperimentCreated { experiment, name, variants, starts_at, ends_at } => {
                let experiment = Experiment {
                    id: *experiment,
                    name: name.clone(),
                    names: variants.iter().map(|v| v.name.clone()).collect(),
                    weights: variants.iter().map(|v| v.weight).collect(),
                    starts_at: *starts_at,
                    ends_at: *ends_at,
                    variants: variants.iter().map(|_| VariantStats::default()).collect(),
                };
                self.experiments.insert(experiment.id, experiment);
            }
            Kind::CampaignCreated { campaign, sku, name, quantity, starts_at, ends_at, .. } => {
                let times = CampaignTimes {
                    campaign_id: *campaign,
                    sku_id: *sku,
                    name: name.clone(),
                    starts_at: *starts_at,
                    ends_at: *ends_at,
                    quantity: *quantity,
                    cancelled: false,
                };
                self.campaigns.insert(*campaign, times);
            }
            Kind::CampaignUpdated { campaign, sku, name, quantity, starts_at, ends_at, status, .. } => {
                let times = CampaignTimes {
                    campaign_id: *campaign,
                    sku_id: *sku,
                    name: name.clone(),
                    starts_at: *starts_at,
                    ends_at: *ends_at,
                    quantity: *quantity,
                    cancelled: status == "cancelled",
                };
                self.campaigns.insert(*campaign, times);
            }
            Kind::CampaignFeatured { campaign } => self.featured = *campaign,
            // The day's figures count on from the new zone's day.
            Kind::MerchantUpdated { utc_offset_minutes } => {
                self.zones.insert(merchant, *utc_offset_minutes);
            }
            _ => {}
        }
    }

    fn sku_created(&mut self, sku: u64, merchant: u64) {
        let Some(index) = usize::try_from(sku).ok().and_then(|s| s.checked_sub(1)) else { return };
        if index >= self.sku_merchants.len() {
            self.sku_merchants.resize(index + 1, 0);
        }
        self.sku_merchants[index] = u32::try_from(merchant).unwrap_or(0);
    }

    /// A storefront showed a SKU (and its campaign, if any) to a buyer: not journaled, so not
    /// an event of the feed.
    pub fn view(&mut self, at: Millis, sku: u64, campaign: Option<u64>, buyer: u64) {
        let index = usize::try_from(sku).ok().and_then(|s| s.checked_sub(1));
        if let Some(&merchant) = index.and_then(|i| self.sku_merchants.get(i)).filter(|&&m| m != 0) {
            let zone = self.zone(u64::from(merchant));
            self.merchants.entry(u64::from(merchant)).or_default().view(at, zone);
        }
        for e in self.experiments.values_mut().filter(|e| e.running(at.0)) {
            let variant = experiments::assign_in(e, buyer);
            e.variants[variant].exposed.insert(buyer);
        }
        if let Some(campaign) = campaign {
            self.funnels.entry(campaign).or_default().views += 1;
        }
    }

    fn placed(&mut self, at: Millis, currency: Currency, lines: &[LineItem]) {
        self.by_currency.entry(currency).or_default().placed_orders += 1;
        self.second(at).orders += 1;
        for campaign in campaigns(lines) {
            self.funnels.entry(campaign).or_default().orders += 1;
        }
    }

    fn paid(
        &mut self,
        at: Millis,
        buyer: u64,
        merchant: u64,
        currency: Currency,
        total: u64,
        lines: &[LineItem],
    ) {
        for e in self.experiments.values_mut().filter(|e| e.running(at.0)) {
            let variant = experiments::assign_in(e, buyer);
            let stats = &mut e.variants[variant];
            if stats.exposed.contains(&buyer) {
                stats.converted.insert(buyer);
                stats.orders += 1;
                stats.sum += u128::from(total);
                stats.sum_sq += (total as f64).powi(2);
            }
        }
        let totals = self.by_currency.entry(currency).or_default();
        totals.gmv += i128::from(total);
        totals.paid_orders += 1;
        let second = self.second(at);
        second.payments += 1;
        second.gmv = second.gmv.saturating_add(total as i64);
        let zone = self.zone(merchant);
        self.merchants.entry(merchant).or_default().add(at, zone, i128::from(total), 1);
        self.lines(lines, 1);
        for campaign in campaigns(lines) {
            self.funnels.entry(campaign).or_default().paid += 1;
        }
    }

    /// A refund of `amount` (shipping included) and the units of `lines`; `complete`: the
    /// order has nothing left to refund, and counts as a refunded order.
    fn refunded(
        &mut self,
        at: Millis,
        merchant: u64,
        currency: Currency,
        amount: u64,
        lines: &[LineItem],
        complete: bool,
    ) {
        let totals = self.by_currency.entry(currency).or_default();
        totals.gmv -= i128::from(amount);
        totals.refunded_orders += u64::from(complete);
        totals.refunds += u128::from(amount);
        let second = self.second(at);
        second.gmv = second.gmv.saturating_sub(amount as i64);
        let zone = self.zone(merchant);
        self.merchants.entry(merchant).or_default().add(at, zone, -i128::from(amount), 0);
        self.lines(lines, -1);
    }

    fn lines(&mut self, lines: &[LineItem], sign: i64) {
        for line in lines {
            let amount = i128::from(amount(line)) * i128::from(sign);
            let entry = self.sku_gmv.entry(line.sku).or_default();
            entry.0 += amount;
            entry.1 += i64::from(line.quantity) * sign;
            if let Some(campaign) = line.campaign {
                self.funnels.entry(campaign).or_default().gmv += amount;
            }
        }
    }

    /// Each currency's cumulative figures (for `/metrics`).
    pub fn totals(&self) -> impl Iterator<Item = (Currency, Totals)> + '_ {
        self.by_currency.iter().map(|(currency, totals)| (*currency, *totals))
    }

    /// A store's figures as of `now` (zeros before its first payment).
    pub fn merchant(&self, merchant: u64, now: Millis) -> MerchantFigures {
        self.merchants.get(&merchant).copied().unwrap_or_default().as_of(now, self.zone(merchant))
    }

    /// The store's time zone, as its offset from UTC in minutes.
    pub fn zone(&self, merchant: u64) -> i16 {
        self.zones.get(&merchant).copied().unwrap_or(0)
    }

    pub fn summary(&self, now: Millis) -> Summary {
        let primary = self.by_currency.iter().max_by_key(|(_, t)| (t.paid_orders, t.placed_orders));
        let totals = primary.map(|(_, t)| *t).unwrap_or_default();
        let last_complete = (now.0 / 1_000).saturating_sub(1);
        let second = self.seconds.iter().rev().find(|s| s.t == last_complete).copied().unwrap_or_default();
        Summary {
            currency: primary.map(|(c, _)| c.to_string()),
            gmv: totals.gmv,
            paid_orders: totals.paid_orders,
            aov: if totals.paid_orders == 0 { 0 } else { totals.gmv / i128::from(totals.paid_orders) },
            refunded_orders: totals.refunded_orders,
            refunds: totals.refunds,
            placed_orders: totals.placed_orders,
            orders_per_s: second.orders,
            payments_per_s: second.payments,
            peak_orders_per_s: self.seconds.iter().map(|s| s.orders).max().unwrap_or(0),
            peak_payments_per_s: self.seconds.iter().map(|s| s.payments).max().unwrap_or(0),
        }
    }

    /// The last `n` seconds of the window, oldest first, up to `now` (seconds without events are
    /// zeros).
    pub fn timeline(&self, now: Millis, n: usize) -> Vec<Second> {
        let end = now.0 / 1_000;
        let start = end.saturating_sub(n.min(WINDOW_S) as u64 - 1);
        let mut out: Vec<Second> = (start..=end).map(|t| Second { t, ..Second::default() }).collect();
        for s in self.seconds.iter().filter(|s| (start..=end).contains(&s.t)) {
            out[(s.t - start) as usize] = *s;
        }
        out
    }

    pub fn top_skus(&self, n: usize) -> Vec<Ranked> {
        top(self.sku_gmv.iter().map(|(&id, &(gmv, units))| Ranked { id, gmv, units: Some(units) }), n)
    }

    pub fn top_merchants(&self, n: usize) -> Vec<Ranked> {
        top(self.merchants.iter().map(|(&id, f)| Ranked { id, gmv: f.gmv, units: None }), n)
    }

    pub fn funnel(&self, campaign: u64) -> Funnel {
        self.funnels.get(&campaign).copied().unwrap_or_default()
    }

    pub fn funnels(&self) -> &BTreeMap<u64, Funnel> {
        &self.funnels
    }

    /// An experiment's results so far, with its tests against the control.
    pub fn experiment(&self, id: u64) -> Option<ExperimentResults> {
        self.experiments.get(&id).map(|e| experiments::results(id, e))
    }

    /// The variant (index and name) of `buyer` in experiment `id`.
    pub fn variant(&self, id: u64, buyer: u64) -> Option<(usize, String)> {
        let e = self.experiments.get(&id)?;
        let i = experiments::assign_in(e, buyer);
        Some((i, e.names[i].clone()))
    }

    /// The newest experiment, for the big screen.
    pub fn latest_experiment(&self) -> Option<ExperimentResults> {
        self.experiments.iter().next_back().map(|(&id, e)| experiments::results(id, e))
    }

    /// How many SKU edits were folded: a reader that cached SKU titles drops them when this moves.
    pub fn sku_edits(&self) -> u64 {
        self.sku_edits
    }

    /// The sale the big screen leads with at `now`: the operator's choice while it is not
    /// cancelled; else the open sale with the most GMV (ties: the larger, then the older); else
    /// the next to start.
    pub fn featured_campaign(&self, now: Millis) -> Option<CampaignTimes> {
        let chosen = self.featured.and_then(|id| self.campaigns.get(&id)).filter(|c| !c.cancelled);
        let gmv = |c: &CampaignTimes| self.funnels.get(&c.campaign_id).map_or(0, |f| f.gmv);
        let open = || {
            self.campaigns
                .values()
                .filter(|c| c.is_open(now))
                .max_by_key(|c| (gmv(c), c.quantity, std::cmp::Reverse(c.campaign_id)))
        };
        let next = || {
            self.campaigns
                .values()
                .filter(|c| !c.cancelled && c.starts_at > now.0)
                .min_by_key(|c| (c.starts_at, c.campaign_id))
        };
        chosen.or_else(open).or_else(next).cloned()
    }

    /// The operator's choice of sale for the big screen, if any.
    pub fn chosen_campaign(&self) -> Option<u64> {
        self.featured
    }

    /// Up to `n` sales for the screen's funnels at `now`, each with its funnel (zero before its
    /// first view): the featured one first, then the open ones by GMV, then those about to
    /// start, then those ended with sales, most recent first.
    pub fn screen_funnels(&self, now: Millis, n: usize) -> Vec<(CampaignTimes, Funnel)> {
        let featured = self.featured_campaign(now).map(|c| c.campaign_id);
        let funnel = |c: &CampaignTimes| self.funnels.get(&c.campaign_id).copied().unwrap_or_default();
        let mut all: Vec<&CampaignTimes> = self
            .campaigns
            .values()
            .filter(|c| !c.is_over(now) || (!c.cancelled && funnel(c).orders > 0))
            .collect();
        let rank = |c: &CampaignTimes| {
            let class = if Some(c.campaign_id) == featured {
                0
            } else if c.is_open(now) {
                1
            } else if c.starts_at > now.0 {
                2
            } else {
                3
            };
            let order = match class {
                1 => -funnel(c).gmv,
                2 => i128::from(c.starts_at),
                _ => -i128::from(c.ends_at),
            };
            (class, order, c.campaign_id)
        };
        // The first `n` in linear time (ended sales with orders pile up over the months), then
        // only those sorted: this runs under the read model's lock once a second per screen.
        if all.len() > n {
            all.select_nth_unstable_by_key(n, |c| rank(c));
            all.truncate(n);
        }
        all.sort_by_key(|c| rank(c));
        all.into_iter().map(|c| (c.clone(), funnel(c))).collect()
    }
}

fn campaigns(lines: &[LineItem]) -> impl Iterator<Item = u64> + '_ {
    let mut seen: Vec<u64> = Vec::new();
    lines.iter().filter_map(|l| l.campaign).filter(move |c| {
        let new = !seen.contains(c);
        seen.push(*c);
        new
    })
}

/// The `n` largest by GMV, ties by id (a stable order for the screen).
fn top(items: impl Iterator<Item = Ranked>, n: usize) -> Vec<Ranked> {
    let mut all: Vec<Ranked> = items.filter(|r| r.gmv != 0).collect();
    all.sort_unstable_by(|a, b| b.gmv.cmp(&a.gmv).then(a.id.cmp(&b.id)));
    all.truncate(n);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use elevens_feed::Lines;

    fn cny() -> Code {
        Code(Currency::parse("CNY").unwrap())
    }

    fn line(sku: u64, amount: u64, campaign: Option<u64>) -> LineItem {
        LineItem { sku, quantity: 1, unit_price: amount, campaign, stock_available: 0 }
    }

    fn event(at: u64, merchant: u64, buyer: u64, kind: Kind) -> FeedEvent {
        FeedEvent { record: 1, at, merchant: Some(merchant), buyer: Some(buyer), kind }
    }

    fn placed(at: u64, lines: Lines) -> FeedEvent {
        event(at, 1, 1, Kind::OrderPlaced { order: 1, currency: cny(), total: 0, expires_at: 0, lines })
    }

    fn paid(at: u64, merchant: u64, total: u64, lines: Lines) -> FeedEvent {
        event(at, merchant, 1, Kind::OrderPaid { order: 1, currency: cny(), total, commission: 0, lines })
    }

    fn refunded(at: u64, merchant: u64, amount: u64, lines: Lines, complete: bool) -> FeedEvent {
        let kind = Kind::OrderRefunded {
            order: 1,
            currency: cny(),
            amount,
            restocked: false,
            return_id: None,
            lines,
            complete,
        };
        event(at, merchant, 1, kind)
    }

    const DAY_MS: u64 = 86_400_000;

    #[test]
    fn a_stores_views_count_on_its_day_beside_its_paid_orders() {
        let mut a = Analytics::default();
        let day = 20_000 * DAY_MS;
        let sku = |sku, merchant| {
            let kind = Kind::SkuCreated {
                sku,
                title: String::new(),
                description: String::new(),
                currency: cny(),
                price: 1,
                stock: 1,
            };
            event(0, merchant, 0, kind)
        };
        a.fold(&sku(1, 7));
        a.fold(&sku(3, 8));
        for _ in 0..4 {
            a.view(Millis(day + 5), 1, None, 2);
        }
        a.view(Millis(day + 5), 3, None, 2);
        // A SKU nobody created counts for no store.
        a.view(Millis(day + 5), 2, None, 2);
        a.view(Millis(day + 5), 99, None, 2);
        a.view(Millis(day - 5), 1, None, 2);
        a.fold(&paid(day + 6, 7, 300, smallvec::smallvec![line(1, 300, None)]));
        let seven = a.merchant(7, Millis(day + 10));
        assert_eq!((seven.day_views, seven.day_paid_orders), (4, 1), "yesterday's view is yesterday's");
        assert_eq!(a.merchant(8, Millis(day + 10)).day_views, 1);
        assert_eq!(a.merchant(7, Millis(day + DAY_MS)).day_views, 0, "a new day starts at zero");
    }

    #[test]
    fn a_stores_day_is_its_own_time_zones() {
        let mut a = Analytics::default();
        let midnight_utc = 20_000 * DAY_MS;
        // 23:30 UTC on day 19,999 is 07:30 on day 20,000 in Shanghai (UTC+08:00).
        let store = |utc_offset_minutes| FeedEvent {
            record: 1,
            at: 0,
            merchant: Some(7),
            buyer: None,
            kind: Kind::MerchantUpdated { utc_offset_minutes },
        };
        a.fold(&store(480));
        a.fold(&paid(midnight_utc - 30 * 60_000, 7, 500, smallvec::smallvec![line(1, 500, None)]));
        let today = a.merchant(7, Millis(midnight_utc));
        assert_eq!((today.day, today.day_gmv, today.day_paid_orders), (20_000, 500, 1));
        // At 16:00 UTC it is midnight in Shanghai: a new day, with nothing sold yet.
        let next = a.merchant(7, Millis(midnight_utc + 16 * 3_600_000));
        assert_eq!((next.day, next.day_gmv, next.gmv), (20_001, 0, 500));
        // A store at UTC counts the same sale on the day before.
        a.fold(&paid(midnight_utc - 30 * 60_000, 8, 300, smallvec::smallvec![line(1, 300, None)]));
        let utc = a.merchant(8, Millis(midnight_utc - 60_000));
        assert_eq!((utc.day, utc.day_gmv), (19_999, 300));
    }

    #[test]
    fn a_stores_day_starts_at_zero_and_refunds_come_off_the_day_they_happen() {
        let mut a = Analytics::default();
        let day = 20_000 * DAY_MS;
        a.fold(&paid(day - 1, 7, 500, smallvec::smallvec![line(1, 500, None)]));
        a.fold(&paid(day + 10, 7, 300, smallvec::smallvec![line(1, 300, None)]));
        a.fold(&refunded(day + 20, 7, 100, smallvec::smallvec![], false));
        let today = a.merchant(7, Millis(day + 30));
        assert_eq!((today.gmv, today.paid_orders), (700, 2));
        assert_eq!((today.day, today.day_gmv, today.day_paid_orders), (20_000, 200, 1));
        // The next day, before any sale: the day's figures are zero, the totals stay.
        let tomorrow = a.merchant(7, Millis(day + DAY_MS));
        assert_eq!((tomorrow.gmv, tomorrow.day_gmv, tomorrow.day_paid_orders), (700, 0, 0));
        // Parts folded apart add up to the whole.
        let mut parts = Analytics::default();
        let mut late = Analytics::default();
        parts.fold(&paid(day - 1, 7, 500, smallvec::smallvec![line(1, 500, None)]));
        late.fold(&paid(day + 10, 7, 300, smallvec::smallvec![line(1, 300, None)]));
        late.fold(&refunded(day + 20, 7, 100, smallvec::smallvec![], false));
        parts.absorb(late);
        assert_eq!(parts.merchant(7, Millis(day + 30)), today);
    }

    #[test]
    fn seconds_are_counted_with_gaps_as_zeros_and_the_window_is_bounded() {
        let mut a = Analytics::default();
        let t = 1_000_000;
        a.fold(&placed(t * 1_000, smallvec::smallvec![line(1, 100, None)]));
        a.fold(&placed(t * 1_000 + 999, smallvec::smallvec![line(1, 100, None)]));
        a.fold(&paid((t + 3) * 1_000, 1, 250, smallvec::smallvec![line(1, 100, None)]));
        let timeline = a.timeline(Millis((t + 4) * 1_000), 5);
        let counts: Vec<(u64, u64)> = timeline.iter().map(|s| (s.orders, s.payments)).collect();
        assert_eq!(counts, [(2, 0), (0, 0), (0, 0), (0, 1), (0, 0)]);
        assert_eq!(timeline[0].t, t);
        let summary = a.summary(Millis((t + 4) * 1_000 + 10));
        assert_eq!((summary.payments_per_s, summary.orders_per_s, summary.peak_orders_per_s), (1, 0, 2));
        assert_eq!((summary.gmv, summary.aov, summary.currency.as_deref()), (250, 250, Some("CNY")));
        // An hour later the window holds 900 seconds, not 3,600.
        a.fold(&placed((t + 3_600) * 1_000, Lines::new()));
        assert_eq!(a.seconds.len(), WINDOW_S);
        assert_eq!(a.summary(Millis((t + 3_601) * 1_000)).peak_orders_per_s, 1);
    }

    #[test]
    fn refunds_net_out_and_funnels_count_views_orders_and_payments() {
        let mut a = Analytics::default();
        let lines: Lines = smallvec::smallvec![line(7, 300, Some(9)), line(8, 200, None)];
        a.view(Millis(1), 1, Some(9), 1);
        a.view(Millis(2), 1, Some(9), 2);
        a.fold(&placed(3, lines.clone()));
        a.fold(&paid(4, 5, 450, lines.clone()));
        assert_eq!(a.funnel(9), Funnel { views: 2, orders: 1, paid: 1, gmv: 300 });
        assert_eq!(a.top_skus(1)[0].id, 7);
        // A partial refund of one line first: the order is not refunded yet.
        a.fold(&refunded(5, 5, 180, smallvec::smallvec![line(8, 200, None)], false));
        let s = a.summary(Millis(6));
        assert_eq!((s.gmv, s.refunded_orders, s.refunds), (270, 0, 180));
        a.fold(&refunded(5, 5, 270, smallvec::smallvec![line(7, 300, Some(9))], true));
        let s = a.summary(Millis(6));
        assert_eq!((s.gmv, s.paid_orders, s.refunded_orders, s.refunds), (0, 1, 1, 450));
        assert_eq!(a.funnel(9).gmv, 0);
        assert!(a.top_skus(10).is_empty() && a.top_merchants(10).is_empty(), "nothing net sold");
    }
}
