//! Secrets (sealed at rest; values only by name).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use baton_proto::v1::{SecretInfo, SecretValue, SetValue};

use super::JsonBody;
use crate::api::{ApiResult, AppState};

pub async fn list_secrets(State(state): State<AppState>) -> ApiResult<Json<Vec<SecretInfo>>> {
    Ok(Json(state.store.secrets().await?))
}

pub async fn set_secret(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<SetValue>,
) -> ApiResult<Json<SecretInfo>> {
    Ok(Json(state.store.set_secret(&name, &body.value).await?))
}

pub async fn get_secret(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<SecretValue>> {
    let value = state.store.secret(&name).await?;
    Ok(Json(SecretValue { name, value }))
}

pub async fn delete_secret(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_secret(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
