//! The spike workload (BRIEF §6, issue 3): measure the capacity C closed-loop, then offer load
//! open-loop — half of C, then 10x C for the spike at the campaign's start, then half of C again —
//! and watch goodput, shedding, the latency of what was admitted, and how fast it recovers.
//!
//! Open loop means arrivals do not wait for answers: a buyer arrives every 1/λ seconds whatever
//! the server does, as at midnight on 11.11. Every arrival places an order and, if it was
//! accepted, pays it. In-process, the arrivals of each millisecond go through admission control
//! together (as a storefront backend would send them); over HTTP each arrival is its own request.

use crate::driver::Driver;
use crate::open_loop::{offer, Bucket, Outstanding, Phase, Recorder, BUCKET};
use crate::{Client, Latency, Options, Tally};
use elevens_admission::Stats;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The phases, in seconds: capacity (closed loop), steady, spike (`--duration`), tail.
pub const CAPACITY_S: f64 = 3.0;
pub const STEADY_S: f64 = 2.0;
pub const TAIL_S: f64 = 5.0;
/// The offered load of the spike, in multiples of the capacity.
pub const SPIKE_FACTOR: f64 = 10.0;
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
    // Latency from the send, as the spike's figures were measured; no bound on batches in
    // flight (in-process, admission control bounds them).
    let recorder = Arc::new(Recorder::new(open, total + Duration::from_secs(5), false));
    let per_request = options.mode == crate::Mode::Http;
    let outstanding = Outstanding { requests: 4_096, batches: usize::MAX };
    runtime.block_on(offer(
        vec![driver],
        recorder.clone(),
        phases,
        options.clone(),
        per_request,
        outstanding,
    ))?;
    // Let the last answers arrive, so the invariants are checked against a quiet engine (the
    // tally keeps what arrives late; the figures only count the phases' windows).
    if !runtime.block_on(recorder.drained(Duration::from_secs(10))) {
        eprintln!("spike: answers still outstanding 10 s after the tail");
    }
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
