//! Test flow: sleeps through the host's clock, so the instance stays live
//! without using the CPU (for measuring many concurrent instances).

use std::time::Duration;

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {
    /// How long to sleep.
    millis: u64,
}

fn sleeps(params: Params) -> Result<u64> {
    std::thread::sleep(Duration::from_millis(params.millis));
    Ok(params.millis)
}

baton_sdk::flow!(sleeps);
