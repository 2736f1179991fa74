//! Automations.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use baton_proto::v1::{Automation, AutomationSpec};

use super::JsonBody;
use crate::api::{ApiResult, AppState};

pub async fn list_automations(State(state): State<AppState>) -> ApiResult<Json<Vec<Automation>>> {
    Ok(Json(state.store.automations().await?))
}

pub async fn create_automation(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<AutomationSpec>,
) -> ApiResult<(StatusCode, Json<Automation>)> {
    let automation = state.store.create_automation(body).await?;
    state.automations.reload();
    Ok((StatusCode::CREATED, Json(automation)))
}

pub async fn get_automation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Automation>> {
    Ok(Json(state.store.automation(&id).await?))
}

pub async fn pause_automation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Automation>> {
    let automation = state.store.set_automation_paused(&id, true).await?;
    state.automations.reload();
    Ok(Json(automation))
}

pub async fn resume_automation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Automation>> {
    let automation = state.store.set_automation_paused(&id, false).await?;
    state.automations.reload();
    Ok(Json(automation))
}

pub async fn delete_automation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_automation(&id).await?;
    state.automations.reload();
    Ok(StatusCode::NO_CONTENT)
}
