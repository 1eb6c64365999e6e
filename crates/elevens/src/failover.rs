//! `elevens bench --workload failover`: a cluster on loopback (`elevens cluster up`'s), writers
//! at its leader, the leader killed with SIGKILL again and again. Reports, per kill, the time
//! from the kill to the first write acknowledged by the next leader, and the latency of the
//! writes around the kills beside the others'; then checks that every acknowledged write is
//! on the last leader, once.

use crate::cluster;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one write may go unacknowledged (failovers included) before the run fails.
const WRITE_DEADLINE: Duration = Duration::from_secs(60);
/// One request's timeout: a write to a node that died is sent again elsewhere after this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Load between two kills, after the next leader took writes.
const BETWEEN_KILLS: Duration = Duration::from_secs(5);
/// A write is "around" a kill if it was sent from this long before it to `AFTER_KILL` after.
const BEFORE_KILL: Duration = Duration::from_secs(1);
const AFTER_KILL: Duration = Duration::from_secs(3);
/// A node is caught up when it is at most this many stream messages behind: what a follower
/// under this load lags in steady state (a few hundred ms of frames), never a restart's replay.
const CAUGHT_UP_LAG_MAX: u64 = 256;
/// The nodes' snapshot interval unless `--snapshot-every` says otherwise: a node started again
/// replays the stream from its last snapshot, and this bench's writers journal ~1,000 commands
/// a second, so this is a snapshot every ~20 s, as the default (1 M) is at 50,000 commands a
/// second. Without one, every restart replays the whole run.
pub const SNAPSHOT_EVERY_COMMANDS: u64 = 20_000;

pub struct Options {
    pub kills: usize,
    pub writers: usize,
    pub port_base: u16,
    pub nats_server: PathBuf,
    /// The nodes' lease, if not their default.
    pub lease_ttl_ms: Option<u64>,
    /// The nodes' snapshot interval, in commands.
    pub snapshot_every: u64,
    /// Each kill takes the leader's NATS server down with it, as the loss of its machine
    /// would; the server is started again once the next leader has taken a write.
    pub machine: bool,
    /// Keep the cluster's folder (logs, data) after the run; it is kept after a failure anyway.
    pub keep: bool,
}

/// The cluster's NATS servers as the bench kills and restarts them; those it started are
/// killed on drop.
struct Servers {
    binary: PathBuf,
    urls: Vec<String>,
    confs: Vec<String>,
    pids: Vec<u32>,
    restarted: Vec<std::process::Child>,
}

impl Servers {
    fn of(dir: &std::path::Path, binary: PathBuf) -> anyhow::Result<Servers> {
        let manifest = cluster::manifest(dir)?;
        let servers = manifest["nats"].as_array().cloned().unwrap_or_default();
        Ok(Servers {
            binary,
            urls: servers.iter().map(|s| s["url"].as_str().unwrap_or_default().to_owned()).collect(),
            confs: servers.iter().map(|s| s["conf"].as_str().unwrap_or_default().to_owned()).collect(),
            pids: servers.iter().map(|s| s["pid"].as_u64().unwrap_or_default() as u32).collect(),
            restarted: Vec::new(),
        })
    }

    fn kill(&self, i: usize) {
        unsafe { libc::kill(self.pids[i] as libc::pid_t, libc::SIGKILL) };
    }

    fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        let log = std::fs::File::create(format!("{}.restarted.log", self.confs[i]))?;
        let child = std::process::Command::new(&self.binary)
            .args(["-c", &self.confs[i]])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.pids[i] = child.id();
        self.restarted.push(child);
        Ok(())
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for child in &mut self.restarted {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Serialize)]
pub struct Kill {
    pub killed: String,
    pub next_leader: String,
    /// From the SIGKILL to the first write the next leader acknowledged.
    pub to_first_write_ms: f64,
    /// From the SIGKILL to the cluster whole again: the lost node (and its NATS server) back,
    /// every node caught up with the stream. The next loss waits for it: one loss at a time.
    pub to_caught_up_ms: f64,
}

#[derive(Serialize, Default)]
pub struct Latencies {
    pub writes: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Serialize)]
pub struct Report {
    pub kills: Vec<Kill>,
    pub to_first_write_ms: Latencies,
    pub to_caught_up_ms: Latencies,
    /// From the first send to the acknowledgement, retries to other nodes included: the writes
    /// sent before a kill and acknowledged after it (those that waited for the failover) ...
    pub writes_in_flight_at_kills: Latencies,
    /// ... all the writes sent from 1 s before a kill to 3 s after it ...
    pub writes_around_kills: Latencies,
    /// ... and the others.
    pub writes_otherwise: Latencies,
    pub acknowledged: usize,
    pub lost: usize,
    pub applied_twice: usize,
    pub writers: usize,
    /// The leader's NATS server was killed with it.
    pub machine: bool,
}

/// One acknowledged write.
struct Acked {
    key: String,
    id: u64,
    node: String,
    /// The first send, and the send that was acknowledged (a retry's, after a failure).
    sent: Instant,
    last_sent: Instant,
    acked: Instant,
}

pub fn run(options: &Options) -> anyhow::Result<Report> {
    anyhow::ensure!(options.kills > 0 && options.writers > 0, "kills and writers must be positive");
    let dir = tempfile::Builder::new().prefix("elevens-failover-").tempdir_in(".")?;
    let stop_cluster = Arc::new(AtomicBool::new(false));
    let up = {
        let (dir, stop, nats_server, base) =
            (dir.path().to_path_buf(), stop_cluster.clone(), options.nats_server.clone(), options.port_base);
        let mut serve_args: Vec<String> = options
            .lease_ttl_ms
            .iter()
            .flat_map(|ms| ["--lease-ttl-ms".to_owned(), ms.to_string()])
            .collect();
        serve_args.extend(["--snapshot-every".to_owned(), options.snapshot_every.to_string()]);
        std::thread::spawn(move || cluster::up(&dir, 3, base, &nats_server, Some(&serve_args), stop))
    };
    let result = measure(options, dir.path(), &stop_cluster);
    stop_cluster.store(true, Ordering::Relaxed);
    let _ = up.join();
    if result.is_err() || options.keep {
        eprintln!("failover: the cluster's logs are kept in {}", dir.keep().display());
    }
    result
}

fn measure(options: &Options, dir: &std::path::Path, stop_cluster: &AtomicBool) -> anyhow::Result<Report> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let admin = loop {
        match std::fs::read_to_string(dir.join("admin.key")) {
            Ok(key) if !key.trim().is_empty() => break key.trim().to_owned(),
            _ if Instant::now() > deadline || stop_cluster.load(Ordering::Relaxed) => {
                anyhow::bail!("the cluster did not start; logs in {}", dir.display())
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let http =
        reqwest::blocking::Client::builder().timeout(REQUEST_TIMEOUT).pool_max_idle_per_host(0).build()?;
    let nodes = cluster::manifest_nodes(dir)?;
    let (first, _, _) = leader(&http, dir, 0)?;
    eprintln!("failover: leader {first}; {} writers, {} kills", options.writers, options.kills);

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<Acked>::new()));
    let writers: Vec<_> = (0..options.writers)
        .map(|w| {
            let (http, nodes, admin, stop, acked) =
                (http.clone(), nodes.clone(), admin.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || -> anyhow::Result<()> {
                let mut at = 0;
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    let key = format!("w{w}-{i}");
                    let sent = Instant::now();
                    let (node, id, last_sent) = write(&http, &nodes, &mut at, &admin, &key)?;
                    let acked_at = Instant::now();
                    acked.lock().unwrap().push(Acked { key, id, node, sent, last_sent, acked: acked_at });
                }
                Ok(())
            })
        })
        .collect();

    let mut servers = Servers::of(dir, options.nats_server.clone())?;
    let mut kills = Vec::new();
    let mut kill_times = Vec::new();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    for _ in 0..options.kills {
        std::thread::sleep(BETWEEN_KILLS);
        let (killed, pid, term) = leader(&http, dir, 0)?;
        // Node i's own server is NATS server i (`cluster up` lists it first to it).
        let machine = nodes.iter().position(|n| *n == killed).filter(|_| options.machine);
        let at = Instant::now();
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        if let Some(i) = machine {
            servers.kill(i);
        }
        // The next leader leads in a later term; it may be the killed node again, started anew
        // by the supervisor.
        let (next_leader, _, _) = leader(&http, dir, term)?;
        // The next leader's first acknowledgement after the kill.
        let first_write = loop {
            let first = acked
                .lock()
                .unwrap()
                .iter()
                .filter(|a| a.last_sent > at && a.node == next_leader)
                .map(|a| a.acked)
                .min();
            if let Some(first) = first {
                break first;
            }
            anyhow::ensure!(
                at.elapsed() < WRITE_DEADLINE,
                "{next_leader} acknowledged nothing after the kill"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let to_first_write_ms = (first_write - at).as_secs_f64() * 1e3;
        if let Some(i) = machine {
            servers.restart(i)?;
        }
        caught_up(&http, dir, &servers, options.machine, &runtime)?;
        let to_caught_up_ms = at.elapsed().as_secs_f64() * 1e3;
        eprintln!(
            "killed {killed}: {next_leader} acknowledged a write {to_first_write_ms:.0} ms later, \
             every node caught up {to_caught_up_ms:.0} ms later"
        );
        kills.push(Kill { killed, next_leader, to_first_write_ms, to_caught_up_ms });
        kill_times.push(at);
    }
    std::thread::sleep(BETWEEN_KILLS);
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().map_err(|_| anyhow::anyhow!("a writer panicked"))??;
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());

    // Every acknowledged write on the last leader, under its key, and no merchant beyond them.
    let (last, _, _) = leader(&http, dir, 0)?;
    let mut lost = 0;
    for a in &acked {
        let merchant = get_json(&http, &format!("{last}/v1/merchants/{}", a.id), &admin)?;
        lost += usize::from(merchant["name"].as_str() != Some(a.key.as_str()));
    }
    let ids: std::collections::BTreeSet<u64> = acked.iter().map(|a| a.id).collect();
    let beyond = get_json(&http, &format!("{last}/v1/merchants/{}", ids.len() + 1), &admin)?;
    let applied_twice = (acked.len() - ids.len()) + usize::from(beyond["merchant_id"].is_u64());

    let in_flight = |a: &Acked| kill_times.iter().any(|k| a.sent <= *k && a.acked > *k);
    let around =
        |a: &Acked| kill_times.iter().any(|k| a.sent + BEFORE_KILL >= *k && a.sent <= *k + AFTER_KILL);
    let latency = |a: &Acked| (a.acked - a.sent).as_secs_f64() * 1e3;
    let to_first: Vec<f64> = kills.iter().map(|k| k.to_first_write_ms).collect();
    let to_caught_up: Vec<f64> = kills.iter().map(|k| k.to_caught_up_ms).collect();
    Ok(Report {
        to_first_write_ms: percentiles(to_first),
        to_caught_up_ms: percentiles(to_caught_up),
        writes_in_flight_at_kills: percentiles(acked.iter().filter(|a| in_flight(a)).map(latency).collect()),
        writes_around_kills: percentiles(acked.iter().filter(|a| around(a)).map(latency).collect()),
        writes_otherwise: percentiles(acked.iter().filter(|a| !around(a)).map(latency).collect()),
        kills,
        acknowledged: acked.len(),
        lost,
        applied_twice,
        writers: options.writers,
        machine: options.machine,
    })
}

/// Creates the merchant `key`, at the node it last wrote to and then the others in turn, until
/// one acknowledges it: that node, the merchant's id and when the acknowledged send left.
fn write(
    http: &reqwest::blocking::Client,
    nodes: &[String],
    at: &mut usize,
    admin: &str,
    key: &str,
) -> anyhow::Result<(String, u64, Instant)> {
    let deadline = Instant::now() + WRITE_DEADLINE;
    loop {
        let node = &nodes[*at % nodes.len()];
        let attempt = Instant::now();
        let sent = http
            .post(format!("{node}/v1/merchants"))
            .bearer_auth(admin)
            .header("Idempotency-Key", key)
            .json(&serde_json::json!({ "name": key }))
            .send();
        match sent {
            Ok(response) if response.status().is_success() => {
                let answer: serde_json::Value = response.json()?;
                let id = answer["merchant_id"].as_u64().ok_or_else(|| anyhow::anyhow!("no id: {answer}"))?;
                return Ok((node.clone(), id, attempt));
            }
            Ok(response) => {
                let status = response.status();
                anyhow::ensure!(status == 503 || status == 429, "{key}: {status} from {node}");
                let answer: serde_json::Value = response.json().unwrap_or_default();
                // A follower names the leader: go there, else to the next node.
                match answer["details"]["leader"].as_str().and_then(|l| nodes.iter().position(|n| n == l)) {
                    Some(leader) => *at = leader,
                    None => {
                        *at += 1;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
            Err(_) => *at += 1,
        }
        anyhow::ensure!(Instant::now() < deadline, "{key} was never acknowledged");
    }
}

/// Waits until the cluster is whole: every NATS replica current (when machines are lost) and
/// every node at most [`CAUGHT_UP_LAG_MAX`] messages behind the stream. A node restarted
/// without a snapshot replays the stream from its start, which takes seconds under load; a
/// second loss before that is two failures at once, not the one this bench measures.
fn caught_up(
    http: &reqwest::blocking::Client,
    dir: &std::path::Path,
    servers: &Servers,
    machine: bool,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + WRITE_DEADLINE;
    let nats = elevens_replication::Options::new(&servers.urls.join(","));
    loop {
        let replicas =
            !machine || runtime.block_on(elevens_replication::nats::replicas_current(&nats)).unwrap_or(false);
        let nodes = replicas
            && cluster::manifest_nodes(dir)?.iter().all(|url| {
                let status = http.get(format!("{url}/v1/cluster")).timeout(Duration::from_secs(1)).send();
                let status: serde_json::Value = status.and_then(|s| s.json()).unwrap_or_default();
                status["lag_messages"].as_u64().is_some_and(|lag| lag <= CAUGHT_UP_LAG_MAX)
            });
        if nodes {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the cluster did not catch up; logs in {}", dir.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The writable leader, its pid and its term, waiting for one with a term above `after`.
fn leader(
    http: &reqwest::blocking::Client,
    dir: &std::path::Path,
    after: u64,
) -> anyhow::Result<(String, u32, u64)> {
    let deadline = Instant::now() + WRITE_DEADLINE;
    let pid_of = |i: usize| -> anyhow::Result<u32> {
        Ok(cluster::manifest(dir)?["nodes"][i]["pid"].as_u64().unwrap_or_default() as u32)
    };
    loop {
        for (i, url) in cluster::manifest_nodes(dir)?.iter().enumerate() {
            let pid = pid_of(i)?;
            let Ok(status) = http.get(format!("{url}/v1/cluster")).timeout(Duration::from_secs(1)).send()
            else {
                continue;
            };
            let status: serde_json::Value = status.json().unwrap_or_default();
            let term = status["term"].as_u64().unwrap_or_default();
            // The same process before and after the question: the one that answered it.
            if status["role"] == "leader" && status["writable"] == true && term > after && pid_of(i)? == pid {
                return Ok((url.clone(), pid, term));
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "no node leads; logs in {}", dir.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn get_json(http: &reqwest::blocking::Client, url: &str, admin: &str) -> anyhow::Result<serde_json::Value> {
    Ok(http.get(url).bearer_auth(admin).send()?.json().unwrap_or_default())
}

/// Order statistics of durations in ms, at a microsecond's resolution.
fn percentiles(values: Vec<f64>) -> Latencies {
    let mut histogram = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant figures");
    for ms in &values {
        histogram.record((ms * 1e3) as u64).expect("an auto-resizing histogram records any value");
    }
    let ms = |us: u64| us as f64 / 1e3;
    Latencies {
        writes: values.len(),
        p50_ms: ms(histogram.value_at_quantile(0.5)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        max_ms: ms(histogram.max()),
    }
}

pub fn table(report: &Report) -> String {
    let row = |name: &str, l: &Latencies| {
        format!(
            "  {name:<22} {:>7} writes  p50 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms\n",
            l.writes, l.p50_ms, l.p99_ms, l.max_ms
        )
    };
    let what = if report.machine { "the leader and its NATS server" } else { "the leader" };
    let mut out =
        format!("failover: {} SIGKILLs of {what} under {} writers\n", report.kills.len(), report.writers);
    out += &row("kill to first write", &report.to_first_write_ms);
    out += &row("kill to all caught up", &report.to_caught_up_ms);
    out += &row("in flight at a kill", &report.writes_in_flight_at_kills);
    out += &row("sent -1 s..+3 s of one", &report.writes_around_kills);
    out += &row("writes otherwise", &report.writes_otherwise);
    out += &format!(
        "  acknowledged {}, lost {}, applied twice {}\n",
        report.acknowledged, report.lost, report.applied_twice
    );
    out
}
