//! The HTTP API under `/v1`: one handler per route, each documented for OpenAPI by its
//! `#[utoipa::path]` and registered with `routes!`, so the document and the router cannot drift.

use crate::auth::{hash_secret, new_secret};
use crate::config::Config;
use crate::engine::{EngineHandle, Item, Reply, ReplyWith};
use crate::error::{ApiError, ErrorBody};
use crate::fingerprint::{idempotency, Defaulted};
use crate::gate::SetRulesError;
use crate::gate::{submit_admitted, Gate, SubmitError};
use crate::seam::Commands;
use crate::views::*;
use crate::wire::{BatchOp, BinaryAnswer, BinaryBatch, BinaryError, BinaryResult};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{header, request::Parts, StatusCode};
use axum::Json;
use elevens_admission::waiting_room::{TicketError, TicketState, TicketView};
use elevens_admission::{Class, Refusal, Rules, Stats};
use elevens_core::limits::WALLET_ENTRIES_MAX;
use elevens_core::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

#[derive(Clone)]
pub struct AppState {
    /// Where every command and read goes: the one seam below this floor.
    pub commands: Arc<dyn Commands>,
    /// The engine's parts that are not commands: the keys' cache (auth), the read models
    /// (analytics, search), the audit, the replica's status.
    pub engine: EngineHandle,
    pub config: Arc<Config>,
    /// Renders `/metrics`; absent where no recorder was installed (the bench, tests in-process).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub gate: Arc<Gate>,
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    pub screen: Arc<crate::live::Screen>,
}

/// `axum::Json`, with its rejections answered as [`ApiError`]s.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct AppJson<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct AppPath<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct AppQuery<T>(pub T);

/// The actor behind the request's API key (`Authorization: Bearer <key>` or `X-Api-Key`).
pub struct Auth(pub Actor);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Auth, ApiError> {
        authenticate(app, &parts.headers, None).map(Auth)
    }
}

/// The actor behind a request's key: `Authorization: Bearer`, `X-Api-Key`, or `fallback` (the
/// live feed's `?key=`, for a browser's EventSource, which cannot send headers).
pub(crate) fn authenticate(
    app: &AppState,
    headers: &axum::http::HeaderMap,
    fallback: Option<&str>,
) -> Result<Actor, ApiError> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let secret = header(header::AUTHORIZATION.as_str())
        .and_then(bearer_token)
        .or_else(|| header("x-api-key"))
        .or(fallback)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send an API key: Authorization: Bearer <key>",
            )
        })?;
    app.engine.keys.authenticate(secret.trim()).ok_or_else(|| {
        // A standby may not have applied a key the leader made a moment ago, so only the leader
        // says a key does not exist; a standby sends the client there.
        if app.engine.replica.is_some() && !app.engine.writable() {
            return ApiError::not_leader(&app.engine);
        }
        ApiError::new(StatusCode::UNAUTHORIZED, "invalid_api_key", "unknown or revoked API key")
    })
}

/// The token of an `Authorization: Bearer <token>` value; the scheme's name is
/// case-insensitive (RFC 9110 §11.1), so `bearer` and `BEARER` are the same.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

/// The longest accepted `Idempotency-Key`, in bytes.
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 200;

/// The `Idempotency-Key` header, required on every state-changing request.
pub struct IdempotencyKey(pub String);

fn check_idempotency_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_BYTES_MAX || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "an idempotency key is 1 to 200 visible ASCII characters",
        ));
    }
    Ok(())
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<IdempotencyKey, ApiError> {
        let key = parts
            .headers
            .get("idempotency-key")
            .ok_or_else(|| {
                ApiError::bad_request(
                    "idempotency_key_required",
                    "send an Idempotency-Key header with every change",
                )
            })?
            .to_str()
            .map_err(|_| ApiError::bad_request("invalid_idempotency_key", "not visible ASCII"))?;
        check_idempotency_key(key)?;
        Ok(IdempotencyKey(key.to_owned()))
    }
}

/// The optional `Waiting-Room-Ticket` header of an order: 16 hex digits.
pub struct WaitingRoomTicket(pub Option<u64>);

fn parse_ticket(text: &str) -> Result<u64, ApiError> {
    if text.len() != 16 {
        return Err(ApiError::bad_request("invalid_ticket", "a waiting-room ticket is 16 hex digits"));
    }
    u64::from_str_radix(text, 16)
        .map_err(|_| ApiError::bad_request("invalid_ticket", "a waiting-room ticket is 16 hex digits"))
}

impl<S: Send + Sync> FromRequestParts<S> for WaitingRoomTicket {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<WaitingRoomTicket, ApiError> {
        let Some(value) = parts.headers.get("waiting-room-ticket") else {
            return Ok(WaitingRoomTicket(None));
        };
        let text = value.to_str().map_err(|_| ApiError::bad_request("invalid_ticket", "not ASCII"))?;
        Ok(WaitingRoomTicket(Some(parse_ticket(text)?)))
    }
}

/// Lets admission control decide on each item, submits the admitted ones, and answers one result
/// per item, in order: a refused item gets its refusal where it stood.
async fn submit(
    app: &AppState,
    items: Vec<Item>,
    ticket: Option<u64>,
) -> Result<Vec<Result<Reply, ApiError>>, ApiError> {
    let (admitted, refusals, in_flight) = app.gate.admit(&*app.commands, items, ticket);
    let outcomes = submit_admitted(&*app.commands, admitted, in_flight).await.map_err(|e| match e {
        SubmitError::Overloaded => ApiError::overloaded(),
        SubmitError::ShuttingDown => ApiError::shutting_down(),
        SubmitError::NotLeader => ApiError::not_leader(&app.engine),
    })?;
    let mut outcomes = outcomes.into_iter();
    Ok(refusals
        .into_iter()
        .map(|refusal| match refusal {
            Some(refusal) => Err(refusal.into()),
            None => outcomes.next().ok_or_else(ApiError::shutting_down)?.map_err(ApiError::from),
        })
        .collect())
}

/// One read, or one write answered with its view.
async fn submit_one(app: &AppState, item: Item, ticket: Option<u64>) -> Result<View, ApiError> {
    view_of(submit(app, vec![item], ticket).await?.pop().ok_or_else(ApiError::shutting_down)??)
}

pub(crate) type Answer = Result<(StatusCode, Json<View>), ApiError>;

pub(crate) async fn write(
    app: &AppState,
    actor: Actor,
    key: &IdempotencyKey,
    command: Command,
    status: StatusCode,
) -> Answer {
    write_ticketed(app, actor, key, (command, Defaulted::NONE), status, None).await
}

/// A write, `command` with the fields the gateway filled in for the client.
async fn write_ticketed(
    app: &AppState,
    actor: Actor,
    key: &IdempotencyKey,
    (command, defaulted): (Command, Defaulted),
    status: StatusCode,
    ticket: Option<u64>,
) -> Answer {
    let idempotency = Some(idempotency(actor, &key.0, &command, defaulted));
    let item = Item::Write { actor, idempotency, command, reply: ReplyWith::View };
    let view = submit_one(app, item, ticket).await?;
    Ok((status, Json(view)))
}

/// A read through the sequencer (admitted as a read), for the other route modules.
pub(crate) async fn read_view(app: &AppState, actor: Actor, query: Query) -> Result<View, ApiError> {
    submit_one(app, Item::Read { actor, query }, None).await
}

pub(crate) async fn read(app: &AppState, actor: Actor, query: Query) -> Answer {
    Ok((StatusCode::OK, Json(submit_one(app, Item::Read { actor, query }, None).await?)))
}

pub(crate) fn currency(code: &str) -> Result<Currency, ApiError> {
    Currency::parse(code).ok_or_else(|| {
        ApiError::bad_request("invalid_currency", "a currency is an ISO 4217 code such as CNY")
    })
}

// ---- requests ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Admin,
    Service,
    Merchant,
    Buyer,
    Carrier,
    /// Read-only: the big screen's live figures and the analytics, nothing that changes state.
    Viewer,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    pub role: RoleName,
    /// Required for the `merchant` role.
    pub merchant_id: Option<u64>,
    /// Required for the `buyer` role.
    pub buyer_id: Option<u64>,
    /// Required for the `carrier` role.
    pub carrier_id: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMerchantRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// The platform's commission in basis points; the server's default if absent.
    pub commission_bps: Option<u16>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBuyerRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSkuRequest {
    pub merchant_id: u64,
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// At most 4,000 bytes of UTF-8.
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub description: String,
    /// Minor units (fen, cents).
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_u64)]
    pub price: u64,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// Initial stock.
    #[schema(maximum = 1_000_000_000_u64)]
    pub stock: u64,
    /// The merchant's warehouse it ships from (default: the merchant's first).
    pub warehouse_id: Option<u64>,
}

/// A SKU edit: the fields given replace the SKU's, the others stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSkuRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub title: Option<String>,
    /// At most 4,000 bytes of UTF-8.
    #[schema(max_length = 4000)]
    pub description: Option<String>,
    /// Minor units; for orders placed from now on. Not below the flash price of a campaign of
    /// this SKU that has not ended.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_u64)]
    pub price: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestockRequest {
    #[schema(minimum = 1, maximum = 1_000_000_000_u64)]
    pub quantity: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpRequest {
    /// Minor units.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_u64)]
    pub amount: u64,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaignRequest {
    pub sku_id: u64,
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_u64)]
    pub flash_price: u64,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    #[schema(minimum = 1, maximum = 1_000_000_000_u64)]
    pub quantity: u64,
    /// Milliseconds since the Unix epoch.
    pub starts_at: u64,
    pub ends_at: u64,
    pub per_buyer_limit: u32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRequestBody {
    pub sku_id: u64,
    #[schema(minimum = 1, maximum = 10_000)]
    pub quantity: u32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    pub buyer_id: u64,
    pub lines: Vec<LineRequestBody>,
    /// Coupon ids: at most one platform and one merchant coupon.
    #[serde(default)]
    pub coupons: Vec<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// Put the units back on sale.
    #[serde(default)]
    pub restock: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CouponKind {
    Fixed,
    Percent,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCouponRequest {
    /// The merchant that funds the discount (its SKUs only); absent: platform-funded (admin).
    pub merchant_id: Option<u64>,
    pub kind: CouponKind,
    /// For `fixed`: minor units off.
    pub amount_off: Option<u64>,
    /// For `percent`: basis points off (1000 = 10%), rounded down to the minor unit.
    pub percent_bps: Option<u16>,
    /// For `percent`: the most it takes off.
    pub cap: Option<u64>,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// The order's subtotal must reach this.
    #[serde(default)]
    pub min_spend: u64,
    pub starts_at: u64,
    pub ends_at: u64,
    #[serde(default = "one")]
    pub per_buyer_limit: u32,
    /// The most money all uses together may take off.
    pub budget_amount: Option<u64>,
    /// The most orders that may use it.
    pub budget_uses: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRedPacketRequest {
    /// The merchant that funds the pool from its wallet; absent: the platform (admin).
    pub merchant_id: Option<u64>,
    /// The whole pool, in minor units.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_u64)]
    pub amount: u64,
    /// How many shares (each at least one minor unit).
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub count: u32,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// Default: now.
    pub starts_at: Option<u64>,
    pub ends_at: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    pub buyer_id: u64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CouponListParams {
    /// Only this merchant's coupons.
    pub merchant_id: Option<u64>,
}

fn sponsor(merchant_id: Option<u64>) -> Sponsor {
    merchant_id.map_or(Sponsor::Platform, |m| Sponsor::Merchant(MerchantId(m)))
}

impl CreateCouponRequest {
    fn command(self) -> Result<Command, ApiError> {
        let rule = match (self.kind, self.amount_off, self.percent_bps, self.cap) {
            (CouponKind::Fixed, Some(amount), None, None) => DiscountRule::Fixed { amount: Amount(amount) },
            (CouponKind::Percent, None, Some(bps), cap) => {
                DiscountRule::Percent { bps, cap: cap.map(Amount) }
            }
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_coupon",
                    "a fixed coupon takes amount_off; a percent coupon takes percent_bps and maybe cap",
                ))
            }
        };
        Ok(Command::CreateCoupon(Box::new(NewCoupon {
            sponsor: sponsor(self.merchant_id),
            rule,
            currency: currency(&self.currency)?,
            min_spend: Amount(self.min_spend),
            starts_at: Millis(self.starts_at),
            ends_at: Millis(self.ends_at),
            per_buyer_limit: self.per_buyer_limit,
            budget_amount: self.budget_amount.map(Amount),
            budget_uses: self.budget_uses,
        })))
    }
}

impl CreateRedPacketRequest {
    fn command(self) -> Result<(Command, Defaulted), ApiError> {
        let defaulted = Defaulted { starts_at: self.starts_at.is_none(), ..Defaulted::NONE };
        let command = Command::CreateRedPacket(NewRedPacket {
            sponsor: sponsor(self.merchant_id),
            amount: Amount(self.amount),
            count: self.count,
            currency: currency(&self.currency)?,
            starts_at: self.starts_at.map_or_else(crate::engine::now_ms, Millis),
            ends_at: Millis(self.ends_at),
            // Drawn here, in the shell; journaled with the command, so replay pays the same shares.
            seed: rand::random(),
        });
        Ok((command, defaulted))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WalletParams {
    /// How many of the newest entries to show (at most 1000; default 20).
    pub entries: Option<usize>,
    /// Entries older than this transfer: an account's `next_before`, for the next page.
    pub before: Option<u64>,
}

impl CreateSkuRequest {
    fn command(self) -> Result<Command, ApiError> {
        Ok(Command::CreateSku(Box::new(NewSku {
            merchant: MerchantId(self.merchant_id),
            title: self.title,
            description: self.description,
            price: Amount(self.price),
            currency: currency(&self.currency)?,
            initial_stock: self.stock,
            warehouse: self.warehouse_id.map(WarehouseId),
        })))
    }
}

impl CreateCampaignRequest {
    fn command(self) -> Result<Command, ApiError> {
        Ok(Command::CreateCampaign(NewCampaign {
            sku: SkuId(self.sku_id),
            flash_price: Amount(self.flash_price),
            currency: currency(&self.currency)?,
            quantity: self.quantity,
            starts_at: Millis(self.starts_at),
            ends_at: Millis(self.ends_at),
            per_buyer_limit: self.per_buyer_limit,
        }))
    }
}

impl PlaceOrderRequest {
    fn command(self, config: &Config) -> Command {
        Command::PlaceOrder {
            buyer: BuyerId(self.buyer_id),
            lines: self
                .lines
                .into_iter()
                .map(|l| LineRequest { sku: SkuId(l.sku_id), quantity: l.quantity })
                .collect(),
            coupons: self.coupons.into_iter().map(CouponId).collect(),
            reservation_ttl_ms: config.engine.reservation_ttl_ms,
        }
    }
}

fn top_up(buyer: u64, request: TopUpRequest) -> Result<Command, ApiError> {
    Ok(Command::TopUp {
        buyer: BuyerId(buyer),
        amount: Amount(request.amount),
        currency: currency(&request.currency)?,
    })
}

// ---- handlers ----

const CREATED: StatusCode = StatusCode::CREATED;
const OK: StatusCode = StatusCode::OK;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// A node's place in its cluster.
#[derive(Serialize, ToSchema)]
pub struct ClusterView {
    /// `embedded` (the data directory's journal, alone) or `replicated` (NATS JetStream).
    pub mode: &'static str,
    /// `leader`, `follower`, or `halted` (the stream cannot be applied past a message).
    pub role: &'static str,
    /// Whether writes are taken here now.
    pub writable: bool,
    /// The last record durable and applied here.
    pub applied: u64,
    /// Replicated: this node's and the leader's addresses, the lease's term.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    /// Replicated: the last stream message applied here, the stream's last, the difference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_applied: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_last: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_messages: Option<u64>,
    /// Replicated: messages refused by elevens' checks on the stream, and why this node stopped
    /// following, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_frames: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halted: Option<String>,
}

/// The node's place in its cluster: role, leader, records applied, lag behind the stream.
/// Operational figures only, no business data: no key needed, like `/healthz`.
#[utoipa::path(get, path = "/v1/cluster", tag = "ops", responses((status = 200, body = ClusterView)))]
pub async fn cluster(axum::extract::State(app): axum::extract::State<AppState>) -> Json<ClusterView> {
    use std::sync::atomic::Ordering;
    let engine = &app.engine;
    let mut view = ClusterView {
        mode: "embedded",
        role: "leader",
        writable: engine.writable(),
        applied: engine.durable_seq(),
        node: None,
        leader: None,
        term: None,
        stream_applied: None,
        stream_last: None,
        lag_messages: None,
        refused_frames: None,
        halted: None,
    };
    if let Some(replica) = &engine.replica {
        let stream_applied = replica.stream_applied.load(Ordering::Acquire);
        let stream_last = replica.stream_last.load(Ordering::Acquire).max(stream_applied);
        view = ClusterView {
            mode: "replicated",
            role: replica.role(),
            node: Some(replica.node.clone()),
            leader: replica.leader.lock().clone(),
            term: Some(replica.term.load(Ordering::Acquire)),
            stream_applied: Some(stream_applied),
            stream_last: Some(stream_last),
            lag_messages: Some(stream_last - stream_applied),
            refused_frames: Some(replica.refused_frames.load(Ordering::Acquire)),
            halted: replica.halted.lock().clone(),
            ..view
        };
    }
    Json(view)
}

/// Create an API key (admin). The secret is in the answer, once.
#[utoipa::path(post, path = "/v1/api-keys", tag = "admin", request_body = CreateApiKeyRequest,
    responses((status = 201, body = ApiKeyView), (status = "4XX", body = ErrorBody)))]
pub async fn create_api_key(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CreateApiKeyRequest>,
) -> Answer {
    let acts_as = match (request.role, request.merchant_id, request.buyer_id, request.carrier_id) {
        (RoleName::Admin, None, None, None) => Actor::Admin,
        (RoleName::Service, None, None, None) => Actor::Service,
        (RoleName::Merchant, Some(m), None, None) => Actor::Merchant(MerchantId(m)),
        (RoleName::Buyer, None, Some(b), None) => Actor::Buyer(BuyerId(b)),
        (RoleName::Carrier, None, None, Some(c)) => Actor::Carrier(CarrierId(c)),
        (RoleName::Viewer, None, None, None) => Actor::Viewer,
        _ => return Err(ApiError::bad_request(
            "invalid_role",
            "merchant keys need merchant_id, buyer keys buyer_id, carrier keys carrier_id, other roles none",
        )),
    };
    // The fingerprint leaves the secret out, so a repeat matches the first request; a repeat
    // answers the key's id without the secret, which only the first answer carries.
    let secret = new_secret();
    let command = Command::CreateApiKey { acts_as, secret_sha256: hash_secret(&secret) };
    let idem = Some(idempotency(actor, &key.0, &command, Defaulted::NONE));
    let item = Item::Write { actor, idempotency: idem, command, reply: ReplyWith::View };
    let view = submit_one(&app, item, None).await?;
    let View::ApiKey(mut view) = view else { return Err(ApiError::shutting_down()) };
    if app.engine.keys.authenticate(&secret).is_some() {
        view.key = Some(secret);
    }
    Ok((CREATED, Json(View::ApiKey(view))))
}

/// Revoke an API key (admin).
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "admin",
    responses((status = 200, body = ApiKeyView), (status = "4XX", body = ErrorBody)))]
pub async fn revoke_api_key(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
) -> Answer {
    write(&app, actor, &key, Command::RevokeApiKey { key: ApiKeyId(id) }, OK).await
}

/// Create a merchant (admin).
#[utoipa::path(post, path = "/v1/merchants", tag = "catalogue", request_body = CreateMerchantRequest,
    responses((status = 201, body = MerchantView), (status = "4XX", body = ErrorBody)))]
pub async fn create_merchant(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CreateMerchantRequest>,
) -> Answer {
    let defaulted = Defaulted { commission_bps: request.commission_bps.is_none(), ..Defaulted::NONE };
    let commission_bps = request.commission_bps.unwrap_or(app.config.engine.default_commission_bps);
    let command = Command::CreateMerchant { name: request.name, commission_bps };
    write_ticketed(&app, actor, &key, (command, defaulted), CREATED, None).await
}

/// A merchant.
#[utoipa::path(get, path = "/v1/merchants/{id}", tag = "catalogue",
    responses((status = 200, body = MerchantView), (status = "4XX", body = ErrorBody)))]
pub async fn get_merchant(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::Merchant(MerchantId(id))).await
}

/// A merchant's wallet: balances per currency and the newest ledger entries.
#[utoipa::path(get, path = "/v1/merchants/{id}/wallet", tag = "wallets", params(WalletParams),
    responses((status = 200, body = WalletView), (status = "4XX", body = ErrorBody)))]
pub async fn get_merchant_wallet(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
    AppQuery(params): AppQuery<WalletParams>,
) -> Answer {
    read(&app, actor, wallet(Owner::Merchant(MerchantId(id)), params)).await
}

fn wallet(owner: Owner, params: WalletParams) -> Query {
    Query::Wallet {
        owner,
        entries_max: params.entries.unwrap_or(20).min(WALLET_ENTRIES_MAX),
        before: params.before.map(TransferId),
    }
}

/// Create a buyer (admin, service).
#[utoipa::path(post, path = "/v1/buyers", tag = "wallets", request_body = CreateBuyerRequest,
    responses((status = 201, body = BuyerView), (status = "4XX", body = ErrorBody)))]
pub async fn create_buyer(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CreateBuyerRequest>,
) -> Answer {
    write(&app, actor, &key, Command::CreateBuyer { name: request.name }, CREATED).await
}

/// A buyer.
#[utoipa::path(get, path = "/v1/buyers/{id}", tag = "wallets",
    responses((status = 200, body = BuyerView), (status = "4XX", body = ErrorBody)))]
pub async fn get_buyer(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::Buyer(BuyerId(id))).await
}

/// Top up a buyer's wallet from the external funding account.
#[utoipa::path(post, path = "/v1/buyers/{id}/top-ups", tag = "wallets", request_body = TopUpRequest,
    responses((status = 201, body = TopUpView), (status = "4XX", body = ErrorBody)))]
pub async fn create_top_up(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<TopUpRequest>,
) -> Answer {
    write(&app, actor, &key, top_up(id, request)?, CREATED).await
}

/// A buyer's wallet: balances per currency and the newest ledger entries.
#[utoipa::path(get, path = "/v1/buyers/{id}/wallet", tag = "wallets", params(WalletParams),
    responses((status = 200, body = WalletView), (status = "4XX", body = ErrorBody)))]
pub async fn get_buyer_wallet(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
    AppQuery(params): AppQuery<WalletParams>,
) -> Answer {
    read(&app, actor, wallet(Owner::Buyer(BuyerId(id)), params)).await
}

/// The platform's commission account (admin).
#[utoipa::path(get, path = "/v1/platform/wallet", tag = "wallets", params(WalletParams),
    responses((status = 200, body = WalletView), (status = "4XX", body = ErrorBody)))]
pub async fn get_platform_wallet(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppQuery(params): AppQuery<WalletParams>,
) -> Answer {
    read(&app, actor, wallet(Owner::Platform, params)).await
}

/// Create a SKU (admin, or the merchant itself).
#[utoipa::path(post, path = "/v1/skus", tag = "catalogue", request_body = CreateSkuRequest,
    responses((status = 201, body = SkuView), (status = "4XX", body = ErrorBody)))]
pub async fn create_sku(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CreateSkuRequest>,
) -> Answer {
    write(&app, actor, &key, request.command()?, CREATED).await
}

/// A SKU with its inventory: available, reserved, sold.
#[utoipa::path(get, path = "/v1/skus/{id}", tag = "catalogue",
    responses((status = 200, body = SkuView), (status = "4XX", body = ErrorBody)))]
pub async fn get_sku(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::Sku(SkuId(id))).await
}

/// Edit a SKU's title, description or price (admin, or its merchant).
#[utoipa::path(patch, path = "/v1/skus/{id}", tag = "catalogue", request_body = UpdateSkuRequest,
    responses((status = 200, body = SkuView), (status = "4XX", body = ErrorBody)))]
pub async fn update_sku(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<UpdateSkuRequest>,
) -> Answer {
    let UpdateSkuRequest { title, description, price } = request;
    let edit = SkuEdit { sku: SkuId(id), title, description, price: price.map(Amount) };
    write(&app, actor, &key, Command::UpdateSku(Box::new(edit)), OK).await
}

/// Add stock to a SKU.
#[utoipa::path(post, path = "/v1/skus/{id}/restock", tag = "catalogue", request_body = RestockRequest,
    responses((status = 200, body = RestockView), (status = "4XX", body = ErrorBody)))]
pub async fn restock(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<RestockRequest>,
) -> Answer {
    write(&app, actor, &key, Command::Restock { sku: SkuId(id), quantity: request.quantity }, OK).await
}

/// Create a flash-sale campaign on a SKU.
#[utoipa::path(post, path = "/v1/campaigns", tag = "promotions", request_body = CreateCampaignRequest,
    responses((status = 201, body = CampaignView), (status = "4XX", body = ErrorBody)))]
pub async fn create_campaign(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CreateCampaignRequest>,
) -> Answer {
    write(&app, actor, &key, request.command()?, CREATED).await
}

/// A campaign, with the server's time for the countdown.
#[utoipa::path(get, path = "/v1/campaigns/{id}", tag = "promotions",
    responses((status = 200, body = CampaignView), (status = "4XX", body = ErrorBody)))]
pub async fn get_campaign(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::Campaign(CampaignId(id))).await
}

/// Place an order: reserves the stock until the order is paid, cancelled or expires. An order
/// with an admitted waiting-room ticket (header `Waiting-Room-Ticket`) passes the rate limits.
#[utoipa::path(post, path = "/v1/orders", tag = "orders", request_body = PlaceOrderRequest,
    responses((status = 201, body = OrderView), (status = "4XX", body = ErrorBody)))]
pub async fn place_order(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    ticket: WaitingRoomTicket,
    AppJson(request): AppJson<PlaceOrderRequest>,
) -> Answer {
    let command = request.command(&app.config);
    write_ticketed(&app, actor, &key, (command, Defaulted::NONE), CREATED, ticket.0).await
}

/// An order.
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders",
    responses((status = 200, body = OrderView), (status = "4XX", body = ErrorBody)))]
pub async fn get_order(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::Order(OrderId(id))).await
}

/// Pay an order from the buyer's wallet: merchant and platform are credited atomically.
#[utoipa::path(post, path = "/v1/orders/{id}/pay", tag = "orders",
    responses((status = 200, body = OrderView), (status = "4XX", body = ErrorBody)))]
pub async fn pay_order(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
) -> Answer {
    write(&app, actor, &key, Command::PayOrder { order: OrderId(id) }, OK).await
}

/// Cancel an unpaid order; its stock is released.
#[utoipa::path(post, path = "/v1/orders/{id}/cancel", tag = "orders",
    responses((status = 200, body = OrderView), (status = "4XX", body = ErrorBody)))]
pub async fn cancel_order(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
) -> Answer {
    write(&app, actor, &key, Command::CancelOrder { order: OrderId(id) }, OK).await
}

/// Refund a paid order (admin or its merchant); the merchant chooses whether to restock.
#[utoipa::path(post, path = "/v1/orders/{id}/refund", tag = "orders", request_body = RefundRequest,
    responses((status = 200, body = OrderView), (status = "4XX", body = ErrorBody)))]
pub async fn refund_order(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<RefundRequest>,
) -> Answer {
    write(&app, actor, &key, Command::RefundOrder { order: OrderId(id), restock: request.restock }, OK).await
}

/// Release every reservation that is due now (the engine also does this by itself).
#[utoipa::path(post, path = "/v1/reservations/expire", tag = "orders",
    responses((status = 200, body = ExpiredView), (status = "4XX", body = ErrorBody)))]
pub async fn expire_reservations(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
) -> Answer {
    write(&app, actor, &key, Command::Tick, OK).await
}

/// Check every invariant and return the digest of the whole state (admin).
#[utoipa::path(get, path = "/v1/audit", tag = "ops",
    responses((status = 200, body = AuditView), (status = "4XX", body = ErrorBody)))]
pub async fn audit(axum::extract::State(app): axum::extract::State<AppState>, Auth(actor): Auth) -> Answer {
    if actor != Actor::Admin {
        return Err(forbidden());
    }
    let report = app.engine.auditor.audit().await.map_err(|e| match e {
        crate::audit::AuditError::Busy => ApiError::from(Refusal::Overloaded { retry_after: AUDIT_RETRY }),
        crate::audit::AuditError::Read(error) => {
            ApiError::internal(format!("reading the durable state: {error}"))
        }
    })?;
    Ok((OK, Json(View::Audit(report.into()))))
}

/// How long a client asking for an audit while one runs is told to wait, in ns.
const AUDIT_RETRY: u64 = 1_000_000_000;

/// Create a coupon: merchant-funded (by the merchant, for its SKUs) or platform-funded (admin).
#[utoipa::path(post, path = "/v1/coupons", tag = "promotions", request_body = CreateCouponRequest,
    responses((status = 201, body = CouponView), (status = "4XX", body = ErrorBody)))]
pub async fn create_coupon(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CreateCouponRequest>,
) -> Answer {
    write(&app, actor, &key, request.command()?, CREATED).await
}

/// The newest coupons, of one merchant if asked.
#[utoipa::path(get, path = "/v1/coupons", tag = "promotions", params(CouponListParams),
    responses((status = 200, body = CouponList), (status = "4XX", body = ErrorBody)))]
pub async fn list_coupons(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppQuery(params): AppQuery<CouponListParams>,
) -> Answer {
    let sponsor = params.merchant_id.map(|m| Sponsor::Merchant(MerchantId(m)));
    read(&app, actor, Query::Coupons { sponsor }).await
}

/// A coupon, with its budget used so far.
#[utoipa::path(get, path = "/v1/coupons/{id}", tag = "promotions",
    responses((status = 200, body = CouponView), (status = "4XX", body = ErrorBody)))]
pub async fn get_coupon(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::Coupon(CouponId(id))).await
}

/// Stop a coupon from being used by new orders.
#[utoipa::path(post, path = "/v1/coupons/{id}/disable", tag = "promotions",
    responses((status = 200, body = CouponView), (status = "4XX", body = ErrorBody)))]
pub async fn disable_coupon(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
) -> Answer {
    write(&app, actor, &key, Command::DisableCoupon { coupon: CouponId(id) }, OK).await
}

/// Coupons a buyer can use now, with the uses left to the buyer.
#[utoipa::path(get, path = "/v1/buyers/{id}/coupons", tag = "promotions",
    responses((status = 200, body = CouponList), (status = "4XX", body = ErrorBody)))]
pub async fn get_buyer_coupons(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::BuyerCoupons(BuyerId(id))).await
}

/// Fund a red packet: the pool moves from the sponsor into escrow at once.
#[utoipa::path(post, path = "/v1/red-packets", tag = "promotions", request_body = CreateRedPacketRequest,
    responses((status = 201, body = RedPacketView), (status = "4XX", body = ErrorBody)))]
pub async fn create_red_packet(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CreateRedPacketRequest>,
) -> Answer {
    write_ticketed(&app, actor, &key, request.command()?, CREATED, None).await
}

/// The newest red packets.
#[utoipa::path(get, path = "/v1/red-packets", tag = "promotions",
    responses((status = 200, body = RedPacketList), (status = "4XX", body = ErrorBody)))]
pub async fn list_red_packets(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
) -> Answer {
    read(&app, actor, Query::RedPackets).await
}

/// A red packet: shares claimed, money left, status.
#[utoipa::path(get, path = "/v1/red-packets/{id}", tag = "promotions",
    responses((status = 200, body = RedPacketView), (status = "4XX", body = ErrorBody)))]
pub async fn get_red_packet(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::RedPacket(RedPacketId(id))).await
}

/// Close a red packet now: what is unclaimed returns to the sponsor.
#[utoipa::path(post, path = "/v1/red-packets/{id}/close", tag = "promotions",
    responses((status = 200, body = RedPacketView), (status = "4XX", body = ErrorBody)))]
pub async fn close_red_packet(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
) -> Answer {
    write(&app, actor, &key, Command::CloseRedPacket { packet: RedPacketId(id) }, OK).await
}

/// Claim a share: at most one per buyer, credited to the buyer's wallet.
#[utoipa::path(post, path = "/v1/red-packets/{id}/claims", tag = "promotions", request_body = ClaimRequest,
    responses((status = 201, body = ClaimView), (status = "4XX", body = ErrorBody)))]
pub async fn claim_red_packet(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<ClaimRequest>,
) -> Answer {
    let command = Command::ClaimRedPacket { packet: RedPacketId(id), buyer: BuyerId(request.buyer_id) };
    write(&app, actor, &key, command, CREATED).await
}

/// A buyer's red-packet shares.
#[utoipa::path(get, path = "/v1/buyers/{id}/red-packets", tag = "promotions",
    responses((status = 200, body = ClaimList), (status = "4XX", body = ErrorBody)))]
pub async fn get_buyer_claims(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::BuyerClaims(BuyerId(id))).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub commands: Vec<BatchItem>,
}

/// One command of a batch: `op` names it, `params` are the fields of the single endpoint's
/// body plus the id that endpoint takes from its path (`order_id`, `sku_id`, `buyer_id`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    /// create_buyer, create_sku, restock, top_up, create_campaign, place_order, pay_order,
    /// cancel_order, refund_order, claim_red_packet.
    pub op: String,
    pub idempotency_key: String,
    /// Kept as raw JSON and parsed straight into the op's own shape (no intermediate tree).
    #[schema(value_type = Object)]
    pub params: Box<serde_json::value::RawValue>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    /// The HTTP status the single endpoint would have answered.
    pub status: u16,
    /// What the single endpoint would have answered.
    #[schema(value_type = Object)]
    pub body: BatchBody,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum BatchBody {
    Ok(View),
    Error(ErrorBody),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<BatchResult>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderParams {
    pub order_id: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundParams {
    pub order_id: u64,
    #[serde(default)]
    pub restock: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimParams {
    pub red_packet_id: u64,
    pub buyer_id: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestockParams {
    pub sku_id: u64,
    pub quantity: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopUpParams {
    pub buyer_id: u64,
    pub amount: u64,
    pub currency: String,
}

fn params<T: serde::de::DeserializeOwned>(raw: &serde_json::value::RawValue) -> Result<T, ApiError> {
    serde_json::from_str(raw.get())
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", e.to_string()))
}

/// A JSON batch item's op, its params parsed straight into the op's own shape.
fn json_batch_op(item: &BatchItem) -> Result<BatchOp, ApiError> {
    let p = &*item.params;
    Ok(match item.op.as_str() {
        "create_buyer" => BatchOp::CreateBuyer(params(p)?),
        "create_sku" => BatchOp::CreateSku(params(p)?),
        "restock" => BatchOp::Restock(params(p)?),
        "top_up" => BatchOp::TopUp(params(p)?),
        "create_campaign" => BatchOp::CreateCampaign(params(p)?),
        "place_order" => BatchOp::PlaceOrder(params(p)?),
        "pay_order" => BatchOp::PayOrder(params(p)?),
        "cancel_order" => BatchOp::CancelOrder(params(p)?),
        "refund_order" => BatchOp::RefundOrder(params(p)?),
        "claim_red_packet" => BatchOp::ClaimRedPacket(params(p)?),
        other => return Err(ApiError::bad_request("unknown_op", format!("no batch operation {other:?}"))),
    })
}

impl BatchOp {
    /// The command, and the status its single endpoint answers on success.
    fn command(self, config: &Config) -> Result<(Command, StatusCode), ApiError> {
        Ok(match self {
            BatchOp::CreateBuyer(b) => (Command::CreateBuyer { name: b.name }, CREATED),
            BatchOp::CreateSku(s) => (s.command()?, CREATED),
            BatchOp::Restock(r) => (Command::Restock { sku: SkuId(r.sku_id), quantity: r.quantity }, OK),
            BatchOp::TopUp(t) => {
                (top_up(t.buyer_id, TopUpRequest { amount: t.amount, currency: t.currency })?, CREATED)
            }
            BatchOp::CreateCampaign(c) => (c.command()?, CREATED),
            BatchOp::PlaceOrder(o) => (o.command(config), CREATED),
            BatchOp::PayOrder(o) => (Command::PayOrder { order: OrderId(o.order_id) }, OK),
            BatchOp::CancelOrder(o) => (Command::CancelOrder { order: OrderId(o.order_id) }, OK),
            BatchOp::RefundOrder(r) => {
                (Command::RefundOrder { order: OrderId(r.order_id), restock: r.restock }, OK)
            }
            BatchOp::ClaimRedPacket(c) => (
                Command::ClaimRedPacket { packet: RedPacketId(c.red_packet_id), buyer: BuyerId(c.buyer_id) },
                CREATED,
            ),
        })
    }
}

/// Checked before any command is looked at.
fn check_batch_len(len: usize, config: &Config) -> Result<(), ApiError> {
    if len > config.engine.batch_commands_max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("a batch carries at most {} commands", config.engine.batch_commands_max),
        ));
    }
    Ok(())
}

/// The header by which a batch says it holds only payments (`pay`: pay, cancel, refund), so the
/// gateway's door gives it the payments' room under load instead of shedding it with the
/// orders; checked command by command, so a batch cannot buy that room with an order.
pub const BATCH_CLASS_HEADER: &str = "batch-class";

const BATCH_CLASS_DOC: &str =
    "`pay` for a batch of payments only (pay, cancel, refund): under load it gets the \
    payments' room at the door; an order in it refuses the whole request. `order` or absent otherwise.";

/// The class a batch request declares, if any.
pub(crate) fn declared_batch_class(headers: &axum::http::HeaderMap) -> Result<Option<Class>, ApiError> {
    match headers.get(BATCH_CLASS_HEADER).map(|v| v.to_str()) {
        None => Ok(None),
        Some(Ok("pay")) => Ok(Some(Class::Pay)),
        Some(Ok("order")) => Ok(Some(Class::Order)),
        Some(_) => Err(ApiError::bad_request("invalid_batch_class", "Batch-Class is pay or order")),
    }
}

/// What one command of a batch came to: its success status and reply, or its refusal.
type BatchAnswer = Result<(StatusCode, Reply), ApiError>;

/// The work both batch encodings share: each command's key checked and op made a command, the
/// good ones admitted and submitted together, one answer per command in order (a command
/// refused before the sequencer gets its refusal where it stood).
async fn run_batch<K: AsRef<str>>(
    app: &AppState,
    actor: Actor,
    commands: Vec<(K, Result<BatchOp, ApiError>)>,
    reply: ReplyWith,
    declared: Option<Class>,
) -> Result<Vec<BatchAnswer>, ApiError> {
    let mut prepared: Vec<Result<StatusCode, ApiError>> = Vec::with_capacity(commands.len());
    let mut items = Vec::with_capacity(commands.len());
    for (key, op) in commands {
        let key = key.as_ref();
        let parsed = check_idempotency_key(key).and_then(|()| op?.command(&app.config));
        prepared.push(parsed.map(|(command, status)| {
            let idempotency = Some(idempotency(actor, key, &command, Defaulted::NONE));
            items.push(Item::Write { actor, idempotency, command, reply });
            status
        }));
    }
    let pay_or_operator = |item: &Item| matches!(crate::gate::classify(item), Class::Pay | Class::Operator);
    if declared == Some(Class::Pay) && !items.iter().all(pay_or_operator) {
        return Err(ApiError::bad_request(
            "batch_class_mismatch",
            "a batch declared Batch-Class: pay holds only pay_order, cancel_order and refund_order",
        ));
    }
    let mut outcomes = submit(app, items, None).await?.into_iter();
    Ok(prepared
        .into_iter()
        .map(|p| {
            let status = p?;
            let reply = outcomes.next().ok_or_else(ApiError::shutting_down)??;
            Ok((status, reply))
        })
        .collect())
}

fn error_result(error: ApiError) -> BatchResult {
    BatchResult { status: error.status.as_u16(), body: BatchBody::Error(error.body) }
}

/// Many commands in one request; each gets its own result, in order. Commands are applied in
/// order and made durable together (one fsync).
#[utoipa::path(post, path = "/v1/batch", tag = "orders", request_body = BatchRequest,
    params(("Batch-Class" = Option<String>, Header, description = BATCH_CLASS_DOC)),
    responses((status = 200, body = BatchResponse), (status = "4XX", body = ErrorBody)))]
pub async fn batch(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    headers: axum::http::HeaderMap,
    AppJson(request): AppJson<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    let declared = declared_batch_class(&headers)?;
    check_batch_len(request.commands.len(), &app.config)?;
    // A command's params that are not an object break the batch's schema, as a body of the wrong
    // type does: the whole batch is refused, as `AppJson` refuses such a body.
    if let Some(i) = request.commands.iter().position(|c| !c.params.get().trim_start().starts_with('{')) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("commands[{i}].params: an object is expected"),
        ));
    }
    let commands = request
        .commands
        .into_iter()
        .map(|item| {
            let op = json_batch_op(&item);
            (item.idempotency_key, op)
        })
        .collect();
    let answers = run_batch(&app, actor, commands, ReplyWith::View, declared).await?;
    let results = answers
        .into_iter()
        .map(|answer| match answer.and_then(|(status, reply)| Ok((status, view_of(reply)?))) {
            Ok((status, view)) => BatchResult { status: status.as_u16(), body: BatchBody::Ok(view) },
            Err(error) => error_result(error),
        })
        .collect();
    Ok(Json(BatchResponse { results }))
}

/// The JSON batch's commands in postcard, answered with each command's outcome in postcard
/// (see [`crate::wire`] for the format): for backends that send thousands of commands a second.
#[utoipa::path(post, path = "/v1/batch/binary", tag = "orders",
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "a postcard-encoded BinaryBatch (crate `elevens_http::wire`)"),
    params(("Batch-Class" = Option<String>, Header, description = BATCH_CLASS_DOC)),
    responses((status = 200, content_type = "application/octet-stream",
        description = "a postcard-encoded BinaryAnswer, one result per command"),
        (status = "4XX", body = ErrorBody)))]
pub async fn batch_binary(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    // The media type, whatever parameters follow it.
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let media_type = content_type.and_then(|t| t.split(';').next()).map(str::trim);
    if !media_type.is_some_and(|t| t.eq_ignore_ascii_case(OCTET_STREAM)) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the binary batch as Content-Type: application/octet-stream",
        ));
    }
    let declared = declared_batch_class(&headers)?;
    let request: BinaryBatch = postcard::from_bytes(&body).map_err(|e| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", format!("not a binary batch: {e}"))
    })?;
    check_batch_len(request.commands.len(), &app.config)?;
    let commands = request.commands.into_iter().map(|c| (c.idempotency_key, Ok(c.op))).collect();
    let answers = run_batch(&app, actor, commands, ReplyWith::Outcome, declared).await?;
    let results = answers
        .into_iter()
        .map(|answer| match answer.and_then(|(status, reply)| Ok((status, outcome_of(reply)?))) {
            Ok((status, outcome)) => BinaryResult { status: status.as_u16(), outcome: Ok(outcome) },
            Err(error) => BinaryResult {
                status: error.status.as_u16(),
                outcome: Err(BinaryError {
                    code: error.body.code,
                    message: error.body.message,
                    retry_after_ms: error.body.retry_after_ms,
                }),
            },
        })
        .collect();
    let bytes = postcard::to_allocvec(&BinaryAnswer { results })
        .map_err(|e| ApiError::internal(format!("encoding the answer: {e}")))?;
    Ok(([(header::CONTENT_TYPE, OCTET_STREAM)], bytes).into_response())
}

const OCTET_STREAM: &str = "application/octet-stream";

/// A write asked with [`ReplyWith::View`], or a read, comes back as a view.
fn view_of(reply: Reply) -> Result<View, ApiError> {
    match reply {
        Reply::View(view) => Ok(*view),
        Reply::Outcome(_) => Err(ApiError::internal("an outcome where a view was asked")),
    }
}

/// A write asked with [`ReplyWith::Outcome`] comes back as its outcome.
fn outcome_of(reply: Reply) -> Result<Outcome, ApiError> {
    match reply {
        Reply::Outcome(outcome) => Ok(outcome),
        Reply::View(_) => Err(ApiError::internal("a view where an outcome was asked")),
    }
}

// ---- experiments ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Relative share of buyers (1 to 10,000).
    pub weight: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExperimentRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// 2 to 8 variants; the first is the control.
    pub variants: Vec<VariantRequest>,
    pub starts_at: u64,
    pub ends_at: u64,
}

/// Define an A/B experiment (admin). Each buyer's variant is a stable hash of experiment and
/// buyer; storefronts ask `GET /v1/experiments/{id}/variant` and report views.
#[utoipa::path(post, path = "/v1/experiments", tag = "analytics", request_body = CreateExperimentRequest,
    responses((status = 201, body = ExperimentView), (status = "4XX", body = ErrorBody)))]
pub async fn create_experiment(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CreateExperimentRequest>,
) -> Answer {
    if request.variants.len() > elevens_core::limits::EXPERIMENT_VARIANTS_MAX {
        return Err(ApiError::out_of_bounds("variants", "an experiment has 2 to 8 variants"));
    }
    let command = Command::CreateExperiment(NewExperiment {
        name: request.name,
        variants: request.variants.into_iter().map(|v| Variant { name: v.name, weight: v.weight }).collect(),
        starts_at: Millis(request.starts_at),
        ends_at: Millis(request.ends_at),
    });
    write(&app, actor, &key, command, CREATED).await
}

/// An experiment's definition.
#[utoipa::path(get, path = "/v1/experiments/{id}", tag = "analytics",
    responses((status = 200, body = ExperimentView), (status = "4XX", body = ErrorBody)))]
pub async fn get_experiment(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::Experiment(ExperimentId(id))).await
}

// ---- admission control ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TakeTicketRequest {
    pub campaign_id: u64,
    pub buyer_id: u64,
}

/// A waiting-room ticket: `state` is `waiting` (with `position` and `wait_ms`), `admitted`
/// (with `use_within_ms`) or `used`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketResponse {
    /// Send it as the `Waiting-Room-Ticket` header of the order.
    pub ticket: String,
    pub campaign_id: u64,
    pub buyer_id: u64,
    pub state: &'static str,
    pub position: Option<u64>,
    pub wait_ms: Option<u64>,
    pub use_within_ms: Option<u64>,
}

impl From<TicketView> for TicketResponse {
    fn from(view: TicketView) -> TicketResponse {
        let (state, position, wait_ms, use_within_ms) = match view.state {
            TicketState::Waiting { position, wait_ms } => ("waiting", Some(position), Some(wait_ms), None),
            TicketState::Admitted { use_within_ms } => ("admitted", None, None, Some(use_within_ms)),
            TicketState::Used => ("used", None, None, None),
        };
        TicketResponse {
            ticket: format!("{:016x}", view.ticket),
            campaign_id: view.campaign_id,
            buyer_id: view.buyer_id,
            state,
            position,
            wait_ms,
            use_within_ms,
        }
    }
}

fn forbidden() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", "this key may not do that")
}

/// Take a ticket in a campaign's waiting room (or get back the one this buyer holds). Tickets are
/// admitted first-in first-out at the room's rate; poll `GET /v1/waiting-room/{ticket}`.
#[utoipa::path(post, path = "/v1/waiting-room", tag = "admission", request_body = TakeTicketRequest,
    responses((status = 201, body = TicketResponse), (status = "4XX", body = ErrorBody)))]
pub async fn take_ticket(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppJson(request): AppJson<TakeTicketRequest>,
) -> Result<(StatusCode, Json<TicketResponse>), ApiError> {
    if !actor.may_act_for_buyer(BuyerId(request.buyer_id)) {
        return Err(forbidden());
    }
    if request.campaign_id == 0 || request.buyer_id == 0 {
        return Err(ApiError::bad_request("invalid_body", "campaign_id and buyer_id start at 1"));
    }
    // A room only for a campaign that exists and has not ended, and its ticket only for that
    // campaign's SKU: otherwise a ticket for anything would bypass a hot SKU's rate limit.
    let campaign = match read_view(&app, actor, Query::Campaign(CampaignId(request.campaign_id))).await? {
        View::Campaign(campaign) => campaign,
        _ => return Err(ApiError::internal("a campaign read answered with another view")),
    };
    if campaign.status == "ended" {
        return Err(ApiError::new(StatusCode::CONFLICT, "campaign_ended", "this campaign has ended"));
    }
    let (campaign_id, sku) = (request.campaign_id, campaign.sku_id);
    let view = app.gate.with(|a, now| a.take_ticket(campaign_id, sku, request.buyer_id, now))?;
    Ok((CREATED, Json(view.into())))
}

/// Where a waiting-room ticket stands: its position and estimated wait, or that it is admitted.
#[utoipa::path(get, path = "/v1/waiting-room/{ticket}", tag = "admission",
    responses((status = 200, body = TicketResponse), (status = "4XX", body = ErrorBody)))]
pub async fn get_ticket(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(ticket): AppPath<String>,
) -> Result<Json<TicketResponse>, ApiError> {
    let ticket = parse_ticket(&ticket)?;
    let view = app.gate.with(|a, now| a.ticket(ticket, now))?;
    // Another buyer's ticket is answered as absent: tickets are not to be collected.
    if !actor.may_act_for_buyer(BuyerId(view.buyer_id)) {
        return Err(Refusal::Ticket(TicketError::Unknown).into());
    }
    Ok(Json(view.into()))
}

/// Admission control now: the adaptive limit, commands in flight, admitted and shed per class.
#[utoipa::path(get, path = "/v1/admission", tag = "admission",
    responses((status = 200, body = Object), (status = "4XX", body = ErrorBody)))]
pub async fn get_admission(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Stats>, ApiError> {
    if !matches!(actor, Actor::Admin | Actor::Service) {
        return Err(forbidden());
    }
    Ok(Json(app.gate.stats()))
}

/// The admission rules in force (admin).
#[utoipa::path(get, path = "/v1/admission/rules", tag = "admission",
    responses((status = 200, body = Object), (status = "4XX", body = ErrorBody)))]
pub async fn get_admission_rules(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Rules>, ApiError> {
    if actor != Actor::Admin {
        return Err(forbidden());
    }
    Ok(Json(app.gate.rules()))
}

/// Replace the admission rules at runtime (admin); absent fields take their defaults. Buckets,
/// the adaptive limit's value and tickets carry over. Kept in the data directory before they take
/// effect, so a restart starts with them (they are operations, not business state: not journaled,
/// and each node of a cluster keeps its own).
#[utoipa::path(put, path = "/v1/admission/rules", tag = "admission", request_body = Object,
    responses((status = 200, body = Object), (status = "4XX", body = ErrorBody)))]
pub async fn put_admission_rules(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppJson(rules): AppJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<Json<Rules>, ApiError> {
    if actor != Actor::Admin {
        return Err(forbidden());
    }
    // An object, never serde's sequence form of a struct (`[]` would have reset every rule).
    let rules: Rules = serde_json::from_value(serde_json::Value::Object(rules))
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", e.to_string()))?;
    let gate = app.gate.clone();
    let set = tokio::task::spawn_blocking(move || gate.set_rules(rules))
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "rules_not_kept", "stopping; retry"))?;
    match set {
        Ok(()) => Ok(Json(app.gate.rules())),
        Err(SetRulesError::Invalid(why)) => Err(ApiError::bad_request("invalid_rules", why)),
        Err(error @ SetRulesError::NotKept(_)) => {
            tracing::error!(%error, "admission rules not replaced");
            let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "rules_not_kept", error.to_string());
            e.body.retry_after_ms = Some(1_000);
            Err(e)
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "elevens", description = "The transaction core of a marketplace: catalogue, inventory, orders, flash sales and an Alipay-style ledger."),
    modifiers(&BearerAuth),
    security(("api_key" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route and its OpenAPI document, built together.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(crate::listing::get_me))
        .routes(routes!(crate::listing::merchant_skus))
        .routes(routes!(crate::listing::merchant_campaigns))
        .routes(routes!(cluster))
        .routes(routes!(create_api_key, crate::listing::list_api_keys))
        .routes(routes!(revoke_api_key))
        .routes(routes!(create_merchant, crate::listing::list_merchants))
        .routes(routes!(get_merchant))
        .routes(routes!(get_merchant_wallet))
        .routes(routes!(create_buyer, crate::listing::list_buyers))
        .routes(routes!(get_buyer))
        .routes(routes!(create_top_up))
        .routes(routes!(get_buyer_wallet))
        .routes(routes!(get_platform_wallet))
        .routes(routes!(create_sku))
        .routes(routes!(get_sku, update_sku))
        .routes(routes!(restock))
        .routes(routes!(create_campaign))
        .routes(routes!(get_campaign))
        .routes(routes!(place_order))
        .routes(routes!(get_order))
        .routes(routes!(pay_order))
        .routes(routes!(cancel_order))
        .routes(routes!(refund_order))
        .routes(routes!(expire_reservations))
        .routes(routes!(audit))
        .routes(routes!(create_coupon, list_coupons))
        .routes(routes!(get_coupon))
        .routes(routes!(disable_coupon))
        .routes(routes!(get_buyer_coupons))
        .routes(routes!(create_red_packet, list_red_packets))
        .routes(routes!(get_red_packet))
        .routes(routes!(close_red_packet))
        .routes(routes!(claim_red_packet))
        .routes(routes!(get_buyer_claims))
        .routes(routes!(batch))
        .routes(routes!(batch_binary))
        .routes(routes!(take_ticket))
        .routes(routes!(get_ticket))
        .routes(routes!(get_admission))
        .routes(routes!(get_admission_rules, put_admission_rules))
        .routes(routes!(crate::live::summary))
        .routes(routes!(crate::live::timeline))
        .routes(routes!(crate::live::top))
        .routes(routes!(crate::live::funnel))
        .routes(routes!(crate::live::views))
        .routes(routes!(create_experiment, crate::listing::list_experiments))
        .routes(routes!(get_experiment))
        .routes(routes!(crate::live::variant))
        .routes(routes!(crate::live::experiment_results))
        .routes(routes!(crate::live::search))
        .routes(routes!(crate::events::list_events))
        .routes(routes!(crate::webhooks::create_webhook, crate::webhooks::list_webhooks))
        .routes(routes!(crate::webhooks::get_webhook, crate::webhooks::delete_webhook))
        .routes(routes!(crate::webhooks::enable_webhook))
        .routes(routes!(crate::webhooks::list_deliveries))
        .merge(crate::logistics::routes(OpenApiRouter::new()))
}
