//! The read side over HTTP: business figures (`/v1/analytics/*`), storefront view events, the
//! live feed for the big screen (server-sent events, once a second) and the screen itself.
//!
//! Nothing here goes through the sequencer: the figures are folded by the journal thread from
//! durable events, and a request only takes the analytics lock long enough to copy them.

use crate::api::{AppJson, AppPath, AppQuery, AppState, Auth};
use crate::engine::now_ms;
use crate::error::{ApiError, ErrorBody};
use crate::views::Query;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use elevens_admission::Stats;
use elevens_analytics::experiments::ExperimentResults;
use elevens_analytics::{CampaignTimes, Funnel, Ranked, Second, Summary};
use elevens_core::{Actor, BuyerId, MerchantId, Millis, SkuId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// The most views one request may report.
pub const VIEWS_PER_REQUEST_MAX: usize = 10_000;

/// The platform's figures are for the operator, the storefronts and the big screen.
fn platform_only(actor: Actor) -> Result<(), ApiError> {
    match actor {
        Actor::Admin | Actor::Service | Actor::Viewer => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "platform figures need an admin, service or viewer key",
        )),
    }
}

/// The figures, once every batch made durable before the request is folded in (a client reads
/// its own orders); the guard is held only to copy them out, never across an await.
async fn figures(app: &AppState) -> parking_lot::MutexGuard<'_, elevens_analytics::Analytics> {
    app.engine.read_models_caught_up().await;
    app.engine.analytics.lock()
}

/// GMV, paid orders, AOV, orders/s and payments/s (the last complete second), refunds.
#[utoipa::path(get, path = "/v1/analytics/summary", tag = "analytics",
    responses((status = 200, body = Object), (status = "4XX", body = ErrorBody)))]
pub async fn summary(State(app): State<AppState>, Auth(actor): Auth) -> Result<Json<Summary>, ApiError> {
    platform_only(actor)?;
    Ok(Json(figures(&app).await.summary(now_ms())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TimelineParams {
    /// How many seconds back (at most 900; default 60).
    pub seconds: Option<usize>,
}

/// Orders, payments and GMV per second, oldest first (a rolling window of 15 minutes).
#[utoipa::path(get, path = "/v1/analytics/timeline", tag = "analytics", params(TimelineParams),
    responses((status = 200, body = Object), (status = "4XX", body = ErrorBody)))]
pub async fn timeline(
    State(app): State<AppState>,
    Auth(actor): Auth,
    AppQuery(params): AppQuery<TimelineParams>,
) -> Result<Json<Vec<Second>>, ApiError> {
    platform_only(actor)?;
    let seconds = params.seconds.unwrap_or(60).clamp(1, elevens_analytics::WINDOW_S);
    Ok(Json(figures(&app).await.timeline(now_ms(), seconds)))
}

/// A store's figures for its dashboard.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoreFigures {
    pub merchant_id: u64,
    /// Paid minus refunded since the start, in minor units.
    #[schema(value_type = i64)]
    pub gmv: i128,
    pub paid_orders: u64,
    /// GMV over paid orders, rounded down; 0 before the first.
    #[schema(value_type = i64)]
    pub aov: i128,
    /// The day (`YYYY-MM-DD`, in the store's time zone) the figures below are of: today's.
    pub day: String,
    /// The store's time zone (`UTC+08:00`).
    pub time_zone: String,
    #[schema(value_type = i64)]
    pub day_gmv: i128,
    pub day_paid_orders: u64,
    #[schema(value_type = i64)]
    pub day_aov: i128,
    /// Storefront views of the store's SKUs that day (`POST /v1/events/views`; counted since
    /// this process started).
    pub day_views: u64,
    /// The day's paid orders per view, in basis points (100 = 1%); absent before a view.
    pub day_conversion_bp: Option<u64>,
}

/// A store's sales so far and today (in the store's time zone): GMV, paid orders, average order
/// value. Its merchant and the platform's keys.
#[utoipa::path(get, path = "/v1/merchants/{id}/figures", tag = "analytics",
    responses((status = 200, body = StoreFigures), (status = "4XX", body = ErrorBody)))]
pub async fn store_figures(
    State(app): State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Result<Json<StoreFigures>, ApiError> {
    if actor != Actor::Merchant(MerchantId(id)) {
        platform_only(actor)?;
    }
    // A store that does not exist has no figures: 404, as its other reads answer.
    crate::api::read_view(&app, actor, Query::Merchant(MerchantId(id))).await?;
    let now = now_ms();
    let (f, zone) = {
        let analytics = figures(&app).await;
        (analytics.merchant(id, now), analytics.zone(id))
    };
    let aov = |gmv: i128, n: u64| if n == 0 { 0 } else { gmv / i128::from(n) };
    let day = time::OffsetDateTime::from_unix_timestamp(f.day as i64 * 86_400)
        .map(|d| d.date().to_string())
        .unwrap_or_default();
    Ok(Json(StoreFigures {
        merchant_id: id,
        gmv: f.gmv,
        paid_orders: f.paid_orders,
        aov: aov(f.gmv, f.paid_orders),
        day,
        time_zone: crate::views::catalogue::zone_name(zone),
        day_gmv: f.day_gmv,
        day_paid_orders: f.day_paid_orders,
        day_aov: aov(f.day_gmv, f.day_paid_orders),
        day_views: f.day_views,
        day_conversion_bp: f.day_paid_orders.saturating_mul(10_000).checked_div(f.day_views),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopResponse {
    #[schema(value_type = Vec<Object>)]
    pub skus: Vec<Ranked>,
    #[schema(value_type = Vec<Object>)]
    pub merchants: Vec<Ranked>,
}

/// The ten SKUs and merchants with the most GMV (net of refunds).
#[utoipa::path(get, path = "/v1/analytics/top", tag = "analytics",
    responses((status = 200, body = TopResponse), (status = "4XX", body = ErrorBody)))]
pub async fn top(State(app): State<AppState>, Auth(actor): Auth) -> Result<Json<TopResponse>, ApiError> {
    platform_only(actor)?;
    let analytics = figures(&app).await;
    Ok(Json(TopResponse { skus: analytics.top_skus(10), merchants: analytics.top_merchants(10) }))
}

/// A campaign's funnel: views → orders → paid, with the conversion at each step.
#[derive(Debug, Serialize, ToSchema)]
pub struct FunnelView {
    pub campaign_id: u64,
    pub views: u64,
    pub orders: u64,
    pub paid: u64,
    /// Paid minus refunded, at the campaign's line amounts.
    #[schema(value_type = i64)]
    pub gmv: i128,
    /// orders / views; null without views.
    pub view_to_order: Option<f64>,
    /// paid / orders; null without orders.
    pub order_to_paid: Option<f64>,
}

fn funnel_view(campaign_id: u64, f: Funnel) -> FunnelView {
    let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
    FunnelView {
        campaign_id,
        views: f.views,
        orders: f.orders,
        paid: f.paid,
        gmv: f.gmv,
        view_to_order: ratio(f.orders, f.views),
        order_to_paid: ratio(f.paid, f.orders),
    }
}

#[utoipa::path(get, path = "/v1/analytics/campaigns/{id}/funnel", tag = "analytics",
    responses((status = 200, body = FunnelView), (status = "4XX", body = ErrorBody)))]
pub async fn funnel(
    State(app): State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Result<Json<FunnelView>, ApiError> {
    // A campaign that does not exist has no funnel: 404, as its other reads answer. Its
    // merchant sees its own campaigns' funnels; the platform's roles see every one.
    let campaign =
        crate::api::read_view(&app, actor, crate::views::Query::Campaign(elevens_core::CampaignId(id)))
            .await?;
    if let (Actor::Merchant(m), crate::views::View::Campaign(c)) = (actor, campaign) {
        let sku = crate::api::read_view(&app, actor, crate::views::Query::Sku(elevens_core::SkuId(c.sku_id)))
            .await?;
        if !matches!(sku, crate::views::View::Sku(s) if s.merchant_id == m.0) {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "another merchant's campaign"));
        }
    } else {
        platform_only(actor)?;
    }
    Ok(Json(funnel_view(id, figures(&app).await.funnel(id))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct View {
    pub sku_id: u64,
    pub campaign_id: Option<u64>,
    pub buyer_id: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewsRequest {
    pub views: Vec<View>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViewsAccepted {
    pub accepted: usize,
}

/// Storefronts report what buyers were shown (for funnels and experiments). Not journaled: views
/// are counted live and restart at zero with the process.
#[utoipa::path(post, path = "/v1/events/views", tag = "analytics", request_body = ViewsRequest,
    responses((status = 202, body = ViewsAccepted), (status = "4XX", body = ErrorBody)))]
pub async fn views(
    State(app): State<AppState>,
    Auth(actor): Auth,
    AppJson(request): AppJson<ViewsRequest>,
) -> Result<(StatusCode, Json<ViewsAccepted>), ApiError> {
    if request.views.len() > VIEWS_PER_REQUEST_MAX {
        let message = format!("at most {VIEWS_PER_REQUEST_MAX} views per request");
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large", message));
    }
    if let Some(v) = request.views.iter().find(|v| !actor.may_act_for_buyer(BuyerId(v.buyer_id))) {
        let message = format!("this key may not report views for buyer {}", v.buyer_id);
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", message));
    }
    if request.views.iter().any(|v| v.sku_id == 0 || v.buyer_id == 0 || v.campaign_id == Some(0)) {
        return Err(ApiError::bad_request("invalid_body", "ids start at 1"));
    }
    let at = now_ms();
    let mut analytics = app.engine.analytics.lock();
    for v in &request.views {
        analytics.view(at, v.sku_id, v.campaign_id, v.buyer_id);
    }
    Ok((StatusCode::ACCEPTED, Json(ViewsAccepted { accepted: request.views.len() })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VariantParams {
    pub buyer_id: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VariantAnswer {
    pub experiment_id: u64,
    pub buyer_id: u64,
    /// The variant's position (0 is the control) and name.
    pub variant: usize,
    pub name: String,
}

fn unknown_experiment() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such experiment")
}

/// Which variant a storefront shows this buyer: a stable hash, the same answer every time.
#[utoipa::path(get, path = "/v1/experiments/{id}/variant", tag = "analytics", params(VariantParams),
    responses((status = 200, body = VariantAnswer), (status = "4XX", body = ErrorBody)))]
pub async fn variant(
    State(app): State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
    AppQuery(params): AppQuery<VariantParams>,
) -> Result<Json<VariantAnswer>, ApiError> {
    if !actor.may_act_for_buyer(BuyerId(params.buyer_id)) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "not this buyer's key"));
    }
    let (variant, name) = figures(&app).await.variant(id, params.buyer_id).ok_or_else(unknown_experiment)?;
    Ok(Json(VariantAnswer { experiment_id: id, buyer_id: params.buyer_id, variant, name }))
}

/// Per variant: buyers shown, conversion, AOV, GMV per buyer; against the control, a
/// two-proportion z-test on conversion and Welch's t-test on order value, and a verdict.
#[utoipa::path(get, path = "/v1/experiments/{id}/results", tag = "analytics",
    responses((status = 200, body = Object), (status = "4XX", body = ErrorBody)))]
pub async fn experiment_results(
    State(app): State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Result<Json<ExperimentResults>, ApiError> {
    platform_only(actor)?;
    figures(&app).await.experiment(id).map(Json).ok_or_else(unknown_experiment)
}

/// The most SKU and merchant labels the screen keeps; past it the cache starts over (a screen
/// shows a few dozen at a time).
pub const SCREEN_LABELS_MAX: usize = 4_096;

/// What the big screen's frames share: when this process began counting seconds (its
/// per-second window starts empty, so seconds before are unknown, not zero), and the labels of
/// the SKUs and merchants shown so far. A merchant's name never changes once created, so each is
/// read through the sequencer once; SKU titles are read again after any SKU edit is folded.
pub struct Screen {
    pub since: Millis,
    labels: parking_lot::Mutex<Labels>,
    /// The gate's refusal totals by code, one sample per second, oldest first.
    refusals: parking_lot::Mutex<std::collections::VecDeque<RefusalSample>>,
    /// The featured sale's units last read: (campaign, taken, remaining).
    units: parking_lot::Mutex<Option<(u64, u64, u64)>>,
}

/// A second and the gate's refusal totals by code at it.
type RefusalSample = (u64, std::collections::BTreeMap<&'static str, u64>);

#[derive(Default)]
struct Labels {
    skus: HashMap<u64, String>,
    merchants: HashMap<u64, String>,
    /// [`elevens_analytics::Analytics::sku_edits`] when `skus` was last emptied.
    sku_edits: u64,
}

impl Screen {
    pub fn new(since: Millis) -> Screen {
        Screen { since, labels: Default::default(), refusals: Default::default(), units: Default::default() }
    }

    /// The labels of `skus` and `merchants`, reading the ones not yet known. A read refused (by
    /// admission under load, say) leaves them unlabelled for this frame.
    async fn labels(&self, app: &AppState, skus: &[u64], merchants: &[u64]) -> Labels {
        let sku_edits = app.engine.analytics.lock().sku_edits();
        let missing = {
            let mut known = self.labels.lock();
            if known.sku_edits != sku_edits {
                known.skus.clear();
                known.sku_edits = sku_edits;
            }
            let skus: Vec<_> =
                skus.iter().filter(|id| !known.skus.contains_key(id)).map(|&id| SkuId(id)).collect();
            let merchants: Vec<_> = merchants
                .iter()
                .filter(|id| !known.merchants.contains_key(id))
                .map(|&id| MerchantId(id))
                .collect();
            (!skus.is_empty() || !merchants.is_empty()).then_some(Query::Names { skus, merchants })
        };
        if let Some(query) = missing {
            if let Ok(crate::views::View::Names(names)) =
                crate::api::read_view(app, Actor::Viewer, query).await
            {
                let mut known = self.labels.lock();
                if known.skus.len() + known.merchants.len() + names.skus.len() + names.merchants.len()
                    > SCREEN_LABELS_MAX
                {
                    *known = Labels { sku_edits, ..Labels::default() };
                }
                // Titles read across an edit's fold may be the old ones: not kept.
                if app.engine.analytics.lock().sku_edits() == known.sku_edits {
                    known.skus.extend(names.skus);
                }
                known.merchants.extend(names.merchants);
            }
        }
        let known = self.labels.lock();
        let pick = |ids: &[u64], from: &HashMap<u64, String>| {
            ids.iter().filter_map(|id| Some((*id, from.get(id)?.clone()))).collect()
        };
        Labels { skus: pick(skus, &known.skus), merchants: pick(merchants, &known.merchants), sku_edits }
    }
}

/// A figure with the label a person reads: a SKU's title, a merchant's name.
#[derive(Debug, Serialize)]
pub struct Labelled<T> {
    #[serde(flatten)]
    pub figures: T,
    /// Null when the label could not be read.
    pub name: Option<String>,
}

impl<T> Labelled<T> {
    fn unnamed(figures: T) -> Labelled<T> {
        Labelled { figures, name: None }
    }
}

/// The sale the screen leads with ([`elevens_analytics::Analytics::featured_campaign`]).
#[derive(Debug, Serialize)]
pub struct FeaturedSale {
    #[serde(flatten)]
    pub campaign: CampaignTimes,
    /// The operator chose it; otherwise the screen did (the open sale with the most GMV, else
    /// the next to start).
    pub chosen: bool,
    /// `scheduled`, `open` or `ended` at the frame's time.
    pub status: &'static str,
    /// Its SKU's title.
    pub sku_title: Option<String>,
    /// Units held by orders (pending or paid) and units left, as the sequencer has them; null
    /// when the read was refused (by admission, under load) and none was read before.
    pub taken: Option<u64>,
    pub remaining: Option<u64>,
    /// Paid minus refunded, at the sale's prices.
    pub gmv: i128,
}

/// A sale's funnel on the screen, named.
#[derive(Debug, Serialize)]
pub struct ScreenFunnel {
    #[serde(flatten)]
    pub funnel: FunnelView,
    /// The sale's name (empty if it has none).
    pub name: String,
    pub sku_title: Option<String>,
    pub status: &'static str,
}

/// Requests turned away in one second, all classes and reasons together.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RefusedSecond {
    pub t: u64,
    pub refused: u64,
}

/// Why requests were turned away over the last [`SHEDDING_WINDOW_S`] seconds, in words.
#[derive(Debug, Serialize)]
pub struct Shedding {
    /// The refusal's stable code (`sku_rate_limited`, `overloaded`, ...).
    pub code: &'static str,
    /// What it means, for a person.
    pub reason: String,
    /// Requests turned away for it in the window.
    pub refused: u64,
}

/// The seconds over which the screen says why requests are turned away.
pub const SHEDDING_WINDOW_S: u64 = 10;

/// One frame of the big screen.
#[derive(Debug, Serialize)]
pub struct Frame {
    pub server_time: u64,
    /// Since when the per-second figures are known (this process's start), in ms since the epoch.
    pub since: u64,
    pub summary: Summary,
    /// The last two minutes' seconds, oldest first, none before `since`.
    pub timeline: Vec<Second>,
    /// Refusals per second over the same seconds, for those this process sampled (a frame
    /// samples the gate's counts once a second while a screen is open).
    pub refusals: Vec<RefusedSecond>,
    /// Why, over the last [`SHEDDING_WINDOW_S`] seconds, most first; empty when nothing was.
    pub shedding: Vec<Shedding>,
    /// Named by their titles.
    pub top_skus: Vec<Labelled<Ranked>>,
    /// Named by their names.
    pub top_merchants: Vec<Labelled<Ranked>>,
    /// The featured sale first, then the open ones, those about to start and those ended.
    pub funnels: Vec<ScreenFunnel>,
    pub featured: Option<FeaturedSale>,
    pub admission: Stats,
    pub experiment: Option<ExperimentResults>,
}

/// What a refusal code means, in words a person on the floor reads from a wall.
fn reason(code: &'static str, sku: Option<&str>) -> String {
    match code {
        "sku_rate_limited" => match sku {
            Some(title) => format!("“{title}” is over its order rate limit"),
            None => "a SKU is over its order rate limit".into(),
        },
        "overloaded" => "the engine is at its capacity".into(),
        "rate_limited" => "buyers ordering too fast".into(),
        "waiting_room_full" => "the waiting room is full".into(),
        "ticket_not_admitted" => "waiting-room tickets not yet called".into(),
        _ => "waiting-room tickets not valid".into(),
    }
}

/// The gate's refusals so far, summed over the classes, by code.
fn refusal_totals(stats: &Stats) -> std::collections::BTreeMap<&'static str, u64> {
    let mut totals = std::collections::BTreeMap::new();
    for class in [&stats.pay, &stats.order, &stats.read, &stats.operator] {
        for (&code, &n) in &class.shed {
            *totals.entry(code).or_default() += n;
        }
    }
    totals
}

/// The seconds of refusal counts the screen keeps: its chart's two minutes and one before.
const REFUSAL_SAMPLES_MAX: usize = 121;

impl Screen {
    /// Samples the gate's refusal counts for the second of `now` (once per second, whichever
    /// frame comes first) and answers the refusals per second and why, recently.
    fn refusals(&self, stats: &Stats, now: Millis) -> (Vec<RefusedSecond>, Vec<(&'static str, u64)>) {
        let mut samples = self.refusals.lock();
        let t = now.0 / 1_000;
        if samples.back().is_none_or(|(last, _)| *last < t) {
            samples.push_back((t, refusal_totals(stats)));
            if samples.len() > REFUSAL_SAMPLES_MAX {
                samples.pop_front();
            }
        }
        let total = |m: &std::collections::BTreeMap<&'static str, u64>| m.values().sum::<u64>();
        let per_second: Vec<RefusedSecond> = samples
            .iter()
            .zip(samples.iter().skip(1))
            .filter(|((a, _), (b, _))| b - a == 1)
            .map(|((_, a), (b, m))| RefusedSecond { t: *b, refused: total(m).saturating_sub(total(a)) })
            .collect();
        let recent = samples.iter().find(|(s, _)| s + SHEDDING_WINDOW_S >= t);
        let (Some((_, then)), Some((_, latest))) = (recent, samples.back()) else {
            return (per_second, Vec::new());
        };
        let mut why: Vec<(&'static str, u64)> = latest
            .iter()
            .map(|(&code, &n)| (code, n.saturating_sub(then.get(code).copied().unwrap_or(0))))
            .filter(|(_, n)| *n > 0)
            .collect();
        why.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        (per_second, why)
    }

    /// The featured sale's units as the sequencer has them; the last ones read if this read is
    /// refused (by admission, under load).
    async fn units(&self, app: &AppState, campaign: u64) -> Option<(u64, u64)> {
        let query = Query::Campaign(elevens_core::CampaignId(campaign));
        if let Ok(crate::views::View::Campaign(c)) = crate::api::read_view(app, Actor::Viewer, query).await {
            *self.units.lock() = Some((campaign, c.taken, c.remaining));
        }
        self.units.lock().filter(|(id, ..)| *id == campaign).map(|(_, taken, left)| (taken, left))
    }
}

/// How many sales the screen's funnels show.
pub const SCREEN_FUNNELS: usize = 4;

/// How many SKUs and merchants the screen ranks: the rows its tables fit at a legible size.
pub const SCREEN_RANKED: usize = 4;

/// A frame: the figures copied out under the analytics lock, then named (which may read
/// through the sequencer, so never under the lock).
pub async fn frame(app: &AppState) -> Frame {
    let now = now_ms();
    let since = app.screen.since;
    let admission = app.gate.stats();
    let (refusals, why) = app.screen.refusals(&admission, now);
    // The SKU each funnel's sale sells, beside the funnels.
    let (mut frame, funnel_skus) = {
        let analytics = app.engine.analytics.lock();
        let sales = analytics.screen_funnels(now, SCREEN_FUNNELS);
        let funnel_skus: Vec<u64> = sales.iter().map(|(c, _)| c.sku_id).collect();
        let funnels = sales
            .into_iter()
            .map(|(c, f)| ScreenFunnel {
                funnel: funnel_view(c.campaign_id, f),
                status: c.status(now),
                name: c.name,
                sku_title: None,
            })
            .collect();
        let featured = analytics.featured_campaign(now).map(|c| FeaturedSale {
            chosen: analytics.chosen_campaign() == Some(c.campaign_id),
            status: c.status(now),
            gmv: analytics.funnels().get(&c.campaign_id).map_or(0, |f| f.gmv),
            campaign: c,
            sku_title: None,
            taken: None,
            remaining: None,
        });
        // Up to the last complete second (the current one is still filling), from `since` on.
        let mut timeline = analytics.timeline(Millis(now.0.saturating_sub(1_000)), 120);
        timeline.retain(|s| s.t >= since.0 / 1_000);
        let first = timeline.first().map_or(u64::MAX, |s| s.t);
        let frame = Frame {
            server_time: now.0,
            since: since.0,
            summary: analytics.summary(now),
            refusals: refusals.into_iter().filter(|r| r.t >= first && r.t < now.0 / 1_000).collect(),
            shedding: Vec::new(),
            timeline,
            top_skus: analytics.top_skus(SCREEN_RANKED).into_iter().map(Labelled::unnamed).collect(),
            top_merchants: analytics
                .top_merchants(SCREEN_RANKED)
                .into_iter()
                .map(Labelled::unnamed)
                .collect(),
            funnels,
            featured,
            admission,
            experiment: analytics.latest_experiment(),
        };
        (frame, funnel_skus)
    };
    let mut skus: Vec<u64> = frame.top_skus.iter().map(|r| r.figures.id).collect();
    skus.extend(funnel_skus.iter().chain(frame.featured.iter().map(|c| &c.campaign.sku_id)));
    skus.extend(frame.admission.last_sku_rate_limited);
    let merchants: Vec<u64> = frame.top_merchants.iter().map(|r| r.figures.id).collect();
    let labels = app.screen.labels(app, &skus, &merchants).await;
    let sku = |id: u64| labels.skus.get(&id).cloned();
    for row in &mut frame.top_skus {
        row.name = sku(row.figures.id);
    }
    for row in &mut frame.top_merchants {
        row.name = labels.merchants.get(&row.figures.id).cloned();
    }
    for (row, id) in frame.funnels.iter_mut().zip(funnel_skus) {
        row.sku_title = sku(id);
    }
    if let Some(sale) = &mut frame.featured {
        sale.sku_title = sku(sale.campaign.sku_id);
        if let Some((taken, remaining)) = app.screen.units(app, sale.campaign.campaign_id).await {
            (sale.taken, sale.remaining) = (Some(taken), Some(remaining));
        }
    }
    let hot = frame.admission.last_sku_rate_limited.and_then(sku);
    frame.shedding = why
        .into_iter()
        .map(|(code, refused)| Shedding { code, reason: reason(code, hot.as_deref()), refused })
        .collect();
    frame
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyParam {
    /// The API key, for clients that cannot send headers (a browser's EventSource).
    pub key: Option<String>,
}

/// The big screen's feed: a [`Frame`] as JSON every second (server-sent events); the key may
/// come as `?key=`. Documented by `openapi.rs` with the other routes served beside the handlers.
pub async fn live(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
    AppQuery(params): AppQuery<KeyParam>,
) -> Result<Response, ApiError> {
    platform_only(crate::api::authenticate(&app, &headers, params.key.as_deref())?)?;
    let ticks = every(Duration::from_secs(1));
    let stream = futures::StreamExt::then(ticks, move |()| {
        let app = app.clone();
        async move {
            let data = serde_json::to_string(&frame(&app).await).unwrap_or_else(|_| "{}".into());
            Ok::<_, Infallible>(SseEvent::default().event("frame").data(data))
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

/// A tick now and then every `period`, as a stream.
fn every(period: Duration) -> impl futures::Stream<Item = ()> {
    futures::stream::unfold(tokio::time::interval(period), |mut interval| async move {
        interval.tick().await;
        Some(((), interval))
    })
}

/// The big screen: one page, embedded in the binary.
pub async fn screen() -> impl IntoResponse {
    page(elevens_web::SCREEN_HTML).await
}

/// A page served by the binary (the screen, the console): never cached, so a new binary's page
/// is the one shown.
pub async fn page(html: &'static str) -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], Html(html))
}

/// The console's own script: not cached either, as it changes with the binary and its page.
pub async fn script(body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], body)
}

/// A page's own style sheet: not cached, like its page and script.
pub async fn style(body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], body)
}

/// How long a browser keeps the screen's embedded libraries: they change only with the binary.
pub const ASSET_MAX_AGE_S: u32 = 3_600;

/// One of the screen's embedded libraries.
pub async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    let cache = format!("public, max-age={ASSET_MAX_AGE_S}");
    ([(header::CONTENT_TYPE, content_type.to_owned()), (header::CACHE_CONTROL, cache)], body)
}
