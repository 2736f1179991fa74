//! The REST API (axum): the one door to the core for the CLI, the UI and
//! anyone's scripts. It knows no SQL: handlers call the store and the
//! artifact checks, [`routes`] declares every route once (with who may
//! call it, checked by [`auth`]), and [`error`] turns failures into
//! responses.

mod auth;
mod body;
mod error;
mod handlers;
mod openapi;
mod routes;
mod ui;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse as _, Response};
use baton_sandbox::Sandbox;

pub use auth::{Access, Auth};
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
    /// Callers' tokens and what they may do.
    pub auth: Auth,
    pub max_artifact_bytes: usize,
    /// Woken when a run is created; tells agents about cancellations.
    pub dispatcher: Dispatcher,
    /// Woken when schedules change.
    pub scheduler: Scheduler,
    /// New events, for the live stream.
    pub feed: Feed,
    /// Answers subflow calls of runners in pods.
    pub subflows: crate::subflows::Subflows,
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

/// The API's router, made from the route table: each route behind the
/// check of its access (see [`auth`]).
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    // A path listed under several methods merges into one method router;
    // each method keeps its own check.
    for (path, access, handler) in routes::method_routers() {
        let mut handler = handler.route_layer(middleware::from_fn_with_state(
            Arc::new(auth::Guard { auth: state.auth.clone(), store: state.store.clone(), access }),
            auth::authorize,
        ));
        if path == "/api/artifacts" {
            // Room for the artifact limit plus a little, so the handler can
            // answer an oversized upload with a clear message.
            let limit = state.max_artifact_bytes.saturating_add(1024);
            handler = handler.layer(DefaultBodyLimit::max(limit));
        }
        router = router.route(path, handler);
    }
    router
        .fallback(not_found)
        .layer(middleware::from_fn(error::json_errors))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .with_state(state)
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
