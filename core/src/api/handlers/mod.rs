//! The API's handlers, one module per resource; each turns HTTP into a
//! store or command call and back. What several of them share lives here.

pub mod agents;
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
use axum::extract::rejection::JsonRejection;

use crate::api::{ApiFailure, ApiResult};

/// The body, or a 400 that says what is wrong with it.
fn body<T>(payload: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    payload
        .map(|Json(value)| value)
        .map_err(|rejection| ApiFailure::bad_request(rejection.body_text()))
}

/// `sha256:<hex>` whether or not the prefix was given.
fn digest(raw: &str) -> String {
    if raw.starts_with("sha256:") { raw.to_owned() } else { format!("sha256:{raw}") }
}
