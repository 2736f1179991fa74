//! A small extract-transform-load flow: three tasks, one of which fails on
//! its first attempt and succeeds when retried, with progress reports.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use baton_sdk::prelude::*;

/// Parameters of `etl`.
#[derive(Deserialize, JsonSchema)]
struct Params {
    /// How many readings to extract.
    #[serde(default = "default_count")]
    count: u32,
    /// Readings above this value are flagged.
    #[serde(default = "default_threshold")]
    threshold: f64,
}

fn default_count() -> u32 {
    10
}

fn default_threshold() -> f64 {
    20.0
}

/// What the flow returns.
#[derive(Serialize)]
struct Summary {
    loaded: usize,
    flagged: usize,
    mean: f64,
}

#[derive(Serialize, Deserialize, Clone)]
struct Reading {
    sensor: String,
    celsius: f64,
}

// Counts attempts of the flaky task within this run (a fresh instance per run).
static TRANSFORM_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

fn etl(params: Params) -> Result<Summary> {
    ensure!(params.count > 0, "count must be at least 1");
    progress(0.0, "extracting");
    let readings: Vec<Reading> =
        task("extract").cache_key(format!("extract-{}", params.count)).run(|| {
            let readings = (0..params.count)
                .map(|i| Reading {
                    sensor: format!("s{}", i % 3),
                    celsius: 15.0 + f64::from(i * 7 % 11),
                })
                .collect::<Vec<_>>();
            info!("extracted {} readings", readings.len());
            Ok(readings)
        })?;

    progress(0.33, "transforming");
    let flagged: Vec<Reading> =
        task("transform").retries(2).retry_delay(Duration::from_millis(10)).run(|| {
            if TRANSFORM_ATTEMPTS.fetch_add(1, Ordering::SeqCst) == 0 {
                bail!("upstream service busy (simulated)");
            }
            Ok(readings.iter().filter(|r| r.celsius > params.threshold).cloned().collect())
        })?;

    progress(0.66, "loading");
    let loaded = task("load").run(|| {
        for reading in &flagged {
            warn!("{} is hot: {:.1} °C", reading.sensor, reading.celsius);
        }
        Ok(readings.len())
    })?;

    progress(1.0, "done");
    let total: f64 = readings.iter().map(|r| r.celsius).sum();
    #[allow(clippy::cast_precision_loss, reason = "a count of readings fits an f64 exactly")]
    let mean = total / readings.len() as f64;
    Ok(Summary { loaded, flagged: flagged.len(), mean })
}

baton_sdk::flow!(etl);
