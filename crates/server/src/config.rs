//! Server configuration: every bound of the shell, with its unit in the name.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// The most commands one `POST /v1/batch` may carry.
    pub batch_commands_max: usize,
    /// The largest request body, in bytes.
    pub request_bytes_max: usize,
    /// Submissions waiting for the sequencer; beyond this the gateway answers 503.
    pub sequencer_queue_max: usize,
    /// The most commands the sequencer applies between two fsyncs.
    pub group_commit_commands_max: usize,
    /// How long an unpaid order holds its stock.
    pub reservation_ttl_ms: u64,
    /// The platform's commission for merchants created without one, in basis points.
    pub default_commission_bps: u16,
    /// A snapshot is taken after this many journaled commands.
    pub snapshot_every_commands: u64,
    /// Snapshots written around the page cache (`O_DIRECT`): cheaper for the engine under load,
    /// slower for a restart (see `elevens_journal::SnapshotFile`).
    pub snapshot_direct_io: bool,
    /// Journal segments roll over at this size.
    pub segment_bytes_max: u64,
    /// HTTP requests being handled at once; beyond it the gateway answers 429 before reading the
    /// body or checking the key, so a flood cannot fill the runtime's run queue. Payments may use
    /// eight times as many.
    pub http_in_progress_max: usize,
    /// Admission control's rules at start; an admin may replace them at runtime.
    pub admission: elevens_admission::Rules,
    /// Connections: how many, and how long each may take to send a request or sit idle.
    pub http: crate::http::HttpLimits,
    /// Where the journal lives: the data directory (embedded), or a NATS JetStream stream.
    pub journal: JournalTarget,
    /// The address other nodes and clients reach this node's API at (replicated mode; the
    /// listen address by default).
    pub advertise: Option<String>,
    /// The secret of the first admin key, read from here (or created here) on a new journal.
    pub admin_key_path: PathBuf,
    /// How much of the event feed is kept on disk (`feed/` in the data directory).
    pub feed_retention: elevens_feed::Retention,
    /// How webhooks are delivered: timeouts, backoff, when a failing one is disabled.
    pub webhooks: crate::webhooks::WebhookLimits,
}

/// Where the journal is kept.
#[derive(Clone, Debug, Default)]
pub enum JournalTarget {
    /// Segment files in the data directory, one process: the default.
    #[default]
    Local,
    /// A replicated JetStream stream: one leader, hot standbys.
    Nats(elevens_replication::Options),
}

impl Config {
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> Config {
        Config {
            data_dir: data_dir.clone(),
            listen,
            batch_commands_max: 10_000,
            request_bytes_max: 8 << 20,
            sequencer_queue_max: 4_096,
            group_commit_commands_max: 16_384,
            reservation_ttl_ms: 15 * 60_000,
            default_commission_bps: 200,
            snapshot_every_commands: 1_000_000,
            snapshot_direct_io: false,
            segment_bytes_max: 256 << 20,
            http_in_progress_max: 512,
            admission: elevens_admission::Rules::default(),
            http: crate::http::HttpLimits::default(),
            journal: JournalTarget::Local,
            advertise: None,
            admin_key_path: data_dir.join("admin.key"),
            feed_retention: elevens_feed::Retention::default(),
            webhooks: crate::webhooks::WebhookLimits::default(),
        }
    }
}

/// The config file (TOML). Only what an operator tunes while running lives here; the command
/// line and the environment set the rest.
///
/// ```toml
/// [admission]
/// buyer_quota = { per_s = 20, burst = 40 }
/// sku_exceptions = [{ id = 1, quota = { per_s = 50000, burst = 5000 } }]
/// [admission.adaptive]
/// latency_target_ms = 20
/// [http]
/// connections_max = 10000
/// header_read_timeout_ms = 10000
/// body_read_timeout_ms = 30000
/// idle_timeout_ms = 60000
/// drain_timeout_ms = 10000
/// [webhooks]
/// timeout_ms = 10000
/// backoff_base_ms = 1000
/// backoff_max_ms = 600000
/// failures_max = 15
/// allow_private_urls = false
/// ```
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub admission: elevens_admission::Rules,
    #[serde(default)]
    pub http: crate::http::HttpLimits,
    #[serde(default)]
    pub replication: ReplicationFile,
    #[serde(default)]
    pub webhooks: crate::webhooks::WebhookLimits,
}

/// `[replication]`: the journal on NATS JetStream. A flag given on the command line (or in
/// its environment variable) wins over the value here.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationFile {
    /// `nats://host:port`, comma-separated for several.
    pub journal: Option<String>,
    pub stream: Option<String>,
    pub replicas: Option<usize>,
    pub lease_ttl_ms: Option<u64>,
}

impl ReplicationFile {
    /// No `[replication]` section.
    pub const NONE: ReplicationFile =
        ReplicationFile { journal: None, stream: None, replicas: None, lease_ttl_ms: None };
}

impl ConfigFile {
    pub fn read(path: &std::path::Path) -> anyhow::Result<ConfigFile> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: ConfigFile =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        file.admission.check().map_err(|why| anyhow::anyhow!("{}: admission: {why}", path.display()))?;
        file.http.check().map_err(|why| anyhow::anyhow!("{}: http: {why}", path.display()))?;
        file.webhooks.check().map_err(|why| anyhow::anyhow!("{}: webhooks: {why}", path.display()))?;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let text = r#"
            [admission]
            buyer_quota = { per_s = 20, burst = 40 }
            sku_exceptions = [{ id = 1, quota = { per_s = 50000, burst = 5000 } }, { id = 2 }]
            [admission.adaptive]
            latency_target_ms = 20
            [admission.waiting_room]
            admit_per_s = 500
            [http]
            connections_max = 500
            idle_timeout_ms = 5000
            [webhooks]
            failures_max = 3
        "#;
        let file: ConfigFile = toml::from_str(text).unwrap();
        assert_eq!(file.admission.sku_exceptions.len(), 2);
        assert_eq!(file.admission.sku_exceptions[1].quota, None, "no quota: unlimited");
        assert_eq!(file.admission.adaptive.latency_target_ms, 20);
        assert_eq!(file.admission.waiting_room.admit_per_s, 500);
        assert!(file.admission.check().is_ok());
        assert_eq!(file.http.connections_max, 500);
        assert_eq!(
            file.http.header_read_timeout_ms,
            crate::http::HttpLimits::default().header_read_timeout_ms
        );
        assert!(file.http.check().is_ok());
        assert_eq!(file.webhooks.failures_max, 3);
        assert_eq!(file.webhooks.backoff_base_ms, crate::webhooks::WebhookLimits::default().backoff_base_ms);
        assert!(toml::from_str::<ConfigFile>("[http]\nidle_timeout = 1").is_err(), "typos are refused");
        assert!(toml::from_str::<ConfigFile>("[admission]\nbuyer_qouta = 1").is_err(), "typos are refused");
    }
}
