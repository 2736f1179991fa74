//! `baton flow build|inspect|run`: work with a flow component on this
//! machine, without a core.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use baton_agent::runner::JobSource;
use baton_agent::sandbox::{
    CommandGrant, Grants, LoadedFlow, RunLimits, RunRequest, Sandbox, SandboxConfig,
};
use baton_proto::v1::outgoing::OutgoingHosts;
use baton_proto::v1::{FlowInfo, RunOutcome, validate_params};
use bytesize::ByteSize;
use clap::{Args, Subcommand};

use crate::report::StderrReporter;
use crate::{baton_home, params};

#[derive(Subcommand)]
pub enum FlowCommand {
    /// Build a flow project into a component; prints the component's path
    /// last. A Rust crate (Cargo.toml) is built with cargo, a Python
    /// project (pyproject.toml) with componentize-py.
    Build {
        /// The project's directory (holding its Cargo.toml or pyproject.toml).
        #[arg(value_name = "DIR")]
        crate_dir: PathBuf,
    },
    /// Print what a component's `describe` returns.
    Inspect {
        component: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a component once in the sandbox: logs on stderr, output on stdout.
    ///
    /// Exit status: 0 completed, 1 failed (the flow returned an error),
    /// 2 bad input (unreadable or invalid component, invalid parameters),
    /// 3 crashed (the flow trapped), 4 timed out, 5 out of memory,
    /// 6 cancelled (Ctrl-C).
    Run(RunArgs),
    /// Run the job on stdin, or in `--job-file` (JSON lines out): how an
    /// agent runs a process, container or Kubernetes pool's run.
    #[command(hide = true)]
    Exec {
        /// The job as a file (a pod's mounted Secret) instead of stdin.
        #[arg(long, value_name = "PATH")]
        job_file: Option<PathBuf>,
    },
}

#[derive(Args)]
pub struct RunArgs {
    component: PathBuf,
    /// A parameter, `key=value`; the value is read as JSON unless the schema
    /// expects a string. Repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// All parameters as one JSON object; `--param` values override it.
    #[arg(long, value_name = "JSON", conflicts_with = "params_file")]
    params_json: Option<String>,
    /// Parameters as one JSON object read from a file (`-`: stdin), for
    /// what is too large for a command line.
    #[arg(long, value_name = "PATH")]
    params_file: Option<std::path::PathBuf>,
    /// Wall-clock limit of the run, e.g. `5s`, `2m`.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Memory cap of the run, e.g. `64MiB`.
    #[arg(long, default_value = "256MiB")]
    memory: ByteSize,
    /// Grant a variable to the flow, `NAME=VALUE`. Repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    variables: Vec<String>,
    /// Grant a secret to the flow, `NAME=VALUE`; redacted from its logs.
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    secrets: Vec<String>,
    /// Let the flow send HTTP requests to this host, as a deployment's
    /// `outgoing_hosts` does (`api.example.com`, `127.0.0.1:8080`,
    /// `*.example.com`). Repeatable.
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    allow_hosts: Vec<String>,
    /// Let the flow run this native program, as a deployment's `commands`
    /// does on a process pool (`sh`, `python3`, `/usr/bin/env`). Repeatable.
    #[arg(long = "allow-command", value_name = "PROGRAM")]
    allow_commands: Vec<String>,
}

/// Exit statuses of `baton flow run`, one per outcome.
fn exit_status(outcome: &RunOutcome) -> u8 {
    match outcome {
        RunOutcome::Completed { .. } => 0,
        RunOutcome::Failed { .. } => 1,
        RunOutcome::Crashed { .. } => 3,
        RunOutcome::TimedOut { .. } => 4,
        RunOutcome::OutOfMemory { .. } => 5,
        RunOutcome::Cancelled => 6,
    }
}

pub async fn run(command: FlowCommand) -> anyhow::Result<ExitCode> {
    match command {
        FlowCommand::Build { crate_dir } => build(&crate_dir),
        FlowCommand::Inspect { component, json } => inspect(&component, json).await,
        FlowCommand::Run(args) => run_flow(args).await,
        FlowCommand::Exec { job_file } => {
            let source = match job_file {
                Some(path) => JobSource::File(path),
                None => JobSource::Stdin(tokio::io::stdin()),
            };
            baton_agent::runner::exec(source, tokio::io::stdout())
                .await
                .map_err(anyhow::Error::msg)?;
            // Its outcome is out: exit now. Dropping the runtime would wait
            // for the blocking read of stdin, which a container's engine
            // may keep open.
            std::process::exit(0)
        }
    }
}

fn build(crate_dir: &Path) -> anyhow::Result<ExitCode> {
    match crate::build::build_component(crate_dir) {
        Ok(component) => {
            println!("{}", component.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(error) if error.is::<crate::build::BuildFailed>() => {
            eprintln!("error: {error}");
            Ok(ExitCode::from(1))
        }
        Err(error) => Err(error),
    }
}

/// Reads and loads a component, naming the file in any error.
fn load(sandbox: &Sandbox, path: &Path) -> anyhow::Result<Arc<LoadedFlow>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    sandbox.load(&bytes).with_context(|| path.display().to_string())
}

async fn describe(sandbox: &Sandbox, flow: &LoadedFlow, path: &Path) -> anyhow::Result<FlowInfo> {
    sandbox.describe(flow).await.with_context(|| path.display().to_string())
}

fn sandbox(max_memory: u64) -> anyhow::Result<Sandbox> {
    let config = SandboxConfig {
        cache_dir: Some(baton_home().join("cache").join("components")),
        max_instances: 4,
        max_memory_bytes: max_memory,
        ..SandboxConfig::default()
    };
    Sandbox::new(&config).context("setting up the sandbox")
}

async fn inspect(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let sandbox = sandbox(SandboxConfig::default().max_memory_bytes)?;
    let flow = load(&sandbox, path)?;
    let info = describe(&sandbox, &flow, path).await?;
    if json {
        let mut value = serde_json::to_value(&info)?;
        if let Some(fields) = value.as_object_mut() {
            fields.insert("digest".to_owned(), format!("sha256:{}", flow.digest()).into());
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", describe_text(&info, &flow.digest().to_string()));
    }
    Ok(ExitCode::SUCCESS)
}

fn describe_text(info: &FlowInfo, digest: &str) -> String {
    let mut text = format!("{} {}\n", info.name, info.version);
    if !info.description.is_empty() {
        text.push_str(&format!("{}\n", info.description));
    }
    text.push_str(&format!("digest: sha256:{digest}\n"));
    let required: Vec<&str> = info
        .parameters
        .get("required")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    match info.parameters.get("properties").and_then(|p| p.as_object()) {
        Some(properties) if !properties.is_empty() => {
            text.push_str("parameters:\n");
            for (name, schema) in properties {
                let kind = baton_proto::v1::schema_view::type_name(&info.parameters, schema);
                let mut line = format!("  {name}: {kind}");
                if required.contains(&name.as_str()) {
                    line.push_str(", required");
                }
                if let Some(default) = schema.get("default") {
                    line.push_str(&format!(", default {default}"));
                }
                if let Some(description) = schema.get("description").and_then(|d| d.as_str()) {
                    line.push_str(&format!(" - {description}"));
                }
                text.push_str(&line);
                text.push('\n');
            }
        }
        _ => text.push_str("parameters: none\n"),
    }
    text
}

async fn run_flow(args: RunArgs) -> anyhow::Result<ExitCode> {
    let sandbox = sandbox(args.memory.as_u64())?;
    let flow = load(&sandbox, &args.component)?;
    let info = describe(&sandbox, &flow, &args.component).await?;
    let params = params::collect(
        &info.parameters,
        params::json_text(args.params_json, args.params_file.as_deref())?.as_deref(),
        &args.params,
    )?;
    validate_params(&info.parameters, &params)
        .with_context(|| format!("invalid parameters for flow `{}`", info.name))?;
    let grants = Grants {
        variables: name_values(&args.variables, "--var")?,
        secrets: name_values(&args.secrets, "--secret")?,
        outgoing_hosts: OutgoingHosts::parse(&args.allow_hosts).map_err(anyhow::Error::msg)?,
        commands: if args.allow_commands.is_empty() {
            CommandGrant::Refused("no program is allowed: pass --allow-command PROGRAM".to_owned())
        } else {
            CommandGrant::Allowed(args.allow_commands)
        },
    };

    let mut request = RunRequest::new(params, Arc::new(StderrReporter::default()));
    request.limits = RunLimits {
        memory_bytes: args.memory.as_u64(),
        timeout: args.timeout,
        ..RunLimits::default()
    };
    request.grants = grants;
    let cancel = request.cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("cancelling the run");
            cancel.cancel();
        }
    });

    let outcome = sandbox.run(&flow, request).await;
    match &outcome {
        RunOutcome::Completed { output } => println!("{}", serde_json::to_string_pretty(output)?),
        RunOutcome::Failed { message, .. } => eprintln!("error: the flow failed: {message}"),
        RunOutcome::Crashed { message } => eprintln!("error: the run crashed: {message}"),
        RunOutcome::TimedOut { .. } => {
            eprintln!(
                "error: the run timed out after {}",
                humantime::format_duration(args.timeout)
            );
        }
        RunOutcome::OutOfMemory { limit_bytes } => eprintln!(
            "error: the run ran out of memory: it tried to use more than {} (raise it with --memory)",
            ByteSize::b(*limit_bytes).display().iec()
        ),
        RunOutcome::Cancelled => eprintln!("error: the run was cancelled"),
    }
    Ok(ExitCode::from(exit_status(&outcome)))
}

fn name_values(
    pairs: &[String],
    flag: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, Option<String>>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                Ok((name.to_owned(), Some(value.to_owned())))
            }
            _ => bail!("{flag} `{pair}` is not of the form NAME=VALUE"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EXIT_BAD_INPUT;

    #[test]
    fn every_outcome_has_its_own_exit_status() {
        let outcomes = [
            RunOutcome::Completed { output: serde_json::Value::Null },
            RunOutcome::Failed { message: String::new(), details: None },
            RunOutcome::Crashed { message: String::new() },
            RunOutcome::TimedOut { limit_ms: 1 },
            RunOutcome::OutOfMemory { limit_bytes: 1 },
            RunOutcome::Cancelled,
        ];
        let mut statuses: Vec<u8> = outcomes.iter().map(exit_status).collect();
        assert_eq!(statuses[0], 0);
        assert!(!statuses.contains(&EXIT_BAD_INPUT));
        statuses.sort_unstable();
        statuses.dedup();
        assert_eq!(statuses.len(), outcomes.len());
    }
}
