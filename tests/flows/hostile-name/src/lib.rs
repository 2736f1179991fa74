//! Test flow: names itself `../../etc`, a path rather than a name.

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {}

fn escape(_params: Params) -> Result<()> {
    Ok(())
}

baton_sdk::flow!(escape, name = "../../etc");
