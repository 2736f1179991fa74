//! `baton run ls|inspect|logs|cancel|retry|skip-late`.

use std::process::ExitCode;
use std::time::Duration;

use baton_proto::v1::{
    FlowRun, FlowRunDetail, LogLevel, LogLine, Page, SkipLate, Skipped, StateName, Transition,
    Verdict,
};
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
        /// Only runs with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Only runs planned for later (a schedule's next runs), soonest
        /// first; without it they are left out.
        #[arg(long, conflicts_with = "all")]
        upcoming: bool,
        /// Every run, planned ones too.
        #[arg(long)]
        all: bool,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a run with its state history and task runs.
    Inspect {
        id: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a run's log lines.
    Logs {
        id: String,
        /// Only lines at this level or above (trace, debug, info, warn,
        /// error).
        #[arg(long, value_parser = parse_level)]
        level: Option<LogLevel>,
        /// Only lines written while the task of this name ran (not with
        /// --follow: tasks that start later are not known yet).
        #[arg(long, conflicts_with = "follow")]
        task: Option<String>,
        /// Print JSON instead of lines of text.
        #[arg(long)]
        json: bool,
        /// Keep printing lines as they are written until the run ends; the
        /// exit status then says how it ended.
        #[arg(long, short, conflicts_with = "json")]
        follow: bool,
    },
    /// Cancel a run (a running one is stopped by its agent).
    Cancel { id: String },
    /// Retry a run that has ended: a new run of its deployment with its
    /// parameters, tags and job variables, linked to it; prints its id.
    Retry {
        id: String,
        /// Follow the new run's logs until it ends; the exit status then
        /// says how it ended.
        #[arg(long)]
        watch: bool,
    },
    /// Cancel every LATE run (of one deployment) in one go.
    SkipLate {
        /// Only runs of FLOW/DEPLOYMENT.
        #[arg(long)]
        deployment: Option<String>,
    },
}

pub async fn run(command: RunCommand) -> anyhow::Result<ExitCode> {
    let client = Client::from_env();
    match command {
        RunCommand::Ls { state, deployment, tag, upcoming, all, limit, json } => {
            let mut query = vec![format!("limit={limit}")];
            if !all {
                query.push(format!("upcoming={upcoming}"));
            }
            // The API takes state names exactly; people may write `failed`.
            let state = state
                .map(|list| {
                    list.split(',')
                        .map(|name| name.parse::<StateName>().map(StateName::as_str))
                        .collect::<Result<Vec<_>, _>>()
                        .map(|names| names.join(","))
                })
                .transpose()?;
            for (key, value) in [("state", state), ("deployment", deployment), ("tag", tag)] {
                if let Some(value) = value {
                    query.push(format!("{key}={}", segment(&value)));
                }
            }
            let mut page: Page<FlowRun> =
                client.get(&format!("/api/runs?{}", query.join("&"))).await?;
            if upcoming {
                page.items.sort_by_key(|run| run.scheduled_at);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&page.items)?);
            } else {
                let rows = page
                    .items
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.clone(),
                            r.name.clone(),
                            r.deployment.clone(),
                            r.state.to_string(),
                            table::time(r.scheduled_at),
                        ]
                    })
                    .collect::<Vec<_>>();
                print!(
                    "{}",
                    table::render(&["ID", "NAME", "DEPLOYMENT", "STATE", "SCHEDULED (UTC)"], &rows)
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
        RunCommand::Logs { id, level, follow: true, .. } => {
            let printer = LogPrinter::default();
            let filter = LogFilter::new(&client, &id, level, None).await?;
            return follow(&client, &id, |line| {
                if filter.admits(line) {
                    printer.print(line);
                }
            })
            .await;
        }
        RunCommand::Logs { id, level, task, json, .. } => {
            let filter = LogFilter::new(&client, &id, level, task).await?;
            let path = format!("/api/runs/{}/logs", segment(&id));
            let mut lines: Vec<LogLine> = Vec::new();
            loop {
                let after = lines.last().map_or(0, LogLine::position);
                let page: Vec<LogLine> = client.get(&format!("{path}?after={after}")).await?;
                if page.is_empty() {
                    break;
                }
                lines.extend(page);
            }
            // Task ids a line names may belong to tasks started since.
            let filter = filter.refreshed(&client, &id).await?;
            lines.retain(|line| filter.admits(line));
            if json {
                println!("{}", serde_json::to_string_pretty(&lines)?);
            } else {
                let printer = LogPrinter::default();
                lines.iter().for_each(|line| printer.print(line));
            }
        }
        RunCommand::SkipLate { deployment } => {
            let skipped: Skipped =
                client.post("/api/runs/skip-late", &SkipLate { deployment }).await?;
            println!("skipped {} late runs", skipped.skipped);
        }
        RunCommand::Retry { id, watch } => {
            let retry: FlowRun =
                client.post(&format!("/api/runs/{}/retry", segment(&id)), &()).await?;
            eprintln!("retrying {id} as a new run of {}", retry.deployment);
            if watch {
                eprintln!("run {}: following its logs", retry.id);
                return follow(&client, &retry.id, |line| eprintln!("{}", log_line(line))).await;
            }
            println!("{}", retry.id);
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

fn parse_level(text: &str) -> Result<LogLevel, String> {
    let name = match text.to_ascii_lowercase().as_str() {
        "warning" => "warn".to_owned(),
        other => other.to_owned(),
    };
    serde_json::from_value(serde_json::Value::String(name))
        .map_err(|_| format!("`{text}` is not a level: trace, debug, info, warn or error"))
}

/// Which of a run's log lines `baton run logs` prints.
struct LogFilter {
    level: Option<LogLevel>,
    task: Option<String>,
    /// The (attempt, task id) pairs of the tasks named `task`.
    task_ids: std::collections::HashSet<(u32, u64)>,
}

impl LogFilter {
    async fn new(
        client: &Client,
        id: &str,
        level: Option<LogLevel>,
        task: Option<String>,
    ) -> anyhow::Result<Self> {
        Self { level, task, task_ids: Default::default() }.refreshed(client, id).await
    }

    /// The filter with the run's tasks read again (new tasks may have
    /// started); nothing is read without `--task`.
    async fn refreshed(mut self, client: &Client, id: &str) -> anyhow::Result<Self> {
        if let Some(name) = &self.task {
            let detail: FlowRunDetail = client.get(&format!("/api/runs/{}", segment(id))).await?;
            self.task_ids = detail
                .task_runs
                .iter()
                .filter(|t| &t.name == name)
                .map(|t| (t.run_attempt, t.task_id))
                .collect();
        }
        Ok(self)
    }

    fn admits(&self, line: &LogLine) -> bool {
        self.level.is_none_or(|level| line.level >= level)
            && (self.task.is_none()
                || line.task_id.is_some_and(|t| self.task_ids.contains(&(line.attempt, t))))
    }
}

pub fn log_line(line: &LogLine) -> String {
    format!("{} {:<5} {}", table::time(line.at), line.level.as_str(), line.message)
}

/// Prints log lines, with a heading where a run's next attempt begins (a
/// run executed again keeps each execution's lines apart).
#[derive(Default)]
pub struct LogPrinter {
    attempt: std::cell::Cell<u32>,
}

impl LogPrinter {
    pub fn print(&self, line: &LogLine) {
        if line.attempt != self.attempt.replace(line.attempt) && line.attempt > 1 {
            println!("--- attempt {} ---", line.attempt);
        }
        println!("{}", log_line(line));
    }
}

/// How often a followed run is looked at.
const FOLLOW_EVERY: Duration = Duration::from_millis(100);

/// Shows a run's log lines with `show` as they are written, until the run
/// ends; then prints its output on stdout if it completed. The exit status
/// says how it ended: 0 `COMPLETED`, 1 `FAILED`, 3 `CRASHED`, 6 `CANCELLED`.
pub async fn follow(
    client: &Client,
    id: &str,
    show: impl Fn(&LogLine),
) -> anyhow::Result<ExitCode> {
    let path = format!("/api/runs/{}", segment(id));
    let mut after = 0;
    loop {
        // The state first: once it is final, the lines read next are all.
        let detail: FlowRunDetail = client.get(&path).await?;
        loop {
            let lines: Vec<LogLine> = client.get(&format!("{path}/logs?after={after}")).await?;
            let Some(last) = lines.last() else { break };
            after = last.position();
            lines.iter().for_each(&show);
        }
        let run = detail.run;
        if run.state.is_terminal() {
            if run.state == StateName::Completed {
                println!("{}", run.output.unwrap_or(serde_json::Value::Null));
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!(
                "run {id} ended {}{}",
                run.state,
                run.state_message.map(|m| format!(": {m}")).unwrap_or_default()
            );
            return Ok(ExitCode::from(match run.state {
                StateName::Crashed => 3,
                StateName::Cancelled => 6,
                _ => 1,
            }));
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}

fn describe(detail: &FlowRunDetail) -> String {
    let run = &detail.run;
    let mut text = format!("run {} of {}\n", run.id, run.deployment);
    text.push_str(&format!("  name        {}\n", run.name));
    text.push_str(&format!("  state       {}", run.state));
    if let Some(message) = &run.state_message {
        text.push_str(&format!(" ({message})"));
    }
    text.push('\n');
    text.push_str(&format!(
        "  parameters  {}\n",
        serde_json::Value::Object(run.parameters.clone())
    ));
    if !run.job_variables.is_empty() {
        text.push_str(&format!(
            "  job vars    {}\n",
            serde_json::Value::Object(run.job_variables.clone())
        ));
    }
    if let Some(progress) = &run.progress {
        let percent = (progress.fraction.clamp(0.0, 1.0) * 100.0).round();
        text.push_str(&format!("  progress    {percent}% {}\n", progress.message));
    }
    if let Some(infrastructure) = &run.infrastructure {
        text.push_str(&format!("  runs on     {infrastructure}\n"));
    }
    if let Some(retried) = &run.retry_of {
        text.push_str(&format!("  retry of    {retried}\n"));
    }
    if let Some(parent) = &run.parent_id {
        text.push_str(&format!("  parent      {parent} (its flow started this run)\n"));
    }
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
    if !detail.attempts.is_empty() {
        text.push_str("attempts:\n");
        for attempt in &detail.attempts {
            text.push_str(&format!(
                "  #{} on agent {}  {}  {:<14} {}\n",
                attempt.number,
                attempt.agent_id,
                table::time(attempt.dispatched_at),
                attempt.state.as_str(),
                attempt.message.as_deref().unwrap_or("")
            ));
            if let Some(stale) = &attempt.stale_outcome {
                text.push_str(&format!("      reported after losing the run (ignored): {stale}\n"));
            }
        }
    }
    if !detail.task_runs.is_empty() {
        text.push_str("tasks:\n");
        for task in &detail.task_runs {
            let line = match &task.cached_from {
                Some(from) => format!(
                    "  [attempt {}] {}: CACHED (the result of run {from})\n",
                    task.run_attempt, task.name
                ),
                None => format!(
                    "  [attempt {}] {} try {}/{}: {}\n",
                    task.run_attempt, task.name, task.attempt, task.max_attempts, task.state
                ),
            };
            text.push_str(&line);
        }
        if detail.task_runs_next_cursor.is_some() {
            text.push_str(&format!(
                "  … and more: GET /api/runs/{}/task-runs pages through them all\n",
                detail.run.id
            ));
        }
    }
    if !detail.children.is_empty() {
        text.push_str("subflows:\n");
        for child in &detail.children {
            text.push_str(&format!(
                "  {}  {:<14} {}  {}\n",
                child.id,
                child.state.as_str(),
                child.deployment,
                child.state_message.as_deref().unwrap_or("")
            ));
        }
        if detail.children.len() >= 100 {
            text.push_str(&format!(
                "  … and maybe more: GET /api/runs?parent_id={} lists them all\n",
                detail.run.id
            ));
        }
    }
    if !detail.artifacts.is_empty() {
        text.push_str("artifacts:\n");
        for artifact in &detail.artifacts {
            let line = crate::report::artifact_line(
                artifact.key.as_deref(),
                artifact.kind,
                &artifact.content,
            );
            text.push_str(&format!("  {line}\n"));
        }
    }
    text
}
