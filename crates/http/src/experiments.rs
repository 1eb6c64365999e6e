//! A/B experiments: defining one and reading it (its results are in `live.rs`).

use crate::api::*;
use crate::error::{ApiError, ErrorBody};
use crate::views::*;
use elevens_core::*;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Relative share of buyers (1 to 10,000).
    pub weight: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExperimentRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// 2 to 8 variants; the first is the control.
    pub variants: Vec<VariantRequest>,
    pub starts_at: u64,
    pub ends_at: u64,
}

/// Define an A/B experiment (admin). Each buyer's variant is a stable hash of experiment and
/// buyer; storefronts ask `GET /v1/experiments/{id}/variant` and report views.
#[utoipa::path(post, path = "/v1/experiments", tag = "analytics", request_body = CreateExperimentRequest,
    responses((status = 201, body = ExperimentView), (status = "4XX", body = ErrorBody)))]
pub async fn create_experiment(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CreateExperimentRequest>,
) -> Answer {
    if request.variants.len() > elevens_core::limits::EXPERIMENT_VARIANTS_MAX {
        return Err(ApiError::out_of_bounds("variants", "an experiment has 2 to 8 variants"));
    }
    let command = Command::CreateExperiment(NewExperiment {
        name: request.name,
        variants: request.variants.into_iter().map(|v| Variant { name: v.name, weight: v.weight }).collect(),
        starts_at: Millis(request.starts_at),
        ends_at: Millis(request.ends_at),
    });
    write(&app, actor, &key, command, CREATED).await
}

/// An experiment's definition.
#[utoipa::path(get, path = "/v1/experiments/{id}", tag = "analytics",
    responses((status = 200, body = ExperimentView), (status = "4XX", body = ErrorBody)))]
pub async fn get_experiment(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::Experiment(ExperimentId(id))).await
}
