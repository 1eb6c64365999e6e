//! The open-loop load generator, shared by the spike workload and `--rate`: arrivals come at
//! the rate of the phase whatever the target does (a buyer arrives every 1/λ seconds, as at
//! midnight on 11.11), each places an order and, if it was accepted, pays it. Every 1 ms the
//! generator sends the arrivals due by then: in-process and over batches together (as a
//! storefront backend would), over HTTP each arrival its own request.
//!
//! Latency is measured from each arrival's **intended** time (`start + i/λ`), as wrk2 does,
//! when the recorder is asked to ([`Recorder::new`]): a generator or target that falls behind
//! then shows as latency instead of hiding it (coordinated omission). A payment is sent when its
//! order's answer comes, so its latency is from that moment. The spike keeps its figures from
//! the send, as they were measured (RESULTS.md).

use crate::driver::{Answer, Driver, Op};
use crate::{Options, SOLD_OUT_CODES};
use anyhow::Context;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The recorder's window.
pub(crate) const BUCKET: Duration = Duration::from_millis(100);

/// Codes that mean "shed by admission control, come back later" (429).
pub(crate) const SHED_CODES: &[&str] = &["overloaded", "rate_limited", "sku_rate_limited", "http_429"];
/// Answers that are the business saying no (sold out, already bought, not started): correct
/// answers, neither goodput nor errors.
pub(crate) const BUSINESS_CODES: &[&str] =
    &["campaign_not_started", "campaign_limit_exceeded", "campaign_sold_out"];

#[derive(Clone, Default)]
pub(crate) struct Bucket {
    pub offered: u64,
    pub orders: u64,
    pub payments: u64,
    pub shed: u64,
    pub payments_shed: u64,
    pub dropped: u64,
    pub errors: BTreeMap<String, u64>,
    pub business: BTreeMap<String, u64>,
    /// Every refusal by code (shed, business and errors alike), for the report's `errors`.
    pub refused: BTreeMap<String, u64>,
    /// Paid orders for the hot SKU, and whether any of its orders was refused as sold out.
    pub hot_paid: u64,
    pub hot_sold_out: bool,
    pub latency: Option<Histogram<u64>>,
}

/// What every arrival reports, by 100 ms window of the open-loop phases.
pub(crate) struct Recorder {
    pub start: Instant,
    pub buckets: Mutex<Vec<Bucket>>,
    /// Whether an order's latency is from its arrival's intended time (else from its send).
    from_intended: bool,
    /// Arrivals sent and not yet answered (order and payment).
    in_flight: AtomicU64,
}

impl Recorder {
    pub fn new(start: Instant, total: Duration, from_intended: bool) -> Recorder {
        let n = (total.as_millis() / BUCKET.as_millis()) as usize + 50;
        Recorder {
            start,
            buckets: Mutex::new(vec![Bucket::default(); n]),
            from_intended,
            in_flight: AtomicU64::new(0),
        }
    }

    pub fn with(&self, at: Instant, f: impl FnOnce(&mut Bucket)) {
        let i = (at.saturating_duration_since(self.start).as_millis() / BUCKET.as_millis()) as usize;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let last = buckets.len() - 1;
        f(&mut buckets[i.min(last)]);
    }

    /// Waits until every arrival sent has its answers, at most `wait`; says whether it did.
    pub async fn drained(&self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        while self.in_flight.load(Ordering::Acquire) > 0 {
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Records the answers to `ops`, their latency from `since`, and returns the orders to pay
    /// with whether each is the hot SKU's. With `paid_with_order` (the peers, whose one call
    /// places and pays), an accepted order is also a payment.
    fn answers(&self, ops: &[Op], answers: &[Answer], since: Since, paying: Paying) -> Vec<(Op, bool)> {
        let now = Instant::now();
        let mut pays = Vec::new();
        self.with(now, |b| {
            for (k, (op, answer)) in ops.iter().zip(answers).enumerate() {
                let hot = match paying {
                    Paying::Orders { .. } => matches!(op, Op::Place { sku: 1, .. }),
                    Paying::Payments { hot } => hot.get(k).copied().unwrap_or(false),
                };
                match answer {
                    Answer::Ok(id) => {
                        match paying {
                            Paying::Orders { paid_with_order: false } => {
                                b.orders += 1;
                                pays.push((Op::Pay { order: *id }, hot));
                            }
                            Paying::Orders { paid_with_order: true } => {
                                b.orders += 1;
                                b.payments += 1;
                                b.hot_paid += u64::from(hot);
                            }
                            Paying::Payments { .. } => {
                                b.payments += 1;
                                b.hot_paid += u64::from(hot);
                            }
                        }
                        let micros = now.saturating_duration_since(since.of(k)).as_micros().max(1) as u64;
                        let h = b.latency.get_or_insert_with(|| {
                            Histogram::new_with_bounds(1, 60_000_000, 2).expect("bounds")
                        });
                        h.saturating_record(micros);
                    }
                    Answer::Refused(code) => {
                        *b.refused.entry(code.clone()).or_default() += 1;
                        let hot_sold_out = hot && SOLD_OUT_CODES.contains(&code.as_str());
                        b.hot_sold_out |= hot_sold_out;
                        if SHED_CODES.contains(&code.as_str()) {
                            b.shed += 1;
                            b.payments_shed += u64::from(matches!(paying, Paying::Payments { .. }));
                        } else if hot_sold_out || BUSINESS_CODES.contains(&code.as_str()) {
                            *b.business.entry(code.clone()).or_default() += 1;
                        } else {
                            *b.errors.entry(code.clone()).or_default() += 1;
                        }
                    }
                }
            }
        });
        pays
    }
}

/// Where a batch's latencies count from: each arrival's intended time, or the batch's send.
#[derive(Clone, Copy)]
enum Since<'a> {
    Intended(&'a [Instant]),
    Sent(Instant),
}

impl Since<'_> {
    fn of(&self, k: usize) -> Instant {
        match *self {
            Since::Intended(times) => times[k],
            Since::Sent(at) => at,
        }
    }
}

/// What a batch of answers is to: orders (then paid, or already paid by the peers' one call),
/// or their payments, with whether each is the hot SKU's.
#[derive(Clone, Copy)]
enum Paying<'a> {
    Orders { paid_with_order: bool },
    Payments { hot: &'a [bool] },
}

fn transport_error(recorder: &Recorder, error: &anyhow::Error, n: usize) {
    let code = format!("transport: {error:#}").chars().take(80).collect::<String>();
    recorder.with(Instant::now(), |b| {
        *b.errors.entry(code.clone()).or_default() += n as u64;
        *b.refused.entry(code).or_default() += n as u64;
    });
}

/// One arrival batch (`intended`: each arrival's due time): place the orders, pay the accepted
/// ones.
async fn play(driver: &Driver, recorder: &Recorder, ops: Vec<Op>, intended: Vec<Instant>, keys: &AtomicU64) {
    let sent = Instant::now();
    let since = if recorder.from_intended { Since::Intended(&intended) } else { Since::Sent(sent) };
    let key = keys.fetch_add(ops.len() as u64, Ordering::Relaxed);
    let paid_with_order = driver.pays_with_order();
    let pays = match driver.run(&ops, key).await {
        Ok(answers) => recorder.answers(&ops, &answers, since, Paying::Orders { paid_with_order }),
        Err(error) => return transport_error(recorder, &error, ops.len()),
    };
    if pays.is_empty() {
        return;
    }
    let since = Since::Sent(Instant::now());
    let (pays, hot): (Vec<Op>, Vec<bool>) = pays.into_iter().unzip();
    let key = keys.fetch_add(pays.len() as u64, Ordering::Relaxed);
    match driver.run(&pays, key).await {
        Ok(answers) => {
            recorder.answers(&pays, &answers, since, Paying::Payments { hot: &hot });
        }
        Err(error) => transport_error(recorder, &error, pays.len()),
    }
}

pub(crate) struct Phase {
    pub name: &'static str,
    pub from: Duration,
    pub to: Duration,
    pub orders_per_s: f64,
}

/// Requests (over HTTP, one per arrival) or batches the generator keeps outstanding; past it
/// the generator itself is the limit and says so (`dropped`), rather than queueing in memory
/// without bound.
pub(crate) struct Outstanding {
    pub requests: usize,
    pub batches: usize,
}

/// The open-loop generator: every millisecond, the arrivals due by now.
pub(crate) async fn offer(
    drivers: Vec<Arc<Driver>>,
    recorder: Arc<Recorder>,
    phases: Vec<Phase>,
    options: Options,
    per_request: bool,
    outstanding: Outstanding,
) -> anyhow::Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed ^ 0x5b1c);
    let zipf = Zipf::new(options.skus as f64, 1.1).context("zipf")?;
    let keys = Arc::new(AtomicU64::new(1 << 50));
    let batch = options.batch().max(1);
    let permits = if per_request { outstanding.requests } else { outstanding.batches };
    let permits = Arc::new(tokio::sync::Semaphore::new(permits.min(tokio::sync::Semaphore::MAX_PERMITS)));
    anyhow::ensure!(!drivers.is_empty(), "no driver to offer load through");
    let mut turn = 0usize;
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
            // At most 50 ms of arrivals at once, should the generator fall that far behind;
            // the rest stay due (and late, by their intended times).
            let n = due.saturating_sub(issued).min((phase.orders_per_s / 20.0) as u64 + 1);
            let first = issued;
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
            let intended: Vec<Instant> = (first..issued)
                .map(|i| phase_start + Duration::from_secs_f64(i as f64 / phase.orders_per_s))
                .collect();
            recorder.with(now, |b| b.offered += n);
            // As a storefront backend batches: at most a batch's worth per request (a generator
            // that fell behind has more than one batch of arrivals due); over HTTP, one each.
            let size = if per_request { 1 } else { batch };
            for (chunk, intended) in ops.chunks(size).zip(intended.chunks(size)) {
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    recorder.with(now, |b| b.dropped += chunk.len() as u64);
                    continue;
                };
                recorder.in_flight.fetch_add(1, Ordering::AcqRel);
                turn = turn.wrapping_add(1);
                let driver = drivers[turn % drivers.len()].clone();
                let (recorder, keys) = (recorder.clone(), keys.clone());
                let (chunk, intended) = (chunk.to_vec(), intended.to_vec());
                tokio::spawn(async move {
                    play(&driver, &recorder, chunk, intended, &keys).await;
                    recorder.in_flight.fetch_sub(1, Ordering::AcqRel);
                    drop(permit);
                });
            }
        }
    }
    Ok(())
}

/// `--rate`'s figures, in the JSON report beside the common fields (whose latency is then from
/// each arrival's intended time).
#[derive(Debug, serde::Serialize)]
pub struct OpenLoopFigures {
    /// The arrival rate asked for (orders per second).
    pub rate_per_s: f64,
    /// Arrivals due during the run, and those the generator could not send (past its bound of
    /// requests or batches outstanding: the target fell that far behind).
    pub offered: u64,
    pub generator_dropped: u64,
    /// Requests shed by admission control (429), of orders and payments.
    pub shed: u64,
    pub latency_from: &'static str,
}

/// Requests (over HTTP) and batches a `--rate` run keeps outstanding at most.
const RATE_OUTSTANDING: Outstanding = Outstanding { requests: 4_096, batches: 1_024 };
/// How long a `--rate` run waits, after its last arrival, for the answers still outstanding.
const DRAIN_WAIT: Duration = Duration::from_secs(30);

/// The flash workload open loop at `rate` arrivals per second for `--duration`, sent over
/// `drivers` in turn (a peer's connections; elevens' one handle); the tally of what was
/// answered, latency from the intended times.
pub(crate) fn at_rate(
    runtime: &tokio::runtime::Runtime,
    drivers: Vec<Arc<Driver>>,
    options: &Options,
    rate: f64,
) -> anyhow::Result<(OpenLoopFigures, crate::Tally)> {
    let duration = options.duration.max(Duration::from_millis(100));
    let start = Instant::now();
    let recorder = Arc::new(Recorder::new(start, duration + DRAIN_WAIT, true));
    let phases = vec![Phase { name: "rate", from: Duration::ZERO, to: duration, orders_per_s: rate }];
    let per_request = options.mode == crate::Mode::Http;
    let bar = crate::progress_bar(duration);
    let drained = runtime.block_on(async {
        let progress = {
            let (recorder, bar) = (recorder.clone(), bar.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let elapsed = recorder.start.elapsed();
                    let (offered, orders) = {
                        let buckets = recorder.buckets.lock().unwrap_or_else(|e| e.into_inner());
                        buckets.iter().fold((0, 0), |(o, p), b| (o + b.offered, p + b.orders))
                    };
                    bar.set_position(elapsed.as_secs());
                    bar.set_message(format!(
                        "{offered} arrivals, {:.0} orders/s",
                        orders as f64 / elapsed.as_secs_f64()
                    ));
                }
            })
        };
        let offered =
            offer(drivers, recorder.clone(), phases, options.clone(), per_request, RATE_OUTSTANDING).await;
        let drained = recorder.drained(DRAIN_WAIT).await;
        progress.abort();
        offered.map(|()| drained)
    })?;
    bar.finish_and_clear();
    if !drained {
        anyhow::bail!("answers still outstanding {DRAIN_WAIT:?} after the last arrival");
    }
    let buckets = recorder.buckets.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut tally = crate::Tally::new()?;
    let mut figures = OpenLoopFigures {
        rate_per_s: rate,
        offered: 0,
        generator_dropped: 0,
        shed: 0,
        latency_from: "intended arrival time (orders), send (payments)",
    };
    for b in buckets {
        figures.offered += b.offered;
        figures.generator_dropped += b.dropped;
        figures.shed += b.shed;
        tally.merge(crate::Tally {
            orders: b.orders,
            payments: b.payments,
            hot_paid: b.hot_paid,
            hot_sold_out: b.hot_sold_out,
            errors: b.refused,
            latency: b.latency,
            ..crate::Tally::default()
        })?;
    }
    Ok((figures, tally))
}
