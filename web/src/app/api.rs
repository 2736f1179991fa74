//! The core's REST API, as the app calls it: same origin, JSON, the API
//! token (when the core has one) from local storage.

use baton_proto::v1::{ApiError, FieldError};
use gloo_net::http::{Request, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;
use yew::prelude::*;

const TOKEN_KEY: &str = "baton.api_token";

/// Why a call failed, ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// 0 when the core could not be reached.
    pub status: u16,
    pub message: String,
    pub fields: Vec<FieldError>,
}

impl Failure {
    fn unreachable(error: impl std::fmt::Display) -> Self {
        Self {
            status: 0,
            message: format!("the core cannot be reached: {error}"),
            fields: Vec::new(),
        }
    }

    pub fn needs_token(&self) -> bool {
        self.status == 401
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The API token this browser sends, if one was entered.
pub fn token() -> Option<String> {
    storage()?.get_item(TOKEN_KEY).ok().flatten().filter(|t| !t.is_empty())
}

pub fn set_token(token: &str) {
    if let Some(storage) = storage() {
        let _ = if token.is_empty() {
            storage.remove_item(TOKEN_KEY)
        } else {
            storage.set_item(TOKEN_KEY, token)
        };
    }
}

fn authorized(request: RequestBuilder) -> RequestBuilder {
    match token() {
        Some(token) => request.header("Authorization", &format!("Bearer {token}")),
        None => request,
    }
}

async fn answer<T: DeserializeOwned>(request: Request) -> Result<T, Failure> {
    let response = request.send().await.map_err(Failure::unreachable)?;
    let status = response.status();
    if status == 204 {
        // No content: what reads from `null` (`()`, an `Option`, a `Value`).
        return serde_json::from_value(serde_json::Value::Null).map_err(|e| Failure {
            status,
            message: format!("the core's answer does not read: {e}"),
            fields: Vec::new(),
        });
    }
    if response.ok() {
        return response.json::<T>().await.map_err(|e| Failure {
            status,
            message: format!("the core's answer does not read: {e}"),
            fields: Vec::new(),
        });
    }
    let text = response.text().await.unwrap_or_default();
    Err(match serde_json::from_str::<ApiError>(&text) {
        Ok(error) => Failure { status, message: error.message, fields: error.fields },
        Err(_) => Failure {
            status,
            message: format!("the core answered {status} {}", response.status_text()),
            fields: Vec::new(),
        },
    })
}

pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, Failure> {
    let request = authorized(Request::get(path)).build().map_err(Failure::unreachable)?;
    answer(request).await
}

/// `POST`, `PUT` or `DELETE` with an optional JSON body.
pub async fn send<T: DeserializeOwned>(
    method: &str,
    path: &str,
    body: Option<&impl Serialize>,
) -> Result<T, Failure> {
    let builder = match method {
        "PUT" => Request::put(path),
        "DELETE" => Request::delete(path),
        _ => Request::post(path),
    };
    let builder = authorized(builder);
    let request = match body {
        Some(body) => builder.json(body),
        None => builder.build(),
    }
    .map_err(Failure::unreachable)?;
    answer(request).await
}

/// A path segment or query value, escaped.
pub fn escape(value: &str) -> String {
    String::from(js_sys::encode_uri_component(value))
}

/// What a page shows while it reads from the core.
#[derive(Debug, Clone, PartialEq)]
pub enum Load<T> {
    Loading,
    Ready(T),
    Failed(Failure),
}

/// Reads `path` whenever it or `refresh` changes. While a re-read is under
/// way the last answer stays (no flicker); an answer to an older request is
/// dropped.
#[hook]
pub fn use_get<T>(path: String, refresh: u64) -> Load<T>
where
    T: DeserializeOwned + Clone + PartialEq + 'static,
{
    let state = use_state(|| Load::Loading);
    let latest = use_mut_ref(|| 0u64);
    {
        let state = state.clone();
        use_effect_with((path, refresh), move |(path, _)| {
            let path = path.clone();
            *latest.borrow_mut() += 1;
            let mine = *latest.borrow();
            wasm_bindgen_futures::spawn_local(async move {
                let answer = get::<T>(&path).await;
                if *latest.borrow() == mine {
                    state.set(match answer {
                        Ok(value) => Load::Ready(value),
                        Err(failure) => Load::Failed(failure),
                    });
                }
            });
        });
    }
    (*state).clone()
}
