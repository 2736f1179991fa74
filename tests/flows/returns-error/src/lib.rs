//! Test flow: returns an error on purpose.

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {}

fn returns_error(_: Params) -> Result<()> {
    warn!("giving up");
    Err(anyhow!("the warehouse is closed").context("loading the batch"))
}

// Overrides what Cargo.toml says, to exercise `flow!`'s optional fields.
baton_sdk::flow!(
    returns_error,
    name = "always-fails",
    version = "2.0.0",
    description = "Fails on purpose",
);
