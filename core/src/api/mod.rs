//! The REST API (axum): the one door to the core for the CLI, the UI and
//! anyone's scripts. It knows no SQL: handlers call the store and the
//! artifact checks, [`routes`] declares every route once, and [`error`]
//! turns failures into responses.

mod error;
mod handlers;
mod openapi;
mod routes;
mod ui;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use baton_sandbox::Sandbox;

pub use error::{ApiFailure, ApiResult};
pub use openapi::document;
pub use routes::{ROUTES, RouteDoc};

use crate::automations::Automations;
use crate::dispatch::Dispatcher;
use crate::feed::Feed;
use crate::scheduler::Scheduler;
use crate::store::Store;

/// The largest request body but a component's: room for parameters at
/// their limit (1 MiB) and what comes with them.
pub(crate) const JSON_BODY_LIMIT: usize = 2 << 20;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Reads an uploaded component's `describe` under tight limits.
    pub sandbox: Arc<Sandbox>,
    /// When set, every request but `GET /api/health` must carry
    /// `Authorization: Bearer <token>`.
    pub api_token: Option<Arc<str>>,
    pub max_artifact_bytes: usize,
    /// Woken when a run is created; tells agents about cancellations.
    pub dispatcher: Dispatcher,
    /// Woken when schedules change.
    pub scheduler: Scheduler,
    /// New events, for the live stream.
    pub feed: Feed,
    /// Told when automations change.
    pub automations: Automations,
    /// Where agents reach the core, and the fingerprint their tokens pin.
    pub link: Option<LinkInfo>,
}

/// What an agent token must carry about the core's QUIC side.
#[derive(Debug, Clone)]
pub struct LinkInfo {
    pub address: std::net::SocketAddr,
    pub fingerprint: String,
}

/// The API's router, made from the route table: the public routes (see
/// [`routes::is_public`]) outside the token check, the rest behind it.
pub fn router(state: AppState) -> Router {
    let mut public = Router::new();
    let mut guarded = Router::new();
    // A path listed under several methods merges into one method router.
    for (path, mut handler) in routes::method_routers() {
        if path == "/api/artifacts" {
            // Room for the artifact limit plus a little, so the handler can
            // answer an oversized upload with a clear message.
            let limit = state.max_artifact_bytes.saturating_add(1024);
            handler = handler.layer(DefaultBodyLimit::max(limit));
        }
        if routes::is_public(path) {
            public = public.route(path, handler);
        } else {
            guarded = guarded.route(path, handler);
        }
    }
    let guarded = guarded.route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    public
        .merge(guarded)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .with_state(state)
}

async fn require_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Result<Response, ApiFailure> {
    if let Some(token) = &state.api_token {
        // A browser's EventSource cannot send headers: the streams (events,
        // a run's logs) also take the token as `?token=`.
        let from_query = || {
            (request.method() == axum::http::Method::GET
                && request.uri().path().ends_with("/stream"))
            .then(|| request.uri().query())
            .flatten()
            .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("token=")))
        };
        let presented = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(from_query);
        // Compare without an early exit, so timing says nothing of the token.
        let matches = presented.is_some_and(|p| {
            p.len() == token.len()
                && p.bytes().zip(token.bytes()).fold(0, |acc, (a, b)| acc | (a ^ b)) == 0
        });
        if !matches {
            return Err(ApiFailure::unauthorized(
                "missing or wrong API token: send `Authorization: Bearer <token>` (BATON_API_TOKEN)",
            ));
        }
    }
    Ok(next.run(request).await)
}

/// Paths outside the API are the web UI's: its files, or its page for
/// every route it has (`/runs/ID`), so any page's URL can be opened.
async fn not_found(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path();
    let api = path.starts_with("/api/") || path == "/api" || path.starts_with("/hooks/");
    if !api && (method == axum::http::Method::GET || method == axum::http::Method::HEAD) {
        return ui::serve(path, &headers);
    }
    ApiFailure::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint; see /api/openapi.json")
        .into_response()
}
