//! `baton automation create|apply|ls|inspect|pause|resume|delete`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use baton_proto::v1::{Automation, AutomationSpec, Trigger};
use clap::Subcommand;

use crate::client::{Client, segment};
use crate::table;

#[derive(Subcommand)]
pub enum AutomationCommand {
    /// Create an automation from a YAML file (format in the README).
    Create {
        /// The automation's YAML file.
        #[arg(long, short)]
        file: PathBuf,
    },
    /// Create an automation from a YAML file, or replace the one of its
    /// name (kept paused or active; a changed trigger starts afresh).
    Apply {
        /// The automation's YAML file.
        #[arg(long, short)]
        file: PathBuf,
    },
    /// List automations.
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show an automation (by id or name).
    Inspect {
        automation: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Pause: it acts on nothing until resumed.
    Pause {
        automation: String,
    },
    /// Resume (a proactive trigger's window starts again).
    Resume {
        automation: String,
    },
    Delete {
        automation: String,
    },
}

/// An automation written in YAML (format in the README).
fn parse(text: &str) -> anyhow::Result<AutomationSpec> {
    AutomationSpec::from_yaml(text).map_err(|problem| anyhow::anyhow!("{problem} (see the README)"))
}

fn read(file: &std::path::Path) -> anyhow::Result<AutomationSpec> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    parse(&text).with_context(|| format!("reading {}", file.display()))
}

fn row(automation: &Automation) -> Vec<String> {
    let (kind, trigger) = match &automation.spec.trigger {
        Trigger::Reactive(t) => ("reactive", t),
        Trigger::Proactive(t) => ("proactive", t),
    };
    vec![
        automation.spec.name.clone(),
        format!("{kind} {}", trigger.event),
        automation.spec.actions.len().to_string(),
        if automation.paused { "paused".into() } else { "active".into() },
        automation.id.clone(),
    ]
}

const HEADERS: [&str; 5] = ["NAME", "TRIGGER", "ACTIONS", "STATUS", "ID"];

fn show(automation: &Automation, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(automation)?);
    } else {
        print!("{}", table::render(&HEADERS, &[row(automation)]));
    }
    Ok(())
}

pub async fn run(command: AutomationCommand) -> anyhow::Result<ExitCode> {
    let client = Client::from_env();
    let path = |automation: &str| format!("/api/automations/{}", segment(automation));
    match command {
        AutomationCommand::Create { file } => {
            let automation: Automation = client.post("/api/automations", &read(&file)?).await?;
            show(&automation, false)?;
        }
        AutomationCommand::Apply { file } => {
            let spec = read(&file)?;
            let automation: Automation = client.put(&path(&spec.name), &spec).await?;
            show(&automation, false)?;
        }
        AutomationCommand::Ls { json } => {
            let automations: Vec<Automation> = client.get("/api/automations").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&automations)?);
            } else {
                let rows: Vec<Vec<String>> = automations.iter().map(row).collect();
                print!("{}", table::render(&HEADERS, &rows));
            }
        }
        AutomationCommand::Inspect { automation, json } => {
            let automation: Automation = client.get(&path(&automation)).await?;
            if json {
                show(&automation, true)?;
            } else {
                print!("{}", automation.spec.to_yaml());
                println!(
                    "# id {}, {}",
                    automation.id,
                    if automation.paused { "paused" } else { "active" }
                );
            }
        }
        AutomationCommand::Pause { automation } => {
            let automation: Automation =
                client.post(&format!("{}/pause", path(&automation)), &()).await?;
            show(&automation, false)?;
        }
        AutomationCommand::Resume { automation } => {
            let automation: Automation =
                client.post(&format!("{}/resume", path(&automation)), &()).await?;
            show(&automation, false)?;
        }
        AutomationCommand::Delete { automation } => {
            client.delete(&path(&automation)).await?;
            println!("deleted automation {automation}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use baton_proto::v1::Action;

    use super::*;

    #[test]
    fn the_readme_s_automations_read() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let section = readme.split("### Automations").nth(1).unwrap();
        let blocks: Vec<&str> =
            section.split("```yaml\n").skip(1).map(|b| b.split("```").next().unwrap()).collect();
        let reactive = parse(blocks[0]).unwrap();
        assert!(
            matches!(&reactive.trigger, Trigger::Reactive(t) if t.within == 600 && t.payload["to"] == "FAILED")
        );
        // One of each kind of action.
        let kinds: Vec<String> = reactive
            .actions
            .iter()
            .map(|a| {
                serde_json::to_value(a).unwrap().as_object().unwrap().keys().next().unwrap().clone()
            })
            .collect();
        assert_eq!(kinds, baton_proto::v1::ACTION_KINDS);
        assert!(
            matches!(&reactive.actions[7], Action::CallWebhook { method: Some(m), .. } if m == "POST")
        );
        let proactive = parse(blocks[1]).unwrap();
        assert!(matches!(&proactive.trigger, Trigger::Proactive(t) if t.within == 90_000));
        assert!(parse("name: x\ntrigger: {sometimes: {}}\nactions: []\n").is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// Whatever an automation file holds, reading it ends in an
        /// automation or an error, never a panic.
        #[test]
        fn any_text_reads_to_an_answer(text in "(?s).{0,400}") {
            let _ = parse(&text);
        }

        #[test]
        fn a_mutated_automation_reads_to_an_answer(
            flips in proptest::collection::vec((0_usize..400, 0_u8..128), 1..6),
            cut in 0_usize..400,
        ) {
            let good = "name: nightly\ntrigger:\n  reactive:\n    event: run.failed\n    resource: run/*\n\
                actions:\n  - run-deployment:\n      deployment: hello/default\n      parameters: {a: 1}\n";
            let _ = parse(&crate::fuzz::mutated(good, cut, &flips));
        }
    }
}
