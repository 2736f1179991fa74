//! Test flow: recurses without end, each frame holding a buffer, until the
//! stack runs out.

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {}

fn deeper(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let frame = std::hint::black_box([depth; 64]);
    deeper(depth + 1) + frame.iter().sum::<u64>()
}

fn hostile_recursion(_: Params) -> Result<u64> {
    Ok(deeper(0))
}

baton_sdk::flow!(hostile_recursion);
