//! Server configuration: every bound of the shell, with its unit in the name.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// The engine's and the gateway's bounds (`[engine]`).
    pub engine: EngineLimits,
    /// Admission control's rules at start; an admin may replace them at runtime (kept in the
    /// data directory's `admission-rules.json`, which wins over these at the next start).
    pub admission: elevens_admission::Rules,
    /// Connections: how many, and how long each may take to send a request or sit idle.
    pub http: HttpLimits,
    /// Where the journal lives: the data directory (embedded), or a NATS JetStream stream.
    pub journal: JournalTarget,
    /// The address other nodes and clients reach this node's API at (replicated mode; the
    /// listen address by default).
    pub advertise: Option<String>,
    /// The secret of the first admin key, read from here (or created here) on a new journal.
    pub admin_key_path: PathBuf,
    /// How much of the event feed is kept on disk (`feed/` in the data directory).
    pub feed: elevens_feed::Retention,
    /// How webhooks are delivered: timeouts, backoff, when a failing one is disabled.
    pub webhooks: WebhookLimits,
}

/// The engine's and the gateway's bounds, each with its unit in its name: the config file's
/// `[engine]` table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineLimits {
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
    /// Journal segments roll over at this size, in bytes.
    pub segment_bytes_max: u64,
    /// HTTP requests being handled at once; beyond it the gateway answers 429 before reading the
    /// body or checking the key, so a flood cannot fill the runtime's run queue. Payments may use
    /// eight times as many.
    pub http_in_progress_max: usize,
}

impl Default for EngineLimits {
    fn default() -> EngineLimits {
        EngineLimits {
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
        }
    }
}

impl EngineLimits {
    pub fn check(&self) -> Result<(), String> {
        let within = |name: &str, value: u64, range: std::ops::RangeInclusive<u64>| {
            if range.contains(&value) {
                Ok(())
            } else {
                Err(format!("{name} is between {} and {}", range.start(), range.end()))
            }
        };
        within("batch_commands_max", self.batch_commands_max as u64, 1..=1_000_000)?;
        within("request_bytes_max", self.request_bytes_max as u64, 1 << 10..=1 << 30)?;
        within("sequencer_queue_max", self.sequencer_queue_max as u64, 1..=1 << 20)?;
        within("group_commit_commands_max", self.group_commit_commands_max as u64, 1..=1 << 20)?;
        within("reservation_ttl_ms", self.reservation_ttl_ms, 1_000..=7 * 24 * 3_600_000)?;
        within("default_commission_bps", u64::from(self.default_commission_bps), 0..=10_000)?;
        within("snapshot_every_commands", self.snapshot_every_commands, 1..=u64::MAX)?;
        within("segment_bytes_max", self.segment_bytes_max, 1 << 20..=16 << 30)?;
        within("http_in_progress_max", self.http_in_progress_max as u64, 1..=1 << 20)?;
        Ok(())
    }
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
            engine: EngineLimits::default(),
            admission: elevens_admission::Rules::default(),
            http: HttpLimits::default(),
            journal: JournalTarget::Local,
            advertise: None,
            admin_key_path: data_dir.join("admin.key"),
            feed: elevens_feed::Retention::default(),
            webhooks: WebhookLimits::default(),
        }
    }
}

/// The config file (TOML): every bound of [`Config`], each table optional and each key in it
/// taking its default when absent (the README's "Configuration" lists them all). An environment
/// variable `ELEVENS_<TABLE>__<KEY>` (two underscores) sets one key over the file, its value
/// read as TOML (`ELEVENS_HTTP__CONNECTIONS_MAX=500`, `ELEVENS_ADMISSION__BUYER_QUOTA='{ per_s
/// = 20, burst = 40 }'`); a nested table's key takes one more `__`
/// (`ELEVENS_ADMISSION__ADAPTIVE__LATENCY_TARGET_MS=20`). Unknown tables and keys are refused,
/// in the file and in the environment alike, so a typo never passes silently.
///
/// The README's "Configuration" is the reference: every key at its default (a test keeps the
/// two equal).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub engine: EngineLimits,
    #[serde(default)]
    pub feed: elevens_feed::Retention,
    #[serde(default)]
    pub admission: elevens_admission::Rules,
    #[serde(default)]
    pub http: HttpLimits,
    #[serde(default)]
    pub replication: ReplicationFile,
    #[serde(default)]
    pub webhooks: WebhookLimits,
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

/// The prefix of the environment variables that set the config file's keys.
pub const ENV_PREFIX: &str = "ELEVENS_";
/// What separates a table from its key in those variables' names.
pub const ENV_SEPARATOR: &str = "__";

impl ConfigFile {
    /// The file at `path` (none: every default), with the `ELEVENS_<TABLE>__<KEY>` variables of
    /// `env` over it, checked.
    pub fn load(
        path: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<ConfigFile> {
        let file = ConfigFile::parse(path, env)?;
        let source = path.map_or_else(|| "the configuration".to_owned(), |p| p.display().to_string());
        let checks = [
            ("engine", file.engine.check()),
            ("feed", file.feed.check()),
            ("admission", file.admission.check()),
            ("http", file.http.check()),
            ("webhooks", file.webhooks.check()),
        ];
        for (table, check) in checks {
            check.map_err(|why| anyhow::anyhow!("{source}: [{table}] {why}"))?;
        }
        Ok(file)
    }

    /// The file with the variables over it, each key known and of its type; the bounds, which
    /// may relate keys of the file to keys of the variables, are [`ConfigFile::load`]'s.
    fn parse(
        path: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<ConfigFile> {
        use anyhow::Context;
        let mut table = match path {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                text.parse::<toml::Table>().with_context(|| format!("parsing {}", path.display()))?
            }
            None => toml::Table::new(),
        };
        let source = path.map_or_else(|| "the configuration".to_owned(), |p| p.display().to_string());
        overlay_env(&mut table, env)?;
        table.try_into().with_context(|| format!("{source} (with the ELEVENS_*__* variables)"))
    }

    /// Sets `config`'s bounds from the file (the replication table is read by the command line,
    /// whose flags win over it).
    pub fn apply(self, config: &mut Config) -> ReplicationFile {
        config.engine = self.engine;
        config.feed = self.feed;
        config.admission = self.admission;
        config.http = self.http;
        config.webhooks = self.webhooks;
        self.replication
    }
}

/// `ELEVENS_*` variables that are neither a flag's nor a config key's, and what reads them.
pub const ENV_OTHERS: &[&str] = &[
    // The process's own: transparent huge pages kept on (`ELEVENS_THP=1`).
    "ELEVENS_THP",
    // The test suite's switches (`.ci/run` sets them; the servers the tests start inherit them).
    "ELEVENS_NATS",
    "ELEVENS_NATS_KILLS",
    "ELEVENS_BROWSER",
    "ELEVENS_PEERS",
    "ELEVENS_PEERS_DIR",
    "ELEVENS_SCHEMATHESIS",
    "ELEVENS_SCHEMATHESIS_SEED",
    "ELEVENS_PARTITIONS",
];

/// Refuses, by name, every `ELEVENS_*` variable in `env` that sets nothing: not one of
/// `flag_variables` (the command line's), not in [`ENV_OTHERS`], and not an
/// `ELEVENS_<TABLE>__<KEY>` naming a key that exists, with a value of its type (a typo such as
/// `ELEVENS_HTTP_CONNECTIONS_MAX`, one underscore short, would otherwise leave the default in
/// place without a word). Bounds are checked where the file is read too, by `serve`. Run
/// before anything touches the data directory.
pub fn check_variables(
    env: impl IntoIterator<Item = (String, String)>,
    flag_variables: &[&str],
) -> anyhow::Result<()> {
    let mut keys = Vec::new();
    for (name, value) in env {
        if !name.starts_with(ENV_PREFIX) {
            continue;
        }
        if name.contains(ENV_SEPARATOR) {
            keys.push((name, value));
        } else if !flag_variables.contains(&name.as_str()) && !ENV_OTHERS.contains(&name.as_str()) {
            anyhow::bail!(
                "{name} is not a variable elevens reads: a flag's variable ({}), or ELEVENS_<TABLE>__<KEY> \
                 (two underscores) for a config key, such as ELEVENS_HTTP__CONNECTIONS_MAX",
                flag_variables.join(", ")
            );
        }
    }
    ConfigFile::parse(None, keys).map(|_| ())
}

/// Sets `ELEVENS_<TABLE>__<KEY>[__<KEY>…]=<TOML value>` into `table`. A value that does not parse
/// as TOML is taken as a string (`ELEVENS_REPLICATION__STREAM=ORDERS`).
fn overlay_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<()> {
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
        if !rest.contains(ENV_SEPARATOR) {
            continue; // a command-line flag's variable (ELEVENS_DATA, ELEVENS_LISTEN, …)
        }
        let path: Vec<String> = rest.split(ENV_SEPARATOR).map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            anyhow::bail!("{name}: an empty table or key name");
        }
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(value));
        let (key, tables) = path.split_last().expect("split yields at least one part");
        let mut at = &mut *table;
        for name_part in tables {
            let entry = at.entry(name_part.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            at = entry.as_table_mut().ok_or_else(|| anyhow::anyhow!("{name}: {name_part} is not a table"))?;
        }
        at.insert(key.clone(), parsed);
    }
    Ok(())
}

/// The listener's bounds. Each is settable in the config file's `[http]` table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpLimits {
    /// Connections served at once.
    pub connections_max: usize,
    /// From a connection's start, or a request's first byte, to the end of its headers.
    pub header_read_timeout_ms: u64,
    /// From a request's start to the last byte of its body.
    pub body_read_timeout_ms: u64,
    /// A connection with no traffic either way for this long is closed.
    pub idle_timeout_ms: u64,
    /// How long a stop waits for requests in flight to be answered.
    pub drain_timeout_ms: u64,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            connections_max: 10_000,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            drain_timeout_ms: 10_000,
        }
    }
}

impl HttpLimits {
    pub fn check(&self) -> Result<(), String> {
        if self.connections_max == 0 || self.connections_max > 1_000_000 {
            return Err("connections_max is between 1 and 1000000".into());
        }
        for (name, ms) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("drain_timeout_ms", self.drain_timeout_ms),
        ] {
            if !(100..=3_600_000).contains(&ms) {
                return Err(format!("{name} is between 100 and 3600000"));
            }
        }
        Ok(())
    }
}

/// Ranges in `[webhooks] allow_ranges`.
pub const WEBHOOK_ALLOW_RANGES_MAX: usize = 64;
/// How deliveries are timed; in the config file's `[webhooks]`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookLimits {
    /// The longest an endpoint may take to answer, in ms.
    pub timeout_ms: u64,
    /// The first retry's delay, in ms; each failure doubles it, up to `backoff_max_ms`.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// Failed attempts in a row after which a subscription is disabled.
    pub failures_max: u32,
    /// Address ranges an endpoint may be in although they are not public (a receiver on the
    /// private network, say: `["10.20.0.0/16"]`). Empty: public addresses only, so that no key
    /// can make the server post to its own machine, network or a cloud's metadata service
    /// (see `egress.rs` for what is refused).
    pub allow_ranges: Vec<ipnet::IpNet>,
}

impl Default for WebhookLimits {
    fn default() -> WebhookLimits {
        // 1 s doubling to 10 min: 15 failures in a row span about an hour.
        WebhookLimits {
            timeout_ms: 10_000,
            backoff_base_ms: 1_000,
            backoff_max_ms: 600_000,
            failures_max: 15,
            allow_ranges: Vec::new(),
        }
    }
}

impl WebhookLimits {
    pub fn check(&self) -> Result<(), String> {
        if self.timeout_ms == 0 || self.backoff_base_ms == 0 || self.failures_max == 0 {
            return Err("timeout_ms, backoff_base_ms and failures_max must be positive".into());
        }
        if self.backoff_max_ms < self.backoff_base_ms {
            return Err("backoff_max_ms must be at least backoff_base_ms".into());
        }
        if self.allow_ranges.len() > WEBHOOK_ALLOW_RANGES_MAX {
            return Err(format!("allow_ranges names at most {WEBHOOK_ALLOW_RANGES_MAX} ranges"));
        }
        Ok(())
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
        assert_eq!(file.engine, EngineLimits::default(), "an absent table takes its defaults");
        assert_eq!(file.admission.sku_exceptions.len(), 2);
        assert_eq!(file.admission.sku_exceptions[1].quota, None, "no quota: unlimited");
        assert_eq!(file.admission.adaptive.latency_target_ms, 20);
        assert_eq!(file.admission.waiting_room.admit_per_s, 500);
        assert!(file.admission.check().is_ok());
        assert_eq!(file.http.connections_max, 500);
        assert_eq!(file.http.header_read_timeout_ms, HttpLimits::default().header_read_timeout_ms);
        assert!(file.http.check().is_ok());
        assert_eq!(file.webhooks.failures_max, 3);
        assert_eq!(file.webhooks.backoff_base_ms, WebhookLimits::default().backoff_base_ms);
        assert!(toml::from_str::<ConfigFile>("[http]\nidle_timeout = 1").is_err(), "typos are refused");
        assert!(toml::from_str::<ConfigFile>("[admission]\nbuyer_qouta = 1").is_err(), "typos are refused");
    }

    #[test]
    fn environment_variables_set_keys_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("elevens.toml");
        std::fs::write(&path, "[http]\nconnections_max = 500\nidle_timeout_ms = 5000\n").unwrap();
        let env = |pairs: &[(&str, &str)]| {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>()
        };
        let file = ConfigFile::load(
            Some(&path),
            env(&[
                ("ELEVENS_HTTP__CONNECTIONS_MAX", "800"),
                ("ELEVENS_ENGINE__SEQUENCER_QUEUE_MAX", "8192"),
                ("ELEVENS_FEED__BYTES_MAX", "1073741824"),
                ("ELEVENS_ADMISSION__ADAPTIVE__LATENCY_TARGET_MS", "25"),
                ("ELEVENS_ADMISSION__BUYER_QUOTA", "{ per_s = 7, burst = 9 }"),
                ("ELEVENS_REPLICATION__STREAM", "ORDERS"),
                ("ELEVENS_DATA", "/somewhere"),
                ("PATH", "/usr/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(file.http.connections_max, 800, "the environment wins over the file");
        assert_eq!(file.http.idle_timeout_ms, 5000, "the file's other keys stay");
        assert_eq!(file.engine.sequencer_queue_max, 8192);
        assert_eq!(file.engine.batch_commands_max, EngineLimits::default().batch_commands_max);
        assert_eq!(file.feed.bytes_max, 1 << 30);
        assert_eq!(file.admission.adaptive.latency_target_ms, 25);
        assert_eq!(file.admission.buyer_quota.map(|q| (q.per_s, q.burst)), Some((7, 9)));
        assert_eq!(file.replication.stream.as_deref(), Some("ORDERS"));

        let refused = |pairs: &[(&str, &str)]| ConfigFile::load(None, env(pairs)).unwrap_err().to_string();
        assert!(ConfigFile::load(None, env(&[("ELEVENS_HTTP__CONECTIONS_MAX", "1")])).is_err(), "a typo");
        assert!(ConfigFile::load(None, env(&[("ELEVENS_NOPE__X", "1")])).is_err(), "an unknown table");
        assert!(refused(&[("ELEVENS_ENGINE__BATCH_COMMANDS_MAX", "0")]).contains("batch_commands_max"));
        assert!(refused(&[("ELEVENS_FEED__BYTES_MAX", "1")]).contains("[feed]"));
        assert!(ConfigFile::load(None, env(&[("ELEVENS_HTTP__", "1")])).is_err());
    }

    #[test]
    fn a_mistyped_variable_is_ignored_in_silence_no_more() {
        let flags = ["ELEVENS_DATA", "ELEVENS_LISTEN"];
        let env = |pairs: &[(&str, &str)]| {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>()
        };
        let check = |vars: &[(&str, &str)]| check_variables(env(vars), &flags);
        let refused = check(&[("ELEVENS_HTTP_CONNECTIONS_MAX", "5")]).unwrap_err().to_string();
        assert!(refused.contains("ELEVENS_HTTP_CONNECTIONS_MAX"), "{refused}");
        assert!(check(&[("ELEVENS_HTTP__CONECTIONS_MAX", "5")]).is_err(), "a key that does not exist");
        assert!(check(&[("ELEVENS_DATAA", "/x")]).is_err());
        assert!(check(&[
            ("ELEVENS_HTTP__CONNECTIONS_MAX", "5"),
            ("ELEVENS_DATA", "/x"),
            ("ELEVENS_THP", "1")
        ])
        .is_ok());
        assert!(check(&[("PATH", "/bin"), ("ELEVENSX", "1")]).is_ok(), "not ours");
        // A bound relating a variable to the file's key is the file's load to judge, not this.
        assert!(check(&[("ELEVENS_WEBHOOKS__BACKOFF_BASE_MS", "700000")]).is_ok());
        assert!(check(&[("ELEVENS_WEBHOOKS__BACKOFF_BASE_MS", "soon")]).is_err(), "not a number");
    }

    /// The README's reference is the defaults, key for key: it cannot drift from the code.
    #[test]
    fn the_readmes_reference_is_every_default() {
        let readme = include_str!("../../../README.md");
        let block = readme.split("<!-- config-reference -->\n```toml\n").nth(1).expect("the marker");
        let block = &block[..block.find("```").expect("the block's end")];
        let file: ConfigFile = toml::from_str(block).unwrap();
        assert_eq!(file.engine, EngineLimits::default());
        assert_eq!(file.feed, elevens_feed::Retention::default());
        assert_eq!(file.http, HttpLimits::default());
        assert_eq!(file.webhooks, WebhookLimits::default());
        assert_eq!(file.admission, elevens_admission::Rules::default());
    }
}
