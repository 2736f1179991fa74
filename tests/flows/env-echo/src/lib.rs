//! Test flow: returns the environment variables it sees (none in the
//! sandbox unless the run's pool gives some) and logs their names.

use std::collections::BTreeMap;

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {}

fn env_echo(_params: Params) -> Result<BTreeMap<String, String>> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    info!("{} variables: {:?}", env.len(), env.keys().collect::<Vec<_>>());
    Ok(env)
}

baton_sdk::flow!(env_echo);
