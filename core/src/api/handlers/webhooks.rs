//! Incoming webhooks and the calls to them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use baton_proto::v1::{Event, SIGNATURE_HEADER, Webhook, WebhookSpec};

use super::{JsonBody, raw_body};
use crate::api::{ApiFailure, ApiResult, AppState};

pub async fn list_webhooks(State(state): State<AppState>) -> ApiResult<Json<Vec<Webhook>>> {
    Ok(Json(state.store.webhooks().await?))
}

pub async fn create_webhook(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<WebhookSpec>,
) -> ApiResult<(StatusCode, Json<Webhook>)> {
    Ok((StatusCode::CREATED, Json(state.store.create_webhook(body).await?)))
}

pub async fn delete_webhook(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_webhook(&slug).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /hooks/{slug}`: an outside call becomes an event. A webhook with a
/// secret needs `X-Baton-Signature: sha256=<hex HMAC-SHA256 of the body>`.
pub async fn receive_webhook(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Event>)> {
    let bytes = raw_body(bytes)?;
    let (hook, secret) = state.store.webhook(&slug).await?;
    if let Some(secret) = secret {
        let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
        if !crate::hooks::signature_matches(&secret, &bytes, signature) {
            return Err(ApiFailure::unauthorized(format!(
                "missing or wrong {SIGNATURE_HEADER}: expected sha256=<hex HMAC-SHA256 of the body with the webhook's secret>"
            )));
        }
    }
    let payload = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::json!({ "body": String::from_utf8_lossy(&bytes) }));
    let event = state
        .store
        .record_event(&hook.event, format!("webhook/{slug}"), Vec::new(), payload)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(event)))
}
