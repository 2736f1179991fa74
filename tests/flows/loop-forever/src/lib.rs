//! Test flow: spins forever without calling the host, so only epoch
//! interruption can stop it.

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {}

fn loop_forever(_: Params) -> Result<u64> {
    info!("spinning");
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
        if std::hint::black_box(n) == u64::MAX {
            return Ok(n);
        }
    }
}

baton_sdk::flow!(loop_forever);
