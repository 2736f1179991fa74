//! Test flow: tries to read `/etc/passwd`; in the sandbox it must fail.

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {}

fn read_passwd(_: Params) -> Result<String> {
    let text = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    Ok(text)
}

baton_sdk::flow!(read_passwd);
