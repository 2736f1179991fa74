//! Deployments: list, upsert, read, delete, pause and resume.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use baton_proto::v1::{Deployment, DeploymentSpec};
use serde::Deserialize;

use super::{DryRun, JsonBody, digest};
use crate::api::{ApiFailure, ApiResult, AppState};
use crate::store::DeploymentFilter;

#[derive(Deserialize)]
pub struct DeploymentQuery {
    flow: Option<String>,
    tag: Option<String>,
    paused: Option<bool>,
}

pub async fn list_deployments(
    State(state): State<AppState>,
    Query(query): Query<DeploymentQuery>,
) -> ApiResult<Json<Vec<Deployment>>> {
    let filter = DeploymentFilter { flow: query.flow, tag: query.tag, paused: query.paused };
    Ok(Json(state.store.deployments(&filter).await?))
}

pub async fn upsert_deployment(
    State(state): State<AppState>,
    Path((flow, name)): Path<(String, String)>,
    Query(query): Query<DryRun>,
    JsonBody(spec): JsonBody<DeploymentSpec>,
) -> ApiResult<axum::response::Response> {
    if spec.artifact.is_empty() {
        return Err(ApiFailure::bad_request(
            "`artifact` (the digest of an uploaded component) is required",
        ));
    }
    let artifact = state.store.artifact(&digest(&spec.artifact)).await?;
    let spec = DeploymentSpec { artifact: artifact.digest.clone(), ..spec };
    if query.dry_run {
        state.store.check_deployment(&flow, &name, &spec, &artifact).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let upserted = state.store.upsert_deployment(&flow, &name, spec, &artifact).await?;
    let status = if upserted.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(upserted)).into_response())
}

pub async fn get_deployment(
    State(state): State<AppState>,
    Path((flow, name)): Path<(String, String)>,
) -> ApiResult<Json<Deployment>> {
    Ok(Json(state.store.deployment(&flow, &name).await?))
}

pub async fn delete_deployment(
    State(state): State<AppState>,
    Path((flow, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.store.delete_deployment(&flow, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn pause_deployment(
    State(state): State<AppState>,
    Path((flow, name)): Path<(String, String)>,
) -> ApiResult<Json<Deployment>> {
    Ok(Json(state.store.set_deployment_paused(&flow, &name, true).await?))
}

pub async fn resume_deployment(
    State(state): State<AppState>,
    Path((flow, name)): Path<(String, String)>,
) -> ApiResult<Json<Deployment>> {
    Ok(Json(state.store.set_deployment_paused(&flow, &name, false).await?))
}
