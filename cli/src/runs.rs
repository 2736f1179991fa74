//! `baton run ls|inspect|logs|cancel`.

use std::process::ExitCode;

use baton_proto::v1::{FlowRun, FlowRunDetail, LogLine, Page, Transition, Verdict};
use clap::Subcommand;

use crate::client::{Client, segment};
use crate::table;

#[derive(Subcommand)]
pub enum RunCommand {
    /// List runs, newest first.
    Ls {
        /// Only these states (comma-separated, e.g. RUNNING,LATE).
        #[arg(long)]
        state: Option<String>,
        /// Only runs of FLOW/DEPLOYMENT.
        #[arg(long)]
        deployment: Option<String>,
        #[arg(long)]
        tag: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Show a run with its state history and task runs.
    Inspect {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Print a run's log lines.
    Logs {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a run (a running one is stopped by its agent).
    Cancel { id: String },
}

pub async fn run(command: RunCommand) -> anyhow::Result<ExitCode> {
    let client = Client::from_env();
    match command {
        RunCommand::Ls { state, deployment, tag, limit, json } => {
            let mut query = vec![format!("limit={limit}")];
            for (key, value) in [("state", state), ("deployment", deployment), ("tag", tag)] {
                if let Some(value) = value {
                    query.push(format!("{key}={}", segment(&value)));
                }
            }
            let page: Page<FlowRun> = client.get(&format!("/api/runs?{}", query.join("&"))).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page.items)?);
            } else {
                let rows = page
                    .items
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.clone(),
                            r.deployment.clone(),
                            r.state.to_string(),
                            table::time(r.scheduled_at),
                        ]
                    })
                    .collect::<Vec<_>>();
                print!(
                    "{}",
                    table::render(&["ID", "DEPLOYMENT", "STATE", "SCHEDULED (UTC)"], &rows)
                );
            }
        }
        RunCommand::Inspect { id, json } => {
            let detail: FlowRunDetail = client.get(&format!("/api/runs/{}", segment(&id))).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&detail)?);
            } else {
                print!("{}", describe(&detail));
            }
        }
        RunCommand::Logs { id, json } => {
            let lines: Vec<LogLine> =
                client.get(&format!("/api/runs/{}/logs", segment(&id))).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&lines)?);
            } else {
                for line in lines {
                    println!(
                        "{} {:<5} {}",
                        table::time(line.at),
                        line.level.as_str(),
                        line.message
                    );
                }
            }
        }
        RunCommand::Cancel { id } => {
            let transition: Transition =
                client.post(&format!("/api/runs/{}/cancel", segment(&id)), &()).await?;
            if transition.verdict != Verdict::Accepted {
                anyhow::bail!(
                    "run {id} was not cancelled: {}",
                    transition.reason.unwrap_or_else(|| "refused".to_owned())
                );
            }
            println!("{id} {}", transition.run.state);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(detail: &FlowRunDetail) -> String {
    let run = &detail.run;
    let mut text = format!("run {} of {}\n", run.id, run.deployment);
    text.push_str(&format!("  state       {}", run.state));
    if let Some(message) = &run.state_message {
        text.push_str(&format!(" ({message})"));
    }
    text.push('\n');
    text.push_str(&format!(
        "  parameters  {}\n",
        serde_json::Value::Object(run.parameters.clone())
    ));
    text.push_str(&format!(
        "  attempts    {} (retries allowed: {})\n",
        run.run_count, run.max_retries
    ));
    if let Some(output) = &run.output {
        text.push_str(&format!("  output      {output}\n"));
    }
    text.push_str("history:\n");
    for change in &detail.states {
        text.push_str(&format!(
            "  {}  {:<14} {}\n",
            table::time(change.at),
            change.state.as_str(),
            change.message.as_deref().unwrap_or("")
        ));
    }
    if !detail.task_runs.is_empty() {
        text.push_str("tasks:\n");
        for task in &detail.task_runs {
            text.push_str(&format!(
                "  {} attempt {}/{}: {}\n",
                task.name, task.attempt, task.max_attempts, task.state
            ));
        }
    }
    text
}
