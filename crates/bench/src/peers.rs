//! The peers of the flash workload, driven by the same load generator: PostgreSQL (one function,
//! one transaction per order) and Redis with a Lua script (AOF `always` or `everysec`), started by
//! `bench/peers/peers.sh`. Both get the same buyers, the same SKUs and prices (same seed) and the
//! same offered work as elevens; one peer call places *and* pays an order.

use crate::driver::{Answer, Op};
use anyhow::{bail, Context};
use futures::future::join_all;

pub const POSTGRES_SCHEMA: &str = include_str!("../../../bench/peers/postgres.sql");
pub const REDIS_SCRIPT: &str = include_str!("../../../bench/peers/redis.lua");
pub const POSTGRES_URL: &str = "host=127.0.0.1 port=54329 user=postgres dbname=postgres";

pub fn redis_url(everysec: bool) -> &'static str {
    if everysec {
        "redis://127.0.0.1:63792/"
    } else {
        "redis://127.0.0.1:63791/"
    }
}

/// What the peers need to hold the same marketplace as elevens.
pub struct Marketplace {
    pub merchants: u64,
    pub hot_units: u64,
    pub hot_price: u64,
    pub flash_price: u64,
    /// Prices of SKUs 2, 3, ... (the tail).
    pub tail_prices: Vec<u64>,
    pub buyers: u64,
    pub buyer_balance: u64,
}

impl Marketplace {
    fn merchant_of(&self, sku: u64) -> u64 {
        if sku == 1 {
            1
        } else {
            (sku - 2) % self.merchants + 1
        }
    }
}

pub async fn postgres_connect() -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(POSTGRES_URL, tokio_postgres::NoTls).await.context(
        "connecting to PostgreSQL on 127.0.0.1:54329 (start it with bench/peers/peers.sh start postgres)",
    )?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            eprintln!("postgres connection: {error}");
        }
    });
    Ok(client)
}

pub async fn postgres_setup(m: &Marketplace) -> anyhow::Result<()> {
    let client = postgres_connect().await?;
    client.batch_execute(POSTGRES_SCHEMA).await?;
    client
        .execute(
            "INSERT INTO skus VALUES (1, 1, $1, $2, 0, $3, 1)",
            &[&(m.hot_price as i64), &(m.hot_units as i64), &(m.flash_price as i64)],
        )
        .await?;
    let ids: Vec<i64> = (2..2 + m.tail_prices.len() as i64).collect();
    let merchants: Vec<i64> = ids.iter().map(|&id| m.merchant_of(id as u64) as i64).collect();
    let prices: Vec<i64> = m.tail_prices.iter().map(|&p| p as i64).collect();
    client
        .execute(
            "INSERT INTO skus (id, merchant, price, stock) SELECT id, merchant, price, 1000000000 \
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS t(id, merchant, price)",
            &[&ids, &merchants, &prices],
        )
        .await?;
    let mut owners: Vec<String> = (1..=m.buyers).map(|b| format!("buyer:{b}")).collect();
    let mut balances: Vec<i64> = vec![m.buyer_balance as i64; owners.len()];
    owners.extend((1..=m.merchants).map(|id| format!("merchant:{id}")));
    owners.push("platform".into());
    balances.resize(owners.len(), 0);
    owners.push("external".into());
    balances.push(-((m.buyers * m.buyer_balance) as i64));
    client
        .execute("INSERT INTO accounts SELECT * FROM unnest($1::text[], $2::bigint[])", &[&owners, &balances])
        .await?;
    client.batch_execute("VACUUM ANALYZE").await?;
    Ok(())
}

fn postgres_answer(result: Result<tokio_postgres::Row, tokio_postgres::Error>) -> Answer {
    match result {
        Ok(row) => match row.get::<_, i64>(0) {
            -1 => Answer::Refused("sold_out".into()),
            order => Answer::Ok(order as u64),
        },
        Err(error) => {
            let text =
                error.as_db_error().map(|e| e.message().to_owned()).unwrap_or_else(|| error.to_string());
            Answer::Refused(match text.as_str() {
                "limit" => "limit_exceeded".into(),
                "funds" => "insufficient_funds".into(),
                _ => format!("postgres: {text}"),
            })
        }
    }
}

pub async fn postgres_run(
    client: &tokio_postgres::Client,
    statement: &tokio_postgres::Statement,
    ops: &[Op],
    pipelined: bool,
) -> anyhow::Result<Vec<Answer>> {
    let args = |op: &Op| match *op {
        Op::Place { buyer, sku } => Ok((buyer as i64, sku as i64)),
        other => bail!("the PostgreSQL peer does not run {other:?}"),
    };
    if pipelined {
        // tokio-postgres pipelines queries issued together on one connection.
        let calls: Vec<(i64, i64)> = ops.iter().map(args).collect::<anyhow::Result<_>>()?;
        let params: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 2]> =
            calls.iter().map(|(buyer, sku)| [buyer as _, sku as _]).collect();
        let futures = params.iter().map(|p| client.query_one(statement, p));
        Ok(join_all(futures).await.into_iter().map(postgres_answer).collect())
    } else {
        let mut answers = Vec::with_capacity(ops.len());
        for op in ops {
            let (buyer, sku) = args(op)?;
            answers.push(postgres_answer(client.query_one(statement, &[&buyer, &sku]).await));
        }
        Ok(answers)
    }
}

/// Sold units of the hot SKU, and whether every balance (external included) sums to zero with no
/// wallet below zero.
pub async fn postgres_check() -> anyhow::Result<(u64, bool)> {
    let client = postgres_connect().await?;
    let sold: i64 = client.query_one("SELECT sold FROM skus WHERE id = 1", &[]).await?.get(0);
    let row = client
        .query_one(
            "SELECT sum(balance)::bigint, count(*) FILTER (WHERE balance < 0 AND owner <> 'external') FROM accounts",
            &[],
        )
        .await?;
    let (sum, negative): (i64, i64) = (row.get(0), row.get(1));
    Ok((sold as u64, sum == 0 && negative == 0))
}

pub async fn redis_connect(everysec: bool) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(redis_url(everysec))?;
    client.get_multiplexed_async_connection().await.with_context(|| {
        format!("connecting to Redis at {} (start it with bench/peers/peers.sh)", redis_url(everysec))
    })
}

/// Loads the data and the script; returns the script's SHA1 for EVALSHA.
pub async fn redis_setup(m: &Marketplace, everysec: bool) -> anyhow::Result<String> {
    let mut con = redis_connect(everysec).await?;
    redis::cmd("FLUSHALL").query_async::<()>(&mut con).await?;
    redis::cmd("HSET")
        .arg("sku:1")
        .arg(&["stock", &m.hot_units.to_string(), "sold", "0", "price", &m.hot_price.to_string()])
        .arg(&["merchant", "1", "flash_price", &m.flash_price.to_string(), "limit", "1"])
        .query_async::<()>(&mut con)
        .await?;
    for chunk in m.tail_prices.chunks(10_000).enumerate() {
        let (c, prices) = chunk;
        let mut pipe = redis::pipe();
        for (i, price) in prices.iter().enumerate() {
            let id = 2 + (c * 10_000 + i) as u64;
            pipe.cmd("HSET")
                .arg(format!("sku:{id}"))
                .arg(&["stock", "1000000000", "sold", "0", "price", &price.to_string()])
                .arg(&["merchant", &m.merchant_of(id).to_string()])
                .ignore();
        }
        pipe.query_async::<()>(&mut con).await?;
    }
    let buyers: Vec<u64> = (1..=m.buyers).collect();
    for chunk in buyers.chunks(10_000) {
        let mut cmd = redis::cmd("HSET");
        cmd.arg("balances");
        for b in chunk {
            cmd.arg(format!("buyer:{b}")).arg(m.buyer_balance);
        }
        cmd.query_async::<()>(&mut con).await?;
    }
    redis::cmd("HSET")
        .arg("balances")
        .arg("external")
        .arg(-((m.buyers * m.buyer_balance) as i64))
        .arg("platform")
        .arg(0)
        .query_async::<()>(&mut con)
        .await?;
    Ok(redis::cmd("SCRIPT").arg("LOAD").arg(REDIS_SCRIPT).query_async::<String>(&mut con).await?)
}

fn redis_answer(result: i64) -> Answer {
    match result {
        -1 => Answer::Refused("sold_out".into()),
        -2 => Answer::Refused("limit_exceeded".into()),
        -3 => Answer::Refused("insufficient_funds".into()),
        order => Answer::Ok(order as u64),
    }
}

pub async fn redis_run(
    con: &mut redis::aio::MultiplexedConnection,
    sha: &str,
    ops: &[Op],
    pipelined: bool,
) -> anyhow::Result<Vec<Answer>> {
    let call = |op: &Op| -> anyhow::Result<redis::Cmd> {
        let Op::Place { buyer, sku } = *op else { bail!("the Redis peer does not run {op:?}") };
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(sha).arg(0).arg(buyer).arg(sku).arg(1);
        Ok(cmd)
    };
    if pipelined {
        let mut pipe = redis::pipe();
        for op in ops {
            pipe.add_command(call(op)?);
        }
        let results: Vec<i64> = pipe.query_async(con).await?;
        Ok(results.into_iter().map(redis_answer).collect())
    } else {
        let mut answers = Vec::with_capacity(ops.len());
        for op in ops {
            answers.push(redis_answer(call(op)?.query_async::<i64>(con).await?));
        }
        Ok(answers)
    }
}

pub async fn redis_check(everysec: bool) -> anyhow::Result<(u64, bool)> {
    let mut con = redis_connect(everysec).await?;
    let sold: u64 = redis::cmd("HGET").arg("sku:1").arg("sold").query_async(&mut con).await?;
    let balances: Vec<(String, i64)> = redis::cmd("HGETALL").arg("balances").query_async(&mut con).await?;
    let sum: i128 = balances.iter().map(|(_, b)| i128::from(*b)).sum();
    let negative = balances.iter().any(|(owner, b)| *b < 0 && owner != "external");
    Ok((sold, sum == 0 && !negative))
}

/// A bare hyper HTTP/1.1 server answering "hello": the ceiling for one request per round trip
/// on this machine, against which the single-request mode is measured.
pub async fn hello_server() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_request| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                        &b"hello"[..],
                    )))
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    Ok(base)
}
