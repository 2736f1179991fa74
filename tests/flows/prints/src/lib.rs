//! Test flow: prints many lines to stdout and one to stderr, far more than
//! any fixed buffer would hold; every line must reach the run's log.

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {
    /// How many lines to print.
    lines: u32,
}

fn prints(params: Params) -> Result<u32> {
    let padding = "x".repeat(64);
    for i in 0..params.lines {
        println!("line {i} {padding}");
    }
    eprintln!("printed {} lines", params.lines);
    Ok(params.lines)
}

baton_sdk::flow!(prints);
