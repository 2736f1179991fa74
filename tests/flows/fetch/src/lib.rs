//! Test flow: fetches `url` with `baton_sdk::http` and returns the status
//! and body (as JSON when it is); an HTTP error (a host the deployment does
//! not allow, say) fails the run with its message. With `repeat`, fetches
//! it that many times in turn and returns the last (the sandbox's `http`
//! benchmark measures per-request cost that way).

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {
    url: String,
    /// Fetch the URL this many times, one after another (default, and at
    /// least: once).
    #[serde(default)]
    repeat: Option<u32>,
}

fn fetch(params: Params) -> Result<serde_json::Value> {
    let mut response = baton_sdk::http::get(&params.url)?;
    // `get` reads each body whole, so every repeat is a complete request.
    for _ in 1..params.repeat.unwrap_or(1) {
        response = baton_sdk::http::get(&params.url)?;
    }
    info!("{} answered {}", response.url(), response.status());
    let body = response
        .json::<serde_json::Value>()
        .or_else(|_| response.text().map(serde_json::Value::String))?;
    Ok(serde_json::json!({"status": response.status(), "url": response.url(), "body": body}))
}

baton_sdk::flow!(fetch);
