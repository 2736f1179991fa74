//! `baton api-token create|ls|revoke`: tokens for the core's API, each
//! with a scope.

use std::process::ExitCode;

use baton_proto::v1::{ApiScope, ApiTokenCreated, ApiTokenInfo, CreateApiToken};
use clap::Subcommand;

use crate::client::{Client, segment};
use crate::table;

#[derive(Subcommand)]
pub enum ApiTokenCommand {
    /// Make a token; it is printed once, as the last line.
    Create {
        /// read: every resource but secret values; run: also create,
        /// cancel and change runs, and emit events; admin: everything.
        #[arg(long)]
        scope: ApiScope,
        /// What it is for, for people.
        #[arg(long)]
        name: Option<String>,
    },
    /// API tokens and their scopes (never the tokens).
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id.
    Revoke { id: String },
}

pub async fn run(command: ApiTokenCommand) -> anyhow::Result<ExitCode> {
    let client = Client::from_env();
    match command {
        ApiTokenCommand::Create { scope, name } => {
            let created: ApiTokenCreated =
                client.post("/api/api-tokens", &CreateApiToken { scope, name }).await?;
            eprintln!(
                "API token {} with scope `{}`; send it as BATON_API_TOKEN (shown only now):",
                created.info.id, created.info.scope
            );
            println!("{}", created.token);
        }
        ApiTokenCommand::Ls { json } => {
            let tokens: Vec<ApiTokenInfo> = client.get("/api/api-tokens").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.clone(),
                            t.name.clone().unwrap_or_default(),
                            t.scope.to_string(),
                            table::time(t.created_at),
                        ]
                    })
                    .collect();
                print!("{}", table::render(&["ID", "NAME", "SCOPE", "CREATED"], &rows));
            }
        }
        ApiTokenCommand::Revoke { id } => {
            client.delete(&format!("/api/api-tokens/{}", segment(&id))).await?;
            eprintln!("revoked API token {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
