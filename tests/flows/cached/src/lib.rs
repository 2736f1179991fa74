//! Test flow: one task, `compute`, with the cache key it is given (and an
//! expiry, if given). Its result says when it was computed, so a run
//! answered from the cache returns an earlier run's result; it logs
//! `computing` only when it runs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {
    /// The task's cache key.
    key: String,
    /// How long its result is used, in milliseconds; none: until the
    /// deployment's cache budget pushes it out.
    #[serde(default)]
    expire_ms: Option<u64>,
    /// Bytes of padding in the result (to go past the cache's size limit).
    #[serde(default)]
    pad_bytes: usize,
    /// A granted secret whose value goes in the result (which the cache
    /// must not store).
    #[serde(default)]
    secret: Option<String>,
}

fn cached(params: Params) -> Result<String> {
    let mut task = task("compute").cache_key(&params.key);
    if let Some(ms) = params.expire_ms {
        task = task.cache_expiration(Duration::from_millis(ms));
    }
    let result: String = task.run(|| {
        info!("computing {}", params.key);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let mut result = format!("computed at {nanos} ");
        if let Some(name) = &params.secret {
            result.push_str(&baton_sdk::secret(name)?);
        }
        result.push_str(&"x".repeat(params.pad_bytes));
        Ok(result)
    })?;
    // What it was computed at, without the padding or the secret.
    Ok(result.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

baton_sdk::flow!(cached);
