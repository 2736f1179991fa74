//! Native commands from flows through a real core and agents: run on a
//! process pool for the programs the deployment lists, their output in the
//! run's log while the run goes on; refused on a wasm pool and for programs
//! not listed; a cancelled run's command killed.

use std::time::{Duration, Instant};

use baton_tests::{AgentProcess, processes_with, unique_sleep};
use serde_json::{Value, json};

use crate::agents::{inspect, wait_for};
use crate::infrastructure::{PoolSystem, run_id, run_with};

/// `--param args=[...]` for `sh -c SCRIPT`.
fn sh_args(script: &str) -> String {
    format!("args={}", json!(["-c", script]))
}

#[test]
fn a_flow_runs_the_commands_its_deployment_lists_where_its_pool_gives_it_a_process() {
    let system = PoolSystem::start("proc", "process");
    let (core, home) = (&system.core, system.home());
    let yaml = "    work_pool: {name: proc, job_variables: {env: {BATON_API_TOKEN: leaked, MARK: seen}}}\n    capabilities: {commands: [sh]}\n";
    core.deploy(home, "command", "default", yaml);

    // Its output reaches the log while it runs, and the flow at its end;
    // the runner's own variables stay out of its environment.
    let script = "echo \"first ${BATON_API_TOKEN:-unset} $MARK\"; sleep 3; echo second";
    let id =
        run_id(&run_with(core, home, "command/default", &["program=sh", &sh_args(script)], &[]));
    let started = Instant::now();
    let mut seen_while_running = false;
    while started.elapsed() < Duration::from_secs(30) {
        let logs = system.log_messages(&id);
        if logs.iter().any(|l| l == "first unset seen") {
            seen_while_running = inspect(core, home, &id)["state"] == "RUNNING";
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(seen_while_running, "the command's first line was not in the log while it ran");
    let done = system.wait_for(&id, "COMPLETED");
    assert_eq!(done["output"]["stdout"], "first unset seen\nsecond\n", "{done:#}");
    assert_eq!(done["output"]["status"], 0);

    // A program the deployment does not list is refused, and says so.
    let id = run_id(&run_with(core, home, "command/default", &["program=env"], &[]));
    let failed = system.wait_for(&id, "FAILED");
    let message = failed["state_message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`env` refused: it is not in the deployment's capabilities.commands (sh)"),
        "{failed:#}"
    );
    assert!(system.log_messages(&id).iter().any(|l| l.starts_with("command `env` refused")));

    // Cancelling the run kills its command.
    let marker = unique_sleep(1);
    let id = run_id(&run_with(
        core,
        home,
        "command/default",
        &["program=sh", &sh_args(&format!("sleep {marker}"))],
        &[],
    ));
    baton_tests::wait_until("the command to start", Duration::from_secs(30), || {
        !processes_with(&marker).is_empty()
    });
    core.ok(home, &["run", "cancel", &id]);
    let cancelled = Instant::now();
    wait_for(core, home, &id, "CANCELLED", Duration::from_secs(10));
    baton_tests::wait_until(
        "the cancelled run's command to be killed",
        Duration::from_secs(10),
        || processes_with(&marker).is_empty(),
    );
    assert!(cancelled.elapsed() < Duration::from_secs(10), "took {:?}", cancelled.elapsed());

    // On a wasm pool the same deployment's command is refused, naming why.
    core.ok(home, &["pool", "create", "edge", "--type", "wasm"]);
    let token = core.agent_token_for(home, "edge");
    let data = tempfile::tempdir().unwrap();
    let _edge = AgentProcess::start_in_pool_with(core, home, &token, data.path(), "edge", &[]);
    core.deploy(
        home,
        "command",
        "edge",
        "    work_pool: {name: edge}\n    capabilities: {commands: [sh]}\n",
    );
    let marker = std::env::temp_dir().join(format!("baton-edge-{}", std::process::id()));
    let touch = sh_args(&format!("touch {}", marker.display()));
    let id = run_id(&run_with(core, home, "command/edge", &["program=sh", &touch], &[]));
    let failed: Value = system.wait_for(&id, "FAILED");
    let message = failed["state_message"].as_str().unwrap_or_default();
    assert!(message.contains("never run in the agent's shared wasm sandbox"), "{failed:#}");
    assert!(!marker.exists(), "a command ran in the wasm sandbox");
}
