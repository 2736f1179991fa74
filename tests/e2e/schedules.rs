//! Schedules end to end: a core with an agent, schedules added with the
//! CLI, the core stopped across schedule times and restarted under each
//! catch-up policy, and a backlog of late runs skipped in one command.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use baton_tests::{AgentProcess, CoreProcess, finish, wait_until};
use serde_json::Value;

fn unix_ms() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// Sleeps until `offset` ms past a multiple of `period` ms.
fn sleep_until_phase(period: i64, offset: i64) {
    let wait = (offset - unix_ms().rem_euclid(period)).rem_euclid(period);
    std::thread::sleep(Duration::from_millis(u64::try_from(wait).unwrap()));
}

/// Runs of an every-2-seconds schedule whose time fell while the core was
/// down for 6 s, once the restarted core has dealt with them.
fn missed_runs(policy: &str) -> Vec<Value> {
    let mut core = CoreProcess::start(None);
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let token = core.agent_token(home.path());
    let _agent = AgentProcess::start(&core, home.path(), &token, data.path());
    core.deploy(home.path(), "hello", "default", "    parameters: {a: 1, b: 2}\n");
    // Times on even seconds.
    let added = core.ok(
        home.path(),
        &[
            "deployment",
            "schedule",
            "add",
            "hello/default",
            "--interval",
            "2s",
            "--anchor",
            "2026-01-01T00:00:00Z",
            "--catch-up",
            policy,
        ],
    );
    assert!(added.contains("every 2s"), "{added}");
    // It fires on its own.
    wait_until("a scheduled run completed", Duration::from_secs(15), || {
        core.runs(home.path(), "hello/default").iter().any(|r| r["state"] == "COMPLETED")
    });

    // Each firing is an event, about its schedule and run.
    let fired = || core.events(home.path(), "schedule.fired");
    wait_until("a schedule.fired event", Duration::from_secs(5), || !fired().is_empty());
    let fired = fired();
    assert!(fired[0]["resource"].as_str().unwrap().starts_with("schedule/"), "{fired:#?}");
    assert_eq!(fired[0]["related"][0], "deployment/hello/default");

    // Down from an odd second for 6 s: times K+1, K+3 and K+5 are missed.
    sleep_until_phase(2000, 1000);
    let killed = unix_ms();
    core.restart_after(Duration::from_secs(6));
    let restarted = killed + 6000;
    // Let the agent reconnect and the kept runs finish.
    std::thread::sleep(Duration::from_secs(4));
    let mut missed: Vec<Value> = core
        .runs(home.path(), "hello/default")
        .into_iter()
        .filter(|r| {
            let at = r["scheduled_at"].as_i64().unwrap();
            at > killed && at < restarted
        })
        .collect();
    missed.sort_by_key(|r| r["scheduled_at"].as_i64());
    missed
}

fn states(runs: &[Value]) -> Vec<&str> {
    runs.iter().map(|r| r["state"].as_str().unwrap()).collect()
}

fn assert_skipped(run: &Value, policy: &str) {
    assert_eq!(run["state"], "CANCELLED", "{run:#}");
    let message = run["state_message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("catch-up: {policy}")), "{message}");
}

#[test]
fn catch_up_skip_runs_none_of_the_missed_times() {
    let missed = missed_runs("skip");
    assert_eq!(missed.len(), 3, "{missed:#?}");
    for run in &missed {
        assert_skipped(run, "skip");
    }
}

#[test]
fn catch_up_latest_runs_only_the_newest_missed_time() {
    let missed = missed_runs("latest");
    assert_eq!(states(&missed), ["CANCELLED", "CANCELLED", "COMPLETED"], "{missed:#?}");
    assert_skipped(&missed[0], "latest");
}

#[test]
fn catch_up_all_runs_every_missed_time() {
    let missed = missed_runs("all");
    assert_eq!(states(&missed), ["COMPLETED", "COMPLETED", "COMPLETED"], "{missed:#?}");
}

#[test]
fn schedules_are_listed_paused_resumed_and_deleted() {
    let core = CoreProcess::start(None);
    let home = tempfile::tempdir().unwrap();
    core.deploy(home.path(), "hello", "default", "    parameters: {a: 1}\n");
    let h = home.path();
    // A schedule's runs must have every required parameter.
    let refused = finish(core.baton(h).args([
        "deployment",
        "schedule",
        "add",
        "hello/default",
        "--cron",
        "0 9 * * 1-5",
    ]));
    assert_ne!(refused.status, Some(0));
    assert!(refused.stderr.contains("`b`"), "{}", refused.stderr);
    let bad = finish(core.baton(h).args([
        "deployment",
        "schedule",
        "add",
        "hello/default",
        "--cron",
        "0 9 * *",
        "--param",
        "b=1",
    ]));
    assert!(bad.stderr.contains("invalid cron expression"), "{}", bad.stderr);

    let added = core.ok(
        h,
        &[
            "deployment",
            "schedule",
            "add",
            "hello/default",
            "--cron",
            "0 9 * * 1-5",
            "--timezone",
            "Europe/Berlin",
            "--param",
            "b=5",
        ],
    );
    let id = added.lines().last().unwrap().to_owned();
    let listed: Value = serde_json::from_str(
        &core.ok(h, &["deployment", "schedule", "ls", "hello/default", "--json"]),
    )
    .unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["cron"], "0 9 * * 1-5");
    assert_eq!(listed[0]["parameters"]["b"], 5);
    assert_eq!(listed[0]["next"].as_array().unwrap().len(), 3);

    // Planned ahead: at least three runs, each with the schedule's parameters.
    let planned = |core: &CoreProcess| {
        core.runs(h, "hello/default")
            .into_iter()
            .filter(|r| r["state"] == "SCHEDULED")
            .collect::<Vec<_>>()
    };
    wait_until("three runs planned", Duration::from_secs(10), || planned(&core).len() >= 3);
    let first = planned(&core);
    assert!(first.iter().all(|r| r["parameters"] == serde_json::json!({"a": 1, "b": 5})));
    assert_eq!(
        first.iter().map(|r| r["scheduled_at"].as_i64().unwrap()).collect::<Vec<_>>(),
        listed[0]["next"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .map(|t| t.as_i64().unwrap())
            .collect::<Vec<_>>()
    );

    core.ok(h, &["deployment", "schedule", "pause", "hello/default", &id]);
    assert!(planned(&core).is_empty(), "a paused schedule's planned runs are withdrawn");
    core.ok(h, &["deployment", "schedule", "resume", "hello/default", &id]);
    wait_until("planned again", Duration::from_secs(10), || planned(&core).len() >= 3);
    // Planned again for the same times: never two runs for one time.
    let again = planned(&core);
    let mut times: Vec<i64> = again.iter().map(|r| r["scheduled_at"].as_i64().unwrap()).collect();
    times.dedup();
    assert_eq!(times.len(), again.len());

    core.ok(h, &["deployment", "schedule", "delete", "hello/default", &id]);
    assert!(planned(&core).is_empty());
    let listed = core.ok(h, &["deployment", "schedule", "ls", "hello/default", "--json"]);
    assert_eq!(serde_json::from_str::<Value>(&listed).unwrap(), serde_json::json!([]));
}

#[test]
fn skip_late_cancels_a_backlog_in_one_command() {
    // No agent: runs due now wait, and become LATE after a second.
    let core = CoreProcess::start_with(None, &["--late-after", "1s"]);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    core.deploy(h, "hello", "default", "    parameters: {a: 1, b: 2}\n");
    core.deploy(h, "hello", "other", "    parameters: {a: 1, b: 2}\n");
    for deployment in ["hello/default", "hello/default", "hello/default", "hello/other"] {
        core.ok(h, &["deployment", "run", deployment]);
    }
    wait_until("every run LATE", Duration::from_secs(15), || {
        core.runs(h, "hello/default")
            .iter()
            .chain(&core.runs(h, "hello/other"))
            .all(|r| r["state"] == "LATE")
    });
    let skipped = core.ok(h, &["run", "skip-late", "--deployment", "hello/default"]);
    assert!(skipped.contains("skipped 3 late runs"), "{skipped}");
    for run in core.runs(h, "hello/default") {
        assert_eq!(run["state"], "CANCELLED");
        assert_eq!(run["state_message"], "skipped: late");
    }
    assert_eq!(
        core.runs(h, "hello/other")[0]["state"],
        "LATE",
        "another deployment's backlog stays"
    );
    let skipped = core.ok(h, &["run", "skip-late"]);
    assert!(skipped.contains("skipped 1 late runs"), "{skipped}");
}
