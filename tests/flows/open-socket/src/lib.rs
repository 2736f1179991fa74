//! Test flow: tries to open a TCP connection; in the sandbox it must fail.

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {
    /// Where to connect.
    #[serde(default = "default_address")]
    address: String,
}

fn default_address() -> String {
    "127.0.0.1:4200".to_owned()
}

fn open_socket(params: Params) -> Result<String> {
    std::net::TcpStream::connect(&params.address)
        .with_context(|| format!("connecting to {}", params.address))?;
    Ok(format!("connected to {}", params.address))
}

baton_sdk::flow!(open_socket);
