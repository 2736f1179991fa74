//! Test flow: panics, which traps the instance.

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {}

#[allow(clippy::panic, reason = "panicking is this test flow's purpose")]
fn panics(_: Params) -> Result<()> {
    info!("about to panic");
    panic!("this flow panics on purpose");
}

baton_sdk::flow!(panics);
