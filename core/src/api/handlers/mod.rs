//! The API's handlers, one module per resource; each turns HTTP into a
//! store or command call and back. What several of them share lives here.

pub mod agents;
pub mod api_tokens;
pub mod artifacts;
pub mod automations;
pub mod deployments;
pub mod events;
pub mod logs;
pub mod pools;
pub mod runs;
pub mod schedules;
pub mod secrets;
pub mod service;
pub mod variables;
pub mod webhooks;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::StatusCode;

use crate::api::{ApiFailure, ApiResult};

/// The body, or a 400 that says what is wrong with it (413 with the limit
/// when it is too large).
fn body<T>(payload: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    payload
        .map(|Json(value)| value)
        .map_err(|rejection| refused_body(rejection.status(), rejection.body_text()))
}

/// A raw body, or 413 with the limit when it is too large.
fn raw_body(payload: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    payload.map_err(|rejection| refused_body(rejection.status(), rejection.body_text()))
}

/// A body axum refused: 413 with the limit when it was too large, else a
/// 400 that says why.
fn refused_body(status: StatusCode, why: String) -> ApiFailure {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        let limit = baton_proto::v1::limits::human_bytes(super::JSON_BODY_LIMIT);
        ApiFailure::new(
            status,
            "too_large",
            format!("the request body is over the limit of {limit}"),
        )
    } else {
        ApiFailure::bad_request(why)
    }
}

/// `sha256:<hex>` whether or not the prefix was given.
fn digest(raw: &str) -> String {
    if raw.starts_with("sha256:") { raw.to_owned() } else { format!("sha256:{raw}") }
}
