//! Operations: health, the cluster's view of itself, the audit.

use crate::api::*;
use crate::error::{ApiError, ErrorBody};
use crate::views::*;
use axum::http::StatusCode;
use axum::Json;
use elevens_admission::Refusal;
use elevens_core::*;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// A node's place in its cluster.
#[derive(Serialize, ToSchema)]
pub struct ClusterView {
    /// `embedded` (the data directory's journal, alone) or `replicated` (NATS JetStream).
    pub mode: &'static str,
    /// `leader`, `follower`, or `halted` (the stream cannot be applied past a message).
    pub role: &'static str,
    /// Whether writes are taken here now.
    pub writable: bool,
    /// The last record durable and applied here.
    pub applied: u64,
    /// Replicated: this node's and the leader's addresses, the lease's term.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    /// Replicated: the last stream message applied here, the stream's last, the difference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_applied: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_last: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_messages: Option<u64>,
    /// Replicated: messages refused by elevens' checks on the stream, and why this node stopped
    /// following, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_frames: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halted: Option<String>,
}

/// The node's place in its cluster: role, leader, records applied, lag behind the stream.
/// Operational figures only, no business data: no key needed, like `/healthz`.
#[utoipa::path(get, path = "/v1/cluster", tag = "ops", responses((status = 200, body = ClusterView)))]
pub async fn cluster(axum::extract::State(app): axum::extract::State<AppState>) -> Json<ClusterView> {
    use std::sync::atomic::Ordering;
    let engine = &app.engine;
    let mut view = ClusterView {
        mode: "embedded",
        role: "leader",
        writable: engine.writable(),
        applied: engine.durable_seq(),
        node: None,
        leader: None,
        term: None,
        stream_applied: None,
        stream_last: None,
        lag_messages: None,
        refused_frames: None,
        halted: None,
    };
    if let Some(replica) = &engine.replica {
        let stream_applied = replica.stream_applied.load(Ordering::Acquire);
        let stream_last = replica.stream_last.load(Ordering::Acquire).max(stream_applied);
        view = ClusterView {
            mode: "replicated",
            role: replica.role(),
            node: Some(replica.node.clone()),
            leader: replica.leader.lock().clone(),
            term: Some(replica.term.load(Ordering::Acquire)),
            stream_applied: Some(stream_applied),
            stream_last: Some(stream_last),
            lag_messages: Some(stream_last - stream_applied),
            refused_frames: Some(replica.refused_frames.load(Ordering::Acquire)),
            halted: replica.halted.lock().clone(),
            ..view
        };
    }
    Json(view)
}

/// Check every invariant and return the digest of the whole state (admin).
#[utoipa::path(get, path = "/v1/audit", tag = "ops",
    responses((status = 200, body = AuditView), (status = "4XX", body = ErrorBody)))]
pub async fn audit(axum::extract::State(app): axum::extract::State<AppState>, Auth(actor): Auth) -> Answer {
    if actor != Actor::Admin {
        return Err(ApiError::forbidden_key());
    }
    let report = app.engine.auditor.audit().await.map_err(|e| match e {
        crate::audit::AuditError::Busy => ApiError::from(Refusal::Overloaded { retry_after: AUDIT_RETRY }),
        crate::audit::AuditError::Unavailable(why) => {
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "journal_unavailable",
                format!("the replicated journal cannot be read now; retry after the delay: {why}"),
            );
            e.body.retry_after_ms = Some(AUDIT_RETRY / 1_000_000);
            e
        }
        crate::audit::AuditError::Read(error) => {
            ApiError::internal(format!("reading the durable state: {error}"))
        }
    })?;
    Ok((OK, Json(View::Audit(report.into()))))
}

/// How long a client asking for an audit while one runs is told to wait, in ns.
pub(crate) const AUDIT_RETRY: u64 = 1_000_000_000;
