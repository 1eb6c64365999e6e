//! The packaging in `deploy/`, tested as far as this machine can: the systemd unit's syntax with
//! `systemd-analyze verify` (on the binary under test), and the container's runtime stage run as
//! a script: its environment, its health check command, its stop signal within the stop timeout.
//! (The image's build needs a container runtime and base images, which CI has not.)

use crate::harness::{Server, BIN};
use std::process::{Command, Stdio};
use std::time::Duration;

const UNIT: &str = include_str!("../../../../deploy/elevens.service");
const DOCKERFILE: &str = include_str!("../../../../deploy/Dockerfile");

/// The value of `key=` in the unit (the last one, as systemd reads it).
fn unit_value(key: &str) -> &'static str {
    UNIT.lines().rev().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_else(|| panic!("no {key}"))
}

fn seconds(value: &str) -> u64 {
    value.trim_end_matches('s').parse().unwrap()
}

#[test]
fn the_systemd_unit_verifies_and_waits_longer_than_the_graceful_stop() {
    // Limits a marketplace needs: descriptors for every connection, a restart after a crash.
    assert!(unit_value("LimitNOFILE").parse::<u64>().unwrap() >= 65_536);
    assert_eq!(unit_value("Restart"), "on-failure");
    assert_eq!(unit_value("KillSignal"), "SIGTERM");
    let drain_ms = elevens_http::config::HttpLimits::default().drain_timeout_ms;
    assert!(seconds(unit_value("TimeoutStopSec")) * 1_000 >= 2 * drain_ms, "a stop outlasts the drain");
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("SKIPPED: systemd-analyze is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("elevens.service");
    std::fs::write(&unit, UNIT.replace("/usr/local/bin/elevens", BIN)).unwrap();
    let output = Command::new("systemd-analyze").arg("verify").arg(&unit).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Only the unit's own lines count: the host's other units may have warnings of their own.
    let own: Vec<&str> = stderr.lines().filter(|l| l.contains("elevens.service")).collect();
    assert!(output.status.success() && own.is_empty(), "systemd-analyze verify:\n{stderr}");
}

#[tokio::test]
async fn the_containers_health_check_and_stop_work_as_the_dockerfile_runs_them() {
    // The Dockerfile's promises this test relies on.
    for line in [
        "USER elevens",
        "STOPSIGNAL SIGTERM",
        r#"CMD ["elevens", "health"]"#,
        "ELEVENS_LISTEN=0.0.0.0:8011",
        r#"VOLUME ["/var/lib/elevens"]"#,
        "cargo install --locked --path crates/elevens",
    ] {
        assert!(DOCKERFILE.contains(line), "the Dockerfile has no {line}");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with(
        dir.path(),
        &[],
        &[("RUST_LOG", "warn"), ("ELEVENS_LOG_FORMAT", "json")],
        Stdio::inherit(),
    );
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let health = |listen: String| {
        Command::new(BIN)
            .arg("health")
            .env("ELEVENS_LISTEN", listen)
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    // As in the image: the server listens on every address, the check asks loopback.
    assert!(health(format!("0.0.0.0:{port}")), "the health check fails on a healthy server");
    let (took, clean) = server.stop();
    assert!(clean, "SIGTERM stops with status 0");
    assert!(took < Duration::from_secs(seconds(unit_value("TimeoutStopSec"))), "{took:?}");
    assert!(!health(format!("0.0.0.0:{port}")), "the health check passes with no server");
}
