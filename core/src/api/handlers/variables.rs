//! Variables.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use baton_proto::v1::{SetValue, Variable};

use super::JsonBody;
use crate::api::{ApiResult, AppState};

pub async fn list_variables(State(state): State<AppState>) -> ApiResult<Json<Vec<Variable>>> {
    Ok(Json(state.store.variables().await?))
}

pub async fn set_variable(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<SetValue>,
) -> ApiResult<Json<Variable>> {
    Ok(Json(state.store.set_variable(&name, &body.value).await?))
}

pub async fn get_variable(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Variable>> {
    Ok(Json(state.store.variable(&name).await?))
}

pub async fn delete_variable(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_variable(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
