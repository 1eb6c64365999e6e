//! A/B experiments as the API shows them.

use crate::*;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct VariantView {
    pub name: String,
    pub weight: u32,
}

/// An A/B experiment's definition; its results are at `/v1/experiments/{id}/results`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentView {
    pub experiment_id: u64,
    pub name: String,
    /// The first is the control.
    pub variants: Vec<VariantView>,
    pub starts_at: u64,
    pub ends_at: u64,
}

pub fn experiment_view(id: ExperimentId, e: &NewExperiment) -> View {
    View::Experiment(ExperimentView {
        experiment_id: id.0,
        name: e.name.clone(),
        variants: e.variants.iter().map(|v| VariantView { name: v.name.clone(), weight: v.weight }).collect(),
        starts_at: e.starts_at.0,
        ends_at: e.ends_at.0,
    })
}
