//! Test flow: allocates (and touches) memory without end.

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {}

fn memory_hog(_: Params) -> Result<usize> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![7; 1 << 20]);
        if hoard.len().is_multiple_of(16) {
            debug!("holding {} MiB", hoard.len());
        }
    }
}

baton_sdk::flow!(memory_hog);
