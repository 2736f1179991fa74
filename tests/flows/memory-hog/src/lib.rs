//! Test flow: allocates (and touches) memory, without end or up to `mib`
//! MiB (then returns how many it holds).

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {
    /// Stop once this many MiB are held (default: never).
    #[serde(default)]
    mib: Option<usize>,
}

fn memory_hog(params: Params) -> Result<usize> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![7; 1 << 20]);
        if hoard.len().is_multiple_of(16) {
            debug!("holding {} MiB", hoard.len());
        }
        if params.mib.is_some_and(|mib| hoard.len() >= mib) {
            return Ok(hoard.len());
        }
    }
}

baton_sdk::flow!(memory_hog);
