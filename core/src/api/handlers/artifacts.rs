//! Flow components: upload (read by the sandbox), metadata and bytes; the
//! flows they hold.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use baton_proto::v1::{Artifact, FlowSummary};

use super::digest;
use crate::api::{ApiFailure, ApiResult, AppState};

pub async fn upload_artifact(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Artifact>)> {
    let too_large =
        |size: usize| baton_sandbox::LoadError::TooLarge { size, limit: state.max_artifact_bytes };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        // Over the body limit: the size is what the client declared.
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let declared = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(state.max_artifact_bytes.saturating_add(1));
            return Err(too_large(declared).into());
        }
        Err(rejection) => return Err(ApiFailure::bad_request(rejection.body_text())),
    };
    if bytes.len() > state.max_artifact_bytes {
        return Err(too_large(bytes.len()).into());
    }
    let sandbox = state.sandbox.clone();
    let wasm = bytes.clone();
    // Compiling is CPU work; keep it off the async workers.
    let flow = tokio::task::spawn_blocking(move || sandbox.load(&wasm)).await.map_err(|e| {
        ApiFailure::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    })??;
    let info = match state.sandbox.describe(&flow).await {
        Ok(info) => info,
        Err(refused) => {
            // Nothing of a refused component stays behind.
            state.sandbox.forget(&flow.digest());
            return Err(refused.into());
        }
    };
    let (artifact, created) =
        state.store.put_artifact(&format!("sha256:{}", flow.digest()), &info, &bytes).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(artifact)))
}

pub async fn artifact_info(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> ApiResult<Json<Artifact>> {
    Ok(Json(state.store.artifact(&digest(&raw)).await?))
}

pub async fn artifact_content(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let bytes = state.store.artifact_bytes(&digest(&raw)).await?;
    Ok(([(header::CONTENT_TYPE, "application/wasm")], bytes))
}

pub async fn list_flows(State(state): State<AppState>) -> ApiResult<Json<Vec<FlowSummary>>> {
    Ok(Json(state.store.flows().await?))
}
