//! Test flow: runs `program` with `args` (and `stdin`, `env`, `timeout_ms`
//! when given) through `baton_sdk::command`, and returns its exit status and
//! output (its length only, past 64 KiB); a refused, failed or timed-out command fails the run with its
//! message.

use std::collections::BTreeMap;

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {
    program: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// Output returned as text, at most.
const SHOWN_BYTES: usize = 64 << 10;

fn command(params: Params) -> Result<baton_sdk::serde_json::Value> {
    let mut command = baton_sdk::command(&params.program).args(&params.args).envs(&params.env);
    if let Some(stdin) = params.stdin {
        command = command.stdin(stdin);
    }
    if let Some(ms) = params.timeout_ms {
        command = command.timeout(std::time::Duration::from_millis(ms));
    }
    let output = command.run()?;
    // A long output is only measured: the run's own output is capped.
    let short = |bytes: &[u8]| {
        (bytes.len() <= SHOWN_BYTES).then(|| String::from_utf8_lossy(bytes).into_owned())
    };
    Ok(json!({
        "status": output.status,
        "signal": output.signal,
        "stdout": short(&output.stdout),
        "stderr": short(&output.stderr),
        "stdout_bytes": output.stdout.len(),
        "truncated": output.truncated,
    }))
}

baton_sdk::flow!(command);
