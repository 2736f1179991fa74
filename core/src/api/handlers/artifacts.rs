//! Flow components: upload (read by the sandbox), metadata and bytes.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use baton_proto::v1::Artifact;

use super::digest;
use crate::api::{ApiFailure, ApiResult, AppState};

pub async fn upload_artifact(
    State(state): State<AppState>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<Artifact>)> {
    if bytes.len() > state.max_artifact_bytes {
        return Err(baton_sandbox::LoadError::TooLarge {
            size: bytes.len(),
            limit: state.max_artifact_bytes,
        }
        .into());
    }
    let sandbox = state.sandbox.clone();
    let wasm = bytes.clone();
    // Compiling is CPU work; keep it off the async workers.
    let flow = tokio::task::spawn_blocking(move || sandbox.load(&wasm)).await.map_err(|e| {
        ApiFailure::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    })??;
    let info = state.sandbox.describe(&flow).await?;
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
