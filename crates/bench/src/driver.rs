//! How the load generator reaches a target: the engine in-process, or the HTTP API with one
//! command per request or many per batch. The workloads speak in [`Op`]s and never know which.

use anyhow::{bail, Context};
use elevens_core::{Actor, Command, Idempotency, LineRequest};
use elevens_core::{BuyerId, OrderId, RedPacketId, SkuId};
use elevens_server::engine::{EngineHandle, Item, ItemResult};
use elevens_server::gate::{submit_admitted, Gate, SubmitError};
use elevens_server::views::View;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// One unit of offered work.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Place { buyer: u64, sku: u64 },
    Pay { order: u64 },
    Claim { packet: u64, buyer: u64 },
}

/// What came back: the new order's id (place), the order's id (pay), the share (claim), or a
/// refusal's code.
#[derive(Clone, Debug)]
pub enum Answer {
    Ok(u64),
    Refused(String),
}

pub enum Driver {
    /// The engine's submission queue; behind admission control when `gate` is set (the spike).
    InProcess {
        engine: EngineHandle,
        gate: Option<Arc<Gate>>,
    },
    Http {
        client: reqwest::Client,
        base: String,
        key: String,
        batch: bool,
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
            Driver::InProcess { engine, gate: Some(gate) } => gated(engine, gate, ops, key_base).await,
            Driver::Http { client, base, key, batch: true, .. } => {
                http_batch(client, base, key, ops, key_base).await
            }
            Driver::Http { client, base, key, batch: false, .. } => {
                let mut answers = Vec::with_capacity(ops.len());
                for (i, op) in ops.iter().enumerate() {
                    answers.push(http_single(client, base, key, *op, key_base + i as u64).await?);
                }
                Ok(answers)
            }
        }
    }
}

fn command(op: Op) -> Command {
    match op {
        Op::Place { buyer, sku } => Command::PlaceOrder {
            buyer: BuyerId(buyer),
            lines: vec![LineRequest { sku: SkuId(sku), quantity: 1 }],
            coupons: Vec::new(),
            reservation_ttl_ms: RESERVATION_TTL_MS,
        },
        Op::Pay { order } => Command::PayOrder { order: OrderId(order) },
        Op::Claim { packet, buyer } => {
            Command::ClaimRedPacket { packet: RedPacketId(packet), buyer: BuyerId(buyer) }
        }
    }
}

fn items(ops: &[Op], key_base: u64) -> Vec<Item> {
    ops.iter()
        .enumerate()
        .map(|(i, &op)| Item::Write {
            actor: Actor::Service,
            idempotency: Some(Idempotency {
                key: u128::from(key_base + i as u64) | (1 << 100),
                fingerprint: 0,
            }),
            command: command(op),
        })
        .collect()
}

fn in_process_answer(result: ItemResult) -> Answer {
    match result {
        Ok(View::Order(o)) => Answer::Ok(o.order_id),
        Ok(View::Claim(c)) => Answer::Ok(c.amount),
        Ok(_) => Answer::Ok(0),
        Err(e) => Answer::Refused(e.code().to_owned()),
    }
}

/// Through admission control, as the gateway does it: refused commands never reach the engine.
async fn gated(
    engine: &EngineHandle,
    gate: &Arc<Gate>,
    ops: &[Op],
    key_base: u64,
) -> anyhow::Result<Vec<Answer>> {
    let (admitted, refusals, in_flight) = gate.admit(engine, items(ops, key_base), None);
    let results = match submit_admitted(engine, admitted, in_flight).await {
        Ok(results) => results,
        // The sequencer's queue itself was full: what the gateway answers 503.
        Err(SubmitError::Overloaded) => {
            return Ok(refusals.iter().map(|_| Answer::Refused("queue_full".into())).collect());
        }
        Err(SubmitError::ShuttingDown) => bail!("the engine stopped"),
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
    let mut items = items(ops, key_base);
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
    };
    Answer::Ok(body[field].as_u64().unwrap_or(0))
}

async fn http_single(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    op: Op,
    idem: u64,
) -> anyhow::Result<Answer> {
    let (path, body) = match op {
        Op::Place { buyer, sku } => {
            ("/v1/orders".to_owned(), json!({"buyer_id": buyer, "lines": [{"sku_id": sku, "quantity": 1}]}))
        }
        Op::Pay { order } => (format!("/v1/orders/{order}/pay"), Value::Null),
        Op::Claim { packet, buyer } => {
            (format!("/v1/red-packets/{packet}/claims"), json!({"buyer_id": buyer}))
        }
    };
    let mut request =
        client.post(format!("{base}{path}")).bearer_auth(key).header("Idempotency-Key", idem.to_string());
    if !body.is_null() {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    if status == 429 || status == 503 {
        return Ok(Answer::Refused(format!("http_{status}")));
    }
    let body: Value = serde_json::from_slice(&response.bytes().await?).unwrap_or(Value::Null);
    Ok(answer(op, status, &body))
}

#[derive(Serialize)]
#[serde(untagged)]
enum Params {
    Place { buyer_id: u64, lines: [Line; 1] },
    Pay { order_id: u64 },
    Claim { red_packet_id: u64, buyer_id: u64 },
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
    client: &reqwest::Client,
    base: &str,
    key: &str,
    ops: &[Op],
    key_base: u64,
) -> anyhow::Result<Vec<Answer>> {
    let commands = ops
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let (op_name, params) = match *op {
                Op::Place { buyer, sku } => (
                    "place_order",
                    Params::Place { buyer_id: buyer, lines: [Line { sku_id: sku, quantity: 1 }] },
                ),
                Op::Pay { order } => ("pay_order", Params::Pay { order_id: order }),
                Op::Claim { packet, buyer } => {
                    ("claim_red_packet", Params::Claim { red_packet_id: packet, buyer_id: buyer })
                }
            };
            BatchCommand { op: op_name, idempotency_key: (key_base + i as u64).to_string(), params }
        })
        .collect();
    let response = client
        .post(format!("{base}/v1/batch"))
        .bearer_auth(key)
        .json(&BatchRequest { commands })
        .send()
        .await?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    if status != 200 {
        if status == 429 || status == 503 {
            return Ok(ops.iter().map(|_| Answer::Refused(format!("http_{status}"))).collect());
        }
        bail!("batch answered {status}: {}", String::from_utf8_lossy(&bytes));
    }
    let body: BatchResponse = serde_json::from_slice(&bytes).context("batch results")?;
    Ok(ops
        .iter()
        .zip(body.results)
        .map(|(op, r)| {
            if r.status >= 300 {
                return Answer::Refused(r.body.code.unwrap_or_else(|| "http_error".into()));
            }
            let value = match op {
                Op::Place { .. } | Op::Pay { .. } => r.body.order_id,
                Op::Claim { .. } => r.body.amount,
            };
            Answer::Ok(value.unwrap_or(0))
        })
        .collect())
}
