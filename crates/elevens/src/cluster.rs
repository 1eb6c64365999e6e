//! `elevens cluster`: a replicated cluster on one machine, for trying it, the tests and the
//! bench. Three NATS servers (JetStream, `sync_interval: always`) and three elevens nodes on
//! loopback, data in one folder; the elevens nodes are supervised (a node that exits, killed or
//! deposed, is started again, as systemd's `Restart=always` would). `cluster.json` in the folder
//! names every process, its address and its pid.

use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// How long `up` waits for a node to lead before it says the cluster did not come up.
const LEADER_WAIT: Duration = Duration::from_secs(60);
/// How often the supervisor looks at its children.
const SUPERVISE_EVERY: Duration = Duration::from_millis(100);
/// The least time between two starts of one node.
const RESTART_SPACING: Duration = Duration::from_secs(1);

#[derive(Subcommand)]
pub enum ClusterCmd {
    /// Start NATS servers and elevens nodes on loopback; stops them all at Ctrl-C or SIGTERM.
    Up {
        /// The folder for every server's data, logs and `cluster.json` (created if absent).
        #[arg(long)]
        dir: PathBuf,
        /// How many NATS servers and elevens nodes (the stream's replicas, at most 3).
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// NATS clients listen on base+i, its routes on base+100+i, elevens on base+200+i.
        #[arg(long, default_value_t = 14_200)]
        port_base: u16,
        /// Only the NATS servers (for `elevens bench --journal`), no elevens node.
        #[arg(long)]
        nats_only: bool,
        /// The nats-server binary (2.12 or newer).
        #[arg(long, env = "NATS_SERVER", default_value = "nats-server")]
        nats_server: PathBuf,
        /// Extra arguments for every `elevens serve` (after `--`).
        #[arg(last = true)]
        serve_args: Vec<String>,
    },
    /// Each node's role, term, applied position and lag behind the stream.
    Status {
        /// A folder `up` runs in (its cluster.json names the nodes) ...
        #[arg(long, conflicts_with = "nodes")]
        dir: Option<PathBuf>,
        /// ... or the nodes' addresses, comma-separated.
        #[arg(long, value_delimiter = ',')]
        nodes: Vec<String>,
    },
}

pub fn run(command: ClusterCmd) -> ExitCode {
    let result = match command {
        ClusterCmd::Up { dir, nodes, port_base, nats_only, nats_server, serve_args } => {
            let serve_args = (!nats_only).then_some(serve_args.as_slice());
            stop_flag().and_then(|stop| up(&dir, nodes, port_base, &nats_server, serve_args, stop))
        }
        ClusterCmd::Status { dir, nodes } => status(dir, nodes),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("elevens cluster: {error:#}");
            ExitCode::FAILURE
        }
    }
}

struct Node {
    url: String,
    data: PathBuf,
    command: Vec<String>,
    child: Child,
    started: Instant,
    restarts: u32,
}

/// The NATS servers, and the elevens nodes with these extra arguments unless `serve_args` is
/// `None`, until `stop` is set.
pub fn up(
    dir: &Path,
    n: usize,
    base: u16,
    nats_server: &Path,
    serve_args: Option<&[String]>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!((1..=3).contains(&n), "a cluster here has 1 to 3 nodes");
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let nats_urls: Vec<String> = (0..n).map(|i| format!("nats://127.0.0.1:{}", base + i as u16)).collect();
    let mut nats = Vec::new();
    for (i, url) in nats_urls.iter().enumerate() {
        let conf = dir.join(format!("nats{i}.conf"));
        let routes: Vec<String> =
            (0..n).map(|j| format!("nats://127.0.0.1:{}", base + 100 + j as u16)).collect();
        let cluster = if n > 1 {
            format!(
                "cluster {{\n  name: elevens\n  listen: 127.0.0.1:{}\n  routes: [{}]\n}}\n",
                base + 100 + i as u16,
                routes.join(", ")
            )
        } else {
            String::new()
        };
        // sync_interval: always: every stored message is fsync'd before it is acknowledged (the
        // default syncs every 2 minutes, and acknowledged writes were lost that way).
        std::fs::write(
            &conf,
            format!(
                "server_name: n{i}\nlisten: 127.0.0.1:{}\njetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n{cluster}",
                base + i as u16,
                dir.join(format!("nats{i}")).display(),
            ),
        )?;
        let log = std::fs::File::create(dir.join(format!("nats{i}.log")))?;
        let child = Command::new(nats_server)
            .dies_with_parent()
            .arg("-c")
            .arg(&conf)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {}: {e}", nats_server.display()))?;
        nats.push((url.clone(), conf, child));
    }
    let exe = std::env::current_exe()?;
    let admin_key = dir.join("admin.key");
    let mut nodes = Vec::new();
    let Some(serve_args) = serve_args else {
        write_manifest(&dir, &nats, &nodes, &admin_key)?;
        println!("elevens cluster up: NATS at {} (no elevens node)", nats_urls.join(","));
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(SUPERVISE_EVERY);
        }
        for (_, _, child) in &mut nats {
            terminate(child);
        }
        return Ok(ExitCode::SUCCESS);
    };
    for i in 0..n {
        let url = format!("http://127.0.0.1:{}", base + 200 + i as u16);
        let data = dir.join(format!("node{i}"));
        let mut command: Vec<String> = vec![
            exe.display().to_string(),
            "serve".into(),
            "--data".into(),
            data.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{}", base + 200 + i as u16),
            "--journal".into(),
            // Each node's own server first, the others to fail over to.
            nats_urls[i..].iter().chain(&nats_urls[..i]).cloned().collect::<Vec<_>>().join(","),
            "--replicas".into(),
            n.to_string(),
            "--advertise".into(),
            url.clone(),
            "--admin-key-file".into(),
            admin_key.display().to_string(),
        ];
        command.extend(serve_args.iter().cloned());
        let child = spawn_node(&dir, i, &command)?;
        nodes.push(Node { url, data, command, child, started: Instant::now(), restarts: 0 });
    }
    write_manifest(&dir, &nats, &nodes, &admin_key)?;
    let started = Instant::now();
    let mut announced = false;
    let client = http_client()?;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(SUPERVISE_EVERY);
        let mut changed = false;
        for (i, node) in nodes.iter_mut().enumerate() {
            if let Ok(Some(exit)) = node.child.try_wait() {
                eprintln!("elevens cluster: node {i} exited ({exit}); starting it again");
                // A node that cannot start at all is not started a hundred times a second.
                if node.started.elapsed() < RESTART_SPACING {
                    std::thread::sleep(RESTART_SPACING - node.started.elapsed());
                }
                node.child = spawn_node(&dir, i, &node.command)?;
                node.started = Instant::now();
                node.restarts += 1;
                changed = true;
            }
        }
        if changed {
            write_manifest(&dir, &nats, &nodes, &admin_key)?;
        }
        if !announced {
            if let Some(leader) =
                nodes.iter().find(|node| role(&client, &node.url).as_deref() == Some("leader"))
            {
                println!(
                    "elevens cluster up: leader {} (nodes {}); admin key in {}; {} describes it",
                    leader.url,
                    nodes.iter().map(|n| n.url.as_str()).collect::<Vec<_>>().join(", "),
                    admin_key.display(),
                    dir.join("cluster.json").display()
                );
                announced = true;
            } else if started.elapsed() > LEADER_WAIT {
                eprintln!(
                    "elevens cluster: no node leads after {LEADER_WAIT:?}; see the logs in {}",
                    dir.display()
                );
                break;
            }
        }
    }
    for node in &mut nodes {
        terminate(&mut node.child);
    }
    for (_, _, child) in &mut nats {
        terminate(child);
    }
    Ok(if announced { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn spawn_node(dir: &Path, i: usize, command: &[String]) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("node{i}.log")))?;
    Ok(Command::new(&command[0])
        .dies_with_parent()
        .args(&command[1..])
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?)
}

/// A child that is sent SIGTERM when this process dies, however it dies (a SIGKILL of the
/// supervisor leaves no server behind).
trait DiesWithParent {
    fn dies_with_parent(&mut self) -> &mut Self;
}

impl DiesWithParent for Command {
    fn dies_with_parent(&mut self) -> &mut Self {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            self.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            })
        }
    }
}

fn write_manifest(
    dir: &Path,
    nats: &[(String, PathBuf, Child)],
    nodes: &[Node],
    admin_key: &Path,
) -> anyhow::Result<()> {
    let manifest = serde_json::json!({
        "nats": nats.iter().map(|(url, conf, child)| serde_json::json!({
            "url": url, "conf": conf, "pid": child.id(),
        })).collect::<Vec<_>>(),
        "nodes": nodes.iter().map(|node| serde_json::json!({
            "url": node.url, "data": node.data, "pid": node.child.id(), "restarts": node.restarts,
        })).collect::<Vec<_>>(),
        "admin_key_file": admin_key,
    });
    let tmp = dir.join("cluster.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&manifest)?)?;
    std::fs::rename(tmp, dir.join("cluster.json"))?;
    Ok(())
}

/// SIGTERM, then SIGKILL after 10 s.
fn terminate(child: &mut Child) {
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Set at SIGINT or SIGTERM.
fn stop_flag() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let set = flag.clone();
    let signal = {
        let _in_runtime = runtime.enter();
        elevens_http::stop_signal()
    };
    std::thread::spawn(move || {
        runtime.block_on(signal);
        set.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    Ok(flag)
}

/// A client for the nodes on loopback: short timeouts.
fn http_client() -> anyhow::Result<reqwest::blocking::Client> {
    Ok(reqwest::blocking::Client::builder().timeout(Duration::from_secs(2)).build()?)
}

fn get_json(client: &reqwest::blocking::Client, url: &str) -> Option<serde_json::Value> {
    client.get(url).send().ok()?.json().ok()
}

fn role(client: &reqwest::blocking::Client, url: &str) -> Option<String> {
    let status = get_json(client, &format!("{url}/v1/cluster"))?;
    status["role"].as_str().map(str::to_owned)
}

/// `cluster.json` in the folder `up` runs in.
pub fn manifest(dir: &Path) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_slice(&std::fs::read(dir.join("cluster.json"))?)?)
}

/// The elevens nodes' addresses, from `cluster.json`.
pub fn manifest_nodes(dir: &Path) -> anyhow::Result<Vec<String>> {
    Ok(manifest(dir)?["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|node| node["url"].as_str().map(str::to_owned))
        .collect())
}

fn status(dir: Option<PathBuf>, mut nodes: Vec<String>) -> anyhow::Result<ExitCode> {
    if let Some(dir) = dir {
        nodes = manifest_nodes(&dir)?;
    }
    anyhow::ensure!(!nodes.is_empty(), "name the nodes (--nodes) or the folder `up` runs in (--dir)");
    let client = http_client()?;
    println!(
        "{:<28} {:<9} {:>6} {:>12} {:>12} {:>8}  leader",
        "node", "role", "term", "applied", "stream", "lag"
    );
    let mut leaders = 0;
    for node in &nodes {
        match get_json(&client, &format!("{node}/v1/cluster")) {
            Some(s) => {
                leaders += usize::from(s["role"] == "leader");
                let n = |field: &str| s[field].as_u64().map_or("?".to_owned(), |v| v.to_string());
                println!(
                    "{:<28} {:<9} {:>6} {:>12} {:>12} {:>8}  {}",
                    node,
                    s["role"].as_str().unwrap_or("?"),
                    n("term"),
                    n("applied"),
                    n("stream_applied"),
                    n("lag_messages"),
                    s["leader"].as_str().unwrap_or("-")
                );
            }
            None => println!("{node:<28} unreachable"),
        }
    }
    Ok(if leaders == 1 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
