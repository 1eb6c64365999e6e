//! The series on `/metrics`: each described here once, with its help text, and the latencies as
//! histograms with fixed buckets (histograms aggregate across instances; summaries do not).

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets of the `_seconds` histograms: from a fast fsync (100 µs) to a slow snapshot fork.
const SECONDS_BUCKETS: &[f64] =
    &[0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
/// Buckets of the group commit's size, in commands (at most `group_commit_commands_max`).
const BATCH_BUCKETS: &[f64] = &[1.0, 4.0, 16.0, 64.0, 256.0, 1_024.0, 4_096.0, 16_384.0];

/// The process's CPU time, memory, descriptors and threads (`process_*`), read at each scrape.
static PROCESS: std::sync::OnceLock<metrics_process::Collector> = std::sync::OnceLock::new();

/// Installs the process-wide recorder (once; `None` if one is already installed, as when a
/// test runs several servers in one process) and describes every series.
pub fn install() -> Option<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full("elevens_batch_commands".into()), BATCH_BUCKETS))
        .ok()?
        .install_recorder()
        .ok()?;
    describe();
    PROCESS.get_or_init(metrics_process::Collector::default).describe();
    metrics::gauge!("elevens_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Some(handle)
}

/// Reads what is read at each scrape rather than kept up to date: the `process_*` series and
/// the business figures, from the engine's analytics.
pub fn collect(analytics: &elevens_analytics::Analytics) {
    if let Some(process) = PROCESS.get() {
        process.collect();
    }
    for (currency, totals) in analytics.totals() {
        let currency = currency.to_string();
        // A gauge: refunds lower it. f64 holds minor units exactly up to 2^53.
        metrics::gauge!("elevens_gmv_minor", "currency" => currency.clone()).set(totals.gmv as f64);
        metrics::counter!("elevens_orders_placed_total", "currency" => currency.clone())
            .absolute(totals.placed_orders);
        metrics::counter!("elevens_orders_paid_total", "currency" => currency.clone())
            .absolute(totals.paid_orders);
        metrics::counter!("elevens_orders_refunded_total", "currency" => currency.clone())
            .absolute(totals.refunded_orders);
        metrics::counter!("elevens_refunds_minor_total", "currency" => currency)
            .absolute(u64::try_from(totals.refunds).unwrap_or(u64::MAX));
    }
}

fn describe() {
    describe_gauge!("elevens_build_info", "Always 1; the build's version as a label.");
    describe_counter!(
        "elevens_commands_total",
        "Commands applied, by result: changed the state, or a repeat answered from the idempotency store."
    );
    describe_counter!("elevens_refusals_total", "Commands refused by the engine's rules, by error code.");
    describe_counter!(
        "elevens_overloaded_total",
        "Submissions refused because the sequencer's queue was full (503 overloaded)."
    );
    describe_gauge!("elevens_applied_commands", "The sequence number of the last command applied.");
    describe_histogram!("elevens_batch_commands", Unit::Count, "Commands per group commit.");
    describe_histogram!(
        "elevens_journal_write_fsync_seconds",
        Unit::Seconds,
        "Time to write and fsync one group commit to the local journal."
    );
    describe_histogram!(
        "elevens_snapshot_fork_seconds",
        Unit::Seconds,
        "Time the engine stood still to fork a snapshot's writer."
    );
    describe_gauge!("elevens_admission_limit", "The adaptive limit on requests in flight.");
    describe_gauge!("elevens_admission_in_flight", "Requests in flight past admission.");
    describe_gauge!("elevens_waiting_room_waiting", "Tickets waiting in the flash sale's waiting room.");
    describe_counter!("elevens_admission_admitted_total", "Requests admitted, by class.");
    describe_counter!("elevens_admission_shed_total", "Requests shed (429 or 503), by class and reason.");
    describe_gauge!("elevens_replication_lag_messages", "Stream messages not yet applied on this node.");
    describe_gauge!(
        "elevens_replication_leader",
        "1 while this node leads (holds the lease and fenced the stream), else 0."
    );
    describe_gauge!(
        "elevens_replication_term",
        "The lease revision this node leads with (0 if it never led)."
    );
    describe_counter!(
        "elevens_replication_publish_retries_total",
        "Frames published again because their acknowledgement failed or did not come."
    );
    describe_counter!(
        "elevens_replication_refused_frames_total",
        "Stream messages refused by elevens' own checks (damaged, off the hash chain)."
    );
    describe_counter!(
        "elevens_writes_refused_not_leader_total",
        "Writes refused because this node does not lead."
    );
    describe_counter!("elevens_feed_events_total", "Events appended to the event feed.");
    describe_counter!(
        "elevens_http_requests_total",
        "HTTP requests answered, by route template, method and status."
    );
    describe_histogram!(
        "elevens_http_request_duration_seconds",
        Unit::Seconds,
        "Time from a request's arrival to its answer's headers, by route template and method."
    );
    describe_gauge!(
        "elevens_gmv_minor",
        "Gross merchandise value paid, less refunds, in the currency's minor units, by currency."
    );
    describe_counter!("elevens_orders_placed_total", "Orders placed, by currency.");
    describe_counter!("elevens_orders_paid_total", "Orders paid (payments), by currency.");
    describe_counter!("elevens_orders_refunded_total", "Orders refunded in part or in full, by currency.");
    describe_counter!("elevens_refunds_minor_total", "Refunded, in the currency's minor units, by currency.");
    describe_counter!(
        "elevens_webhook_deliveries_total",
        "Webhook delivery attempts, by result (ok: the endpoint answered 2xx)."
    );
}
