//! Test flow: each stage of its parameters is a task that sleeps, with
//! progress reported before each, so a run can be watched going through
//! them; then it succeeds or fails as asked. Its parameters are a list of
//! objects (each with an optional object inside), an optional list, an
//! enum (behind a `$ref`) and a boolean, for the UI's Run form. It logs
//! when this execution started (unless told not to), so two runs' logs
//! can be told apart.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use baton_sdk::prelude::*;

/// How the run ends once its stages are done.
#[derive(Deserialize, JsonSchema, Default, PartialEq)]
#[serde(rename_all = "kebab-case")]
enum Ending {
    #[default]
    Succeed,
    Fail,
}

/// One stage: a task that takes a while.
#[derive(Deserialize, JsonSchema)]
struct Stage {
    /// The task's name.
    name: String,
    /// How long it takes.
    millis: u64,
    /// Log a warning when it is done.
    #[serde(default)]
    warn: bool,
    /// What to log when it is done.
    #[serde(default)]
    report: Option<Report>,
}

/// A line a stage logs when it is done (an object within a stage).
#[derive(Deserialize, JsonSchema)]
struct Report {
    message: String,
    /// How many times.
    #[serde(default)]
    times: Option<u32>,
}

/// A note logged before the stages.
#[derive(Deserialize, JsonSchema)]
struct Note {
    text: String,
}

#[derive(Deserialize, JsonSchema)]
struct Params {
    /// The stages, in order.
    stages: Vec<Stage>,
    /// How the run ends.
    #[serde(default)]
    ending: Ending,
    /// Log when this execution started.
    #[serde(default = "yes")]
    announce: bool,
    /// Notes to log first (an optional list).
    #[serde(default)]
    notes: Option<Vec<Note>>,
}

fn yes() -> bool {
    true
}

fn stages(params: Params) -> Result<Vec<String>> {
    let started_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    if params.announce {
        info!("execution started at {started_at_ms}");
    }
    for note in params.notes.iter().flatten() {
        info!("note: {}", note.text);
    }
    let count = params.stages.len();
    let mut done = Vec::with_capacity(count);
    for (index, stage) in params.stages.iter().enumerate() {
        #[allow(clippy::cast_precision_loss, reason = "a count of stages fits an f32 well enough")]
        let fraction = index as f32 / count as f32;
        progress(fraction, &format!("stage {}", stage.name));
        let name = task(stage.name.clone()).run(|| {
            info!("stage {} started", stage.name);
            std::thread::sleep(Duration::from_millis(stage.millis));
            if stage.warn {
                warn!("stage {} took {} ms", stage.name, stage.millis);
            }
            if let Some(report) = &stage.report {
                for _ in 0..report.times.unwrap_or(1) {
                    info!("{}", report.message);
                }
            }
            Ok(stage.name.clone())
        })?;
        done.push(name);
    }
    progress(1.0, "done");
    ensure!(params.ending != Ending::Fail, "failing after {count} stages, as asked");
    Ok(done)
}

baton_sdk::flow!(stages);
