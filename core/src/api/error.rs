//! The API's one error type, and the one place that turns failures into an
//! HTTP status and a JSON body. Internals (SQL, server paths) never leak:
//! database failures are logged and answered with a generic message.

use axum::Json;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use baton_proto::v1::{ApiError, FieldError, ParamErrors};
use baton_sandbox::LoadError;

use crate::store::StoreError;

/// A failed request.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub body: ApiError,
}

impl ApiFailure {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ApiError { code: code.to_owned(), message: message.into(), fields: Vec::new() },
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

fn invalid_parameters(errors: &ParamErrors) -> ApiFailure {
    let fields = match errors {
        ParamErrors::Invalid(errors) => errors
            .iter()
            .map(|e| FieldError { field: e.field.clone(), message: e.message.clone() })
            .collect(),
        ParamErrors::BadSchema(_) => Vec::new(),
    };
    ApiFailure {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        body: ApiError {
            code: "invalid_parameters".to_owned(),
            message: format!("invalid parameters: {errors}"),
            fields,
        },
    }
}

impl From<StoreError> for ApiFailure {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::NotFound { .. } => {
                Self::new(StatusCode::NOT_FOUND, "not_found", error.to_string())
            }
            StoreError::Conflict(message) => {
                Self::new(StatusCode::CONFLICT, "conflict", message.clone())
            }
            StoreError::Invalid(message) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message.clone())
            }
            StoreError::InvalidParameters(errors) => invalid_parameters(errors),
            StoreError::TooLarge(message) => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message.clone())
            }
            StoreError::Secret(message) => {
                tracing::error!("secret storage failed: {message}");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "secret_unreadable", message.clone())
            }
            StoreError::Stale { .. } => {
                Self::new(StatusCode::CONFLICT, "stale_attempt", error.to_string())
            }
            StoreError::StorageFull(_) | StoreError::Database(_) if error.is_storage_full() => {
                tracing::error!("store failure: {error}");
                Self::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "storage_full",
                    "the core's database is out of space: nothing was written; free space and retry",
                )
            }
            StoreError::Database(_)
            | StoreError::StorageFull(_)
            | StoreError::Migration(_)
            | StoreError::Corrupt(_) => {
                tracing::error!("store failure: {error}");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the core's database failed; see its log",
                )
            }
        }
    }
}

impl From<LoadError> for ApiFailure {
    fn from(error: LoadError) -> Self {
        let (status, code) = match &error {
            LoadError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "component_too_large"),
            LoadError::NotWasm | LoadError::CoreModule | LoadError::Corrupt(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "not_a_component")
            }
            LoadError::NotAFlow(_) => (StatusCode::UNPROCESSABLE_ENTITY, "not_a_flow"),
        };
        Self::new(status, code, error.to_string())
    }
}

pub type ApiResult<T> = Result<T, ApiFailure>;

/// Longest text of axum's own error answers carried into the JSON error.
const MAX_PLAIN_ERROR: usize = 16 << 10;

/// Answers the errors axum makes by itself (a query string or a path
/// segment its extractors refuse, a method the route lacks) in the API's
/// JSON error too, as every other failure is.
pub(super) async fn json_errors(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let api = path.starts_with("/api/") || path.starts_with("/hooks/");
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if !api || json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_PLAIN_ERROR)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let reason = status.canonical_reason().unwrap_or("error");
    let code = reason.to_lowercase().replace(' ', "_");
    let message = if text.is_empty() { reason.to_lowercase() } else { text };
    let mut answer = ApiFailure::new(status, &code, message).into_response();
    // What else axum said (`Allow` on a 405, say) still holds.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}
