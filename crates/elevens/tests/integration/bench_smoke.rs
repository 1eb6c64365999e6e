//! A tiny run of every bench workload and mode, so `elevens bench` never rots. These check that
//! the bench runs and that its invariant checks pass; they measure nothing.

use crate::harness::BIN;
use serde_json::Value;

/// A flash run small enough for a smoke test; the caller adds its mode or journal.
const TINY_FLASH: [&str; 8] =
    ["--workload", "flash", "--buyers", "300", "--duration", "0.5", "--hot-share", "0.9"];

fn bench(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let output = std::process::Command::new(BIN)
        .current_dir(dir.path())
        .arg("bench")
        .args(args)
        .arg("--json")
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
}

#[test]
fn every_flash_mode_runs_and_keeps_the_invariants() {
    let modes =
        [("in-process", "binary"), ("http", "binary"), ("http-batch", "binary"), ("http-batch", "json")];
    for (mode, encoding) in modes {
        let report = bench(&[&TINY_FLASH[..], &["--mode", mode, "--batch-encoding", encoding]].concat());
        if mode == "http-batch" {
            assert_eq!(report["batch_encoding"], encoding, "{report}");
        }
        for field in [
            "workload",
            "mode",
            "target",
            "duration_s",
            "orders_per_s",
            "payments_per_s",
            "latency_us",
            "errors",
            "rss_bytes_per_order",
            "invariants",
        ] {
            assert!(!report[field].is_null(), "{mode}: no {field} in {report}");
        }
        assert!(report["orders"].as_u64().unwrap() > 0, "{mode}: no orders: {report}");
        assert_eq!(report["invariants"]["ledger_balanced"], true, "{mode}: {report}");
        assert_eq!(report["invariants"]["audit_ok"], true, "{mode}: {report}");
        assert_eq!(report["invariants"]["applicable"], true, "{mode}: {report}");
    }
}

/// `--rate`: arrivals on a schedule whatever the answers, latency from each arrival's intended
/// time; the same checks at the end.
#[test]
fn every_flash_mode_runs_open_loop_at_its_rate() {
    for mode in ["in-process", "http", "http-batch"] {
        let report = bench(&[
            "--mode",
            mode,
            "--rate",
            "2000",
            "--buyers",
            "300",
            "--duration",
            "1",
            "--hot-share",
            "0.9",
        ]);
        let open = &report["open_loop"];
        assert_eq!(open["rate_per_s"], 2000.0, "{mode}: {report}");
        // Every arrival due in the second (the last tick may come a few ms early on a busy
        // machine), nothing dropped at this rate, each one answered.
        let offered = open["offered"].as_u64().unwrap();
        assert!((1_900..=2_000).contains(&offered), "{mode}: {offered} offered: {report}");
        assert_eq!(open["generator_dropped"], 0, "{mode}: {report}");
        // Every arrival was answered: its order placed, or refused (as are some payments
        // over HTTP, by admission control), and only placed orders were paid.
        let count = |field: &str| report[field].as_u64().unwrap();
        let refused: u64 = report["errors"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
        assert!(count("orders") > 0 && count("orders") + refused >= offered, "{mode}: {report}");
        assert!(count("payments") <= count("orders"), "{mode}: {report}");
        if mode == "in-process" {
            assert_eq!(count("orders") + refused, offered, "{mode}: {report}");
            assert_eq!(count("payments"), count("orders"), "{mode}: {report}");
        }
        assert_eq!(report["invariants"]["sold_exactly_stock"], true, "{mode}: {report}");
        assert_eq!(report["invariants"]["ledger_balanced"], true, "{mode}: {report}");
        assert_eq!(report["invariants"]["audit_ok"], true, "{mode}: {report}");
    }
}

/// Offered far more than it can take, the engine queues, and the open loop's latency shows the
/// queue (measured from when each arrival was due, not from when it was sent); a closed loop's
/// latency would stay at its clients' round trip.
#[test]
fn an_open_loop_past_capacity_shows_the_wait_in_its_latency() {
    let report = bench(&["--rate", "5000000", "--buyers", "300", "--duration", "1", "--batch", "500"]);
    let p99 = report["latency_us"]["p99"].as_u64().unwrap();
    assert!(p99 >= 100_000, "p99 {p99} us at 5 M arrivals/s: {report}");
    assert!(report["open_loop"]["generator_dropped"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["invariants"]["sold_exactly_stock"], true, "{report}");
    assert_eq!(report["invariants"]["audit_ok"], true, "{report}");
}

#[test]
fn every_mixed_mode_browses_searches_orders_and_pays() {
    for mode in ["in-process", "http", "http-batch"] {
        let report = bench(&[
            "--workload",
            "mixed",
            "--mode",
            mode,
            "--buyers",
            "300",
            "--duration",
            "1",
            "--batch",
            "200",
        ]);
        let count = |field: &str| report[field].as_u64().unwrap_or(0);
        for field in ["browses", "searches", "search_hits", "orders", "payments"] {
            assert!(count(field) > 0, "{mode}: no {field}: {report}");
        }
        // Browse and search are 80% of what is offered; places and pays the rest (a pay with
        // no unpaid order to pay becomes a browse).
        let reads = (count("browses") + count("searches")) as f64 / count("ops") as f64;
        assert!((0.70..=0.90).contains(&reads), "{mode}: reads are {reads} of the ops: {report}");
        assert!(count("payments") <= count("orders"), "{mode}: {report}");
        assert!(report["ops_per_s"].as_f64().unwrap() > 0.0, "{mode}: {report}");
        assert_eq!(report["invariants"]["sold_exactly_stock"], true, "{mode}: {report}");
        assert_eq!(report["invariants"]["audit_ok"], true, "{mode}: {report}");
    }
}

#[test]
fn every_redpacket_mode_pays_exactly_min_count_claimers() {
    for mode in ["in-process", "http", "http-batch"] {
        let report = bench(&[
            "--workload",
            "redpacket",
            "--mode",
            mode,
            "--buyers",
            "2000",
            "--shares",
            "500",
            "--pool",
            "100000",
        ]);
        assert_eq!(report["claims"], 2000, "{mode}: {report}");
        assert_eq!(report["shares_paid"], 500, "{mode}: {report}");
        assert_eq!(report["invariants"]["sold_exactly_stock"], true, "{mode}: {report}");
        assert_eq!(report["invariants"]["share_sum_exact"], true, "{mode}: {report}");
        assert_eq!(report["invariants"]["ledger_balanced"], true, "{mode}: {report}");
    }
}

/// The peers (started by `bench/peers/peers.sh`, as `.ci/run` does) run the same flash workload
/// through the same load generator, and pass the same checks.
#[test]
fn every_peer_runs_the_flash_workload_when_started() {
    if std::env::var_os("ELEVENS_PEERS").is_none() {
        eprintln!("skipped: start the peers with bench/peers/peers.sh start all and set ELEVENS_PEERS=1");
        return;
    }
    for target in ["postgres", "redis-always", "redis-everysec"] {
        // Unpipelined, pipelined, and open loop.
        let loads: [&[&str]; 3] =
            [&["--mode", "http"], &["--mode", "http-batch"], &["--mode", "http", "--rate", "500"]];
        for load in loads {
            let mut args = vec!["--target", target, "--buyers", "300", "--duration", "0.5", "--clients", "4"];
            args.extend_from_slice(&["--hot-share", "0.9"]);
            args.extend_from_slice(load);
            let report = bench(&args);
            assert!(report["orders"].as_u64().unwrap() > 0, "{target} {load:?}: no orders: {report}");
            assert_eq!(report["payments"], report["orders"], "{target} {load:?}: one call places and pays");
            let invariants = &report["invariants"];
            assert_eq!(invariants["sold_exactly_stock"], true, "{target} {load:?}: {report}");
            assert_eq!(invariants["ledger_balanced"], true, "{target} {load:?}: {report}");
            if load.contains(&"--rate") {
                assert!(report["open_loop"]["offered"].as_u64().unwrap() > 0, "{target}: {report}");
            }
        }
    }
    let report = bench(&["--target", "hyper-hello", "--mode", "http", "--duration", "0.3", "--clients", "4"]);
    assert!(report["orders_per_s"].as_f64().unwrap() > 0.0, "{report}");
    assert_eq!(report["invariants"]["applicable"], false, "a hello server has nothing to check: {report}");
}

#[test]
fn the_spike_reports_its_figures_and_keeps_the_invariants() {
    let report =
        bench(&["--workload", "spike", "--mode", "in-process", "--buyers", "2000", "--duration", "1"]);
    for field in [
        "capacity_per_s",
        "goodput_per_s",
        "shed_share",
        "admitted_latency_us",
        "non_429_errors",
        "payments_shed",
        "recovery_s",
        "timeline",
        "admission",
    ] {
        assert!(report.get(field).is_some(), "no {field} in {report}");
    }
    assert!(report["capacity_per_s"].as_f64().unwrap() > 0.0, "{report}");
    assert!(report["goodput_per_s"].as_f64().unwrap() > 0.0, "{report}");
    // The spike was offered and some of it was shed by admission control, none of it payments;
    // or, when the capacity phase ran slow (it shares two cores with the other tests), the
    // engine kept up with it: an order and its payment per order offered, less the campaign's
    // own refusals and the payments that land in the tail's first second (a quarter, at most).
    let (shed, offered, goodput) = (
        report["shed_share"].as_f64().unwrap(),
        report["offered_per_s"].as_f64().unwrap(),
        report["goodput_per_s"].as_f64().unwrap(),
    );
    assert!(shed > 0.0 || goodput >= 0.75 * 2.0 * offered, "{report}");
    assert_eq!(report["payments_shed"], 0, "{report}");
    assert_eq!(report["non_429_errors"], 0, "{report}");
    assert_eq!(report["invariants"]["audit_ok"], true, "{report}");
    assert_eq!(report["invariants"]["sold_exactly_stock"], true, "{report}");
}

/// The fulfil workload dispatches, tracks and delivers every paid order, keeps the logistics
/// invariants, and its backlog scenario spreads the promises over the days and brings them back.
#[test]
fn the_fulfil_workload_ships_every_paid_order_and_the_backlog_drains() {
    let report = bench(&[
        "--workload",
        "fulfil",
        "--buyers",
        "300",
        "--skus",
        "1000",
        "--duration",
        "0.5",
        "--backlog-orders",
        "20000",
        "--backlog-capacity",
        "2000",
    ]);
    let f = &report["fulfil"];
    assert!(f["shipments"].as_u64() > Some(0), "{report}");
    assert_eq!(f["shipments"], report["payments"], "{report}");
    assert_eq!(f["delivered"], f["shipments"], "{report}");
    assert_eq!(f["tracking_events"].as_u64(), f["shipments"].as_u64().map(|s| s * 4));
    for invariant in [
        "every_paid_order_shipped",
        "capacity_never_overbooked",
        "refunds_within_paid",
        "tracking_forward_only",
    ] {
        assert_eq!(f[invariant], true, "{invariant}: {report}");
    }
    assert_eq!(report["invariants"]["audit_ok"], true, "{report}");
    let days = report["backlog"]["days"].as_array().expect("backlog days");
    let out: Vec<u64> = days.iter().map(|d| d["promised_days_out"].as_u64().unwrap()).collect();
    assert_eq!(out.first(), Some(&10), "20,000 orders at 2,000 a day: ten days out at first: {out:?}");
    assert_eq!(out.last(), Some(&0), "and back to the same day once drained: {out:?}");
    assert_eq!(report["backlog"]["audit_ok"], true);
}

#[test]
fn the_flash_workload_runs_on_a_nats_journal_beside_the_local_one() {
    if !crate::replicated::enabled() {
        return;
    }
    // One JetStream server on its own port, stopped at the end.
    let store = tempfile::tempdir().unwrap();
    let port = crate::replicated::port_base(4);
    let server = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
    let mut nats = std::process::Command::new(server)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nats-server");
    let url = format!("nats://127.0.0.1:{port}");
    let report = bench(&[&TINY_FLASH[..], &["--journal", &url, "--replicas", "1"]].concat());
    let _ = nats.kill();
    let _ = nats.wait();
    assert_eq!(report["local"]["journal"], "local", "{report}");
    assert_eq!(report["replicated"]["journal"], "nats", "{report}");
    assert!(report["replicated"]["orders"].as_u64().unwrap() > 0, "{report}");
    assert!(report["throughput_ratio"].as_f64().unwrap() > 0.0, "{report}");
    assert_eq!(report["replicated"]["invariants"]["audit_ok"], true, "{report}");
}

#[test]
fn the_failover_bench_kills_a_leader_and_loses_nothing() {
    if !crate::replicated::enabled() {
        return;
    }
    let base = crate::replicated::port_base(5).to_string();
    let report = bench(&["--workload", "failover", "--kills", "1", "--clients", "2", "--port-base", &base]);
    assert_eq!(report["kills"].as_array().map(Vec::len), Some(1), "{report}");
    assert!(report["acknowledged"].as_u64().unwrap() > 0, "{report}");
    assert_eq!((report["lost"].as_u64(), report["applied_twice"].as_u64()), (Some(0), Some(0)), "{report}");
}

/// The budget's workload counts what each table holds per order: an order is its 64-byte record,
/// its payment two 32-byte transfers (and a share of their time's runs), its shipment (implicit: the merchant has no warehouse) a
/// 5-byte slot and a 5-byte link; the sum is the tables' and the shipments are one per paid order
/// (what `bench/budget.py` checks in CI).
/// Carts of three stores checked out in one command, in every mode: three paid orders each,
/// and the audit holds.
#[test]
fn the_checkout_workload_pays_three_stores_per_checkout_in_every_mode() {
    for (mode, encoding) in
        [("in-process", "binary"), ("http", "binary"), ("http-batch", "binary"), ("http-batch", "json")]
    {
        let args = ["--workload", "checkout", "--buyers", "300", "--skus", "300", "--duration", "0.5"];
        let report = bench(&[&args[..], &["--mode", mode, "--batch-encoding", encoding]].concat());
        let orders = report["orders"].as_u64().unwrap();
        assert!(orders > 0 && orders.is_multiple_of(3), "{mode}: {report}");
        assert_eq!(report["payments"], report["orders"], "{mode}: {report}");
        assert_eq!(report["invariants"]["audit_ok"], true, "{mode}: {report}");
        assert_eq!(report["invariants"]["ledger_balanced"], true, "{mode}: {report}");
    }
}

#[test]
fn the_budget_counts_each_table_per_order() {
    let report = bench(&["--workload", "budget", "--orders", "5000", "--buyers", "2000", "--skus", "1000"]);
    assert_eq!(report["orders"], 5000, "{report}");
    assert_eq!(report["shipments"], 5000, "{report}");
    let tables = report["bytes_per_order_by_table"].as_array().expect("tables");
    let table = |name: &str| {
        tables
            .iter()
            .find(|t| t[0] == name)
            .and_then(|t| t[1].as_f64())
            .unwrap_or_else(|| panic!("{name}: {report}"))
    };
    assert_eq!(table("orders"), 64.0);
    assert!((table("transfers") - 64.0).abs() < 0.5, "{report}");
    assert!((table("shipments") - 10.0).abs() < 0.1, "{report}");
    let sum: f64 = tables.iter().filter_map(|t| t[1].as_f64()).sum();
    let total = report["bytes_per_order"].as_f64().unwrap();
    assert!((sum - total).abs() < 0.5, "tables {sum} against {total}");
    assert!(report["bytes_per_sku"].as_f64() > Some(32.0), "{report}");
}
