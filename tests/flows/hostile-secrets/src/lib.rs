//! Test flow: reads the secret `token` its deployment grants and puts it
//! everywhere a flow's text reaches the core: event names, resources and
//! payloads (values and keys), task names and cache keys, progress,
//! artifacts (key, markdown, a table's cells and columns), log
//! lines split (16 KiB) or cut (64 KiB) through the secret, stdout, and
//! then, as `ending` says, the run's error message, a panic, or its output.

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {
    /// `error`, `panic` or `output`.
    ending: String,
}

#[allow(clippy::panic, reason = "one ending panics, with the secret in its message")]
fn hostile_secrets(params: Params) -> Result<String> {
    let token = secret("token")?;
    let mut payload = baton_sdk::serde_json::Map::new();
    payload.insert("token".into(), token.clone().into());
    payload.insert(token.clone(), vec![token.clone()].into());
    emit_event(&format!("leak.{token}"), &format!("resource/{token}"), &payload.into());
    task(format!("task {token}")).cache_key(format!("key-{token}")).run(|| Ok(()))?;
    progress(0.5, &format!("halfway with {token}"));
    baton_sdk::markdown_artifact(&token, &format!("# Report of {token}"))?;
    baton_sdk::table_artifact("rows", &[json!({ token.clone(): token })])?;
    info!("a line with {token} in it");
    // Lines whose pieces split, or whose cut falls, inside the secret.
    for around in [16 * 1024, 64 * 1024] {
        for shift in 1..token.len() {
            let padding = "p".repeat(around - shift);
            println!("{padding}{token} and after");
            info!("{padding}{token} and after");
        }
    }
    eprintln!("stderr says {token}");
    match params.ending.as_str() {
        "error" => bail!("failed holding {token}"),
        "panic" => panic!("panicked holding {token}"),
        _ => Ok(format!("output {token}")),
    }
}

baton_sdk::flow!(hostile_secrets);
