//! Invariant 4 under fire: a real server under concurrent load is killed with SIGKILL at random
//! moments, again and again. Every acknowledged order and payment survives, retries with the same
//! idempotency key never create a second order, nothing is oversold, the ledger balances, and
//! the digest equals an offline `elevens audit` of the same directory.

use crate::harness::{sku, Server, BIN};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KILLS: usize = 22;
const WORKERS: usize = 12;
const BUYERS: u64 = 40;
const HOT_STOCK: u64 = 600;

#[derive(Default)]
struct Ledger {
    /// Orders acknowledged, and whether their payment was acknowledged too.
    acked: BTreeMap<u64, bool>,
    /// Idempotency key → the order it created (from any acknowledged answer).
    by_key: BTreeMap<String, u64>,
    /// Requests whose answer was lost to a kill: (path, key, body), to retry after restart.
    uncertain: Vec<(String, String, Value)>,
}

fn record(ledger: &Mutex<Ledger>, key: &str, order: u64) {
    let mut l = ledger.lock().unwrap();
    let first = *l.by_key.entry(key.to_owned()).or_insert(order);
    assert_eq!(first, order, "idempotency key {key} answered two different orders");
}

async fn worker(
    server: Arc<Server>,
    service: String,
    skus: [u64; 2],
    seed: u64,
    stop: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("w{seed}-{n}");
        let sku_id = skus[rng.random_range(0..2)];
        let body = json!({"buyer_id": rng.random_range(1..=BUYERS), "lines": [{"sku_id": sku_id, "quantity": rng.random_range(1..=3)}]});
        let order = match server.try_post("/v1/orders", &service, &key, body.clone()).await {
            Ok((201, placed)) => placed["order_id"].as_u64().unwrap(),
            Ok((409, _)) => continue, // sold out: a clear refusal
            Ok((status, body)) => panic!("unexpected answer {status}: {body}"),
            Err(_) => {
                ledger.lock().unwrap().uncertain.push(("/v1/orders".into(), key, body));
                return;
            }
        };
        record(&ledger, &key, order);
        ledger.lock().unwrap().acked.insert(order, false);
        let pay_key = format!("{key}-pay");
        let path = format!("/v1/orders/{order}/pay");
        match server.try_post(&path, &service, &pay_key, Value::Null).await {
            Ok((200, _)) => {
                ledger.lock().unwrap().acked.insert(order, true);
            }
            Ok((status, body)) => panic!("unexpected payment answer {status}: {body}"),
            Err(_) => {
                ledger.lock().unwrap().uncertain.push((path, pay_key, Value::Null));
                return;
            }
        }
    }
}

async fn check_acknowledged(server: &Server, service: &str, ledger: &Mutex<Ledger>) {
    let acked: Vec<(u64, bool)> = ledger.lock().unwrap().acked.iter().map(|(o, p)| (*o, *p)).collect();
    for (order, paid) in acked {
        let (status, body) = server.get(&format!("/v1/orders/{order}"), service).await;
        assert_eq!(status, 200, "acknowledged order {order} lost: {body}");
        if paid {
            assert_eq!(body["status"], "paid", "acknowledged payment of order {order} lost");
        }
    }
}

/// Resends every request whose answer was lost, with its original idempotency key.
async fn retry_uncertain(server: &Server, service: &str, ledger: &Mutex<Ledger>) {
    let uncertain = std::mem::take(&mut ledger.lock().unwrap().uncertain);
    for (path, key, body) in uncertain {
        let (status, answer) = server.post(&path, service, &key, body).await;
        match (path.as_str(), status) {
            ("/v1/orders", 201) => {
                let order = answer["order_id"].as_u64().unwrap();
                record(ledger, &key, order);
                ledger.lock().unwrap().acked.entry(order).or_insert(false);
            }
            (_, 200) => {
                let order = answer["order_id"].as_u64().unwrap();
                ledger.lock().unwrap().acked.insert(order, true);
            }
            (_, 409) => {}
            _ => panic!("retry of {path} answered {status}: {answer}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_minus_nine_under_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    // Every other start writes its snapshots around the page cache (`O_DIRECT`), so each kind
    // is killed mid-write and each start may read a snapshot of either kind.
    const ARGS: [&str; 3] = ["--snapshot-every", "97", "--snapshot-direct-io"];
    let args = |start: usize| if start % 2 == 1 { &ARGS[..] } else { &ARGS[..2] };
    let mut server = Arc::new(Server::start(dir.path(), args(0)));
    let (merchant, service) = server.marketplace(BUYERS as usize, 1_000_000_000).await;
    let skus = [sku(&server, &merchant, HOT_STOCK, 100).await, sku(&server, &merchant, 1_000_000, 7).await];
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = rand::rngs::StdRng::seed_from_u64(1111);

    for round in 0..KILLS {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let seed = (round * WORKERS + w) as u64;
                tokio::spawn(worker(
                    server.clone(),
                    service.clone(),
                    skus,
                    seed,
                    stop.clone(),
                    ledger.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.random_range(30..250))).await;
        // SIGKILL, mid-flight: no chance to flush or to finish a batch.
        unsafe { libc::kill(server.child.id() as i32, libc::SIGKILL) };
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.await.expect("worker");
        }
        drop(server);
        server = Arc::new(Server::start(dir.path(), args(round + 1)));
        check_acknowledged(&server, &service, &ledger).await;
        retry_uncertain(&server, &service, &ledger).await;
        server.audit().await;
    }

    // Exactly once: every order in the engine was created by exactly one idempotency key.
    let (keys, orders_by_keys, acked) = {
        let l = ledger.lock().unwrap();
        let orders: std::collections::BTreeSet<u64> = l.by_key.values().copied().collect();
        (l.by_key.len(), orders, l.acked.len())
    };
    assert_eq!(orders_by_keys.len(), keys, "two keys claim one order");
    let (status, _) = server.get(&format!("/v1/orders/{}", orders_by_keys.len() + 1), &service).await;
    assert_eq!(status, 404, "the engine holds orders no acknowledged key created");
    assert!(acked > 200, "the load was too light to prove anything: {acked} orders");
    let (_, hot) = server.get(&format!("/v1/skus/{}", skus[0]), &service).await;
    assert_eq!(
        hot["available"].as_u64().unwrap()
            + hot["reserved"].as_u64().unwrap()
            + hot["sold"].as_u64().unwrap(),
        HOT_STOCK
    );
    let online = server.audit().await;

    // The event feed, through every kill: positions without a gap, one `order.placed` per
    // order, one `order.paid` per paid order, none for anything not acknowledged.
    let events = crate::events::all_events(&server, &server.admin.clone(), "").await;
    let positions: Vec<u64> = events.iter().map(|e| e["position"].as_u64().unwrap()).collect();
    assert_eq!(positions, (1..=positions.len() as u64).collect::<Vec<_>>(), "the feed has gaps");
    let of = |t: &str| -> Vec<u64> {
        let mut ids: Vec<u64> =
            events.iter().filter(|e| e["type"] == t).map(|e| e["data"]["order"].as_u64().unwrap()).collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(of("order.placed"), (1..=orders_by_keys.len() as u64).collect::<Vec<_>>());
    let paid = of("order.paid");
    assert!(paid.windows(2).all(|w| w[0] < w[1]), "an order paid twice in the feed");
    let acked_paid = ledger.lock().unwrap().acked.iter().filter(|(_, p)| **p).count();
    assert!(paid.len() >= acked_paid, "{} paid in the feed, {acked_paid} payments acknowledged", paid.len());

    // The digest the server reports equals an offline replay of the same directory.
    drop(server);
    let output = std::process::Command::new(BIN).args(["audit", "--data"]).arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "offline audit failed:\n{stdout}");
    let offline = stdout.lines().find_map(|l| l.strip_prefix("digest: ")).expect("digest line");
    assert_eq!(online["digest"].as_str(), Some(offline));
    // Snapshots were published along the way (by forked writers, killed with their server).
    let published = std::fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "bin"))
        .count();
    assert!(published > 0, "no snapshot was published");
}

fn segment(dir: &std::path::Path) -> std::path::PathBuf {
    let journal = dir.join("journal");
    let mut segments: Vec<_> = std::fs::read_dir(&journal).unwrap().map(|e| e.unwrap().path()).collect();
    segments.sort();
    segments.pop().expect("a segment")
}

#[tokio::test]
async fn a_torn_tail_recovers_and_a_flipped_byte_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (merchant, _) = server.marketplace(3, 1_000).await;
    sku(&server, &merchant, 5, 5).await;
    let before = server.audit().await;
    drop(server);

    // A torn last write: half a record at the end.
    let path = segment(dir.path());
    let clean = std::fs::read(&path).unwrap();
    let mut torn = clean.clone();
    torn.extend_from_slice(&clean[..40]);
    std::fs::write(&path, &torn).unwrap();
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.audit().await["digest"], before["digest"]);
    drop(server);
    assert_eq!(std::fs::read(&path).unwrap().len(), clean.len(), "the torn tail was not cut");

    // A flipped byte in the middle: start-up refuses, naming the file and the offset.
    let mut flipped = clean.clone();
    let middle = clean.len() / 2;
    flipped[middle] ^= 0x20;
    std::fs::write(&path, &flipped).unwrap();
    let output = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("journal corrupt in") && stderr.contains(&path.display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("at byte offset"), "{stderr}");
    // And so does the offline audit.
    let output = std::process::Command::new(BIN).args(["audit", "--data"]).arg(dir.path()).output().unwrap();
    assert!(!output.status.success());
}
