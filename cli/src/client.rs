//! The CLI's side of the REST API: where the core is (`BATON_API_URL`,
//! `BATON_API_TOKEN`), and failures turned into sentences.

use anyhow::{Context, anyhow};
use baton_proto::v1::ApiError;
use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where the CLI finds the core unless told otherwise.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:4200";

pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn from_env() -> Self {
        Self::with_url(
            &std::env::var("BATON_API_URL").unwrap_or_else(|_| DEFAULT_API_URL.to_owned()),
        )
    }

    /// A client of the core at `base`, with `BATON_API_TOKEN` if set.
    pub fn with_url(base: &str) -> Self {
        let token = std::env::var("BATON_API_TOKEN").ok().filter(|t| !t.is_empty());
        Self { base: base.trim_end_matches('/').to_owned(), token, http: reqwest::Client::new() }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                anyhow!("cannot reach the core at {}: is `baton server start` running? (set BATON_API_URL)", self.base)
            } else {
                anyhow!("calling the core at {}: {e}", self.base)
            }
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ApiError>(&text) {
            Ok(error) => anyhow!("{}", error.message),
            Err(_) => anyhow!("the core answered {status}: {}", text.trim()),
        })
    }

    /// A `GET` whose answer is read as it comes (a live stream).
    pub async fn open(&self, path: &str) -> anyhow::Result<Response> {
        self.send(self.request(Method::GET, path)).await
    }

    async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> anyhow::Result<T> {
        self.send(request).await?.json().await.context("reading the core's answer")
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.json(self.request(Method::GET, path)).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.json(self.request(Method::POST, path).json(body)).await
    }

    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.json(self.request(Method::PUT, path).json(body)).await
    }

    pub async fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        bytes: Vec<u8>,
    ) -> anyhow::Result<T> {
        self.json(
            self.request(Method::POST, path).header("content-type", "application/wasm").body(bytes),
        )
        .await
    }

    /// PUT that expects no body back (204).
    pub async fn put_empty<B: Serialize>(&self, path: &str, body: &B) -> anyhow::Result<()> {
        self.send(self.request(Method::PUT, path).json(body)).await.map(drop)
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        self.send(self.request(Method::DELETE, path)).await.map(drop)
    }
}

/// Escapes one path segment.
pub fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Splits `FLOW/DEPLOYMENT`.
pub fn flow_and_name(full: &str) -> anyhow::Result<(&str, &str)> {
    full.split_once('/')
        .filter(|(flow, name)| !flow.is_empty() && !name.is_empty())
        .ok_or_else(|| anyhow!("`{full}` is not FLOW/DEPLOYMENT (for example hello/default)"))
}

/// The API path of a deployment.
pub fn deployment_path(full: &str) -> anyhow::Result<String> {
    let (flow, name) = flow_and_name(full)?;
    Ok(format!("/api/deployments/{}/{}", segment(flow), segment(name)))
}
