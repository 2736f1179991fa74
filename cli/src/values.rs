//! `baton variable ...` and `baton secret ...`: named values flows can be
//! granted. Secret values are read only by name, never listed.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use baton_proto::v1::{SecretInfo, SecretValue, SetValue, Variable};
use clap::Subcommand;

use crate::client::{Client, segment};
use crate::table;

#[derive(Subcommand)]
pub enum ValueCommand {
    /// Set a value (`-` reads it from stdin, so it stays out of shell history).
    Set {
        name: String,
        value: String,
    },
    /// Print a value.
    Get {
        name: String,
    },
    /// List names (and, for variables, values).
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    Delete {
        name: String,
    },
}

/// Which kind of value a command works on.
#[derive(Clone, Copy)]
pub enum ValueKind {
    Variable,
    Secret,
}

impl ValueKind {
    /// What it is called in messages.
    pub fn noun(self) -> &'static str {
        match self {
            ValueKind::Variable => "variable",
            ValueKind::Secret => "secret",
        }
    }

    /// The flag that grants one (`--var`, `--secret`).
    pub fn flag(self) -> &'static str {
        match self {
            ValueKind::Variable => "var",
            ValueKind::Secret => "secret",
        }
    }

    fn path(self) -> &'static str {
        match self {
            ValueKind::Variable => "/api/variables",
            ValueKind::Secret => "/api/secrets",
        }
    }
}

fn value_argument(value: String) -> anyhow::Result<String> {
    if value != "-" {
        return Ok(value);
    }
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).context("reading the value from stdin")?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// Sets `name` to `value` on the core (`-`: read from stdin).
pub async fn set(
    client: &Client,
    kind: ValueKind,
    name: &str,
    value: String,
) -> anyhow::Result<()> {
    let body = SetValue { value: value_argument(value)? };
    let path = format!("{}/{}", kind.path(), segment(name));
    let _: serde_json::Value = client.put(&path, &body).await?;
    Ok(())
}

/// The names of the values of this kind set on the core.
pub async fn names(client: &Client, kind: ValueKind) -> anyhow::Result<BTreeSet<String>> {
    Ok(match kind {
        ValueKind::Variable => {
            let variables: Vec<Variable> = client.get(kind.path()).await?;
            variables.into_iter().map(|v| v.name).collect()
        }
        ValueKind::Secret => {
            let secrets: Vec<SecretInfo> = client.get(kind.path()).await?;
            secrets.into_iter().map(|s| s.name).collect()
        }
    })
}

pub async fn run(kind: ValueKind, command: ValueCommand) -> anyhow::Result<ExitCode> {
    let client = Client::from_env();
    let base = kind.path();
    match (kind, command) {
        (_, ValueCommand::Set { name, value }) => {
            set(&client, kind, &name, value).await?;
            println!("set {name}");
        }
        (ValueKind::Variable, ValueCommand::Get { name }) => {
            let variable: Variable = client.get(&format!("{base}/{}", segment(&name))).await?;
            println!("{}", variable.value);
        }
        (ValueKind::Secret, ValueCommand::Get { name }) => {
            let secret: SecretValue = client.get(&format!("{base}/{}", segment(&name))).await?;
            println!("{}", secret.value);
        }
        (ValueKind::Variable, ValueCommand::Ls { json }) => {
            let variables: Vec<Variable> = client.get(base).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&variables)?);
            } else {
                let rows = variables
                    .iter()
                    .map(|v| vec![v.name.clone(), table::time(v.updated_at), v.value.clone()])
                    .collect::<Vec<_>>();
                print!("{}", table::render(&["NAME", "UPDATED (UTC)", "VALUE"], &rows));
            }
        }
        (ValueKind::Secret, ValueCommand::Ls { json }) => {
            let secrets: Vec<SecretInfo> = client.get(base).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&secrets)?);
            } else {
                let rows = secrets
                    .iter()
                    .map(|s| vec![s.name.clone(), table::time(s.updated_at), "********".into()])
                    .collect::<Vec<_>>();
                print!("{}", table::render(&["NAME", "UPDATED (UTC)", "VALUE"], &rows));
            }
        }
        (_, ValueCommand::Delete { name }) => {
            client.delete(&format!("{base}/{}", segment(&name))).await?;
            println!("deleted {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
