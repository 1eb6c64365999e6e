//! How the load generator reaches a target: the engine in-process, or the HTTP API with one
//! command per request or many per batch. The workloads speak in [`Op`]s and never know which.

use crate::BatchEncoding;
use anyhow::{bail, Context};
use elevens_core::{Actor, Command, Idempotency, LineRequest, Outcome};
use elevens_core::{BuyerId, OrderId, RedPacketId, SkuId};
use elevens_http::batch::BATCH_CLASS_HEADER;
use elevens_http::engine::{EngineHandle, Item, ItemResult, Reply, ReplyWith};
use elevens_http::gate::{submit_admitted, Gate, SubmitError};
use elevens_http::seam::Commands;
use elevens_http::views::{Query, View};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// One unit of offered work.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Place {
        buyer: u64,
        sku: u64,
    },
    Pay {
        order: u64,
    },
    Claim {
        packet: u64,
        buyer: u64,
    },
    /// A product page: one SKU with its exact stock.
    Browse {
        sku: u64,
    },
    /// A storefront search (see [`search_text`]); the hits' stock is read exactly.
    Search {
        adjective: Option<u8>,
        noun: u8,
    },
    /// A category page: the category's SKUs (its subtree's), maybe of one brand, by relevance or
    /// price, with the facets counted (see [`crate::facets`]).
    Facets {
        category: u64,
        brand: Option<u8>,
        by_price: bool,
    },
    /// One unit each of SKUs `sku`, `sku + 1` and `sku + 2` (three stores), checked out.
    Checkout {
        buyer: u64,
        sku: u64,
    },
}

/// The lines of a checkout op.
fn checkout_lines(sku: u64) -> impl Iterator<Item = (u64, u32)> {
    (sku..sku + 3).map(|s| (s, 1))
}

impl Op {
    fn is_read(&self) -> bool {
        matches!(self, Op::Browse { .. } | Op::Search { .. } | Op::Facets { .. })
    }
}

/// A category page's query, as the index takes it.
pub(crate) fn facets_query(category: u64, brand: Option<u8>, by_price: bool) -> elevens_search::SearchQuery {
    elevens_search::SearchQuery {
        category: Some(category),
        attributes: brand_filter(brand).into_iter().collect(),
        sort: if by_price { elevens_search::Sort::PriceAscending } else { elevens_search::Sort::Relevance },
        facets: true,
        limit: SEARCH_PAGE,
        ..Default::default()
    }
}

/// A faceted query's brand filter, as the index and the API take it.
fn brand_filter(brand: Option<u8>) -> Option<(String, String)> {
    let brand = crate::facets::BRANDS[usize::from(brand?) % crate::facets::BRANDS.len()];
    Some(("brand".to_string(), brand.to_string()))
}

/// The words SKU titles are made of (`"red kettle 42"`), so that searches find something.
pub const ADJECTIVES: [&str; 16] = [
    "red", "blue", "green", "black", "white", "silver", "golden", "wooden", "smart", "compact", "portable",
    "wireless", "organic", "classic", "premium", "mini",
];
pub const NOUNS: [&str; 32] = [
    "phone", "kettle", "lamp", "jacket", "sneaker", "backpack", "watch", "speaker", "blender", "camera",
    "tablet", "scarf", "mug", "chair", "desk", "pillow", "blanket", "charger", "earbuds", "keyboard",
    "mouse", "monitor", "router", "drone", "bicycle", "helmet", "tent", "teapot", "wok", "fan", "heater",
    "umbrella",
];

/// A tail SKU's title: every adjective-noun pair names about 1 in 512 SKUs.
pub fn sku_title(index: u64) -> String {
    let (adjectives, nouns) = (ADJECTIVES.len() as u64, NOUNS.len() as u64);
    let adjective = ADJECTIVES[(index % adjectives) as usize];
    let noun = NOUNS[((index / adjectives) % nouns) as usize];
    format!("{adjective} {noun} {index}")
}

/// What a shopper types: a noun, or an adjective and a noun.
pub fn search_text(adjective: Option<u8>, noun: u8) -> String {
    let noun = NOUNS[usize::from(noun) % NOUNS.len()];
    match adjective {
        Some(a) => format!("{} {noun}", ADJECTIVES[usize::from(a) % ADJECTIVES.len()]),
        None => noun.to_owned(),
    }
}

/// Hits a storefront shows on one page of search results.
pub const SEARCH_PAGE: usize = 20;

/// What came back: the new order's id (place), the order's id (pay), the share (claim), the
/// units available (browse), the hits (search), or a refusal's code.
#[derive(Clone, Debug)]
pub enum Answer {
    Ok(u64),
    Refused(String),
}

/// Where the bench's HTTP API listens, and the key it calls it with.
#[derive(Clone)]
pub struct HttpApi {
    pub client: reqwest::Client,
    pub base: String,
    pub key: String,
}

pub enum Driver {
    /// The engine's submission queue; behind admission control when `gate` is set (the spike).
    InProcess {
        engine: EngineHandle,
        gate: Option<Arc<Gate>>,
    },
    Http {
        api: HttpApi,
        /// One request per op if absent; else batches, so encoded.
        batch: Option<BatchEncoding>,
        /// Dropping it stops the bench's server (and lets the engine shut down).
        _stop: tokio::sync::oneshot::Sender<()>,
    },
    /// One connection; `pipelined` sends a batch of calls without waiting for each answer.
    Postgres {
        client: tokio_postgres::Client,
        statement: tokio_postgres::Statement,
        pipelined: bool,
    },
    Redis {
        con: redis::aio::MultiplexedConnection,
        sha: String,
        pipelined: bool,
    },
    /// A bare hyper server's GET, for the ceiling of one request per round trip.
    Hello {
        client: reqwest::Client,
        url: String,
    },
}

pub const RESERVATION_TTL_MS: u64 = 15 * 60_000;

impl Driver {
    /// The peers place and pay an order in one call.
    pub fn pays_with_order(&self) -> bool {
        matches!(self, Driver::Postgres { .. } | Driver::Redis { .. })
    }
}

impl Driver {
    /// Runs `ops`, in order, each with its own idempotency key (`key_base` + position).
    pub async fn run(&self, ops: &[Op], key_base: u64) -> anyhow::Result<Vec<Answer>> {
        match self {
            Driver::Postgres { client, statement, pipelined } => {
                crate::peers::postgres_run(client, statement, ops, *pipelined).await
            }
            Driver::Redis { con, sha, pipelined } => {
                crate::peers::redis_run(&mut con.clone(), sha, ops, *pipelined).await
            }
            Driver::Hello { client, url } => {
                let mut answers = Vec::with_capacity(ops.len());
                for _ in ops {
                    let response = client.get(url).send().await?;
                    response.bytes().await?;
                    answers.push(Answer::Ok(0));
                }
                Ok(answers)
            }
            Driver::InProcess { engine, gate: None } => in_process(engine, ops, key_base).await,
            Driver::Http { api, batch: Some(encoding), .. } if ops.iter().any(Op::is_read) => {
                http_batch_mixed(api, *encoding, ops, key_base).await
            }
            Driver::InProcess { engine, gate: Some(gate) } => gated(engine, gate, ops, key_base).await,
            Driver::Http { api, batch: Some(encoding), .. } => {
                http_batch(api, *encoding, ops, key_base).await
            }
            Driver::Http { api, batch: None, .. } => {
                let mut answers = Vec::with_capacity(ops.len());
                for (i, op) in ops.iter().enumerate() {
                    answers.push(http_single(api, *op, key_base + i as u64).await?);
                }
                Ok(answers)
            }
        }
    }
}

/// The engine's item for an op. A search asks the index first, as the gateway does, then
/// reads the hits' stock exactly through the sequencer.
fn item(engine: &EngineHandle, op: Op, key: u64) -> anyhow::Result<Item> {
    let read = |query| Item::Read { actor: Actor::Service, query };
    let write = |command| Item::Write {
        actor: Actor::Service,
        idempotency: Some(Idempotency { key: u128::from(key) | (1 << 100), fingerprint: 0 }),
        command,
        // As a backend embedding the engine would ask: the outcome, no view rendered.
        reply: ReplyWith::Outcome,
    };
    Ok(match op {
        Op::Browse { sku } => read(Query::Sku(SkuId(sku))),
        Op::Search { adjective, noun } => {
            let query = elevens_search::SearchQuery {
                text: search_text(adjective, noun),
                limit: SEARCH_PAGE,
                ..Default::default()
            };
            let found = engine.search.search(&query)?;
            read(Query::Skus(found.hits.iter().map(|h| SkuId(h.sku)).collect()))
        }
        Op::Facets { category, brand, by_price } => {
            let found = engine.search.search(&facets_query(category, brand, by_price))?;
            read(Query::Skus(found.hits.iter().map(|h| SkuId(h.sku)).collect()))
        }
        Op::Place { buyer, sku } => write(Command::PlaceOrder {
            buyer: BuyerId(buyer),
            lines: vec![LineRequest { sku: SkuId(sku), quantity: 1 }],
            coupons: Vec::new(),
            reservation_ttl_ms: RESERVATION_TTL_MS,
        }),
        Op::Pay { order } => write(Command::PayOrder { order: OrderId(order) }),
        Op::Claim { packet, buyer } => {
            write(Command::ClaimRedPacket { packet: RedPacketId(packet), buyer: BuyerId(buyer) })
        }
        Op::Checkout { buyer, sku } => write(Command::Checkout {
            buyer: BuyerId(buyer),
            lines: checkout_lines(sku).map(|(s, quantity)| LineRequest { sku: SkuId(s), quantity }).collect(),
            coupons: Vec::new(),
        }),
    })
}

fn items(engine: &EngineHandle, ops: &[Op], key_base: u64) -> anyhow::Result<Vec<Item>> {
    ops.iter().enumerate().map(|(i, &op)| item(engine, op, key_base + i as u64)).collect()
}

fn in_process_answer(result: ItemResult) -> Answer {
    match result {
        Ok(Reply::Outcome(outcome)) => outcome_answer(&outcome),
        Ok(Reply::View(view)) => match *view {
            View::Order(o) => Answer::Ok(o.order_id),
            View::Claim(c) => Answer::Ok(c.amount),
            View::Sku(s) => Answer::Ok(s.available),
            View::Skus(list) => Answer::Ok(list.skus.len() as u64),
            _ => Answer::Ok(0),
        },
        Err(e) => Answer::Refused(e.code().to_owned()),
    }
}

/// The order's id (place, pay) or the share (claim) of a write's outcome.
fn outcome_answer(outcome: &Outcome) -> Answer {
    Answer::Ok(match outcome {
        Outcome::OrderPlaced { order, .. } | Outcome::OrderPaid { order, .. } => order.0,
        Outcome::CheckedOut { first, .. } => first.0,
        Outcome::RedPacketClaimed { amount, .. } => amount.0,
        _ => 0,
    })
}

/// Through admission control, as the gateway does it: refused commands never reach the engine.
async fn gated(
    engine: &EngineHandle,
    gate: &Arc<Gate>,
    ops: &[Op],
    key_base: u64,
) -> anyhow::Result<Vec<Answer>> {
    let (admitted, refusals, in_flight) = gate.admit(engine, items(engine, ops, key_base)?, None);
    let results = match submit_admitted(engine, admitted, in_flight).await {
        Ok(results) => results,
        // The sequencer's queue itself was full: what the gateway answers 503.
        Err(SubmitError::Overloaded) => {
            return Ok(refusals.iter().map(|_| Answer::Refused("queue_full".into())).collect());
        }
        Err(SubmitError::ShuttingDown) => bail!("the engine stopped"),
        Err(SubmitError::NotLeader) => bail!("the engine does not lead its replicated journal"),
    };
    let mut results = results.into_iter();
    Ok(refusals
        .into_iter()
        .map(|refusal| match refusal {
            Some(refusal) => Answer::Refused(refusal.code().to_owned()),
            None => results.next().map_or_else(|| Answer::Refused("no_reply".into()), in_process_answer),
        })
        .collect())
}

async fn in_process(engine: &EngineHandle, ops: &[Op], key_base: u64) -> anyhow::Result<Vec<Answer>> {
    let mut items = items(engine, ops, key_base)?;
    let results = loop {
        match engine.submit_or_return(items) {
            Ok(rx) => break rx.await.context("the engine stopped")?,
            Err(back) => {
                items = back;
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
    };
    Ok(results.into_iter().map(in_process_answer).collect())
}

fn answer(op: Op, status: u16, body: &Value) -> Answer {
    if status >= 300 {
        return Answer::Refused(body["code"].as_str().unwrap_or("http_error").to_owned());
    }
    let field = match op {
        Op::Place { .. } | Op::Pay { .. } => "order_id",
        Op::Claim { .. } => "amount",
        Op::Browse { .. } => "available",
        Op::Search { .. } | Op::Facets { .. } => {
            return Answer::Ok(body["hits"].as_array().map_or(0, |h| h.len() as u64))
        }
        Op::Checkout { .. } => return Answer::Ok(body["orders"][0]["order_id"].as_u64().unwrap_or(0)),
    };
    Answer::Ok(body[field].as_u64().unwrap_or(0))
}

async fn http_single(api: &HttpApi, op: Op, idem: u64) -> anyhow::Result<Answer> {
    let HttpApi { client, base, key } = api;
    let read = match op {
        Op::Browse { sku } => Some(client.get(format!("{base}/v1/skus/{sku}"))),
        Op::Search { adjective, noun } => Some(
            client
                .get(format!("{base}/v1/search"))
                .query(&[("q", search_text(adjective, noun)), ("limit", SEARCH_PAGE.to_string())]),
        ),
        Op::Facets { category, brand, by_price } => {
            let mut query = vec![
                ("category_id", category.to_string()),
                ("facets", "true".into()),
                ("sort", if by_price { "price_asc" } else { "relevance" }.into()),
                ("limit", SEARCH_PAGE.to_string()),
            ];
            query.extend(brand_filter(brand).map(|(name, value)| ("attribute", format!("{name}:{value}"))));
            Some(client.get(format!("{base}/v1/search")).query(&query))
        }
        _ => None,
    };
    if let Some(request) = read {
        return answer_of(op, request.bearer_auth(key).send().await?).await;
    }
    let (path, body) = match op {
        Op::Browse { .. } | Op::Search { .. } | Op::Facets { .. } => bail!("a read is not a POST"),
        Op::Place { buyer, sku } => {
            ("/v1/orders".to_owned(), json!({"buyer_id": buyer, "lines": [{"sku_id": sku, "quantity": 1}]}))
        }
        Op::Pay { order } => (format!("/v1/orders/{order}/pay"), Value::Null),
        Op::Claim { packet, buyer } => {
            (format!("/v1/red-packets/{packet}/claims"), json!({"buyer_id": buyer}))
        }
        Op::Checkout { buyer, sku } => {
            let lines: Vec<Value> =
                checkout_lines(sku).map(|(s, q)| json!({"sku_id": s, "quantity": q})).collect();
            ("/v1/checkout".to_owned(), json!({"buyer_id": buyer, "lines": lines}))
        }
    };
    let mut request =
        client.post(format!("{base}{path}")).bearer_auth(key).header("Idempotency-Key", idem.to_string());
    if !body.is_null() {
        request = request.json(&body);
    }
    answer_of(op, request.send().await?).await
}

async fn answer_of(op: Op, response: reqwest::Response) -> anyhow::Result<Answer> {
    let status = response.status().as_u16();
    if status == 429 || status == 503 {
        return Ok(Answer::Refused(format!("http_{status}")));
    }
    let body: Value = serde_json::from_slice(&response.bytes().await?).unwrap_or(Value::Null);
    Ok(answer(op, status, &body))
}

/// Reads a storefront sends at once per batch of the mixed workload.
const READS_IN_FLIGHT: usize = 32;

/// The mixed workload over `http-batch`: the writes go in one batch request, while the reads
/// go as the storefront's page requests do, one GET each (at most [`READS_IN_FLIGHT`] at a time),
/// alongside the batch.
async fn http_batch_mixed(
    api: &HttpApi,
    encoding: BatchEncoding,
    ops: &[Op],
    key_base: u64,
) -> anyhow::Result<Vec<Answer>> {
    use futures::StreamExt;
    type Positioned = Vec<(usize, Op)>;
    let (reads, writes): (Positioned, Positioned) =
        ops.iter().copied().enumerate().partition(|(_, op)| op.is_read());
    let write_ops: Vec<Op> = writes.iter().map(|(_, op)| *op).collect();
    let batch = async {
        if write_ops.is_empty() {
            return Ok(Vec::new());
        }
        http_batch(api, encoding, &write_ops, key_base).await
    };
    // Owned futures: a stream of futures borrowing `api` trips the compiler's Send check
    // when spawned (rust-lang/rust#102211).
    let read_futures: Vec<_> = reads
        .iter()
        .map(|&(_, op)| {
            let api = api.clone();
            Box::pin(async move { http_single(&api, op, 0).await })
        })
        .collect();
    let read_answers = futures::stream::iter(read_futures).buffered(READS_IN_FLIGHT).collect::<Vec<_>>();
    let (written, read) = futures::join!(batch, read_answers);
    let mut answers = vec![Answer::Ok(0); ops.len()];
    for ((i, _), answer) in writes.iter().zip(written?) {
        answers[*i] = answer;
    }
    for ((i, _), answer) in reads.iter().zip(read) {
        answers[*i] = answer?;
    }
    Ok(answers)
}

#[derive(Serialize)]
#[serde(untagged)]
enum Params {
    Place { buyer_id: u64, lines: [Line; 1] },
    Pay { order_id: u64 },
    Claim { red_packet_id: u64, buyer_id: u64 },
    Checkout { buyer_id: u64, lines: Vec<Line> },
}

#[derive(Serialize)]
struct Line {
    sku_id: u64,
    quantity: u32,
}

#[derive(Serialize)]
struct BatchCommand {
    op: &'static str,
    idempotency_key: String,
    params: Params,
}

#[derive(Serialize)]
struct BatchRequest {
    commands: Vec<BatchCommand>,
}

/// Only the fields the load generator reads; serde skips the rest without building them.
#[derive(Deserialize)]
struct BatchResponse {
    results: Vec<BatchResult>,
}

#[derive(Deserialize)]
struct BatchResult {
    status: u16,
    body: BatchBody,
}

#[derive(Deserialize)]
struct BatchBody {
    order_id: Option<u64>,
    amount: Option<u64>,
    code: Option<String>,
}

async fn http_batch(
    api: &HttpApi,
    encoding: BatchEncoding,
    ops: &[Op],
    key_base: u64,
) -> anyhow::Result<Vec<Answer>> {
    match encoding {
        BatchEncoding::Binary => http_batch_binary(api, ops, key_base).await,
        BatchEncoding::Json => http_batch_json(api, ops, key_base).await,
    }
}

/// Sends a batch of `ops`: the answer's body, or, when the whole request was shed (429, 503),
/// every op refused. A batch of payments says so, as a storefront backend would, so that under
/// load the gateway's door lets it through with the payments rather than shed it with the orders.
async fn send_batch(
    request: reqwest::RequestBuilder,
    ops: &[Op],
) -> anyhow::Result<Result<hyper::body::Bytes, Vec<Answer>>> {
    let class = if ops.iter().all(|op| matches!(op, Op::Pay { .. })) { "pay" } else { "order" };
    let response = request.header(BATCH_CLASS_HEADER, class).send().await?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    match status {
        200 => Ok(Ok(bytes)),
        429 | 503 => Ok(Err(ops.iter().map(|_| Answer::Refused(format!("http_{status}"))).collect())),
        _ => bail!("batch answered {status}: {}", String::from_utf8_lossy(&bytes)),
    }
}

/// `POST /v1/batch/binary`: the commands in postcard, their outcomes back in postcard.
async fn http_batch_binary(api: &HttpApi, ops: &[Op], key_base: u64) -> anyhow::Result<Vec<Answer>> {
    let HttpApi { client, base, key } = api;
    use elevens_http::batch::{ClaimParams, OrderParams};
    use elevens_http::checkout::CheckoutRequest;
    use elevens_http::orders::{LineRequestBody, PlaceOrderRequest};
    use elevens_http::wire::{BatchOp, BinaryAnswer, BinaryBatch, BinaryCommand};
    let keys: Vec<String> = (0..ops.len()).map(|i| (key_base + i as u64).to_string()).collect();
    let mut commands = Vec::with_capacity(ops.len());
    for (op, idempotency_key) in ops.iter().zip(&keys) {
        let op = match *op {
            Op::Place { buyer, sku } => BatchOp::PlaceOrder(PlaceOrderRequest {
                buyer_id: buyer,
                lines: vec![LineRequestBody { sku_id: sku, quantity: 1 }],
                coupons: Vec::new(),
            }),
            Op::Pay { order } => BatchOp::PayOrder(OrderParams { order_id: order }),
            Op::Claim { packet, buyer } => {
                BatchOp::ClaimRedPacket(ClaimParams { red_packet_id: packet, buyer_id: buyer })
            }
            Op::Checkout { buyer, sku } => BatchOp::Checkout(CheckoutRequest {
                buyer_id: buyer,
                lines: checkout_lines(sku)
                    .map(|(sku_id, quantity)| LineRequestBody { sku_id, quantity })
                    .collect(),
                coupons: Vec::new(),
            }),
            Op::Browse { .. } | Op::Search { .. } | Op::Facets { .. } => {
                bail!("a read is not a batch command")
            }
        };
        commands.push(BinaryCommand { idempotency_key, op });
    }
    let body = postcard::to_allocvec(&BinaryBatch { commands })?;
    let request = client
        .post(format!("{base}/v1/batch/binary"))
        .bearer_auth(key)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(body);
    let bytes = match send_batch(request, ops).await? {
        Ok(bytes) => bytes,
        Err(refused) => return Ok(refused),
    };
    let answer: BinaryAnswer = postcard::from_bytes(&bytes).context("binary batch results")?;
    Ok(answer
        .results
        .into_iter()
        .map(|r| match r.outcome {
            Ok(outcome) => outcome_answer(&outcome),
            Err(error) => Answer::Refused(error.code),
        })
        .collect())
}

/// `POST /v1/batch`: the commands in JSON, their views back in JSON.
async fn http_batch_json(api: &HttpApi, ops: &[Op], key_base: u64) -> anyhow::Result<Vec<Answer>> {
    let HttpApi { client, base, key } = api;
    let mut commands = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let (op_name, params) = match *op {
            Op::Place { buyer, sku } => {
                ("place_order", Params::Place { buyer_id: buyer, lines: [Line { sku_id: sku, quantity: 1 }] })
            }
            Op::Pay { order } => ("pay_order", Params::Pay { order_id: order }),
            Op::Claim { packet, buyer } => {
                ("claim_red_packet", Params::Claim { red_packet_id: packet, buyer_id: buyer })
            }
            Op::Checkout { buyer, sku } => {
                let lines = checkout_lines(sku).map(|(sku_id, quantity)| Line { sku_id, quantity }).collect();
                ("checkout", Params::Checkout { buyer_id: buyer, lines })
            }
            // `http_batch_mixed` sends reads apart.
            Op::Browse { .. } | Op::Search { .. } | Op::Facets { .. } => {
                bail!("a read is not a batch command")
            }
        };
        commands.push(BatchCommand {
            op: op_name,
            idempotency_key: (key_base + i as u64).to_string(),
            params,
        });
    }
    let request = client.post(format!("{base}/v1/batch")).bearer_auth(key).json(&BatchRequest { commands });
    let bytes = match send_batch(request, ops).await? {
        Ok(bytes) => bytes,
        Err(refused) => return Ok(refused),
    };
    let body: BatchResponse = serde_json::from_slice(&bytes).context("batch results")?;
    Ok(ops
        .iter()
        .zip(body.results)
        .map(|(op, r)| {
            if r.status >= 300 {
                return Answer::Refused(r.body.code.unwrap_or_else(|| "http_error".into()));
            }
            let value = match op {
                Op::Claim { .. } => r.body.amount,
                _ => r.body.order_id,
            };
            Answer::Ok(value.unwrap_or(0))
        })
        .collect())
}
