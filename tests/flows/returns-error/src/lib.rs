//! Test flow: returns an error on purpose.

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {}

fn returns_error(_: Params) -> Result<()> {
    warn!("giving up");
    Err(anyhow!("the warehouse is closed").context("loading the batch"))
}

baton_sdk::flow!(returns_error);
