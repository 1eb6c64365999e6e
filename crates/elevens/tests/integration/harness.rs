//! Starting a real `elevens serve` child process and talking to it.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_elevens");

/// Serves `app` on a port of 127.0.0.1 for the rest of the test (a webhook receiver, a page
/// of another origin): its `http://address`.
pub async fn serve_on_loopback(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let address = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub admin: String,
    pub http: reqwest::Client,
}

/// Answers: the HTTP status and the JSON body (Null if none).
pub type Reply = (u16, Value);

impl Server {
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        Server::start_with(data, extra, &[("RUST_LOG", "warn")], Stdio::inherit())
    }

    /// [`Server::start`] with these environment variables and its stderr sent to `stderr`.
    pub fn start_with(data: &Path, extra: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--data"])
            .arg(data)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn elevens");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            assert!(Instant::now() < deadline, "elevens did not start");
            let line = lines.next().expect("elevens exited before listening").expect("read stdout");
            if let Some(rest) = line.strip_prefix("elevens listening on ") {
                break rest.split_whitespace().next().unwrap_or_default().to_owned();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let admin = std::fs::read_to_string(data.join("admin.key")).expect("admin.key").trim().to_owned();
        let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("client");
        Server { child, base, admin, http }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    /// Stops the server as systemd and Docker do (SIGTERM) and waits for it: returns how long
    /// it took and whether it exited successfully.
    pub fn stop(&mut self) -> (Duration, bool) {
        let started = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("wait for elevens");
        (started.elapsed(), status.success())
    }

    pub async fn post(&self, path: &str, key: &str, idempotency: &str, body: Value) -> Reply {
        self.try_post(path, key, idempotency, body).await.expect("request failed")
    }

    /// Posts, and on 429 waits as `retry_after_ms` says and tries again with the same key, as a
    /// well-behaved storefront does (for up to a minute).
    pub async fn try_post(
        &self,
        path: &str,
        key: &str,
        idempotency: &str,
        body: Value,
    ) -> reqwest::Result<Reply> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, reply) = self.post_once(path, key, idempotency, body.clone()).await?;
            if status != 429 || Instant::now() > deadline {
                return Ok((status, reply));
            }
            let wait = reply["retry_after_ms"].as_u64().unwrap_or(100).min(500);
            tokio::time::sleep(Duration::from_millis(wait + rand::random::<u64>() % 50)).await;
        }
    }

    /// One attempt, whatever the answer.
    pub async fn post_once(
        &self,
        path: &str,
        key: &str,
        idempotency: &str,
        body: Value,
    ) -> reqwest::Result<Reply> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("Idempotency-Key", idempotency)
            .json(&body)
            .send()
            .await?;
        read(response).await
    }

    pub async fn put(&self, path: &str, key: &str, idempotency: &str, body: Value) -> Reply {
        self.send(reqwest::Method::PUT, path, key, idempotency, body).await
    }

    pub async fn patch(&self, path: &str, key: &str, idempotency: &str, body: Value) -> Reply {
        self.send(reqwest::Method::PATCH, path, key, idempotency, body).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        idempotency: &str,
        body: Value,
    ) -> Reply {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("Idempotency-Key", idempotency)
            .json(&body)
            .send()
            .await
            .expect("request failed");
        read(response).await.expect("read body")
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .expect("request failed");
        read(response).await.expect("read body")
    }

    pub async fn audit(&self) -> Value {
        let (status, body) = self.get("/v1/audit", &self.admin.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["ok"], true, "invariants broken: {body:#}");
        body
    }

    /// Creates what most tests need: one merchant (with its own key), `buyers` buyers with a
    /// service key, and money in their wallets. Returns (merchant key, service key).
    pub async fn marketplace(&self, buyers: usize, top_up: u64) -> (String, String) {
        let admin = self.admin.clone();
        let (s, _) = self.post("/v1/merchants", &admin, "setup-m", json!({"name": "Flagship"})).await;
        assert_eq!(s, 201);
        let merchant = self.key(json!({"role": "merchant", "merchant_id": 1})).await;
        let service = self.key(json!({"role": "service"})).await;
        for chunk in (1..=buyers).collect::<Vec<_>>().chunks(1_000) {
            let commands: Vec<Value> = chunk
                .iter()
                .flat_map(|b| {
                    [
                        json!({"op": "create_buyer", "idempotency_key": format!("setup-b{b}"), "params": {"name": format!("buyer {b}")}}),
                        json!({"op": "top_up", "idempotency_key": format!("setup-t{b}"), "params": {"buyer_id": b, "amount": top_up, "currency": "CNY"}}),
                    ]
                })
                .collect();
            let (s, body) = self.batch(&service, commands).await;
            assert_eq!(s, 200);
            assert!(body["results"].as_array().unwrap().iter().all(|r| r["status"] == 201), "{body}");
        }
        (merchant, service)
    }

    pub async fn key(&self, request: Value) -> String {
        let admin = self.admin.clone();
        let (status, body) = self.post("/v1/api-keys", &admin, &format!("key-{request}"), request).await;
        assert_eq!(status, 201, "{body}");
        body["key"].as_str().expect("secret").to_owned()
    }

    pub async fn batch(&self, key: &str, commands: Vec<Value>) -> Reply {
        let response = self
            .http
            .post(format!("{}/v1/batch", self.base))
            .bearer_auth(key)
            .json(&json!({ "commands": commands }))
            .send()
            .await
            .expect("batch");
        read(response).await.expect("batch body")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn read(response: reqwest::Response) -> reqwest::Result<Reply> {
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

pub async fn sku(server: &Server, merchant: &str, stock: u64, price: u64) -> u64 {
    let (status, body) = server
        .post(
            "/v1/skus",
            merchant,
            &format!("sku-{stock}-{price}"),
            json!({"merchant_id": 1, "title": "Hot item", "price": price, "currency": "CNY", "stock": stock}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["sku_id"].as_u64().unwrap()
}

/// The wall clock, in ms since the Unix epoch (the server's clock for commands).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Writes `toml` as `elevens.toml` in `dir` and returns its path, for `--config`.
pub fn config_file(dir: &Path, toml: &str) -> String {
    let path = dir.join("elevens.toml");
    std::fs::write(&path, toml).unwrap();
    path.display().to_string()
}
