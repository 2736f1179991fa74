//! API tokens: made with a scope, listed without their secrets, revoked.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use baton_proto::v1::{ApiTokenCreated, ApiTokenInfo, CreateApiToken};

use super::JsonBody;
use crate::api::{ApiResult, AppState};

pub async fn list_api_tokens(State(state): State<AppState>) -> ApiResult<Json<Vec<ApiTokenInfo>>> {
    Ok(Json(state.store.api_tokens().await?))
}

pub async fn create_api_token(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<CreateApiToken>,
) -> ApiResult<(StatusCode, Json<ApiTokenCreated>)> {
    let (info, token) =
        state.store.create_api_token(request.scope, request.name.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(ApiTokenCreated { info, token })))
}

pub async fn revoke_api_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.revoke_api_token(&id).await?;
    // This core stops taking it at once; others when their memory of it
    // runs out.
    state.auth.forget();
    Ok(StatusCode::NO_CONTENT)
}
