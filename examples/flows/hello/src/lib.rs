//! The smallest useful flow: adds two integers.

use baton_sdk::prelude::*;

/// Parameters of `hello`.
#[derive(Deserialize, JsonSchema)]
struct Params {
    /// First addend.
    a: i64,
    /// Second addend.
    b: i64,
}

fn hello(params: Params) -> Result<i64> {
    info!("adding {} and {}", params.a, params.b);
    let sum = params
        .a
        .checked_add(params.b)
        .ok_or_else(|| anyhow!("{} + {} overflows a 64-bit integer", params.a, params.b))?;
    info!("the sum is {sum}");
    Ok(sum)
}

baton_sdk::flow!(hello);
