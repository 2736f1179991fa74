//! A run's log as people read it: every attempt's lines, each attempt
//! ending with why the run left it.

use std::time::Duration;

use baton_tests::System;
use serde_json::Value;

use crate::agents::{run, wait_for};

#[test]
fn every_attempt_s_lines_are_kept_and_each_ends_with_its_error() {
    let system = System::start(2);
    let (core, home) = (&system.core, system.home.path());
    core.deploy(home, "returns-error", "twice", "    retries: 1\n");
    let id = run(core, home, "always-fails/twice", &[]);
    wait_for(core, home, &id, "FAILED", Duration::from_secs(30));

    let lines: Vec<Value> =
        serde_json::from_str(&system.ok(&["run", "logs", &id, "--json"])).unwrap();
    let of = |attempt: u64| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["attempt"] == attempt)
            .map(|l| format!("{} {}", l["level"].as_str().unwrap(), l["message"].as_str().unwrap()))
            .collect()
    };
    let error = "loading the batch: the warehouse is closed";
    for (attempt, ending) in [
        (1, format!("error AWAITING_RETRY: {error} (FAILED; retry 1 of 1")),
        (2, format!("error FAILED: {error}")),
    ] {
        let said = of(attempt);
        assert_eq!(said.len(), 2, "attempt {attempt}: {lines:#?}");
        assert_eq!(said[0], "warn giving up", "attempt {attempt}: {lines:#?}");
        assert!(said[1].starts_with(&ending), "attempt {attempt}: {lines:#?}");
    }
    assert_eq!(lines.len(), 4, "{lines:#?}");

    // As text, the second attempt's lines under a heading of their own.
    let text = system.ok(&["run", "logs", &id]);
    let (before, after) = text.split_once("--- attempt 2 ---").unwrap_or_else(|| panic!("{text}"));
    assert!(before.contains("giving up") && before.contains("AWAITING_RETRY"), "{text}");
    assert!(after.contains("giving up") && after.contains(&format!("FAILED: {error}")), "{text}");
}

/// `baton serve` (an agent in the process) says a line per run, with its
/// id and how long it took, and no colour codes when its stderr is a file.
#[test]
fn serve_says_a_line_per_run_without_colours_off_a_terminal() {
    let core = baton_tests::CoreProcess::start(None);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("hello.wasm");
    std::fs::write(&wasm, baton_tests::flow_wasm("hello")).unwrap();
    let stderr_path = dir.path().join("serve.stderr");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let mut command = core.baton(home);
    command.env_remove("BATON_LOG").arg("serve").arg(&wasm).stderr(stderr);
    command.args(["--name", "said", "--param", "a=1", "--param", "b=2"]);
    let mut serving = crate::agents::serving(&mut command, "hello/said");
    let id = run(&core, home, "hello/said", &[]);
    wait_for(&core, home, &id, "COMPLETED", Duration::from_secs(30));
    let said = baton_tests::wait_until_some("the run's lines", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&stderr_path).ok()?;
        text.contains("run finished").then_some(text)
    });
    let _ = serving.kill();
    let _ = serving.wait();
    let line = |what: &str| said.lines().find(|l| l.contains(what)).map(str::to_owned);
    let started = line("run started").unwrap_or_else(|| panic!("{said}"));
    let finished = line("run finished").unwrap_or_else(|| panic!("{said}"));
    assert!(started.contains(&id) && started.contains("hello/said"), "{started}");
    assert!(finished.contains(&id) && finished.contains("took_ms="), "{finished}");
    assert!(
        finished.contains("outcome=\"completed\"") || finished.contains("outcome=completed"),
        "{finished}"
    );
    assert!(!said.contains('\u{1b}'), "colour codes in a file: {said:?}");
}

/// `baton run logs --level/--task` pick lines by level and by task, and a
/// run's last progress stays on it.
#[test]
fn logs_are_filtered_by_level_and_task_and_progress_is_kept() {
    let system = System::start(2);
    let (core, home) = (&system.core, system.home.path());
    core.deploy(home, "etl", "default", "");
    let id = run(core, home, "etl/default", &[]);
    let (done, _) = wait_for(core, home, &id, "COMPLETED", Duration::from_secs(30));
    let lines = |args: &[&str]| -> Vec<Value> {
        let mut all = vec!["run", "logs", &id, "--json"];
        all.extend(args);
        serde_json::from_str(&system.ok(&all)).unwrap()
    };
    let everything = lines(&[]);
    let extract = lines(&["--task", "extract"]);
    assert_eq!(extract.len(), 1, "{extract:#?}");
    assert!(extract[0]["message"].as_str().unwrap().starts_with("extracted"), "{extract:#?}");
    let warnings = lines(&["--level", "warn"]);
    assert!(!warnings.is_empty() && warnings.len() < everything.len(), "{everything:#?}");
    assert!(
        warnings.iter().all(|l| l["level"] == "warn" || l["level"] == "error"),
        "{warnings:#?}"
    );
    let hot = lines(&["--task", "load", "--level", "warning"]);
    assert_eq!(hot.len() as u64, done["output"]["flagged"].as_u64().unwrap(), "{hot:#?}");
    assert!(hot.iter().all(|l| l["message"].as_str().unwrap().contains("is hot")), "{hot:#?}");
    let refused =
        baton_tests::finish(core.baton(home).args(["run", "logs", &id, "--level", "loud"]));
    assert!(refused.stderr.contains("not a level"), "{}", refused.stderr);

    assert_eq!(done["progress"]["fraction"], 1.0, "{done:#}");
    assert_eq!(done["progress"]["message"], "done", "{done:#}");
    assert!(system.ok(&["run", "inspect", &id]).contains("progress    100% done"));
}
