//! Who may call what. Each route's [`Access`] is declared in the route
//! table; a caller's scope comes from its token: the core's own
//! `--api-token` is an admin token, and API tokens made through the API
//! carry their own scope. Without `--api-token` (a core on loopback) a
//! caller without a token may do everything but read secret values.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use baton_proto::v1::{ApiScope, split_api_token};
use sha2::{Digest as _, Sha256};

use super::ApiFailure;
use crate::store::Store;

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the health check, and webhooks (which carry their own
    /// signatures).
    Public,
    Read,
    Run,
    Admin,
    /// An admin token, even on a core without `--api-token`: reading a
    /// secret's value.
    SecretValue,
}

impl Access {
    /// The scope a token needs; `None` for public routes.
    pub fn scope(self) -> Option<ApiScope> {
        match self {
            Access::Public => None,
            Access::Read => Some(ApiScope::Read),
            Access::Run => Some(ApiScope::Run),
            Access::Admin | Access::SecretValue => Some(ApiScope::Admin),
        }
    }
}

/// How long a token's answer is trusted before the database is asked
/// again: how long a token revoked on another core still works here.
const REMEMBER_FOR: Duration = Duration::from_secs(5);

/// Most token answers remembered (a caller trying random tokens only
/// makes the cache start over).
const REMEMBER_AT_MOST: usize = 4096;

/// The core's token check: its own admin token, and recent answers about
/// API tokens (keyed by the token's hash, never the token).
#[derive(Clone, Default)]
pub struct Auth {
    admin_token: Option<Arc<str>>,
    remembered: Arc<Mutex<Remembered>>,
}

/// Answers about tokens, by the token's SHA-256: its scope (`None`: no
/// such token) and when the database said so.
type Remembered = HashMap<[u8; 32], (Option<ApiScope>, Instant)>;

impl Auth {
    /// `admin_token`: the core's `--api-token`; with it, every caller but
    /// of a public route must send a token.
    pub fn new(admin_token: Option<String>) -> Self {
        Self { admin_token: admin_token.map(Arc::from), ..Self::default() }
    }

    /// Forgets every remembered answer (a token was revoked here).
    pub fn forget(&self) {
        self.remembered.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// The scope of `token`; `None` if no token is like it.
    async fn scope_of(&self, store: &Store, token: &str) -> Result<Option<ApiScope>, ApiFailure> {
        if token.is_empty() {
            return Ok(None);
        }
        if let Some(admin) = &self.admin_token
            && equal_in_constant_time(admin.as_bytes(), token.as_bytes())
        {
            return Ok(Some(ApiScope::Admin));
        }
        let Some((id, secret)) = split_api_token(token) else { return Ok(None) };
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let remembered =
            self.remembered.lock().unwrap_or_else(PoisonError::into_inner).get(&key).copied();
        if let Some((scope, at)) = remembered
            && at.elapsed() < REMEMBER_FOR
        {
            return Ok(scope);
        }
        let scope = store.api_token_scope(id, secret).await?;
        let mut remembered = self.remembered.lock().unwrap_or_else(PoisonError::into_inner);
        if remembered.len() >= REMEMBER_AT_MOST {
            remembered.clear();
        }
        remembered.insert(key, (scope, Instant::now()));
        Ok(scope)
    }
}

fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token a request presents: `Authorization: Bearer`, or for the
/// streams (a browser's EventSource cannot send headers) `?token=`.
fn presented(request: &Request) -> Option<&str> {
    let from_query = || {
        (request.method() == axum::http::Method::GET && request.uri().path().ends_with("/stream"))
            .then(|| request.uri().query())
            .flatten()
            .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("token=")))
    };
    request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(from_query)
}

/// What the check of one route needs; shared, so a request clones one
/// pointer, not the whole app state.
pub(super) struct Guard {
    pub auth: Auth,
    pub store: Store,
    pub access: Access,
}

/// Lets the request through if its caller may reach a route of the
/// guard's access.
pub(super) async fn authorize(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiFailure> {
    let Guard { auth, store, access } = &*guard;
    let Some(needed) = access.scope() else { return Ok(next.run(request).await) };
    let token = presented(&request).map(str::to_owned);
    let scope = match token {
        Some(token) => Some(auth.scope_of(store, &token).await?.ok_or_else(|| {
            ApiFailure::unauthorized("unknown or revoked API token (BATON_API_TOKEN)")
        })?),
        None => None,
    };
    match scope {
        Some(scope) if scope >= needed => {}
        Some(scope) => {
            return Err(ApiFailure::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this needs an API token with scope `{needed}`; this one's is `{scope}`"),
            ));
        }
        None if auth.admin_token.is_some() => {
            return Err(ApiFailure::unauthorized(
                "missing API token: send `Authorization: Bearer <token>` (BATON_API_TOKEN)",
            ));
        }
        None if *access == Access::SecretValue => {
            return Err(ApiFailure::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "secret values are given only to an admin API token: send the core's --api-token, or one made with `baton api-token create --scope admin`",
            ));
        }
        // A core without --api-token (it listens on loopback only).
        None => {}
    }
    Ok(next.run(request).await)
}
