//! The core itself: its health and its API document.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use baton_proto::v1::Health;

use crate::api::AppState;

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

pub async fn openapi_document() -> Json<serde_json::Value> {
    Json(crate::api::document())
}
