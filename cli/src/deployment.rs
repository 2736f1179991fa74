//! `baton deployment ls|inspect|run|schedule|pause|resume|delete`.

use std::process::ExitCode;

use anyhow::Context;
use baton_proto::v1::{
    CreateRun, DEFAULT_WORK_POOL, DEFAULT_WORK_QUEUE, Deployment, FlowRun, Schedule, Timestamp,
};
use clap::{Args, Subcommand};

use crate::client::{Client, deployment_path, segment};
use crate::{params, table};

#[derive(Subcommand)]
pub enum DeploymentCommand {
    /// List deployments.
    Ls {
        /// Only deployments of this flow.
        #[arg(long)]
        flow: Option<String>,
        /// Only those with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one deployment.
    Inspect {
        /// FLOW/DEPLOYMENT
        deployment: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a run; prints its id last.
    Run(RunArgs),
    /// A deployment's schedules.
    #[command(subcommand)]
    Schedule(crate::schedule::ScheduleCommand),
    /// Pause: nothing of it is dispatched, and its schedules make no runs,
    /// until resumed.
    Pause { deployment: String },
    /// Resume a paused deployment.
    Resume { deployment: String },
    /// Delete a deployment and its runs.
    Delete { deployment: String },
}

#[derive(Args)]
pub struct RunArgs {
    /// FLOW/DEPLOYMENT
    deployment: String,
    /// A parameter override, `key=value` (JSON unless the schema expects a
    /// string). Repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Parameter overrides as one JSON object.
    #[arg(long, value_name = "JSON", conflicts_with = "params_file")]
    params_json: Option<String>,
    /// Parameters as one JSON object read from a file (`-`: stdin), for
    /// what is too large for a command line.
    #[arg(long, value_name = "PATH")]
    params_file: Option<std::path::PathBuf>,
    /// A job variable for the run's infrastructure, `key=value` (JSON,
    /// else a string), over the deployment's and the pool's. Repeatable.
    #[arg(long = "job-var", value_name = "KEY=VALUE")]
    job_vars: Vec<String>,
    /// Start no earlier than this many seconds from now.
    #[arg(long, value_name = "SECONDS")]
    delay: Option<u64>,
    /// Creating a run twice with one key returns the first run.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// A tag for the run (beside its deployment's). Repeatable.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Stream the run's logs to stderr until it ends, print its output on
    /// stdout, and exit 0 only if it completed.
    #[arg(long, conflicts_with = "json")]
    watch: bool,
}

pub async fn run(command: DeploymentCommand) -> anyhow::Result<ExitCode> {
    let client = Client::from_env();
    match command {
        DeploymentCommand::Ls { flow, tag, json } => {
            let mut query = Vec::new();
            if let Some(flow) = flow {
                query.push(format!("flow={}", segment(&flow)));
            }
            if let Some(tag) = tag {
                query.push(format!("tag={}", segment(&tag)));
            }
            let deployments: Vec<Deployment> =
                client.get(&format!("/api/deployments?{}", query.join("&"))).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&deployments)?);
            } else {
                let rows = deployments
                    .iter()
                    .map(|d| {
                        vec![
                            d.full_name(),
                            // The deployment's own version, else its flow's.
                            d.spec.version.clone().unwrap_or_else(|| d.flow_version.clone()),
                            if d.spec.paused { "paused".into() } else { "active".into() },
                            d.spec.concurrency_limit.map_or("-".into(), |l| l.to_string()),
                            d.spec.tags.join(","),
                        ]
                    })
                    .collect::<Vec<_>>();
                print!(
                    "{}",
                    table::render(&["DEPLOYMENT", "VERSION", "STATUS", "LIMIT", "TAGS"], &rows)
                );
            }
        }
        DeploymentCommand::Inspect { deployment, json } => {
            let path = deployment_path(&deployment)?;
            let deployment: Deployment = client.get(&path).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&deployment)?);
            } else {
                let schedules: Vec<Schedule> = client.get(&format!("{path}/schedules")).await?;
                print!("{}", describe(&deployment, &schedules));
            }
        }
        DeploymentCommand::Run(args) => return create_run(&client, args).await,
        DeploymentCommand::Schedule(command) => return crate::schedule::run(command).await,
        DeploymentCommand::Pause { deployment } => {
            let _: Deployment =
                client.post(&format!("{}/pause", deployment_path(&deployment)?), &()).await?;
            println!("paused {deployment}");
        }
        DeploymentCommand::Resume { deployment } => {
            let _: Deployment =
                client.post(&format!("{}/resume", deployment_path(&deployment)?), &()).await?;
            println!("resumed {deployment}");
        }
        DeploymentCommand::Delete { deployment } => {
            client.delete(&deployment_path(&deployment)?).await?;
            println!("deleted {deployment}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A deployment as `deployment inspect` prints it, with its schedules
/// (and their next times).
fn describe(d: &Deployment, schedules: &[Schedule]) -> String {
    let spec = &d.spec;
    let mut text = format!("{}\n", d.full_name());
    let mut field = |name: &str, value: String| text.push_str(&format!("  {name:<18} {value}\n"));
    field("id", d.id.clone());
    field("artifact", spec.artifact.clone());
    field(
        "flow version",
        if d.flow_version.is_empty() { "-".into() } else { d.flow_version.clone() },
    );
    field("version", spec.version.clone().unwrap_or_else(|| "-".into()));
    field("description", spec.description.clone().unwrap_or_else(|| "-".into()));
    field("tags", spec.tags.join(", "));
    field("paused", spec.paused.to_string());
    field("parameters", serde_json::Value::Object(spec.parameters.clone()).to_string());
    field(
        "work pool",
        format!(
            "{} / {}",
            spec.work_pool.as_deref().unwrap_or(DEFAULT_WORK_POOL),
            spec.work_queue.as_deref().unwrap_or(DEFAULT_WORK_QUEUE)
        ),
    );
    field(
        "concurrency",
        spec.concurrency_limit.map_or("unlimited".into(), |l| {
            format!("{l} ({:?})", spec.concurrency_policy).to_lowercase()
        }),
    );
    field("retries", format!("{} (delay {} s)", spec.retries, spec.retry_delay_seconds));
    field("timeout", spec.timeout_seconds.map_or("-".into(), |s| format!("{s} s")));
    let grants = &spec.capabilities;
    let listed = |names: &[String]| if names.is_empty() { "-".into() } else { names.join(", ") };
    field("variables", listed(&grants.variables));
    field("secrets", listed(&grants.secrets));
    field("outgoing hosts", listed(&grants.outgoing_hosts));
    field("commands", listed(&grants.commands));
    field("updated", table::time(d.updated_at));
    field("schedules", if schedules.is_empty() { "-".into() } else { schedules.len().to_string() });
    for schedule in schedules {
        text.push_str(&format!("    {} {}\n", schedule.id, crate::schedule::describe(schedule)));
    }
    text
}

async fn create_run(client: &Client, args: RunArgs) -> anyhow::Result<ExitCode> {
    let path = deployment_path(&args.deployment)?;
    let deployment: Deployment = client.get(&path).await?;
    let parameters = params::collect(
        &deployment.parameter_schema,
        params::json_text(args.params_json, args.params_file.as_deref())?.as_deref(),
        &args.params,
    )?;
    let serde_json::Value::Object(parameters) = parameters else {
        anyhow::bail!("parameters must be a JSON object");
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("reading the clock")?;
    let scheduled_at = args.delay.map(|seconds| {
        Timestamp(
            i64::try_from(now.as_millis())
                .unwrap_or(i64::MAX)
                .saturating_add(i64::try_from(seconds * 1000).unwrap_or(i64::MAX)),
        )
    });
    let request = CreateRun {
        parameters,
        scheduled_at,
        idempotency_key: args.idempotency_key,
        tags: args.tags,
        job_variables: params::job_variables(&args.job_vars)?,
    };
    let run: FlowRun = client
        .post(&format!("{path}/runs"), &request)
        .await
        .with_context(|| format!("creating a run of {}", args.deployment))?;
    if args.watch {
        eprintln!("run {} of {}: following its logs", run.id, run.deployment);
        return crate::runs::follow(client, &run.id, |line| {
            eprintln!("{}", crate::runs::log_line(line))
        })
        .await;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else {
        eprintln!(
            "created run of {} ({}, due {})",
            run.deployment,
            run.state,
            table::time(run.scheduled_at)
        );
        println!("{}", run.id);
    }
    Ok(ExitCode::SUCCESS)
}
