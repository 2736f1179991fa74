//! Deployments: list, upsert, read, delete, pause and resume.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use baton_proto::v1::{Deployment, DeploymentSpec, DeploymentUpserted};
use serde::Deserialize;

use super::{JsonBody, digest};
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
    JsonBody(spec): JsonBody<DeploymentSpec>,
) -> ApiResult<(StatusCode, Json<DeploymentUpserted>)> {
    if spec.artifact.is_empty() {
        return Err(ApiFailure::bad_request(
            "`artifact` (the digest of an uploaded component) is required",
        ));
    }
    let artifact = state.store.artifact(&digest(&spec.artifact)).await?;
    let spec = DeploymentSpec { artifact: artifact.digest.clone(), ..spec };
    let upserted = state.store.upsert_deployment(&flow, &name, spec, &artifact).await?;
    Ok((if upserted.created { StatusCode::CREATED } else { StatusCode::OK }, Json(upserted)))
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
