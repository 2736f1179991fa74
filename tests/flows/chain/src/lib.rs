//! Test flow: `tasks` tasks in sequence, each sleeping `millis` (Windmill's
//! benchmark of 40 sequential 10 ms jobs, as tasks of one flow).

use std::time::Duration;

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {
    /// How many tasks.
    tasks: u32,
    /// How long each one sleeps.
    millis: u64,
}

fn chain(params: Params) -> Result<u32> {
    let mut done = 0;
    for i in 0..params.tasks {
        done = task(format!("step-{i}")).run(|| {
            std::thread::sleep(Duration::from_millis(params.millis));
            Ok(done + 1)
        })?;
    }
    Ok(done)
}

baton_sdk::flow!(chain);
