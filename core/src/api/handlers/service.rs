//! The core itself: its health, its metrics and its API document.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use baton_proto::v1::Health;

use crate::api::{ApiResult, AppState};
use crate::metrics::{PoolLabels, QueueLabels};

/// How long `/api/health` waits for the database: it answers within its
/// own time even while the database does not.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let store = match tokio::time::timeout(HEALTH_TIMEOUT, state.store.ping()).await {
        Err(_) => "unreachable",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: the database failed");
            "failing"
        }
        Ok(Ok(())) if state.store.is_full() => "full",
        Ok(Ok(())) => "ok",
    };
    let ok = store == "ok";
    let health = Health {
        status: if ok { "ok" } else { "degraded" }.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        database: format!("{:?}", state.store.dialect()).to_lowercase(),
        store: store.to_owned(),
        core_id: state.dispatcher.core_id().to_owned(),
    };
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(health))
}

/// The metrics, with the gauges read now.
pub async fn metrics(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let metrics = state.store.metrics();
    let waiting = state.store.runs_waiting().await?;
    metrics.runs_waiting.clear();
    for (pool, queue, count) in waiting {
        metrics.runs_waiting.get_or_create(&QueueLabels { pool, queue }).set(count);
    }
    metrics.agents_connected.clear();
    for (pool, count) in state.dispatcher.connected_per_pool() {
        metrics.agents_connected.get_or_create(&PoolLabels { pool }).set(count);
    }
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], metrics.encode()))
}

pub async fn openapi_document() -> Json<serde_json::Value> {
    Json(crate::api::document())
}
