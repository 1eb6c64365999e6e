//! The spike workload (BRIEF §6, issue 3): measure the capacity C closed-loop, then offer load
//! open-loop — half of C, then 10x C for the spike at the campaign's start, then half of C again —
//! and watch goodput, shedding, the latency of what was admitted, and how fast it recovers.
//!
//! Open loop means arrivals do not wait for answers: a buyer arrives every 1/λ seconds whatever
//! the server does, as at midnight on 11.11. Every arrival places an order and, if it was
//! accepted, pays it. In-process, the arrivals of each millisecond go through admission control
//! together (as a storefront backend would send them); over HTTP each arrival is its own request.

use crate::driver::{Answer, Driver, Op};
use crate::{Client, Latency, Options, Tally, SOLD_OUT_CODES};
use anyhow::Context;
use elevens_admission::Stats;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The phases, in seconds: capacity (closed loop), steady, spike (`--duration`), tail.
pub const CAPACITY_S: f64 = 3.0;
pub const STEADY_S: f64 = 2.0;
pub const TAIL_S: f64 = 5.0;
/// The offered load of the spike, in multiples of the capacity.
pub const SPIKE_FACTOR: f64 = 10.0;
const BUCKET: Duration = Duration::from_millis(100);

/// Codes that mean "shed by admission control, come back later" (429).
const SHED_CODES: &[&str] = &["overloaded", "rate_limited", "sku_rate_limited", "http_429"];
/// Answers that are the business saying no (sold out, already bought, not started): correct
/// answers, neither goodput nor errors.
const BUSINESS_CODES: &[&str] = &["campaign_not_started", "campaign_limit_exceeded", "campaign_sold_out"];

/// The spike's figures, in the JSON report next to the common fields.
#[derive(Debug, Serialize)]
pub struct SpikeFigures {
    /// Orders plus payments completed per second, closed loop, before the spike.
    pub capacity_per_s: f64,
    /// Orders offered per second during the spike (the generator's own limit may keep it
    /// under 10x; then `generator_dropped` says how many arrivals it could not send).
    pub offered_per_s: f64,
    pub generator_dropped: u64,
    /// Orders plus payments completed per second during the spike.
    pub goodput_per_s: f64,
    pub goodput_share_of_capacity: f64,
    /// Requests shed (429) during the spike, over requests offered.
    pub shed_share: f64,
    /// From sending to reply, of requests admitted during the spike.
    pub admitted_latency_us: Latency,
    /// The same at half of C before the spike: what "normal" is.
    pub steady_latency_us: Latency,
    /// Answers that are neither success, nor a business refusal, nor a 429.
    pub non_429_errors: u64,
    pub non_429_error_codes: BTreeMap<String, u64>,
    /// Payments of accepted orders that were shed (must be 0).
    pub payments_shed: u64,
    /// Seconds after the spike until every 100 ms window's p99 is back under twice the steady
    /// p99 (at least 10 ms); `null` if it never was before the run ended.
    pub recovery_s: Option<f64>,
    pub business_refusals: BTreeMap<String, u64>,
    /// Per second of the open-loop phases: offered, completed, shed, p99.
    pub timeline: Vec<Second>,
    /// Admission control's own counts at the end (per class and reason, the limit).
    pub admission: Stats,
}

#[derive(Debug, Serialize)]
pub struct Second {
    pub t_s: f64,
    pub phase: &'static str,
    pub offered: u64,
    pub orders: u64,
    pub payments: u64,
    pub shed: u64,
    pub p99_us: u64,
}

#[derive(Clone, Default)]
struct Bucket {
    offered: u64,
    orders: u64,
    payments: u64,
    shed: u64,
    payments_shed: u64,
    dropped: u64,
    errors: BTreeMap<String, u64>,
    business: BTreeMap<String, u64>,
    latency: Option<Histogram<u64>>,
}

/// What every arrival reports, by 100 ms window of the open-loop phases.
struct Recorder {
    start: Instant,
    buckets: Mutex<Vec<Bucket>>,
}

impl Recorder {
    fn new(start: Instant, total: Duration) -> Recorder {
        let n = (total.as_millis() / BUCKET.as_millis()) as usize + 50;
        Recorder { start, buckets: Mutex::new(vec![Bucket::default(); n]) }
    }

    fn with(&self, at: Instant, f: impl FnOnce(&mut Bucket)) {
        let i = (at.saturating_duration_since(self.start).as_millis() / BUCKET.as_millis()) as usize;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let last = buckets.len() - 1;
        f(&mut buckets[i.min(last)]);
    }

    /// Records the answers to `ops` (sent at `sent`), and returns the orders to pay.
    fn answers(&self, ops: &[Op], answers: &[Answer], sent: Instant, paying: bool) -> Vec<Op> {
        let now = Instant::now();
        let micros = now.duration_since(sent).as_micros().max(1) as u64;
        let mut pays = Vec::new();
        self.with(now, |b| {
            for (op, answer) in ops.iter().zip(answers) {
                match answer {
                    Answer::Ok(id) => {
                        if paying {
                            b.payments += 1;
                        } else {
                            b.orders += 1;
                            pays.push(Op::Pay { order: *id });
                        }
                        let h = b.latency.get_or_insert_with(|| {
                            Histogram::new_with_bounds(1, 60_000_000, 2).expect("bounds")
                        });
                        h.saturating_record(micros);
                    }
                    Answer::Refused(code) if SHED_CODES.contains(&code.as_str()) => {
                        b.shed += 1;
                        if paying {
                            b.payments_shed += 1;
                        }
                    }
                    Answer::Refused(code)
                        if BUSINESS_CODES.contains(&code.as_str())
                            || (matches!(op, Op::Place { sku: 1, .. })
                                && SOLD_OUT_CODES.contains(&code.as_str())) =>
                    {
                        *b.business.entry(code.clone()).or_default() += 1;
                    }
                    Answer::Refused(code) => *b.errors.entry(code.clone()).or_default() += 1,
                }
            }
        });
        pays
    }
}

/// One arrival batch: place the orders, pay the accepted ones.
async fn play(driver: Arc<Driver>, recorder: Arc<Recorder>, ops: Vec<Op>, keys: Arc<AtomicU64>) {
    let sent = Instant::now();
    let key = keys.fetch_add(ops.len() as u64, Ordering::Relaxed);
    let pays = match driver.run(&ops, key).await {
        Ok(answers) => recorder.answers(&ops, &answers, sent, false),
        Err(error) => {
            let code = format!("transport: {error:#}").chars().take(80).collect::<String>();
            recorder.with(Instant::now(), |b| *b.errors.entry(code).or_default() += ops.len() as u64);
            return;
        }
    };
    if pays.is_empty() {
        return;
    }
    let sent = Instant::now();
    let key = keys.fetch_add(pays.len() as u64, Ordering::Relaxed);
    match driver.run(&pays, key).await {
        Ok(answers) => {
            recorder.answers(&pays, &answers, sent, true);
        }
        Err(error) => {
            let code = format!("transport: {error:#}").chars().take(80).collect::<String>();
            recorder.with(Instant::now(), |b| *b.errors.entry(code).or_default() += pays.len() as u64);
        }
    }
}

struct Phase {
    name: &'static str,
    from: Duration,
    to: Duration,
    orders_per_s: f64,
}

/// The open-loop generator: every millisecond, the arrivals due by now.
async fn offer(
    driver: Arc<Driver>,
    recorder: Arc<Recorder>,
    phases: Vec<Phase>,
    options: Options,
    per_request: bool,
) -> anyhow::Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed ^ 0x5b1c);
    let zipf = Zipf::new(options.skus as f64, 1.1).context("zipf")?;
    let keys = Arc::new(AtomicU64::new(1 << 50));
    let batch = options.batch().max(1);
    // Over HTTP, one request per arrival; past this many outstanding the generator itself is
    // the limit and says so (dropped), rather than queueing in memory without bound.
    let outstanding = Arc::new(tokio::sync::Semaphore::new(4_096));
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    for phase in phases {
        let phase_start = recorder.start + phase.from;
        let mut issued = 0u64;
        loop {
            ticker.tick().await;
            let now = Instant::now();
            if now >= recorder.start + phase.to {
                break;
            }
            let due = (now.saturating_duration_since(phase_start).as_secs_f64() * phase.orders_per_s) as u64;
            // At most 50 ms of arrivals at once, should the generator fall that far behind.
            let n = due.saturating_sub(issued).min((phase.orders_per_s / 20.0) as u64 + 1);
            issued += n;
            if n == 0 {
                continue;
            }
            let ops: Vec<Op> = (0..n)
                .map(|_| {
                    let sku =
                        if rng.random_bool(options.hot_share) { 1 } else { 1 + zipf.sample(&mut rng) as u64 };
                    Op::Place { buyer: rng.random_range(1..=options.buyers), sku }
                })
                .collect();
            recorder.with(now, |b| b.offered += n);
            if !per_request {
                // As a storefront backend batches: at most a batch's worth per request (a
                // generator that fell behind has more than one batch of arrivals due).
                for chunk in ops.chunks(batch) {
                    tokio::spawn(play(driver.clone(), recorder.clone(), chunk.to_vec(), keys.clone()));
                }
                continue;
            }
            for op in ops {
                let Ok(permit) = outstanding.clone().try_acquire_owned() else {
                    recorder.with(now, |b| b.dropped += 1);
                    continue;
                };
                let (driver, recorder, keys) = (driver.clone(), recorder.clone(), keys.clone());
                tokio::spawn(async move {
                    play(driver, recorder, vec![op], keys).await;
                    drop(permit);
                });
            }
        }
    }
    Ok(())
}

fn latency(h: &Histogram<u64>) -> Latency {
    Latency {
        p50: h.value_at_quantile(0.5),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    }
}

/// Runs the three open-loop phases after the capacity phase; returns the figures and the tally
/// of the whole run (for the report's common fields and the invariants).
pub(crate) fn run(
    runtime: &tokio::runtime::Runtime,
    driver: Arc<Driver>,
    options: &Options,
    stats: impl Fn() -> Stats,
) -> anyhow::Result<(SpikeFigures, Tally)> {
    // 1. Capacity: closed loop, the flash workload's clients, for CAPACITY_S.
    let started = Instant::now();
    let capacity_deadline = started + Duration::from_secs_f64(CAPACITY_S);
    let progress = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..options.clients())
        .map(|id| {
            let client = Client {
                id: id as u64,
                driver: driver.clone(),
                options: options.clone(),
                deadline: capacity_deadline,
                progress: progress.clone(),
                next_claimer: Arc::new(AtomicU64::new(0)),
            };
            runtime.spawn(client.flash())
        })
        .collect();
    let mut tally = Tally::new()?;
    for client in clients {
        tally.merge(runtime.block_on(client)??)?;
    }
    let capacity_elapsed = started.elapsed().as_secs_f64();
    let capacity_per_s = (tally.orders + tally.payments) as f64 / capacity_elapsed;
    let orders_per_s = tally.orders as f64 / capacity_elapsed;
    eprintln!("capacity: {capacity_per_s:.0} orders+payments/s ({orders_per_s:.0} orders/s)");

    // 2. Open loop: steady at C/2, the spike at 10x C, the tail at C/2.
    let spike_s = options.duration.as_secs_f64().max(1.0);
    let open = Instant::now();
    let at = |s: f64| Duration::from_secs_f64(s);
    let phases = vec![
        Phase { name: "steady", from: at(0.0), to: at(STEADY_S), orders_per_s: orders_per_s / 2.0 },
        Phase {
            name: "spike",
            from: at(STEADY_S),
            to: at(STEADY_S + spike_s),
            orders_per_s: orders_per_s * SPIKE_FACTOR,
        },
        Phase {
            name: "tail",
            from: at(STEADY_S + spike_s),
            to: at(STEADY_S + spike_s + TAIL_S),
            orders_per_s: orders_per_s / 2.0,
        },
    ];
    let bounds: Vec<(&'static str, Duration, Duration)> =
        phases.iter().map(|p| (p.name, p.from, p.to)).collect();
    let total = at(STEADY_S + spike_s + TAIL_S);
    let recorder = Arc::new(Recorder::new(open, total + Duration::from_secs(5)));
    let per_request = options.mode == crate::Mode::Http;
    runtime.block_on(offer(driver, recorder.clone(), phases, options.clone(), per_request))?;
    // Let the last answers arrive.
    std::thread::sleep(Duration::from_millis(500));
    let buckets = recorder.buckets.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let figures = figures(&buckets, &bounds, capacity_per_s, spike_s, stats())?;
    for b in &buckets {
        tally.orders += b.orders;
        tally.payments += b.payments;
    }
    Ok((figures, tally))
}

fn figures(
    buckets: &[Bucket],
    bounds: &[(&'static str, Duration, Duration)],
    capacity_per_s: f64,
    spike_s: f64,
    admission: Stats,
) -> anyhow::Result<SpikeFigures> {
    let index = |d: Duration| (d.as_millis() / BUCKET.as_millis()) as usize;
    let phase_of =
        |i: usize| bounds.iter().find(|(_, from, to)| (index(*from)..index(*to)).contains(&i)).map(|b| b.0);
    let empty = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 2);
    let (mut steady, mut spike) = (empty()?, empty()?);
    let (mut offered, mut accepted) = (0, 0);
    let (mut done, mut shed, mut dropped, mut payments_shed) = (0, 0, 0, 0);
    let mut errors = BTreeMap::new();
    let mut business = BTreeMap::new();
    for (i, b) in buckets.iter().enumerate() {
        let phase = phase_of(i);
        if let Some(h) = &b.latency {
            match phase {
                Some("steady") => steady.add(h)?,
                Some("spike") => spike.add(h)?,
                _ => {}
            }
        }
        if phase == Some("spike") {
            offered += b.offered;
            accepted += b.orders;
            done += b.orders + b.payments;
            shed += b.shed;
            dropped += b.dropped;
        }
        payments_shed += b.payments_shed;
        for (code, n) in &b.errors {
            *errors.entry(code.clone()).or_default() += n;
        }
        for (code, n) in &b.business {
            *business.entry(code.clone()).or_default() += n;
        }
    }
    // Recovery: from the end of the spike, the first window after which every window's p99 is
    // under the threshold.
    let threshold = (2 * steady.value_at_quantile(0.99)).max(10_000);
    let spike_end = index(bounds[1].2);
    let end = index(bounds[2].2);
    let slow = |b: &Bucket| b.latency.as_ref().is_some_and(|h| h.value_at_quantile(0.99) > threshold);
    let last_slow = (spike_end..end).rev().find(|&i| buckets.get(i).is_some_and(slow));
    let recovery_s = match last_slow {
        None => Some(0.0),
        Some(i) if i + 1 < end => {
            Some(((i + 1 - spike_end) as u64 * BUCKET.as_millis() as u64) as f64 / 1_000.0)
        }
        Some(_) => None,
    };
    let timeline = buckets[..end]
        .chunks(10)
        .enumerate()
        .map(|(s, chunk)| {
            let mut h = empty().expect("bounds");
            for b in chunk {
                if let Some(l) = &b.latency {
                    let _ = h.add(l);
                }
            }
            Second {
                t_s: s as f64,
                phase: phase_of(s * 10).unwrap_or("after"),
                offered: chunk.iter().map(|b| b.offered).sum(),
                orders: chunk.iter().map(|b| b.orders).sum(),
                payments: chunk.iter().map(|b| b.payments).sum(),
                shed: chunk.iter().map(|b| b.shed).sum(),
                p99_us: h.value_at_quantile(0.99),
            }
        })
        .collect();
    // Requests offered: every arrival's order, and a payment for every accepted order.
    let requests = offered + accepted;
    let goodput_per_s = done as f64 / spike_s;
    Ok(SpikeFigures {
        capacity_per_s,
        offered_per_s: offered as f64 / spike_s,
        generator_dropped: dropped,
        goodput_per_s,
        goodput_share_of_capacity: goodput_per_s / capacity_per_s.max(1.0),
        shed_share: shed as f64 / requests.max(1) as f64,
        admitted_latency_us: latency(&spike),
        steady_latency_us: latency(&steady),
        non_429_errors: errors.values().sum(),
        non_429_error_codes: errors,
        payments_shed,
        recovery_s,
        business_refusals: business,
        timeline,
        admission,
    })
}

/// The spike's lines of the printed table.
pub fn table(f: &SpikeFigures) -> String {
    let mut out = String::new();
    let (a, s) = (&f.admitted_latency_us, &f.steady_latency_us);
    out += &format!("  capacity        {:>12.0} orders+payments/s (closed loop)\n", f.capacity_per_s);
    out += &format!(
        "  spike offered   {:>12.0} orders/s ({:.1}x capacity orders; generator dropped {})\n",
        f.offered_per_s,
        f.offered_per_s * 2.0 / f.capacity_per_s.max(1.0),
        f.generator_dropped
    );
    out += &format!(
        "  goodput         {:>12.0} /s = {:.1}% of capacity\n",
        f.goodput_per_s,
        100.0 * f.goodput_share_of_capacity
    );
    out += &format!("  shed            {:>12.1}% of requests (429)\n", 100.0 * f.shed_share);
    out += &format!(
        "  admitted        p50 {} us, p99 {} us (steady: p50 {} us, p99 {} us)\n",
        a.p50, a.p99, s.p50, s.p99
    );
    out += &format!("  payments shed   {:>12}\n", f.payments_shed);
    out += &format!("  non-429 errors  {:>12} {:?}\n", f.non_429_errors, f.non_429_error_codes);
    let recovery = f.recovery_s.map_or("never".to_owned(), |s| format!("{s:.1} s"));
    out += &format!("  recovery        {recovery:>12}\n");
    out += &format!("  adaptive limit  {:>12} commands in flight at the end\n", f.admission.limit);
    out += "  second  phase    offered   orders payments     shed   p99 us\n";
    for second in &f.timeline {
        out += &format!(
            "  {:>6} {:<7} {:>9} {:>8} {:>8} {:>8} {:>8}\n",
            second.t_s,
            second.phase,
            second.offered,
            second.orders,
            second.payments,
            second.shed,
            second.p99_us
        );
    }
    out
}
