//! What the CLI prints for a newcomer's everyday commands, compared with
//! golden files (`tests/e2e/snapshots/cli_*.txt`; `BATON_BLESS=1` writes
//! them): `deployment inspect` with grants and a schedule, `automation
//! inspect` as written, `run ls` with and without `--upcoming`, and `run
//! inspect` of a run with progress and of one whose task came from the
//! cache. What changes from one run of the test to the next (ids, names,
//! times, digests) is replaced by a placeholder naming it.

use std::time::Duration;

use baton_tests::{System, assert_snapshot};
use serde_json::Value;

use crate::agents::{run, wait_for};

/// Replaces what differs between runs of the test with placeholders.
struct Masks(Vec<(String, String)>);

impl Masks {
    fn new() -> Self {
        Self(Vec::new())
    }

    /// `value` shows as `<placeholder>`.
    fn add(&mut self, value: &str, placeholder: &str) {
        assert!(!value.is_empty(), "nothing to mask as {placeholder}");
        self.0.push((value.to_owned(), format!("<{placeholder}>")));
    }

    /// A run's id, name and agent as `<what-id>`, `<what-name>`, `<agent>`.
    fn add_run(&mut self, run: &Value, what: &str) {
        self.add(run["id"].as_str().unwrap(), &format!("{what}-id"));
        self.add(run["name"].as_str().unwrap(), &format!("{what}-name"));
        if let Some(agent) = run["agent_id"].as_str() {
            self.add(agent, "agent");
        }
    }

    /// `text` with every value masked, UTC times as `<time>`, any other
    /// id as `<id>`, and runs of spaces (table padding, which follows the
    /// values' lengths) as two.
    fn apply(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (value, placeholder) in &self.0 {
            text = text.replace(value, placeholder);
        }
        let text = replace_shaped(&text, "dddd-dd-dd dd:dd:dd", "<time>");
        let text = replace_shaped(&text, "hhhhhhhh-hhhh-hhhh-hhhh-hhhhhhhhhhhh", "<id>");
        text.lines()
            .map(|line| {
                let body = line.trim_start();
                let mut squeezed = line[..line.len() - body.len()].to_owned();
                let mut spaces = 0;
                for c in body.trim_end().chars() {
                    if c == ' ' {
                        spaces += 1;
                        continue;
                    }
                    squeezed.push_str(if spaces > 1 { "  " } else { &" "[..spaces] });
                    spaces = 0;
                    squeezed.push(c);
                }
                squeezed + "\n"
            })
            .collect()
    }
}

/// `text` with every piece shaped like `shape` (`d` a decimal digit, `h` a
/// hex digit, anything else itself) replaced by `placeholder`.
fn replace_shaped(text: &str, shape: &str, placeholder: &str) -> String {
    let fits = |piece: &[u8]| {
        piece.iter().zip(shape.bytes()).all(|(&c, s)| match s {
            b'd' => c.is_ascii_digit(),
            b'h' => c.is_ascii_hexdigit(),
            s => c == s,
        })
    };
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if i + shape.len() <= bytes.len() && fits(&bytes[i..i + shape.len()]) {
            out.extend_from_slice(placeholder.as_bytes());
            i += shape.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn the_cli_shows_deployments_automations_and_runs_as_the_golden_files_say() {
    let system = System::start(2);
    let (core, home) = (&system.core, system.home.path());
    let wait = |id: &str| wait_for(core, home, id, "COMPLETED", Duration::from_secs(60)).0;

    // A deployment with grants and a schedule.
    core.deploy(
        home,
        "prints",
        "nightly",
        "    description: Prints lines every night
    tags: [nightly, demo]
    parameters: {lines: 3}
    capabilities: {variables: [region], secrets: [token], outgoing_hosts: [api.example.com]}
    schedules:
      - {cron: \"0 3 * * *\", timezone: Europe/Berlin, parameters: {lines: 5}}
      - {interval: 90m, active: false}
",
    );
    let shown: Value =
        serde_json::from_str(&system.ok(&["deployment", "inspect", "prints/nightly", "--json"]))
            .unwrap();
    let mut masks = Masks::new();
    masks.add(shown["artifact"].as_str().unwrap(), "digest");
    let schedules: Vec<Value> = serde_json::from_str(&system.ok(&[
        "deployment",
        "schedule",
        "ls",
        "prints/nightly",
        "--json",
    ]))
    .unwrap();
    for (n, schedule) in schedules.iter().enumerate() {
        masks.add(schedule["id"].as_str().unwrap(), &format!("schedule-{}", n + 1));
    }
    let deployment = system.ok(&["deployment", "inspect", "prints/nightly"]);
    assert_snapshot("cli_deployment_inspect", &masks.apply(&deployment));

    // An automation applied from YAML, shown as it would be written.
    let file = system.home.path().join("automation.yaml");
    std::fs::write(
        &file,
        "name: retry-nightly
description: Run the nightly prints again when it fails
trigger:
  reactive:
    event: run.failed
    related: deployment/prints/nightly
    threshold: 2
    within: 3600
actions:
  - run-deployment: {deployment: prints/nightly, parameters: {lines: 1}}
  - call-webhook: {url: \"http://127.0.0.1:9/hook\", method: PUT}
",
    )
    .unwrap();
    let applied = system.ok(&["automation", "apply", "-f", file.to_str().unwrap()]);
    assert!(applied.contains("retry-nightly"), "{applied}");
    let automation = system.ok(&["automation", "inspect", "retry-nightly"]);
    assert_snapshot("cli_automation_inspect", &masks.apply(&automation));

    // Runs: a task computed, then answered from the cache; a run with
    // progress; one planned for later.
    core.deploy(home, "cached", "golden", "");
    core.deploy(home, "stages", "golden", "");
    let first = wait(&run(core, home, "cached/golden", &["key=golden"]));
    let second = wait(&run(core, home, "cached/golden", &["key=golden"]));
    let staged = wait(&run(
        core,
        home,
        "stages/golden",
        &[r#"stages=[{"name": "load", "millis": 1}]"#, "announce=false"],
    ));
    let planned = system.ok(&["deployment", "run", "cached/golden", "--param", "key=later"]);
    let planned = planned.lines().last().unwrap().to_owned();
    let later = system.ok(&[
        "deployment",
        "run",
        "cached/golden",
        "--param",
        "key=later",
        "--delay",
        "3600",
    ]);
    let later: Value = serde_json::from_str(&system.ok(&[
        "run",
        "inspect",
        later.lines().last().unwrap(),
        "--json",
    ]))
    .unwrap();
    let planned = wait(&planned);
    for (run, what) in
        [(&first, "first"), (&second, "second"), (&staged, "staged"), (&planned, "third")]
    {
        masks.add_run(run, what);
    }
    masks.add_run(&later, "later");
    masks.add(first["output"].as_str().unwrap(), "computed-at");
    masks.add(planned["output"].as_str().unwrap(), "computed-later");

    assert_snapshot(
        "cli_run_inspect_cached",
        &masks.apply(&system.ok(&["run", "inspect", second["id"].as_str().unwrap()])),
    );
    assert_snapshot(
        "cli_run_inspect_progress",
        &masks.apply(&system.ok(&["run", "inspect", staged["id"].as_str().unwrap()])),
    );
    let listed = system.ok(&["run", "ls", "--deployment", "cached/golden"]);
    assert_snapshot("cli_run_ls", &masks.apply(&listed));
    let upcoming = system.ok(&["run", "ls", "--deployment", "cached/golden", "--upcoming"]);
    assert_snapshot("cli_run_ls_upcoming", &masks.apply(&upcoming));
}
