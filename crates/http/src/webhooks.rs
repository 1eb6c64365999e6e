//! Webhooks: the event feed pushed to a subscriber's URL, signed, in order, at least once.
//!
//! Each subscription has one worker task that reads the feed from its cursor (the last
//! position its endpoint acknowledged with a 2xx), posts up to [`WEBHOOK_BATCH_EVENTS_MAX`]
//! events at a time, and moves the cursor only on success. Its backlog is the durable feed
//! itself, so a slow or dead endpoint holds a cursor and nothing else: no queue of its own
//! grows, the sequencer never waits on it, and other subscriptions go on. A failure is tried
//! again after an exponential backoff with jitter; after `failures_max` failures in a row the
//! subscription is disabled (and can be enabled again). A cursor that falls behind the feed's
//! retention disables it too: those events are gone.
//!
//! The signature (Stripe's scheme): `Elevens-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256
//! of "<t>.<body>" under the subscription's secret>`. A receiver recomputes it, compares in
//! constant time and refuses a `t` older than a few minutes, so a captured delivery cannot be
//! replayed later.
//!
//! Subscriptions and cursors live in `webhooks.json` in the data directory (mode 0600: it
//! holds the secrets), written whole to a temporary file and renamed. A cursor written after a
//! delivery and lost to a crash sends that delivery again: at least once.

use crate::api::{AppJson, AppPath, AppState, Auth, IdempotencyKey};
use crate::config::WebhookLimits;
use crate::egress::{AddressPolicy, GuardedResolver, Refusal};
use crate::error::{ApiError, ErrorBody};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use elevens_core::Actor;
use elevens_feed::{Feed, Filter};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;

/// Subscriptions in all.
pub const WEBHOOKS_MAX: usize = 100;
/// The longest endpoint URL, in bytes.
pub const WEBHOOK_URL_BYTES_MAX: usize = 2_048;
/// Events per delivery.
pub const WEBHOOK_BATCH_EVENTS_MAX: usize = 100;
/// Delivery attempts kept per subscription, newest last.
pub const WEBHOOK_ATTEMPTS_KEPT: usize = 100;
/// How long a subscription's creation waits for its host name to resolve, in ms.
const WEBHOOK_CREATE_RESOLVE_TIMEOUT_MS: u64 = 2_000;
/// The signature's header.
pub const SIGNATURE_HEADER: &str = "elevens-signature";

/// The delay before retry `failures` (1 for the first): `base * 2^(failures-1)` capped, then a
/// random point in its upper half, so that endpoints that failed together do not come back
/// together.
fn backoff(limits: &WebhookLimits, failures: u32) -> Duration {
    let doubled = limits.backoff_base_ms.saturating_mul(1u64 << (failures.saturating_sub(1)).min(32));
    let ceiling = doubled.min(limits.backoff_max_ms);
    Duration::from_millis(rand::rng().random_range(ceiling / 2..=ceiling))
}

/// One subscription, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Subscription {
    id: u64,
    url: String,
    types: Vec<String>,
    /// Whose events: a merchant's subscription only ever gets its own.
    merchant: Option<u64>,
    /// Who created it (its owner: a merchant key sees and changes its own only).
    owner: Option<u64>,
    secret: String,
    created_at: u64,
    /// The last position acknowledged by the endpoint.
    cursor: u64,
    enabled: bool,
    disabled_reason: Option<String>,
    /// Failed attempts in a row.
    failures: u32,
    /// The creating request's idempotency key (scoped to its actor) and a hash of the request:
    /// a retry gets this one, the key with another request is refused.
    idempotency: String,
    request_hash: u64,
}

/// One delivery attempt.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Attempt {
    /// When it was sent, in ms since the Unix epoch.
    pub at: u64,
    pub first_position: u64,
    pub last_position: u64,
    pub events: usize,
    /// The endpoint's status, if it answered.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
    /// Which attempt of this batch (1 for the first).
    pub attempt: u32,
    pub ok: bool,
}

#[derive(Default, Serialize, Deserialize)]
struct Stored {
    next_id: u64,
    subscriptions: BTreeMap<u64, Subscription>,
}

struct Worker {
    attempts: VecDeque<Attempt>,
    /// Wakes the worker when its subscription changes (enabled, deleted).
    changed: Arc<tokio::sync::Notify>,
    task: tokio::task::AbortHandle,
}

/// The subscriptions and their workers.
pub struct Webhooks {
    path: PathBuf,
    stored: Mutex<Stored>,
    workers: Mutex<BTreeMap<u64, Worker>>,
    feed: Feed,
    limits: WebhookLimits,
    /// Resolves endpoint names to checked addresses only; the client below connects through it.
    resolver: GuardedResolver,
    http: reqwest::Client,
}

impl Webhooks {
    /// Loads the subscriptions from `data_dir` and starts a worker for each (in the current
    /// tokio runtime).
    pub fn start(
        data_dir: &std::path::Path,
        feed: Feed,
        limits: WebhookLimits,
    ) -> anyhow::Result<Arc<Webhooks>> {
        Webhooks::start_with_lookup(data_dir, feed, limits, crate::egress::system_lookup())
    }

    /// [`Webhooks::start`] with names resolved by `lookup` (tests give a fixed answer).
    fn start_with_lookup(
        data_dir: &std::path::Path,
        feed: Feed,
        limits: WebhookLimits,
        lookup: crate::egress::Lookup,
    ) -> anyhow::Result<Arc<Webhooks>> {
        let path = data_dir.join("webhooks.json");
        let stored: Stored = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::default(),
            Err(e) => return Err(e.into()),
        };
        let resolver =
            GuardedResolver { policy: AddressPolicy { allow: limits.allow_ranges.clone() }, lookup };
        // No redirects (a 3xx is a failed delivery, never a second hop unchecked), no proxy
        // from the environment (it would connect to the proxy's address, not the checked one),
        // and every name through the guarded resolver.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(limits.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(resolver.clone()))
            .user_agent(concat!("elevens-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let ids: Vec<u64> = stored.subscriptions.keys().copied().collect();
        let webhooks = Arc::new(Webhooks {
            path,
            stored: Mutex::new(stored),
            workers: Mutex::new(BTreeMap::new()),
            feed,
            limits,
            resolver,
            http,
        });
        for id in ids {
            webhooks.spawn(id);
        }
        Ok(webhooks)
    }

    fn spawn(self: &Arc<Webhooks>, id: u64) {
        let changed = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(run_worker(Arc::downgrade(self), id, changed.clone())).abort_handle();
        self.workers.lock().insert(id, Worker { attempts: VecDeque::new(), changed, task });
    }

    /// Writes the subscriptions whole: a temporary file, fsync'd when `durable`, renamed.
    fn save(&self, stored: &Stored, durable: bool) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let temporary = self.path.with_extension("json.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(&serde_json::to_vec_pretty(stored)?)?;
        if durable {
            file.sync_all()?;
        }
        std::fs::rename(&temporary, &self.path)
    }

    fn record(&self, id: u64, attempt: Attempt) {
        if let Some(worker) = self.workers.lock().get_mut(&id) {
            if worker.attempts.len() == WEBHOOK_ATTEMPTS_KEPT {
                worker.attempts.pop_front();
            }
            worker.attempts.push_back(attempt);
        }
    }

    /// Applies `change` to subscription `id` and saves; `None` if it is gone.
    fn update<T>(&self, id: u64, durable: bool, change: impl FnOnce(&mut Subscription) -> T) -> Option<T> {
        let mut stored = self.stored.lock();
        let result = change(stored.subscriptions.get_mut(&id)?);
        if let Err(error) = self.save(&stored, durable) {
            tracing::warn!(%error, "the webhooks' file could not be written");
        }
        Some(result)
    }
}

/// A delivery's body.
#[derive(Serialize)]
struct Delivery<'a> {
    subscription: u64,
    events: &'a [serde_json::Value],
}

/// An error and its causes, one line: reqwest's own says only "error sending request".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// The signature header's value for `body` at `t` (unix seconds).
pub fn sign(secret: &str, t: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// One subscription's deliveries, until it is deleted or the server stops. Holds the
/// subscriptions only while it works, never while it waits.
async fn run_worker(hooks: std::sync::Weak<Webhooks>, id: u64, changed: Arc<tokio::sync::Notify>) {
    loop {
        let Some(webhooks) = hooks.upgrade() else { return };
        let Some(sub) = webhooks.stored.lock().subscriptions.get(&id).cloned() else { return };
        let wake = changed.notified();
        if !sub.enabled {
            drop(webhooks);
            wake.await;
            continue;
        }
        let types = Filter::types_of(sub.types.iter().map(String::as_str)).unwrap_or(Filter::ALL_TYPES);
        let filter = Filter { types, merchant: sub.merchant };
        let mut head = webhooks.feed.watch();
        let page =
            match crate::events::read(&webhooks.feed, sub.cursor, WEBHOOK_BATCH_EVENTS_MAX, filter).await {
                Ok(page) => page,
                Err(error) => {
                    let reason = format!("{}: {}", error.body.code, error.body.message);
                    tracing::warn!(subscription = id, reason, "webhook disabled");
                    webhooks.update(id, true, |s| (s.enabled, s.disabled_reason) = (false, Some(reason)));
                    continue;
                }
            };
        if page.events.is_empty() {
            if page.next > sub.cursor {
                // Only others' events: the cursor moves on (kept in memory until the next
                // delivery or change writes the file; a crash reads them again).
                webhooks.update_in_memory(id, |s| s.cursor = page.next);
                continue;
            }
            let seen = page.head;
            drop(webhooks);
            tokio::select! {
                _ = head.wait_for(|h| *h > seen) => {}
                _ = wake => {}
            }
            continue;
        }
        if webhooks.deliver(&sub, &page).await {
            webhooks.update(id, false, |s| (s.cursor, s.failures) = (page.next, 0));
            continue;
        }
        let limits = webhooks.limits.clone();
        let failures = webhooks
            .update(id, true, |s| {
                s.failures += 1;
                if s.failures >= limits.failures_max {
                    s.enabled = false;
                    s.disabled_reason = Some(format!("{} failed attempts in a row", s.failures));
                }
                s.failures
            })
            .unwrap_or(limits.failures_max);
        drop(webhooks);
        if failures < limits.failures_max {
            tokio::select! {
                _ = tokio::time::sleep(backoff(&limits, failures)) => {}
                _ = wake => {}
            }
        }
    }
}

impl Webhooks {
    /// Posts one page of events to the subscription's endpoint, signed, and records the
    /// attempt; true when the endpoint answered 2xx.
    async fn deliver(&self, sub: &Subscription, page: &elevens_feed::Page) -> bool {
        let events: Vec<serde_json::Value> = page.events.iter().map(|(p, e)| e.to_json(*p)).collect();
        let (first, last) = (page.events[0].0, page.events[page.events.len() - 1].0);
        let body =
            serde_json::to_vec(&Delivery { subscription: sub.id, events: &events }).unwrap_or_default();
        let sent_at = crate::engine::now_ms().0;
        let started = std::time::Instant::now();
        let (status, error) = match self.send(sub, body, sent_at, first, last).await {
            Ok(status) => (Some(status), None),
            Err(error) => (None, Some(error)),
        };
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        let attempt = Attempt {
            at: sent_at,
            first_position: first,
            last_position: last,
            events: events.len(),
            status,
            error,
            duration_ms: started.elapsed().as_millis() as u64,
            attempt: sub.failures + 1,
            ok,
        };
        self.record(sub.id, attempt);
        let result = if ok { "ok" } else { "failed" };
        metrics::counter!("elevens_webhook_deliveries_total", "result" => result).increment(1);
        ok
    }

    /// Sends one signed delivery: the endpoint's status, or why it was not reached. A literal
    /// address is judged here, a name by the client's guarded resolver, each time: what was
    /// allowed at creation may not be now.
    async fn send(
        &self,
        sub: &Subscription,
        body: Vec<u8>,
        sent_at: u64,
        first: u64,
        last: u64,
    ) -> Result<u16, String> {
        let url = reqwest::Url::parse(&sub.url).map_err(|e| e.to_string())?;
        self.resolver.policy.check_url(&url).map_err(|refusal| refusal.to_string())?;
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, sign(&sub.secret, sent_at / 1_000, &body))
            .header("elevens-subscription", sub.id.to_string())
            .header("elevens-delivery", format!("{}-{first}-{last}", sub.id))
            .body(body)
            .send()
            .await
            .map_err(|e| error_chain(&e.without_url()))?;
        Ok(response.status().as_u16())
    }

    /// Whether `url` may be subscribed: its literal address, or every address its name has
    /// now (a name that does not resolve yet is accepted: each delivery resolves it again).
    async fn check_endpoint(&self, url: &reqwest::Url) -> Result<(), Refusal> {
        self.resolver.policy.check_url(url)?;
        let Some(url::Host::Domain(name)) = url.host() else { return Ok(()) };
        let wait = Duration::from_millis(WEBHOOK_CREATE_RESOLVE_TIMEOUT_MS);
        match tokio::time::timeout(wait, self.resolver.resolve_checked(name)).await {
            Ok(Err(refusal @ Refusal::NotPublic(_))) => Err(refusal),
            _ => Ok(()),
        }
    }

    /// Changes a subscription without writing the file (the next [`Webhooks::update`] does).
    fn update_in_memory(&self, id: u64, change: impl FnOnce(&mut Subscription)) {
        if let Some(s) = self.stored.lock().subscriptions.get_mut(&id) {
            change(s);
        }
    }
}

// ---- the API ----

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// `http://` or `https://`, at most 2,048 bytes.
    pub url: String,
    /// Event types to send (default: all).
    pub types: Option<Vec<String>>,
    /// Only this merchant's events (admin; a merchant's subscription always has its own).
    pub merchant_id: Option<u64>,
    /// Begin after this position (default: the feed's head now: only what happens next).
    pub after: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub webhook_id: u64,
    pub url: String,
    pub types: Vec<String>,
    pub merchant_id: Option<u64>,
    pub created_at: u64,
    /// The last position the endpoint acknowledged.
    pub cursor: u64,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Failed attempts in a row.
    pub failures: u32,
    /// Only in the answer to its creation: the signing secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WebhookView {
    fn of(s: &Subscription, with_secret: bool) -> WebhookView {
        WebhookView {
            webhook_id: s.id,
            url: s.url.clone(),
            types: s.types.clone(),
            merchant_id: s.merchant,
            created_at: s.created_at,
            cursor: s.cursor,
            enabled: s.enabled,
            disabled_reason: s.disabled_reason.clone(),
            failures: s.failures,
            secret: with_secret.then(|| s.secret.clone()),
        }
    }
}

/// Admins manage every subscription, a merchant its own; other keys none.
fn owner_of(actor: Actor) -> Result<Option<u64>, ApiError> {
    match actor {
        Actor::Admin => Ok(None),
        Actor::Merchant(m) => Ok(Some(m.0)),
        _ => Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "webhooks need an admin or merchant key")),
    }
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such webhook")
}

/// The subscription `id` if `actor` may see it.
fn visible(app: &AppState, actor: Actor, id: u64) -> Result<Subscription, ApiError> {
    let owner = owner_of(actor)?;
    let stored = app.webhooks.stored.lock();
    let sub = stored.subscriptions.get(&id).ok_or_else(not_found)?;
    if owner.is_some() && sub.owner != owner {
        return Err(not_found());
    }
    Ok(sub.clone())
}

/// Subscribes a URL to events. The answer carries the signing secret, once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "events", request_body = CreateWebhook,
    responses((status = 201, body = WebhookView), (status = 200, body = WebhookView), (status = "4XX", body = ErrorBody)))]
pub async fn create_webhook(
    State(app): State<AppState>,
    Auth(actor): Auth,
    IdempotencyKey(key): IdempotencyKey,
    AppJson(request): AppJson<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    let owner = owner_of(actor)?;
    let request_hash = xxhash_rust::xxh3::xxh3_64(&serde_json::to_vec(&request).unwrap_or_default());
    let url = request.url.trim();
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    let parsed = reqwest::Url::parse(url).ok().filter(|_| scheme_ok && url.len() <= WEBHOOK_URL_BYTES_MAX);
    let Some(parsed) = parsed else {
        return Err(ApiError::bad_request(
            "invalid_url",
            "url is an http:// or https:// URL of at most 2,048 bytes",
        ));
    };
    let scoped = format!("{actor:?}/{key}");
    let hooks = &app.webhooks;
    // A retry gets the first answer, whatever its name resolves to now.
    if let Some(first) = replay(&hooks.stored.lock(), &scoped, request_hash) {
        return first;
    }
    if let Err(refusal) = hooks.check_endpoint(&parsed).await {
        return Err(ApiError::bad_request("private_url", refusal.to_string()));
    }
    let types = request.types.unwrap_or_else(|| elevens_feed::TYPES.iter().map(|t| t.to_string()).collect());
    if types.is_empty() {
        return Err(ApiError::bad_request("invalid_event_type", "types names at least one event type"));
    }
    crate::events::types_mask(Some(&types.join(",")))?;
    let merchant = match owner {
        Some(own) if request.merchant_id.is_some_and(|m| m != own) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "a merchant subscribes to its own events only",
            ))
        }
        Some(own) => Some(own),
        None => request.merchant_id,
    };
    let mut stored = hooks.stored.lock();
    // Again under the lock: the same key may have been created while the name resolved.
    if let Some(first) = replay(&stored, &scoped, request_hash) {
        return first;
    }
    if stored.subscriptions.len() >= WEBHOOKS_MAX {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_webhooks",
            "at most 100 webhooks; delete one first",
        ));
    }
    stored.next_id += 1;
    let id = stored.next_id;
    let secret = format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>()));
    let cursor = request.after.unwrap_or_else(|| hooks.feed.head());
    let sub = Subscription {
        id,
        url: url.to_string(),
        types,
        merchant,
        owner,
        secret,
        created_at: crate::engine::now_ms().0,
        cursor,
        enabled: true,
        disabled_reason: None,
        failures: 0,
        idempotency: scoped,
        request_hash,
    };
    let view = WebhookView::of(&sub, true);
    stored.subscriptions.insert(id, sub);
    hooks.save(&stored, true).map_err(|e| ApiError::internal(format!("saving the webhook: {e}")))?;
    drop(stored);
    hooks.spawn(id);
    Ok((StatusCode::CREATED, Json(view)))
}

/// The answer to the request that first used `scoped` (an actor's idempotency key), if one
/// did: the subscription, or a refusal when that request was another.
fn replay(
    stored: &Stored,
    scoped: &str,
    request_hash: u64,
) -> Option<Result<(StatusCode, Json<WebhookView>), ApiError>> {
    let sub = stored.subscriptions.values().find(|s| s.idempotency == scoped)?;
    if sub.request_hash != request_hash {
        return Some(Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            "this idempotency key was used with another request",
        )));
    }
    Some(Ok((StatusCode::OK, Json(WebhookView::of(sub, true)))))
}

/// The subscriptions this key may see (all for an admin, its own for a merchant).
#[utoipa::path(get, path = "/v1/webhooks", tag = "events",
    responses((status = 200, body = Vec<WebhookView>), (status = "4XX", body = ErrorBody)))]
pub async fn list_webhooks(
    State(app): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Vec<WebhookView>>, ApiError> {
    let owner = owner_of(actor)?;
    let stored = app.webhooks.stored.lock();
    let views = stored.subscriptions.values().filter(|s| owner.is_none() || s.owner == owner);
    Ok(Json(views.map(|s| WebhookView::of(s, false)).collect()))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "events",
    responses((status = 200, body = WebhookView), (status = "4XX", body = ErrorBody)))]
pub async fn get_webhook(
    State(app): State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(WebhookView::of(&visible(&app, actor, id)?, false)))
}

/// Stops the deliveries and forgets the subscription.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "events",
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
pub async fn delete_webhook(
    State(app): State<AppState>,
    Auth(actor): Auth,
    // Required like every write's; doing it twice is doing it once anyway.
    IdempotencyKey(_): IdempotencyKey,
    AppPath(id): AppPath<u64>,
) -> Result<StatusCode, ApiError> {
    visible(&app, actor, id)?;
    let hooks = &app.webhooks;
    let mut stored = hooks.stored.lock();
    stored.subscriptions.remove(&id);
    hooks.save(&stored, true).map_err(|e| ApiError::internal(format!("saving the webhooks: {e}")))?;
    if let Some(worker) = hooks.workers.lock().remove(&id) {
        worker.task.abort();
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Enables a disabled subscription again; it resumes from its cursor.
#[utoipa::path(post, path = "/v1/webhooks/{id}/enable", tag = "events",
    responses((status = 200, body = WebhookView), (status = "4XX", body = ErrorBody)))]
pub async fn enable_webhook(
    State(app): State<AppState>,
    Auth(actor): Auth,
    // Required like every write's; doing it twice is doing it once anyway.
    IdempotencyKey(_): IdempotencyKey,
    AppPath(id): AppPath<u64>,
) -> Result<Json<WebhookView>, ApiError> {
    visible(&app, actor, id)?;
    let hooks = &app.webhooks;
    let view = hooks
        .update(id, true, |s| {
            (s.enabled, s.disabled_reason, s.failures) = (true, None, 0);
            WebhookView::of(s, false)
        })
        .ok_or_else(not_found)?;
    if let Some(worker) = hooks.workers.lock().get(&id) {
        worker.changed.notify_one();
    }
    Ok(Json(view))
}

/// The last 100 delivery attempts, newest last (kept in memory: a restart begins afresh).
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "events",
    responses((status = 200, body = Vec<Attempt>), (status = "4XX", body = ErrorBody)))]
pub async fn list_deliveries(
    State(app): State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Result<Json<Vec<Attempt>>, ApiError> {
    visible(&app, actor, id)?;
    let workers = app.webhooks.workers.lock();
    Ok(Json(workers.get(&id).map(|w| w.attempts.iter().cloned().collect()).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_stripes_scheme() {
        // HMAC-SHA256("secret", "1700000000.{}"), computed independently with Python's hmac.
        let header = sign("secret", 1_700_000_000, b"{}");
        assert_eq!(
            header,
            "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
        assert_ne!(sign("secret", 1_700_000_001, b"{}"), header, "the time is signed");
        assert_ne!(sign("other", 1_700_000_000, b"{}"), header, "the secret is used");
    }

    /// A receiver on 127.0.0.1 that counts the deliveries it gets; its port.
    async fn counting_receiver() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { StatusCode::OK }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (port, count)
    }

    /// Webhooks over a feed of one event, with `rebind.test` resolving to 127.0.0.1 (a name
    /// no real resolver knows: a delivery that arrives went to the address given here).
    fn hooks_with_a_rebound_name(dir: &std::path::Path, allow: &[&str]) -> Arc<Webhooks> {
        let (mut writer, feed) =
            elevens_feed::FeedWriter::open(&dir.join("feed"), Default::default()).unwrap();
        let currency = elevens_feed::event::Code(elevens_core::Currency::parse("CNY").unwrap());
        let kind = elevens_feed::Kind::SkuCreated {
            sku: 1,
            title: "x".into(),
            description: String::new(),
            currency,
            price: 1,
            stock: 1,
        };
        writer
            .append(&[elevens_feed::FeedEvent { record: 1, at: 1, merchant: Some(1), buyer: None, kind }])
            .unwrap();
        let lookup: crate::egress::Lookup =
            Arc::new(|_| Box::pin(async { Ok(vec![std::net::IpAddr::from([127, 0, 0, 1])]) }));
        let limits = WebhookLimits {
            backoff_base_ms: 20,
            backoff_max_ms: 50,
            allow_ranges: allow.iter().map(|r| r.parse().unwrap()).collect(),
            ..WebhookLimits::default()
        };
        let hooks = Webhooks::start_with_lookup(dir, feed, limits, lookup).unwrap();
        std::mem::forget(writer);
        hooks
    }

    fn subscribe(hooks: &Arc<Webhooks>, url: String) -> u64 {
        let mut stored = hooks.stored.lock();
        stored.next_id += 1;
        let id = stored.next_id;
        let sub = Subscription {
            id,
            url,
            types: elevens_feed::TYPES.iter().map(|t| t.to_string()).collect(),
            merchant: None,
            owner: None,
            secret: "s".into(),
            created_at: 0,
            cursor: 0,
            enabled: true,
            disabled_reason: None,
            failures: 0,
            idempotency: String::new(),
            request_hash: 0,
        };
        stored.subscriptions.insert(id, sub);
        drop(stored);
        hooks.spawn(id);
        id
    }

    #[tokio::test]
    async fn webhooks_reach_the_inside_of_the_network_ssrf_a_rebound_name_is_refused_at_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let (port, delivered) = counting_receiver().await;
        let hooks = hooks_with_a_rebound_name(dir.path(), &[]);
        // Accepted at creation when the name does not resolve to a refused address then
        // (here: subscribed directly), and judged again at each delivery.
        let id = subscribe(&hooks, format!("http://rebind.test:{port}/hook"));
        let literal = subscribe(&hooks, format!("http://[::ffff:127.0.0.1]:{port}/hook"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(delivered.load(std::sync::atomic::Ordering::SeqCst), 0, "a private address was posted to");
        for id in [id, literal] {
            let attempts: Vec<Attempt> = hooks.workers.lock()[&id].attempts.iter().cloned().collect();
            assert!(
                !attempts.is_empty() && attempts.iter().all(|a| !a.ok && a.status.is_none()),
                "{attempts:?}"
            );
            let error = attempts[0].error.clone().unwrap_or_default();
            assert!(error.contains("not a public address"), "{error}");
        }
        let refused = hooks.check_endpoint(&reqwest::Url::parse("http://rebind.test/").unwrap()).await;
        assert!(matches!(refused, Err(Refusal::NotPublic(_))), "creation resolves the name: {refused:?}");
    }

    #[tokio::test]
    async fn an_allowed_range_is_delivered_to_at_the_address_the_guard_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let (port, delivered) = counting_receiver().await;
        let hooks = hooks_with_a_rebound_name(dir.path(), &["127.0.0.0/8"]);
        subscribe(&hooks, format!("http://rebind.test:{port}/hook"));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while delivered.load(std::sync::atomic::Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            delivered.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the pinned address got the delivery"
        );
    }

    #[test]
    fn backoff_doubles_to_its_ceiling_with_jitter_in_the_upper_half() {
        let limits =
            WebhookLimits { backoff_base_ms: 100, backoff_max_ms: 1_000, ..WebhookLimits::default() };
        for _ in 0..100 {
            assert!((50..=100).contains(&(backoff(&limits, 1).as_millis() as u64)));
            assert!((200..=400).contains(&(backoff(&limits, 3).as_millis() as u64)));
            assert!((500..=1_000).contains(&(backoff(&limits, 40).as_millis() as u64)));
        }
    }
}
