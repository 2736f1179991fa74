//! Test flow: logs `tick 0`, `tick 1`, ... with a pause between, and returns
//! the wall-clock time it started, so two executions of one run (a stale
//! copy and its retry) have different outputs and their logs can be told
//! apart and counted. Asked to, it fails after its ticks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {
    /// How many ticks to log.
    ticks: u32,
    /// Pause after each tick.
    millis: u64,
    /// Fail after the ticks instead of returning.
    #[serde(default)]
    fail: bool,
}

#[derive(Serialize)]
struct Output {
    ticks: u32,
    /// When this execution started, in ms since the epoch.
    started_at_ms: u64,
}

fn ticks(params: Params) -> Result<Output> {
    let started_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    for tick in 0..params.ticks {
        info!("tick {tick}");
        std::thread::sleep(Duration::from_millis(params.millis));
    }
    if params.fail {
        bail!("failing after {} ticks, as asked", params.ticks);
    }
    Ok(Output { ticks: params.ticks, started_at_ms })
}

baton_sdk::flow!(ticks);
