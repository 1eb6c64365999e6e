//! The batch endpoints: many commands in one request, as JSON (answered with views) or postcard
//! (answered with outcomes), admitted as one class.

use crate::api::*;
use crate::config::Config;
use crate::engine::{Item, Reply, ReplyWith};
use crate::error::{ApiError, ErrorBody};
use crate::fingerprint::{idempotency, Defaulted};
use crate::ledger::*;
use crate::views::*;
use crate::wire::{BatchOp, BinaryAnswer, BinaryBatch, BinaryError, BinaryResult};
use axum::http::{header, StatusCode};
use axum::Json;
use elevens_admission::Class;
use elevens_core::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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

pub(crate) fn params<T: serde::de::DeserializeOwned>(
    raw: &serde_json::value::RawValue,
) -> Result<T, ApiError> {
    serde_json::from_str(raw.get())
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", e.to_string()))
}

/// A JSON batch item's op, its params parsed straight into the op's own shape.
pub(crate) fn json_batch_op(item: &BatchItem) -> Result<BatchOp, ApiError> {
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
        "checkout" => BatchOp::Checkout(params(p)?),
        other => return Err(ApiError::bad_request("unknown_op", format!("no batch operation {other:?}"))),
    })
}

impl BatchOp {
    /// The command, and the status its single endpoint answers on success.
    pub(crate) fn command(self, config: &Config) -> Result<(Command, StatusCode), ApiError> {
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
            BatchOp::Checkout(c) => (c.command(), CREATED),
        })
    }
}

/// Checked before any command is looked at.
pub(crate) fn check_batch_len(len: usize, config: &Config) -> Result<(), ApiError> {
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

pub(crate) const BATCH_CLASS_DOC: &str =
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
pub(crate) type BatchAnswer = Result<(StatusCode, Reply), ApiError>;

/// The work both batch encodings share: each command's key checked and op made a command, the
/// good ones admitted and submitted together, one answer per command in order (a command
/// refused before the sequencer gets its refusal where it stood).
pub(crate) async fn run_batch<K: AsRef<str>>(
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

pub(crate) fn error_result(error: ApiError) -> BatchResult {
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

pub(crate) const OCTET_STREAM: &str = "application/octet-stream";

/// A write asked with [`ReplyWith::Outcome`] comes back as its outcome.
pub(crate) fn outcome_of(reply: Reply) -> Result<Outcome, ApiError> {
    match reply {
        Reply::Outcome(outcome) => Ok(outcome),
        Reply::View(_) => Err(ApiError::internal("a view where an outcome was asked")),
    }
}
