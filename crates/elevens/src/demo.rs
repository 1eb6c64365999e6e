//! `elevens demo`: the whole system at work in one command. Starts the server on a fresh data
//! directory, builds a marketplace over the API (merchants, thousands of SKUs, buyers with
//! wallets, a flash sale that opens in 30 s, a red packet that opens with it), prints the big
//! screen's URL, and plays 11.11 midnight against it: calm browsing, the countdown, the 10x spike
//! at the opening second, then the tail — until Ctrl-C. Behind the sale the demo plays the
//! merchants' warehouses (dispatching what they have to ship) and the carrier (a feed of
//! tracking events, with some exceptions and failed attempts that open tickets).
//!
//! Everything goes over HTTP, through admission control, as a storefront's traffic would.

/// `println!` without its panic when stdout is gone (`elevens demo | head`): the demo goes on
/// serving the big screen whether or not anyone reads its status lines.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

use anyhow::{bail, Context};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MERCHANTS: u64 = 20;
const SKUS: u64 = 5_000;
const BUYERS: u64 = 20_000;
const HOT_UNITS: u64 = 10_000;
/// Buyers with a delivery address the carrier serves (the others get no delivery promise).
const ADDRESSED_BUYERS: u64 = 2_000;
/// Parcels each merchant dispatches per round of the warehouse play, and rounds per second.
const DISPATCH_PER_ROUND: usize = 100;
const ROUND: Duration = Duration::from_millis(500);
const REGIONS: &[&str] = &["CN-BJ", "CN-SH", "CN-GD", "CN-SC", "CN-HB"];
/// Arrivals per second: calm, the spike (10x), the tail.
const CALM_PER_S: f64 = 200.0;
const SPIKE_PER_S: f64 = 2_000.0;
const TAIL_PER_S: f64 = 400.0;
const SPIKE_S: u64 = 10;

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn post(&self, path: &str, idempotency: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        self.send(reqwest::Method::POST, path, idempotency, body).await
    }

    async fn put(&self, path: &str, idempotency: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        self.send(reqwest::Method::PUT, path, idempotency, body).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        idempotency: &str,
        body: Value,
    ) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("Idempotency-Key", idempotency)
            .json(&body)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.key).send().await?;
        Ok(response.json().await.unwrap_or(Value::Null))
    }

    /// A batch that must succeed whole (the set-up).
    async fn batch(&self, commands: Vec<Value>) -> anyhow::Result<()> {
        let (status, body) = self.post("/v1/batch", "-", json!({ "commands": commands })).await?;
        let failed =
            body["results"].as_array().and_then(|r| r.iter().find(|r| r["status"].as_u64() >= Some(300)));
        if status != 200 || failed.is_some() {
            bail!("set-up batch failed: {status} {}", failed.unwrap_or(&body));
        }
        Ok(())
    }
}

const ADJECTIVES: &[&str] =
    &["Smart", "Ultra", "Classic", "Silk", "Organic", "Wireless", "Pro", "Mini", "Down", "Cashmere"];
const THINGS: &[&str] = &[
    "phone",
    "earbuds",
    "rice cooker",
    "sneakers",
    "lipstick",
    "tea set",
    "backpack",
    "jacket",
    "face mask",
    "smartwatch",
    "air fryer",
    "robot vacuum",
    "yoga mat",
    "mooncakes",
    "baijiu",
];

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Builds the marketplace; returns the campaign's opening time (ms since the epoch).
async fn marketplace(admin: &Api, starts_in: Duration, rng: &mut rand::rngs::StdRng) -> anyhow::Result<u64> {
    for m in 1..=MERCHANTS {
        let body = json!({"name": format!("Flagship store {m}"), "commission_bps": 200 + (m % 4) * 50});
        let (status, body) = admin.post("/v1/merchants", &format!("demo-merchant-{m}"), body).await?;
        if status != 201 {
            bail!("creating merchant {m}: {status} {body}");
        }
        // Merchant 1 sells the flash item from a small warehouse: its backlog grows on the screen.
        let capacity = if m == 1 { 2_000 } else { 50_000 };
        let warehouse = json!({"name": format!("warehouse {m}"), "region": "CN-ZJ", "capacity_per_day": capacity,
            "cutoff": "23:59", "utc_offset_minutes": 480});
        let (status, body) =
            admin.post(&format!("/v1/merchants/{m}/warehouses"), &format!("demo-wh-{m}"), warehouse).await?;
        if status != 201 {
            bail!("creating merchant {m}'s warehouse: {status} {body}");
        }
        let fee = json!({"currency": "CNY", "fee": 800});
        admin.put(&format!("/v1/merchants/{m}/shipping-fee"), &format!("demo-fee-{m}"), fee).await?;
    }
    let lanes: Vec<Value> = REGIONS
        .iter()
        .enumerate()
        .map(|(i, to)| json!({"from": "CN-ZJ", "to": to, "p50_days": 1 + i as u64 / 2, "p90_days": 2 + i as u64}))
        .collect();
    let (status, body) =
        admin.post("/v1/carriers", "demo-carrier", json!({"name": "SF Express", "lanes": lanes})).await?;
    if status != 201 {
        bail!("creating the carrier: {status} {body}");
    }
    let mut commands = Vec::new();
    for s in 1..=SKUS {
        let title = format!(
            "{} {}",
            ADJECTIVES[rng.random_range(0..ADJECTIVES.len())],
            THINGS[rng.random_range(0..THINGS.len())]
        );
        let (price, stock) =
            if s == 1 { (599_900, HOT_UNITS) } else { (rng.random_range(990..99_900), 1_000_000) };
        commands.push(json!({"op": "create_sku", "idempotency_key": format!("demo-sku-{s}"),
            "params": {"merchant_id": 1 + s % MERCHANTS, "title": if s == 1 { "Phone X, 11.11 edition".to_owned() } else { title },
                       "price": price, "currency": "CNY", "stock": stock}}));
    }
    for b in 1..=BUYERS {
        commands.push(json!({"op": "create_buyer", "idempotency_key": format!("demo-buyer-{b}"), "params": {"name": format!("buyer {b}")}}));
        commands.push(json!({"op": "top_up", "idempotency_key": format!("demo-topup-{b}"),
            "params": {"buyer_id": b, "amount": 50_000_000, "currency": "CNY"}}));
    }
    for chunk in commands.chunks(5_000) {
        admin.batch(chunk.to_vec()).await?;
    }
    for b in 1..=ADDRESSED_BUYERS {
        let address =
            json!({"region": REGIONS[b as usize % REGIONS.len()], "address": format!("{b} Renmin Road")});
        admin.put(&format!("/v1/buyers/{b}/address"), &format!("demo-address-{b}"), address).await?;
    }
    let starts_at = now_ms() + starts_in.as_millis() as u64;
    let campaign = json!({"name": "Midnight flagship phone", "sku_id": 1, "flash_price": 399_900, "currency": "CNY", "quantity": HOT_UNITS,
        "starts_at": starts_at, "ends_at": starts_at + 3_600_000, "per_buyer_limit": 1});
    let (status, body) = admin.post("/v1/campaigns", "demo-campaign", campaign).await?;
    if status != 201 {
        bail!("creating the campaign: {status} {body}");
    }
    let packet = json!({"amount": 10_000_000, "count": 10_000, "currency": "CNY", "starts_at": starts_at,
        "ends_at": starts_at + 3_600_000});
    let (status, body) = admin.post("/v1/red-packets", "demo-red-packet", packet).await?;
    if status != 201 {
        bail!("creating the red packet: {status} {body}");
    }
    Ok(starts_at)
}

#[derive(Default)]
struct Counts {
    orders: AtomicU64,
    paid: AtomicU64,
    shed: AtomicU64,
    refused: AtomicU64,
    claims: AtomicU64,
}

/// One buyer's visit: views, maybe an order (then its payment), maybe a red-packet claim.
async fn visit(api: Api, counts: Arc<Counts>, n: u64, buyer: u64, sku: u64, claim: bool) {
    let order = json!({"buyer_id": buyer, "lines": [{"sku_id": sku, "quantity": 1}]});
    match api.post("/v1/orders", &format!("demo-o{n}"), order).await {
        Ok((201, placed)) => {
            counts.orders.fetch_add(1, Ordering::Relaxed);
            let id = placed["order_id"].as_u64().unwrap_or(0);
            if let Ok((200, _)) =
                api.post(&format!("/v1/orders/{id}/pay"), &format!("demo-p{n}"), json!(null)).await
            {
                counts.paid.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok((429, _)) => {
            counts.shed.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            counts.refused.fetch_add(1, Ordering::Relaxed);
        }
    }
    if claim {
        let body = json!({"buyer_id": buyer});
        if let Ok((201, _)) = api.post("/v1/red-packets/1/claims", &format!("demo-c{buyer}"), body).await {
            counts.claims.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Plays the night until `stop` resolves.
async fn play(
    api: Api,
    starts_at: u64,
    seed: u64,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let counts = Arc::new(Counts::default());
    let outstanding = Arc::new(tokio::sync::Semaphore::new(512));
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    let (mut n, mut last_report, mut owed) = (0u64, Instant::now(), 0.0f64);
    while !*stop.borrow() {
        ticker.tick().await;
        let now = now_ms();
        let spike = now >= starts_at && now < starts_at + SPIKE_S * 1_000;
        let rate = if now < starts_at {
            CALM_PER_S
        } else if spike {
            SPIKE_PER_S
        } else {
            TAIL_PER_S
        };
        owed += rate / 50.0;
        let arrivals = owed as u64;
        owed -= arrivals as f64;
        let mut views = Vec::new();
        for _ in 0..arrivals {
            n += 1;
            // Most orders come from buyers with an address (the others get no promise).
            let buyer = if rng.random_bool(0.9) {
                rng.random_range(1..=ADDRESSED_BUYERS)
            } else {
                rng.random_range(1..=BUYERS)
            };
            let hot = now >= starts_at && rng.random_bool(if spike { 0.6 } else { 0.1 });
            let sku = if hot { 1 } else { rng.random_range(2..=SKUS) };
            let campaign = (sku == 1).then_some(1);
            views.push(json!({"sku_id": sku, "campaign_id": campaign, "buyer_id": buyer}));
            // Before the opening buyers mostly browse the flash-sale item (the countdown).
            if now < starts_at && rng.random_bool(0.5) {
                views.push(json!({"sku_id": 1, "campaign_id": 1, "buyer_id": buyer}));
            }
            // Variant B of the experiment (bigger photos) converts a tenth better.
            let lift = if elevens_analytics::experiments::assign(1, buyer, &[1, 1]) == 1 { 1.1 } else { 1.0 };
            let buys = if now < starts_at {
                rng.random_bool(0.3 * lift)
            } else {
                hot || rng.random_bool(0.4 * lift)
            };
            if !buys {
                continue;
            }
            let Ok(permit) = outstanding.clone().try_acquire_owned() else { continue };
            let (api, counts) = (api.clone(), counts.clone());
            let claim = now >= starts_at && rng.random_bool(0.3);
            tokio::spawn(async move {
                visit(api, counts, n, buyer, sku, claim).await;
                drop(permit);
            });
        }
        if !views.is_empty() {
            let api = api.clone();
            tokio::spawn(async move {
                let _ = api.post("/v1/events/views", "-", json!({ "views": views })).await;
            });
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            let phase = if now < starts_at {
                format!("countdown: {} s to the opening", (starts_at - now).div_ceil(1_000))
            } else if spike {
                "the spike (10x)".into()
            } else {
                "the tail".into()
            };
            let c = &counts;
            say!(
                "{phase:<32} orders {:>8}  paid {:>8}  shed (429) {:>7}  refused {:>6}  red packets {:>6}",
                c.orders.load(Ordering::Relaxed),
                c.paid.load(Ordering::Relaxed),
                c.shed.load(Ordering::Relaxed),
                c.refused.load(Ordering::Relaxed),
                c.claims.load(Ordering::Relaxed)
            );
        }
    }
    Ok(())
}

/// Builds the marketplace on a server listening at `base` with `admin_key`, then plays the night
/// until `stop` turns true. Prints the big screen's URL.
pub async fn run(
    base: String,
    admin_key: String,
    starts_in: Duration,
    seed: u64,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(512).tcp_nodelay(true).build()?;
    let admin = Api { http: http.clone(), base: base.clone(), key: admin_key };
    let (status, body) = admin.post("/v1/api-keys", "demo-service-key", json!({"role": "service"})).await?;
    let service_key = body["key"].as_str().context("a service key").map(str::to_owned);
    let service_key = match (status, service_key) {
        (201, Ok(key)) => key,
        _ => bail!("creating the demo's service key: {status} {body}"),
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let started = Instant::now();
    say!("building the marketplace: {MERCHANTS} merchants, {SKUS} SKUs, {BUYERS} buyers with wallets…");
    let starts_at = marketplace(&admin, starts_in, &mut rng).await?;
    // The hot item takes at most 500 orders a second: the rest of the midnight crowd is shed
    // (429, come back later), which the big screen shows.
    let rules = json!({"sku_exceptions": [{"id": 1, "quota": {"per_s": 500, "burst": 500}}]});
    let response = admin
        .http
        .put(format!("{}/v1/admission/rules", admin.base))
        .bearer_auth(&admin.key)
        .json(&rules)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("setting the admission rules: {}", response.status());
    }
    let experiment = json!({"name": "bigger product photos", "starts_at": now_ms(), "ends_at": now_ms() + 86_400_000,
        "variants": [{"name": "A: classic", "weight": 1}, {"name": "B: bigger photos", "weight": 1}]});
    let (status, body) = admin.post("/v1/experiments", "demo-experiment", experiment).await?;
    if status != 201 {
        bail!("creating the experiment: {status} {body}");
    }
    // The screen's URL carries its key: a viewer's, which reads the figures and writes nothing.
    let (status, body) = admin.post("/v1/api-keys", "demo-viewer-key", json!({"role": "viewer"})).await?;
    let viewer_key = match (status, body["key"].as_str()) {
        (201, Some(key)) => key.to_owned(),
        _ => bail!("creating the screen's viewer key: {status} {body}"),
    };
    // The console, for a person: the hot item's merchant, signed in with its own key.
    let (status, body) = admin
        .post("/v1/api-keys", "demo-merchant-key", json!({"role": "merchant", "merchant_id": 1}))
        .await?;
    let merchant_key = match (status, body["key"].as_str()) {
        (201, Some(key)) => key.to_owned(),
        _ => bail!("creating merchant 1's key: {status} {body}"),
    };
    say!("ready in {:.1?}", started.elapsed());
    say!("");
    say!("  the big screen:  {base}/screen?key={viewer_key}");
    say!("  the console:     {base}/console");
    say!("                   sign in as merchant 1 with {merchant_key}");
    say!("                   or as the operator with the admin key (admin.key in the data directory)");
    say!("");
    say!(
        "flash sale: SKU 1, {HOT_UNITS} units, opens in {} s; the spike ({SPIKE_PER_S}/s arrivals, 10x) lasts {SPIKE_S} s. Ctrl-C stops.",
        starts_in.as_secs()
    );
    let (status, body) =
        admin.post("/v1/api-keys", "demo-carrier-key", json!({"role": "carrier", "carrier_id": 1})).await?;
    let carrier = match (status, body["key"].as_str()) {
        (201, Some(key)) => Api { http: http.clone(), base: base.clone(), key: key.to_owned() },
        _ => bail!("creating the carrier's key: {status} {body}"),
    };
    tokio::spawn(ship(admin, carrier, seed, stop.clone()));
    let api = Api { http, base, key: service_key };
    play(api, starts_at, seed, stop).await
}

/// The warehouses and the carrier: each round every merchant dispatches what it has to ship
/// (at most [`DISPATCH_PER_ROUND`]), and the carrier moves each parcel one step along
/// pre-transit, in transit, out for delivery, delivered, with 5% exceptions and 3% failed
/// attempts on the way (each opens a ticket for the merchant). Every store but merchant 1, whose
/// dispatch queue is left for a person to work at the console.
async fn ship(admin: Api, carrier: Api, seed: u64, stop: tokio::sync::watch::Receiver<bool>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5417);
    let mut parcels: std::collections::VecDeque<(u64, u8)> = Default::default();
    let mut ticker = tokio::time::interval(ROUND);
    let mut n = 0u64;
    while !*stop.borrow() {
        ticker.tick().await;
        // Merchant 1's parcels are left for a person at the console (the key printed for it).
        for m in 2..=MERCHANTS {
            let path =
                format!("/v1/merchants/{m}/shipments?status=awaiting_dispatch&limit={DISPATCH_PER_ROUND}");
            let Ok(page) = admin.get(&path).await else { continue };
            for s in page["items"].as_array().into_iter().flatten() {
                let Some(id) = s["shipment_id"].as_u64() else { continue };
                let dispatched = admin
                    .post(&format!("/v1/shipments/{id}/dispatch"), &format!("demo-d{id}"), json!(null))
                    .await;
                if matches!(dispatched, Ok((200, _))) && s["carrier_id"].is_u64() {
                    parcels.push_back((id, 0));
                }
            }
        }
        let mut events = Vec::new();
        let mut later = std::collections::VecDeque::new();
        while let Some((id, stage)) = parcels.pop_front() {
            n += 1;
            let (status, step) = match stage {
                0 => ("pre_transit", 1),
                1 if rng.random_bool(0.05) => ("exception", 1),
                1 => ("in_transit", 2),
                2 if rng.random_bool(0.03) => ("attempt_fail", 2),
                2 => ("out_for_delivery", 3),
                _ => ("delivered", 4),
            };
            events.push(json!({"shipment_id": id, "event_id": format!("e{n}"), "status": status, "occurred_at": now_ms()}));
            if step < 4 {
                later.push_back((id, step));
            }
            if events.len() == 5_000 {
                break;
            }
        }
        later.extend(parcels.drain(..));
        parcels = later;
        if !events.is_empty() {
            let _ = carrier
                .post("/v1/tracking-events", &format!("demo-feed-{n}"), json!({ "events": events }))
                .await;
        }
    }
}

/// Waits until the server at `base` answers `/healthz` and its admin key is on disk.
pub async fn wait_ready(base: &str, admin_key_file: &std::path::Path) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let http = reqwest::Client::new();
    loop {
        if let Ok(key) = std::fs::read_to_string(admin_key_file) {
            if http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(key.trim().to_owned());
            }
        }
        if Instant::now() > deadline {
            bail!("the server did not come up at {base}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
