//! `baton deployment schedule ls|add|pause|resume|delete`.

use std::process::ExitCode;

use anyhow::bail;
use baton_proto::v1::{CatchUp, Deployment, Schedule, ScheduleSpec};
use clap::{Args, Subcommand, ValueEnum};

use crate::client::{Client, deployment_path, segment};
use crate::project::parse_time;
use crate::{params, table};

#[derive(Subcommand)]
pub enum ScheduleCommand {
    /// List a deployment's schedules with their next times.
    Ls {
        /// FLOW/DEPLOYMENT
        deployment: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a schedule; prints its id last.
    Add(AddArgs),
    /// Pause a schedule: the runs it planned are withdrawn.
    Pause { deployment: String, id: String },
    /// Resume a paused schedule: planned again from now.
    Resume { deployment: String, id: String },
    /// Delete a schedule and the runs it planned that have not started.
    Delete { deployment: String, id: String },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum CatchUpArg {
    Skip,
    Latest,
    All,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["cron", "interval", "rrule"])))]
pub struct AddArgs {
    /// FLOW/DEPLOYMENT
    deployment: String,
    /// Five fields as in Unix cron (`0 9 * * 1-5`), or six/seven with
    /// seconds first.
    #[arg(long)]
    cron: Option<String>,
    /// Time between runs (`90s`, `15m`, `1d`).
    #[arg(long, value_parser = humantime::parse_duration)]
    interval: Option<std::time::Duration>,
    /// iCalendar recurrence rule (`FREQ=WEEKLY;BYDAY=MO,FR;BYHOUR=9`).
    #[arg(long)]
    rrule: Option<String>,
    /// Where an interval's steps start (RFC 3339).
    #[arg(long)]
    anchor: Option<String>,
    /// IANA time zone the schedule is read in.
    #[arg(long, default_value = "UTC")]
    timezone: String,
    /// What happens to times missed while no core was running.
    #[arg(long, value_enum, default_value = "skip")]
    catch_up: CatchUpArg,
    /// A parameter of this schedule's runs, `key=value`. Repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Add it paused.
    #[arg(long)]
    paused: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn kind(schedule: &ScheduleSpec) -> String {
    match (&schedule.cron, schedule.interval_seconds, &schedule.rrule) {
        (Some(cron), _, _) => format!("cron {cron}"),
        (_, Some(seconds), _) => {
            format!("every {}", humantime::format_duration(std::time::Duration::from_secs(seconds)))
        }
        (_, _, Some(rule)) => format!("rrule {rule}"),
        _ => "-".to_owned(),
    }
}

fn rows(schedules: &[Schedule]) -> Vec<Vec<String>> {
    schedules
        .iter()
        .map(|s| {
            vec![
                s.id.clone(),
                kind(&s.spec),
                s.spec.timezone.clone(),
                if s.spec.active { "active".into() } else { "paused".into() },
                format!("{:?}", s.spec.catch_up).to_lowercase(),
                s.next.first().map_or("-".into(), |t| table::time(*t)),
            ]
        })
        .collect()
}

/// One schedule in a line: what it is, its zone, state, catch-up, the
/// parameters it overrides and its next times.
pub(crate) fn describe(schedule: &Schedule) -> String {
    let spec = &schedule.spec;
    let mut text = format!(
        "{} ({}), {}, catch-up {}",
        kind(spec),
        spec.timezone,
        if spec.active { "active" } else { "paused" },
        format!("{:?}", spec.catch_up).to_lowercase()
    );
    if !spec.parameters.is_empty() {
        text.push_str(&format!(
            ", parameters {}",
            serde_json::Value::Object(spec.parameters.clone())
        ));
    }
    if !schedule.next.is_empty() {
        let next: Vec<String> = schedule.next.iter().map(|t| table::time(*t)).collect();
        text.push_str(&format!(", next (UTC) {}", next.join(", ")));
    }
    text
}

const HEADERS: [&str; 6] = ["ID", "SCHEDULE", "TIMEZONE", "STATUS", "CATCH-UP", "NEXT (UTC)"];

fn show(schedule: &Schedule, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(schedule)?);
    } else {
        print!("{}", table::render(&HEADERS, &rows(std::slice::from_ref(schedule))));
        println!("{}", schedule.id);
    }
    Ok(())
}

pub async fn run(command: ScheduleCommand) -> anyhow::Result<ExitCode> {
    let client = Client::from_env();
    let one = |deployment: &str, id: &str| -> anyhow::Result<String> {
        Ok(format!("{}/schedules/{}", deployment_path(deployment)?, segment(id)))
    };
    match command {
        ScheduleCommand::Ls { deployment, json } => {
            let schedules: Vec<Schedule> =
                client.get(&format!("{}/schedules", deployment_path(&deployment)?)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&schedules)?);
            } else {
                print!("{}", table::render(&HEADERS, &rows(&schedules)));
            }
        }
        ScheduleCommand::Add(args) => {
            let path = deployment_path(&args.deployment)?;
            let deployment: Deployment = client.get(&path).await?;
            let serde_json::Value::Object(parameters) =
                params::collect(&deployment.parameter_schema, None, &args.params)?
            else {
                bail!("parameters must be a JSON object");
            };
            let spec = ScheduleSpec {
                cron: args.cron,
                interval_seconds: args.interval.map(|d| d.as_secs()),
                rrule: args.rrule,
                anchor: args.anchor.as_deref().map(parse_time).transpose()?,
                timezone: args.timezone,
                parameters,
                active: !args.paused,
                catch_up: match args.catch_up {
                    CatchUpArg::Skip => CatchUp::Skip,
                    CatchUpArg::Latest => CatchUp::Latest,
                    CatchUpArg::All => CatchUp::All,
                },
            };
            if spec.interval_seconds == Some(0) {
                bail!("--interval must be at least one second");
            }
            let schedule: Schedule = client.post(&format!("{path}/schedules"), &spec).await?;
            show(&schedule, args.json)?;
        }
        ScheduleCommand::Pause { deployment, id } => {
            let schedule: Schedule =
                client.post(&format!("{}/pause", one(&deployment, &id)?), &()).await?;
            show(&schedule, false)?;
        }
        ScheduleCommand::Resume { deployment, id } => {
            let schedule: Schedule =
                client.post(&format!("{}/resume", one(&deployment, &id)?), &()).await?;
            show(&schedule, false)?;
        }
        ScheduleCommand::Delete { deployment, id } => {
            client.delete(&one(&deployment, &id)?).await?;
            println!("deleted schedule {id} of {deployment}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
