//! Work pools and their queues.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use baton_proto::v1::{PoolSpec, QueueSpec, WorkPool, WorkQueue};

use super::JsonBody;
use crate::api::{ApiResult, AppState};

pub async fn list_pools(State(state): State<AppState>) -> ApiResult<Json<Vec<WorkPool>>> {
    Ok(Json(state.store.pools().await?))
}

pub async fn create_pool(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<PoolSpec>,
) -> ApiResult<(StatusCode, Json<WorkPool>)> {
    Ok((StatusCode::CREATED, Json(state.store.create_pool(body).await?)))
}

pub async fn get_pool(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<WorkPool>> {
    Ok(Json(state.store.pool(&name).await?))
}

pub async fn delete_pool(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_pool(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn pause_pool(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<WorkPool>> {
    Ok(Json(state.store.set_pool_paused(&name, true).await?))
}

pub async fn resume_pool(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<WorkPool>> {
    Ok(Json(state.store.set_pool_paused(&name, false).await?))
}

pub async fn upsert_queue(
    State(state): State<AppState>,
    Path((pool, queue)): Path<(String, String)>,
    JsonBody(spec): JsonBody<QueueSpec>,
) -> ApiResult<Json<WorkPool>> {
    let queue = WorkQueue {
        name: queue,
        priority: spec.priority,
        concurrency_limit: spec.concurrency_limit,
        paused: spec.paused,
    };
    Ok(Json(state.store.upsert_queue(&pool, &queue).await?))
}
