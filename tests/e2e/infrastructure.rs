//! Runs on infrastructure of their pool's type: a child process per run
//! (process pools), with its job variables, its limits and its death
//! named; nothing left behind.

use std::path::Path;
use std::time::Duration;

use baton_tests::{AgentProcess, CoreProcess, finish};
use serde_json::{Value, json};

use crate::agents::{run, wait_for};

/// A core with a pool `pool` of type `kind` and an agent serving it.
struct PoolSystem {
    core: CoreProcess,
    home: tempfile::TempDir,
    _data: tempfile::TempDir,
    agent: AgentProcess,
}

impl PoolSystem {
    fn start(pool: &str, kind: &str) -> Self {
        let core = CoreProcess::start(None);
        let home = tempfile::tempdir().unwrap();
        core.ok(home.path(), &["pool", "create", pool, "--type", kind]);
        let token = core.agent_token_for(home.path(), pool);
        let data = tempfile::tempdir().unwrap();
        let agent = AgentProcess::start_in_pool(&core, home.path(), &token, data.path(), pool, 4);
        Self { core, home, _data: data, agent }
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    fn wait_for(&self, id: &str, state: &str) -> Value {
        wait_for(&self.core, self.home(), id, state, Duration::from_secs(60)).0
    }

    fn log_messages(&self, id: &str) -> Vec<String> {
        let listed = self.core.ok(self.home(), &["run", "logs", id, "--json"]);
        let lines: Vec<Value> = serde_json::from_str(&listed).unwrap();
        lines.iter().map(|line| line["message"].as_str().unwrap_or_default().to_owned()).collect()
    }
}

fn process_exists(pid: &str) -> bool {
    Path::new("/proc").join(pid).exists()
}

/// The process id a running run's infrastructure names.
fn child_pid(run: &Value) -> String {
    assert_eq!(run["infrastructure"]["type"], "process", "{run:#}");
    let pid = run["infrastructure"]["id"].as_str().unwrap_or_default().to_owned();
    assert!(pid.parse::<u32>().is_ok(), "{run:#}");
    pid
}

#[test]
fn a_process_pool_runs_each_run_in_a_child_process_with_its_job_variables() {
    let system = PoolSystem::start("proc", "process");
    let (core, home) = (&system.core, system.home());
    core.deploy(home, "hello", "default", "    work_pool: {name: proc}\n");
    let id = run(core, home, "hello/default", &["a=2", "b=3"]);
    let done = system.wait_for(&id, "COMPLETED");
    assert_eq!(done["output"], 5, "{done:#}");
    let pid = child_pid(&done);
    assert_ne!(pid, system.agent.pid().to_string(), "the run ran in the agent's own process");
    assert!(!process_exists(&pid), "the run's process {pid} outlived its run");
    let logs = system.log_messages(&id);
    assert!(logs.iter().any(|line| line == "the sum is 5"), "{logs:?}");
    let shown = core.ok(home, &["run", "inspect", &id]);
    assert!(shown.contains(&format!("process {pid}")), "{shown}");

    // The pool's environment reaches the flow: the deployment's, replaced
    // by a run's own; nothing of the agent's.
    let yaml =
        "    work_pool: {name: proc, job_variables: {env: {STAGE: deployment, KEEP: yes}}}\n";
    core.deploy(home, "env-echo", "default", yaml);
    let id = run(core, home, "env-echo/default", &[]);
    let done = system.wait_for(&id, "COMPLETED");
    assert_eq!(done["output"], json!({"STAGE": "deployment", "KEEP": "yes"}), "{done:#}");
    let created = core.ok(
        home,
        &["deployment", "run", "env-echo/default", "--job-var", r#"env={"STAGE":"run"}"#, "--json"],
    );
    let id = serde_json::from_str::<Value>(&created).unwrap()["id"].as_str().unwrap().to_owned();
    let done = system.wait_for(&id, "COMPLETED");
    assert_eq!(done["output"], json!({"STAGE": "run"}), "{done:#}");
}

#[test]
fn a_process_pool_s_limits_and_its_child_s_death_are_the_run_s_outcome_not_the_agent_s() {
    let system = PoolSystem::start("proc", "process");
    let (core, home) = (&system.core, system.home());

    // memory_mib caps the flow's memory.
    let yaml = "    work_pool: {name: proc, job_variables: {memory_mib: 32}}\n";
    core.deploy(home, "memory-hog", "default", yaml);
    let id = run(core, home, "memory-hog/default", &[]);
    let failed = system.wait_for(&id, "FAILED");
    let message = failed["state_message"].as_str().unwrap_or_default();
    assert!(message.contains("ran out of memory (limit 32 MiB)"), "{failed:#}");

    // cpu_seconds stops a spinning flow through the OS.
    let yaml = "    work_pool: {name: proc, job_variables: {cpu_seconds: 1}}\n";
    core.deploy(home, "loop-forever", "cpu", yaml);
    let id = run(core, home, "loop-forever/cpu", &[]);
    let crashed = system.wait_for(&id, "CRASHED");
    let message = crashed["state_message"].as_str().unwrap_or_default();
    assert!(message.contains("CPU-time limit of 1 s"), "{crashed:#}");

    // A child killed from outside: its run CRASHED, naming the signal.
    core.deploy(home, "sleeps", "default", "    work_pool: {name: proc}\n");
    let id = run(core, home, "sleeps/default", &["millis=60000"]);
    let running = system.wait_for(&id, "RUNNING");
    let pid = child_pid(&running);
    let killed = finish(std::process::Command::new("kill").args(["-KILL", &pid]));
    assert_eq!(killed.status, Some(0), "{}", killed.stderr);
    let crashed = system.wait_for(&id, "CRASHED");
    let message = crashed["state_message"].as_str().unwrap_or_default();
    assert!(message.contains("killed by signal 9 (SIGKILL)"), "{crashed:#}");

    // Cancelling stops the child, and the agent goes on.
    core.deploy(home, "loop-forever", "default", "    work_pool: {name: proc}\n");
    let id = run(core, home, "loop-forever/default", &[]);
    let pid = child_pid(&system.wait_for(&id, "RUNNING"));
    core.ok(home, &["run", "cancel", &id]);
    let (_, took) = wait_for(core, home, &id, "CANCELLED", Duration::from_secs(10));
    assert!(took < Duration::from_secs(10), "cancelling took {took:?}");
    baton_tests::wait_until("the cancelled run's process to exit", Duration::from_secs(5), || {
        !process_exists(&pid)
    });
    let id = run(core, home, "sleeps/default", &["millis=1"]);
    system.wait_for(&id, "COMPLETED");
    assert!(process_exists(&system.agent.pid().to_string()));
}
