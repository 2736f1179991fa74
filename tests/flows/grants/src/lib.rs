//! Test flow: reads the variable `region` and the secret `token` that its
//! deployment grants, logs the secret (which the host must redact), and
//! tries a secret that is not granted.

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {}

#[derive(Serialize)]
struct Seen {
    region: String,
    token_length: usize,
    ungranted: String,
}

fn grants(_: Params) -> Result<Seen> {
    let region = variable("region")?;
    let token = secret("token")?;
    info!("using token {token} in {region}");
    let ungranted = match secret("root-password") {
        Ok(_) => bail!("a secret that was not granted was readable"),
        Err(e) => e.to_string(),
    };
    Ok(Seen { region, token_length: token.len(), ungranted })
}

baton_sdk::flow!(grants);
