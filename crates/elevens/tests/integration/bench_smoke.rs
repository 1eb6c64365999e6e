//! A tiny run of every bench workload and mode, so `elevens bench` never rots. These check that
//! the bench runs and that its invariant checks pass; they measure nothing.

use crate::harness::BIN;
use serde_json::Value;

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
    for mode in ["in-process", "http", "http-batch"] {
        let report = bench(&[
            "--workload",
            "flash",
            "--mode",
            mode,
            "--buyers",
            "300",
            "--duration",
            "0.5",
            "--hot-share",
            "0.9",
        ]);
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
