//! `elevens bench`: the workloads of the brief against the engine, built only with the `bench`
//! feature, so the product binary links neither the load generators nor the peers' clients
//! (PostgreSQL, Redis, the bare hyper server).

use crate::{failover, nats_options, prefault};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    #[arg(long, value_enum, default_value = "flash")]
    workload: WorkloadArg,
    #[arg(long, value_enum, default_value = "in-process")]
    mode: ModeArg,
    /// elevens, or a peer started by bench/peers/peers.sh, or the bare hyper ceiling.
    #[arg(long, value_enum, default_value = "elevens")]
    target: TargetArg,
    /// Buyers (flash; default 100,000) or claimers (redpacket; default 1,000,000).
    #[arg(long)]
    buyers: Option<u64>,
    /// SKUs in the catalogue's long tail (flash, mixed, spike), beside the hot one.
    #[arg(long, default_value_t = elevens_bench::TAIL_SKUS_DEFAULT)]
    skus: u64,
    /// Seconds of load after the set-up (redpacket: at most; it ends when all have claimed;
    /// spike: the spike's length).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Concurrent clients, each with one request in flight (default: 16 in-process, 4 for the
    /// spike and mixed in-process, 64 http, 4 http-batch).
    #[arg(long)]
    clients: Option<usize>,
    /// Commands per submission or batch request (default: 2,000 in-process, 1,000
    /// http-batch; always 1 for http).
    #[arg(long)]
    batch: Option<usize>,
    /// elevens' batch endpoint in http-batch mode: binary (postcard, answered with outcomes)
    /// or json (answered with views).
    #[arg(long, value_enum, default_value_t = BatchEncodingArg::Binary)]
    batch_encoding: BatchEncodingArg,
    /// Red packet: the pool, in minor units.
    #[arg(long, default_value_t = 100_000_000)]
    pool: u64,
    /// Red packet: the number of shares.
    #[arg(long, default_value_t = 100_000)]
    shares: u32,
    /// The share of orders aimed at the hot SKU.
    #[arg(long, default_value_t = 0.1)]
    hot_share: f64,
    /// Budget: group the second half of the catalogue into products of this many variants
    /// (0: none), and report the products' bytes per variant apart from the SKUs'.
    #[arg(long, default_value_t = 0)]
    variants_per_product: u64,
    /// Mixed: leave the tail as bare SKUs (no products, categories or faceted probe), to
    /// compare builds on the same work.
    #[arg(long)]
    without_products: bool,
    #[arg(long, default_value_t = 1111)]
    seed: u64,
    /// Run the workload twice, on the local journal and then on NATS JetStream at these
    /// servers (`nats://host:port`, comma-separated; a scratch stream, deleted after), and
    /// report both and their ratio. `elevens cluster up --nats-only` starts servers.
    #[arg(long)]
    journal: Option<String>,
    /// Replicas of the scratch stream (--journal).
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Failover: SIGKILLs of the leader.
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// Budget: the flash orders placed and paid.
    #[arg(long, default_value_t = 200_000)]
    orders: u64,
    /// Failover: the cluster's ports start here (see `elevens cluster up`).
    #[arg(long, default_value_t = 14_600)]
    port_base: u16,
    /// Failover: kill the leader's NATS server with it, as the loss of its machine would.
    #[arg(long)]
    machine: bool,
    /// Failover: keep the cluster's folder (logs, data) after the run.
    #[arg(long)]
    keep: bool,
    /// Failover: the nodes' lease, in ms (default: serve's).
    #[arg(long)]
    lease_ttl_ms: Option<u64>,
    /// Failover: the nats-server binary (2.12 or newer).
    #[arg(long, env = "NATS_SERVER", default_value = "nats-server")]
    nats_server: PathBuf,
    /// The engine's data directory (default: a fresh one under the current directory).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Snapshot every this many journaled commands, as `serve` does (default: none, so the
    /// figures are the engine's alone; for failover, the nodes' interval, default 20000).
    #[arg(long)]
    snapshot_every: Option<u64>,
    /// Write the snapshots with O_DIRECT, as `serve --snapshot-direct-io`.
    #[arg(long)]
    snapshot_direct_io: bool,
    /// Flash: open loop at this many arrivals (orders) per second instead of closed-loop
    /// clients, latency measured from each arrival's intended time (as wrk2 does).
    #[arg(long)]
    rate: Option<f64>,
    /// Fulfil: the orders paid at midnight in the 11.11 backlog scenario (0: skip it).
    #[arg(long, default_value_t = 1_000_000)]
    backlog_orders: u64,
    /// Fulfil: the backlog scenario's warehouse capacity, parcels per day.
    #[arg(long, default_value_t = 100_000)]
    backlog_capacity: u32,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub(crate) fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args {
        BenchArgs {
            workload: WorkloadArg::Budget,
            orders,
            buyers,
            skus,
            hot_share,
            seed,
            json,
            variants_per_product,
            ..
        } => {
            let options = elevens_bench::budget::Options {
                orders,
                buyers: buyers.unwrap_or(100_000),
                skus,
                hot_share: hot_share.clamp(0.0, 1.0),
                seed,
                variants_per_product,
            };
            bench_budget(&options, json)
        }
        BenchArgs {
            workload: WorkloadArg::Failover,
            clients,
            kills,
            port_base,
            nats_server,
            lease_ttl_ms,
            machine,
            keep,
            json,
            snapshot_every,
            ..
        } => {
            let writers = clients.unwrap_or(8);
            let snapshot_every = snapshot_every.unwrap_or(failover::SNAPSHOT_EVERY_COMMANDS);
            let options = failover::Options {
                kills,
                writers,
                port_base,
                nats_server,
                lease_ttl_ms,
                snapshot_every,
                machine,
                keep,
            };
            bench_failover(&options, json)
        }
        BenchArgs {
            workload,
            mode,
            target,
            buyers,
            skus,
            duration,
            clients,
            batch,
            batch_encoding,
            pool,
            shares,
            hot_share,
            seed,
            data,
            snapshot_every,
            snapshot_direct_io,
            rate,
            backlog_orders,
            backlog_capacity,
            json,
            journal,
            replicas,
            without_products,
            ..
        } => {
            let workload = match workload {
                WorkloadArg::Flash => elevens_bench::Workload::Flash,
                WorkloadArg::Redpacket => elevens_bench::Workload::Redpacket,
                WorkloadArg::Spike => elevens_bench::Workload::Spike,
                WorkloadArg::Mixed => elevens_bench::Workload::Mixed,
                WorkloadArg::Fulfil => elevens_bench::Workload::Fulfil,
                WorkloadArg::Checkout => elevens_bench::Workload::Checkout,
                WorkloadArg::Failover | WorkloadArg::Budget => unreachable!("run above"),
            };
            let default_buyers = match workload {
                elevens_bench::Workload::Flash
                | elevens_bench::Workload::Spike
                | elevens_bench::Workload::Mixed
                | elevens_bench::Workload::Fulfil
                | elevens_bench::Workload::Checkout => 100_000,
                elevens_bench::Workload::Redpacket => 1_000_000,
            };
            let options = elevens_bench::Options {
                workload,
                mode: match mode {
                    ModeArg::InProcess => elevens_bench::Mode::InProcess,
                    ModeArg::Http => elevens_bench::Mode::Http,
                    ModeArg::HttpBatch => elevens_bench::Mode::HttpBatch,
                },
                target: match target {
                    TargetArg::Elevens => elevens_bench::Target::Elevens,
                    TargetArg::Postgres => elevens_bench::Target::Postgres,
                    TargetArg::RedisAlways => elevens_bench::Target::RedisAlways,
                    TargetArg::RedisEverysec => elevens_bench::Target::RedisEverysec,
                    TargetArg::HyperHello => elevens_bench::Target::HyperHello,
                },
                buyers: buyers.unwrap_or(default_buyers),
                skus,
                pool,
                shares,
                duration: std::time::Duration::from_secs_f64(duration.max(0.0)),
                clients,
                batch,
                batch_encoding: match batch_encoding {
                    BatchEncodingArg::Binary => elevens_bench::BatchEncoding::Binary,
                    BatchEncodingArg::Json => elevens_bench::BatchEncoding::Json,
                },
                hot_share: hot_share.clamp(0.0, 1.0),
                seed,
                data,
                snapshot_every,
                snapshot_direct_io,
                rate,
                release_freed_memory: Some(prefault::release_freed_memory),
                backlog_orders,
                backlog_capacity,
                products: !without_products,
                journal: None,
            };
            match journal {
                Some(url) => nats_options(&url).and_then(|mut nats| {
                    nats.replicas = replicas;
                    bench_compared(elevens_bench::Options { journal: Some(nats), ..options }, json)
                }),
                None => bench(options, json),
            }
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum WorkloadArg {
    Flash,
    Redpacket,
    /// Capacity closed loop, then open loop: C/2, 10x C for --duration seconds, C/2.
    Spike,
    /// Browse and search 80%, order 15%, pay 5%.
    Mixed,
    /// Flash with warehouses, then every paid order dispatched, tracked through four events
    /// and delivered; and the 11.11 backlog scenario (--backlog-orders at midnight).
    Fulfil,
    /// Carts of three stores from the flash marketplace's tail, each checked out in one command
    /// (three orders placed and paid).
    Checkout,
    /// A replicated cluster on loopback, writers at its leader, the leader SIGKILLed --kills
    /// times: the time to the next leader's first write, the writes' latency around the kills.
    Failover,
    /// The flash path counted, not timed: --orders orders placed and paid in a bare state on
    /// one thread; the tables' bytes per order, SKU and shipment (instructions per order under
    /// callgrind: python3 bench/budget.py).
    Budget,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum TargetArg {
    Elevens,
    Postgres,
    RedisAlways,
    RedisEverysec,
    HyperHello,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BatchEncodingArg {
    Binary,
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    InProcess,
    Http,
    HttpBatch,
}

fn bench(options: elevens_bench::Options, json: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let report = elevens_bench::run(options)?;
    print!("{}", elevens_bench::table(&report));
    write_report(json, &report)?;
    Ok(if sound(&report.invariants) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Writes a bench's report as JSON, if asked to.
fn write_report(json: Option<PathBuf>, report: &impl serde::Serialize) -> anyhow::Result<()> {
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(report)?)?;
        println!("report written to {}", path.display());
    }
    Ok(())
}

/// The run's checks passed (a peer without state has none).
fn sound(i: &elevens_bench::Invariants) -> bool {
    !i.applicable || (i.ledger_balanced && i.audit_ok && i.share_sum_exact != Some(false))
}

fn bench_budget(options: &elevens_bench::budget::Options, json: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let report = elevens_bench::budget::run(options)?;
    print!("{}", elevens_bench::budget::table_of(&report));
    write_report(json, &report)?;
    Ok(ExitCode::SUCCESS)
}

fn bench_failover(options: &failover::Options, json: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let report = failover::run(options)?;
    print!("{}", failover::table(&report));
    write_report(json, &report)?;
    let ok = report.lost == 0 && report.applied_twice == 0;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn bench_compared(options: elevens_bench::Options, json: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let compared = elevens_bench::run_compared(options)?;
    print!("{}", elevens_bench::table(&compared.local));
    print!("{}", elevens_bench::table(&compared.replicated));
    println!(
        "replicated / local: throughput {:.2}, p99 latency {:.2}",
        compared.throughput_ratio, compared.p99_ratio
    );
    write_report(json, &compared)?;
    let ok = sound(&compared.local.invariants) && sound(&compared.replicated.invariants);
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
