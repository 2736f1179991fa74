//! Automations: every change goes through the engine's commands
//! ([`crate::automations::Automations`]), which reload what it watches.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use baton_proto::v1::{Automation, AutomationSpec};

use super::{DryRun, JsonBody};
use crate::api::{ApiResult, AppState};

pub async fn list_automations(State(state): State<AppState>) -> ApiResult<Json<Vec<Automation>>> {
    Ok(Json(state.store.automations().await?))
}

pub async fn create_automation(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<AutomationSpec>,
) -> ApiResult<(StatusCode, Json<Automation>)> {
    Ok((StatusCode::CREATED, Json(state.automations.create(body).await?)))
}

pub async fn put_automation(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<DryRun>,
    JsonBody(body): JsonBody<AutomationSpec>,
) -> ApiResult<Response> {
    Ok(match state.automations.put(&id, body, query.dry_run).await? {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(put) => {
            let status = if put.created { StatusCode::CREATED } else { StatusCode::OK };
            (status, Json(put.automation)).into_response()
        }
    })
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
    Ok(Json(state.automations.set_paused(&id, true).await?))
}

pub async fn resume_automation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Automation>> {
    Ok(Json(state.automations.set_paused(&id, false).await?))
}

pub async fn delete_automation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.automations.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
