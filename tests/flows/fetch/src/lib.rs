//! Test flow: fetches `url` with `baton_sdk::http` and returns the status
//! and body (as JSON when it is); an HTTP error (a host the deployment does
//! not allow, say) fails the run with its message.

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {
    url: String,
}

fn fetch(params: Params) -> Result<serde_json::Value> {
    let response = baton_sdk::http::get(&params.url)?;
    info!("{} answered {}", response.url(), response.status());
    let body = response
        .json::<serde_json::Value>()
        .or_else(|_| response.text().map(serde_json::Value::String))?;
    Ok(serde_json::json!({"status": response.status(), "url": response.url(), "body": body}))
}

baton_sdk::flow!(fetch);
