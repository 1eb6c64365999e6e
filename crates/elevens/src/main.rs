//! The `elevens` command line: only the CLI and the glue; the work is in the library crates.

use clap::{Parser, Subcommand};
use elevens_http::config::{Config, ConfigFile};
use elevens_http::engine::{lock_data_dir, recover};
use elevens_journal::JournalOptions;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[cfg(feature = "bench")]
mod bench;
mod cluster;
mod demo;
#[cfg(feature = "bench")]
mod failover;
mod prefault;

/// Where the journal lives, for `serve` and `bench`: the data directory unless `--journal`.
#[derive(clap::Args, Clone, Debug)]
struct ReplicationArgs {
    /// Carry the journal on NATS JetStream (`nats://host:port`, comma-separated for several):
    /// one node leads, the others follow as hot standbys. Without it, the data directory's.
    #[arg(long, env = "ELEVENS_JOURNAL")]
    journal: Option<String>,
    /// The stream's name (its lease bucket is `<stream>_lease`) [default: ELEVENS].
    #[arg(long, env = "ELEVENS_STREAM")]
    stream: Option<String>,
    /// Replicas of the stream and the lease bucket [default: 3, as a real cluster needs].
    #[arg(long, env = "ELEVENS_REPLICAS")]
    replicas: Option<usize>,
    /// How long the leader's lease lasts without renewal, in milliseconds: a standby takes
    /// over this long after the leader dies [default: 1000].
    #[arg(long, env = "ELEVENS_LEASE_TTL_MS")]
    lease_ttl_ms: Option<u64>,
    /// The address this node's API is reached at, as the other nodes name it to clients.
    #[arg(long, env = "ELEVENS_ADVERTISE")]
    advertise: Option<String>,
    /// The first admin key's secret: read from this file, or created in it (default: the data
    /// directory's admin.key). Give every node of a cluster the same file.
    #[arg(long, env = "ELEVENS_ADMIN_KEY_FILE")]
    admin_key_file: Option<PathBuf>,
}

impl ReplicationArgs {
    /// The flags over the config file's `[replication]`, over the defaults.
    fn apply(&self, file: &elevens_http::config::ReplicationFile, config: &mut Config) -> anyhow::Result<()> {
        if let Some(url) = self.journal.as_ref().or(file.journal.as_ref()) {
            let mut options = nats_options(url)?;
            if let Some(stream) = self.stream.as_ref().or(file.stream.as_ref()) {
                options.stream = stream.clone();
            }
            options.replicas = self.replicas.or(file.replicas).unwrap_or(options.replicas);
            let default_ttl_ms = options.lease_ttl.as_millis() as u64;
            let ttl_ms = self.lease_ttl_ms.or(file.lease_ttl_ms).unwrap_or(default_ttl_ms);
            if !(200..=60_000).contains(&ttl_ms) || options.replicas == 0 {
                anyhow::bail!("the lease lasts 200 to 60,000 ms, and a stream has at least one replica");
            }
            options.lease_ttl = std::time::Duration::from_millis(ttl_ms);
            config.journal = elevens_http::config::JournalTarget::Nats(options);
        }
        config.advertise = self.advertise.clone();
        if let Some(path) = &self.admin_key_file {
            config.admin_key_path = path.clone();
        }
        Ok(())
    }
}

/// The defaults for the servers at `url` (`nats://host:port`, comma-separated).
fn nats_options(url: &str) -> anyhow::Result<elevens_replication::Options> {
    if !url.split(',').all(|u| u.trim().starts_with("nats://")) {
        anyhow::bail!("--journal takes nats://host:port addresses, not {url}");
    }
    Ok(elevens_replication::Options::new(url))
}

/// mimalloc: commands are allocated by gateway threads and freed by the sequencer; glibc's
/// malloc made that cross-thread traffic a tenth of the sequencer's time. Large blocks are
/// faulted in off the sequencer (`prefault`).
#[global_allocator]
static ALLOCATOR: prefault::Prefaulting = prefault::Prefaulting;

#[derive(Parser)]
#[command(name = "elevens", version, about = "The transaction core of a marketplace that survives 11.11")]
struct Cli {
    /// Logs on stderr as text lines (colours only on a terminal) or one JSON object per line.
    #[arg(long, global = true, env = "ELEVENS_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Installs the log subscriber: `RUST_LOG` filters (default: `info`, and for a bench without the
/// per-request access log, which would measure stderr). Lines are written by a thread of their
/// own through a bounded buffer, so a slow stderr never stalls a request; past the buffer, lines
/// are dropped, not waited for. The guard flushes what is buffered when dropped.
fn init_logs(format: LogFormat, bench: bool) -> tracing_appender::non_blocking::WorkerGuard {
    use std::io::IsTerminal;
    let default = if bench { "info,elevens::access=off" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(false).init(),
    }
    guard
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the engine and its HTTP API.
    Serve {
        /// The data directory (journal, snapshots, admin key). Created if absent.
        #[arg(long, env = "ELEVENS_DATA", default_value = "elevens-data")]
        data: PathBuf,
        #[arg(long, env = "ELEVENS_LISTEN", default_value = "127.0.0.1:8011")]
        listen: SocketAddr,
        /// How long an unpaid order holds its stock, in milliseconds [default: 900000, or the
        /// config file's engine.reservation_ttl_ms].
        #[arg(long, env = "ELEVENS_RESERVATION_TTL_MS")]
        reservation_ttl_ms: Option<u64>,
        /// Take a snapshot after this many journaled commands [default: 1000000, or the config
        /// file's engine.snapshot_every_commands].
        #[arg(long, env = "ELEVENS_SNAPSHOT_EVERY")]
        snapshot_every: Option<u64>,
        /// Write snapshots around the page cache (O_DIRECT): the engine loses less to a snapshot
        /// under load; a restart reads it from the disk.
        #[arg(long, env = "ELEVENS_SNAPSHOT_DIRECT_IO")]
        snapshot_direct_io: bool,
        /// The most commands one POST /v1/batch may carry [default: 10000, or the config file's
        /// engine.batch_commands_max].
        #[arg(long, env = "ELEVENS_BATCH_MAX")]
        batch_max: Option<usize>,
        /// A TOML config file with every bound (see the README's "Configuration"); defaults
        /// without one. ELEVENS_<TABLE>__<KEY> variables set its keys too, over it.
        #[arg(long, env = "ELEVENS_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        replication: ReplicationArgs,
    },
    /// A replicated cluster on this machine: `up` starts it, `status` shows its nodes.
    Cluster {
        #[command(subcommand)]
        command: cluster::ClusterCmd,
    },
    /// Run a workload of the brief against the engine; prints a table, writes a JSON report.
    /// Built only with `--features bench` (the load generators and the peers' clients).
    #[cfg(feature = "bench")]
    Bench(Box<bench::BenchArgs>),
    /// The whole system at work: a fresh server, a marketplace, a flash sale opening in 30 s,
    /// and 11.11 midnight played against it (calm, countdown, 10x spike, tail) until Ctrl-C.
    /// Watch it on the big screen whose URL it prints.
    Demo {
        /// A fresh data directory (refused if it holds a journal); default: a new one under the
        /// current directory, removed at the end.
        #[arg(long, env = "ELEVENS_DATA")]
        data: Option<PathBuf>,
        #[arg(long, env = "ELEVENS_LISTEN", default_value = "127.0.0.1:8011")]
        listen: SocketAddr,
        /// Seconds until the flash sale opens.
        #[arg(long, default_value_t = 30)]
        starts_in: u64,
        #[arg(long, default_value_t = 1111)]
        seed: u64,
    },
    /// Mint a new admin key offline (no server may hold the data directory) and write it to
    /// <data>/admin.key: the way back when no admin key works. With --revoke-others, every other
    /// admin key is revoked at once (rotation after a leak).
    AdminKey {
        #[arg(long, env = "ELEVENS_DATA", default_value = "elevens-data")]
        data: PathBuf,
        #[arg(long)]
        revoke_others: bool,
    },
    /// Ask a running server's GET /healthz (for a container's health check): exits 0 when it
    /// answers 200 within --timeout-ms, 1 otherwise.
    Health {
        /// The server's listen address; an unspecified host (0.0.0.0) is asked on 127.0.0.1.
        #[arg(long, env = "ELEVENS_LISTEN", default_value = "127.0.0.1:8011")]
        listen: SocketAddr,
        #[arg(long, default_value_t = 2_000)]
        timeout_ms: u64,
    },
    /// Replay a data directory offline, check every invariant and print the state digest.
    /// Exits non-zero if an invariant fails or if replay from empty disagrees with the snapshot.
    Audit {
        #[arg(long, env = "ELEVENS_DATA", default_value = "elevens-data")]
        data: PathBuf,
    },
}

impl Cmd {
    fn is_bench(&self) -> bool {
        #[cfg(feature = "bench")]
        if matches!(self, Cmd::Bench(_)) {
            return true;
        }
        false
    }
}

/// Transparent huge pages off, unless `ELEVENS_THP=1`: with them, each time a large table grows
/// the kernel zeroes (and compacts for) 2 MiB pages on the hot path, stalls that grow with the
/// state (ARCHITECTURE.md). A transaction engine keeps its latency predictable first; the
/// throughput THP would add is measured in bench/RESULTS.md.
fn transparent_huge_pages() {
    if std::env::var("ELEVENS_THP").is_ok_and(|v| v == "1") {
        return;
    }
    // SAFETY: prctl with PR_SET_THP_DISABLE only sets a flag on this process's memory map.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!("could not turn transparent huge pages off: {}", std::io::Error::last_os_error());
    }
}

/// Refuses an `ELEVENS_*` variable that sets nothing (see `config::check_variables`), with the
/// command line's own variables read from its definition.
fn check_variables() -> anyhow::Result<()> {
    fn flag_variables(command: &clap::Command, out: &mut Vec<String>) {
        out.extend(command.get_arguments().filter_map(|a| a.get_env()?.to_str().map(str::to_owned)));
        command.get_subcommands().for_each(|sub| flag_variables(sub, out));
    }
    let mut names = Vec::new();
    flag_variables(&<Cli as clap::CommandFactory>::command(), &mut names);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    elevens_http::config::check_variables(std::env::vars(), &names)
}

fn main() -> ExitCode {
    transparent_huge_pages();
    prefault::start();
    elevens_http::engine::on_table_threads(prefault::for_this_thread);
    let cli = Cli::parse();
    if let Err(error) = check_variables() {
        eprintln!("elevens: {error:#}");
        return ExitCode::FAILURE;
    }
    let _logs = init_logs(cli.log_format, cli.command.is_bench());
    let result = match cli.command {
        Cmd::Serve {
            data,
            listen,
            reservation_ttl_ms,
            snapshot_every,
            snapshot_direct_io,
            batch_max,
            config: file,
            replication,
        } => {
            let mut config = Config::new(data, listen);
            let loaded = ConfigFile::load(file.as_deref(), std::env::vars()).and_then(|file| {
                let replication_file = file.apply(&mut config);
                replication.apply(&replication_file, &mut config)?;
                if let Some(ms) = reservation_ttl_ms {
                    config.engine.reservation_ttl_ms = ms;
                }
                if let Some(every) = snapshot_every {
                    config.engine.snapshot_every_commands = every.max(1);
                }
                config.engine.snapshot_direct_io |= snapshot_direct_io;
                if let Some(max) = batch_max {
                    config.engine.batch_commands_max = max;
                }
                config.engine.check().map_err(|why| anyhow::anyhow!("{why}"))
            });
            if let Err(error) = loaded {
                eprintln!("elevens: {error:#}");
                return ExitCode::FAILURE;
            }
            serve(config)
        }
        Cmd::Audit { data } => audit(data),
        Cmd::Health { listen, timeout_ms } => Ok(health(listen, timeout_ms)),
        Cmd::Cluster { command } => Ok(cluster::run(command)),
        Cmd::AdminKey { data, revoke_others } => admin_key(data, revoke_others),
        Cmd::Demo { data, listen, starts_in, seed } => demo(data, listen, starts_in, seed),
        #[cfg(feature = "bench")]
        Cmd::Bench(args) => bench::run(*args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("elevens: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // The handlers first, so a SIGTERM during recovery is a graceful stop once serving starts.
    let stop = {
        let _in_runtime = runtime.enter();
        elevens_http::stop_signal()
    };
    runtime.block_on(elevens_http::serve(config, stop))?;
    Ok(ExitCode::SUCCESS)
}

fn demo(data: Option<PathBuf>, listen: SocketAddr, starts_in: u64, seed: u64) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // The port first: a demo that cannot listen leaves nothing behind and says why.
    let config = Config::new(PathBuf::new(), listen);
    let socket = elevens_http::bind(&config)?;
    let listen = socket.local_addr()?;
    let scratch;
    let data = match data {
        Some(dir) if dir.join("journal").exists() => {
            anyhow::bail!("{} already holds a journal: the demo needs a fresh data directory", dir.display())
        }
        Some(dir) => dir,
        None => {
            scratch = tempfile::Builder::new().prefix("elevens-demo-").tempdir_in(".")?;
            scratch.path().to_path_buf()
        }
    };
    let config = Config::new(data.clone(), listen);
    runtime.block_on(async move {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut server_stopped = stopped.clone();
        let server = tokio::spawn(elevens_http::serve_on(socket, config, async move {
            let _ = server_stopped.wait_for(|stop| *stop).await;
        }));
        let base = format!("http://{listen}");
        let mut server = server;
        let key_file = data.join("admin.key");
        let admin_key = tokio::select! {
            ready = demo::wait_ready(&base, &key_file) => ready?,
            stopped = &mut server => {
                stopped??;
                anyhow::bail!("the demo's server stopped before it was ready");
            }
        };
        let play = tokio::spawn(demo::run(
            base,
            admin_key,
            std::time::Duration::from_secs(starts_in),
            seed,
            stopped,
        ));
        tokio::select! {
            () = elevens_http::stop_signal() => println!("stopping: the last batch is made durable"),
            played = play => played??,
        }
        let _ = stop.send(true);
        server.await??;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn health(mut listen: SocketAddr, timeout_ms: u64) -> ExitCode {
    if listen.ip().is_unspecified() {
        listen.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let timeout = std::time::Duration::from_millis(timeout_ms);
    let answer = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .and_then(|client| client.get(format!("http://{listen}/healthz")).send());
    match answer {
        Ok(response) if response.status().is_success() => ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!("elevens: {listen} answered {}", response.status());
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("elevens: {listen}: {error}");
            ExitCode::FAILURE
        }
    }
}

fn admin_key(data: PathBuf, revoke_others: bool) -> anyhow::Result<ExitCode> {
    let minted = elevens_http::offline::admin_key(&data, revoke_others)?;
    println!(
        "admin key {} (shown once, also in {}): {}",
        minted.key,
        data.join("admin.key").display(),
        minted.secret
    );
    if !minted.revoked.is_empty() {
        let ids: Vec<String> = minted.revoked.iter().map(|k| k.to_string()).collect();
        println!("revoked admin keys: {}", ids.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

fn audit(data: PathBuf) -> anyhow::Result<ExitCode> {
    if !data.join("journal").is_dir() {
        anyhow::bail!("{} holds no journal", data.display());
    }
    let _lock = lock_data_dir(&data)?;
    let (state, _, report) = recover(&data, JournalOptions::default(), true)?;
    let (from_empty, _, _) = recover(&data, JournalOptions::default(), false)?;
    let audit = state.audit();
    println!("records:  {} (snapshot at {:?})", report.journal.last_seq, report.snapshot_seq);
    for check in &audit.checks {
        println!("{:<22} {}  {}", check.name, if check.ok { "ok  " } else { "FAIL" }, check.detail);
    }
    let replay_agrees = from_empty.digest() == audit.digest;
    println!(
        "{:<22} {}  replay from empty gives {}",
        "deterministic_replay",
        if replay_agrees { "ok  " } else { "FAIL" },
        from_empty.digest()
    );
    println!("digest: {}", audit.digest);
    Ok(if audit.ok() && replay_agrees { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
