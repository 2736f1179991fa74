//! `baton pool create|ls|inspect|queue|pause|resume|delete`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use baton_proto::v1::{PoolKind, PoolSpec, QueueSpec, WorkPool, variables_schema};
use clap::{Subcommand, ValueEnum};
use serde_json::{Map, Value};

use crate::client::{Client, segment};
use crate::table;

#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    Wasm,
    Process,
    Container,
    Kubernetes,
}

#[derive(Subcommand)]
pub enum PoolCommand {
    /// Create a work pool (with a `default` queue).
    Create {
        name: String,
        /// The infrastructure its runs execute on.
        #[arg(long = "type", alias = "kind", value_enum, default_value = "wasm")]
        kind: Kind,
        /// A JSON file: `{"variables": SCHEMA}`, the job variables the
        /// pool's runs take and their defaults (default: the type's own;
        /// `baton pool inspect` shows it).
        #[arg(long, value_name = "FILE")]
        base_job_template: Option<PathBuf>,
        /// What the pool is for, for people.
        #[arg(long)]
        description: Option<String>,
        /// Runs of the pool that may be active at once.
        #[arg(long)]
        concurrency_limit: Option<u32>,
        /// A wasm pool's bigger sibling: a run that runs out of sandbox
        /// memory here is resubmitted to this pool, once.
        #[arg(long, value_name = "POOL")]
        escalate_to: Option<String>,
    },
    /// List work pools.
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a pool and its queues.
    Inspect {
        name: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create or update a queue of a pool: its priority (lower numbers are
    /// served first), its concurrency limit, whether it is paused.
    Queue {
        pool: String,
        queue: String,
        /// Lower first: due runs of this queue go before those of queues with a higher number.
        #[arg(long, default_value_t = 1)]
        priority: u32,
        /// Runs of the queue that may be active at once.
        #[arg(long)]
        concurrency_limit: Option<u32>,
        /// Create it paused: its runs wait until it is resumed.
        #[arg(long)]
        paused: bool,
    },
    Pause {
        name: String,
    },
    Resume {
        name: String,
    },
    /// Delete a pool no deployment uses.
    Delete {
        name: String,
    },
}

fn kind(kind: Kind) -> PoolKind {
    match kind {
        Kind::Wasm => PoolKind::Wasm,
        Kind::Process => PoolKind::Process,
        Kind::Container => PoolKind::Container,
        Kind::Kubernetes => PoolKind::Kubernetes,
    }
}

fn row(pool: &WorkPool) -> Vec<String> {
    vec![
        pool.spec.name.clone(),
        pool.spec.kind.as_str().to_owned(),
        if pool.paused { "paused".into() } else { "active".into() },
        pool.spec.concurrency_limit.map_or("-".into(), |l| l.to_string()),
        pool.queues.iter().map(|q| q.name.clone()).collect::<Vec<_>>().join(","),
    ]
}

const HEADERS: [&str; 5] = ["POOL", "TYPE", "STATUS", "LIMIT", "QUEUES"];

/// The job variables of a pool's template: name, type, default.
fn variables(pool: &WorkPool) -> String {
    let properties = variables_schema(&pool.spec.base_job_template)
        .and_then(|schema| schema.get("properties"))
        .and_then(Value::as_object);
    let rows: Vec<Vec<String>> = properties
        .into_iter()
        .flatten()
        .map(|(name, property)| {
            let kind = match property.get("type") {
                Some(Value::String(one)) => one.clone(),
                Some(Value::Array(many)) => {
                    many.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("|")
                }
                _ => "any".to_owned(),
            };
            let default = property.get("default").map_or("-".to_owned(), Value::to_string);
            vec![name.clone(), kind, default]
        })
        .collect();
    table::render(&["JOB VARIABLE", "TYPE", "DEFAULT"], &rows)
}

/// A base job template from a JSON file.
fn read_template(path: &PathBuf) -> anyhow::Result<Map<String, Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON object (a base job template)", path.display()))
}

pub async fn run(command: PoolCommand) -> anyhow::Result<ExitCode> {
    let client = Client::from_env();
    let show = |pool: &WorkPool, json: bool| -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string_pretty(pool)?);
        } else {
            print!("{}", table::render(&HEADERS, &[row(pool)]));
        }
        Ok(())
    };
    match command {
        PoolCommand::Create {
            name,
            kind: k,
            base_job_template,
            description,
            concurrency_limit,
            escalate_to,
        } => {
            let spec = PoolSpec {
                name,
                kind: kind(k),
                description,
                concurrency_limit,
                escalate_to,
                base_job_template: match &base_job_template {
                    Some(path) => read_template(path)?,
                    None => Map::new(),
                },
            };
            let pool: WorkPool = client.post("/api/pools", &spec).await?;
            show(&pool, false)?;
        }
        PoolCommand::Ls { json } => {
            let pools: Vec<WorkPool> = client.get("/api/pools").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&pools)?);
            } else {
                print!("{}", table::render(&HEADERS, &pools.iter().map(row).collect::<Vec<_>>()));
            }
        }
        PoolCommand::Inspect { name, json } => {
            let pool: WorkPool = client.get(&format!("/api/pools/{}", segment(&name))).await?;
            show(&pool, json)?;
            if !json {
                if let Some(to) = &pool.spec.escalate_to {
                    println!("\nescalates to pool {to} when a run runs out of sandbox memory");
                }
                print!("\n{}", variables(&pool));
            }
        }
        PoolCommand::Queue { pool, queue, priority, concurrency_limit, paused } => {
            let spec = QueueSpec { priority, concurrency_limit, paused };
            let path = format!("/api/pools/{}/queues/{}", segment(&pool), segment(&queue));
            let pool: WorkPool = client.put(&path, &spec).await?;
            show(&pool, false)?;
        }
        PoolCommand::Pause { name } => {
            let pool: WorkPool =
                client.post(&format!("/api/pools/{}/pause", segment(&name)), &()).await?;
            show(&pool, false)?;
        }
        PoolCommand::Resume { name } => {
            let pool: WorkPool =
                client.post(&format!("/api/pools/{}/resume", segment(&name)), &()).await?;
            show(&pool, false)?;
        }
        PoolCommand::Delete { name } => {
            client.delete(&format!("/api/pools/{}", segment(&name))).await?;
            println!("deleted {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
