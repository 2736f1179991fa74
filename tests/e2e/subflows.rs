//! Subflows through a real core and agents: a flow starts a run of
//! another deployment (in another pool, on another backend), waits for it
//! and gets its output; the child records its parent and the parent lists
//! it; refusals reach the flow; cancelling the parent cancels the child it
//! waits for; a flow that starts itself is cut by the depth limit; a
//! wait goes on across cores, a killed core and a cut-off agent.

use std::path::Path;
use std::time::Duration;

use baton_tests::faults::UdpRelay;
use baton_tests::{AgentProcess, CoreProcess, fresh_postgres_database};
use serde_json::{Value, json};

use crate::agents::{inspect, wait_for};
use crate::infrastructure::{PodExecution, PoolSystem, run_id, run_with};

/// The system: pool `edge` (wasm, from [`PoolSystem`]) and pool `proc`
/// (process) with an agent each.
pub(crate) struct TwoPools {
    pub(crate) system: PoolSystem,
    _proc_agent: AgentProcess,
    _proc_data: tempfile::TempDir,
}

impl TwoPools {
    pub(crate) fn start() -> Self {
        let system = PoolSystem::start("edge", "wasm");
        let (core, home) = (&system.core, system.home());
        core.ok(home, &["pool", "create", "proc", "--type", "process"]);
        let token = core.agent_token_for(home, "proc");
        let data = tempfile::tempdir().unwrap();
        let agent = AgentProcess::start_in_pool_with(core, home, &token, data.path(), "proc", &[]);
        Self { system, _proc_agent: agent, _proc_data: data }
    }

    pub(crate) fn core(&self) -> &CoreProcess {
        &self.system.core
    }

    pub(crate) fn home(&self) -> &Path {
        self.system.home()
    }

    /// Deploys `flow` as `flow/pool` in pool `pool`.
    pub(crate) fn deploy(&self, flow: &str, pool: &str) {
        self.core().deploy(self.home(), flow, pool, &format!("    work_pool: {{name: {pool}}}\n"));
    }

    /// Starts `parent` (a deployment of the `subflow` flow) asking it to run
    /// `child` with `params`; the parent's id.
    fn start_parent(&self, parent: &str, child: &str, params: Value, extra: &[&str]) -> String {
        let mut args = vec![format!("deployment={child}"), format!("params={params}")];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_id(&run_with(self.core(), self.home(), parent, &args, &[]))
    }
}

#[test]
fn a_flow_runs_a_deployment_in_another_pool_waits_for_it_and_gets_its_output() {
    let pools = TwoPools::start();
    let (core, home) = (pools.core(), pools.home());
    for pool in ["edge", "proc"] {
        pools.deploy("subflow", pool);
        pools.deploy("hello", pool);
    }

    // Parent in the wasm sandbox, child in a process; and the other way
    // round, where the runner relays the call through its agent.
    for (parent, child) in [("subflow/edge", "hello/proc"), ("subflow/proc", "hello/edge")] {
        let id = pools.start_parent(parent, child, json!({"a": 2, "b": 40}), &[]);
        let done = pools.system.wait_for(&id, "COMPLETED");
        let output = &done["output"];
        assert_eq!(output["state"], "COMPLETED", "{parent} → {child}: {done:#}");
        assert_eq!(output["output"], 42, "{parent} → {child}: {done:#}");
        assert_eq!(output["deployment"], child);
        let child_id = output["id"].as_str().unwrap();

        // Each side records the other.
        let child_run = inspect(core, home, child_id);
        assert_eq!(child_run["parent_id"], id.as_str(), "{child_run:#}");
        let children = done["children"].as_array().unwrap();
        assert_eq!(children.len(), 1, "{done:#}");
        assert_eq!(children[0]["id"], child_id);
        assert_eq!(children[0]["state"], "COMPLETED");
        let listed = core.ok(home, &["run", "inspect", &id]);
        assert!(listed.contains("subflows:") && listed.contains(child_id), "{listed}");
        let listed = core.ok(home, &["run", "inspect", child_id]);
        assert!(listed.contains(&format!("parent      {id}")), "{listed}");
    }

    // What the core refuses reaches the flow, which fails with it.
    let id = pools.start_parent("subflow/edge", "nope/nope", json!({}), &[]);
    let failed = pools.system.wait_for(&id, "FAILED");
    let message = failed["state_message"].as_str().unwrap_or_default();
    assert!(
        message.contains("run_deployment nope/nope") && message.contains("not found"),
        "{failed:#}"
    );
    let id = pools.start_parent("subflow/edge", "hello/proc", json!({"a": "two"}), &[]);
    let failed = pools.system.wait_for(&id, "FAILED");
    let message = failed["state_message"].as_str().unwrap_or_default();
    assert!(message.contains("invalid parameters"), "{failed:#}");
    assert_eq!(failed["children"], json!([]), "a refused child was created: {failed:#}");

    // Without waiting, the parent ends at once and the child on its own.
    let id =
        pools.start_parent("subflow/edge", "hello/proc", json!({"a": 1, "b": 1}), &["wait=false"]);
    let done = pools.system.wait_for(&id, "COMPLETED");
    let child_id = done["output"]["id"].as_str().unwrap().to_owned();
    let child = wait_for(core, home, &child_id, "COMPLETED", Duration::from_secs(60)).0;
    assert_eq!(child["output"], 2);
}

#[test]
fn cancelling_a_parent_cancels_the_child_it_waits_for_wherever_it_runs() {
    let pools = TwoPools::start();
    let (core, home) = (pools.core(), pools.home());
    pools.deploy("subflow", "edge");
    pools.deploy("sleeps", "proc");

    let id = pools.start_parent("subflow/edge", "sleeps/proc", json!({"millis": 600_000}), &[]);
    let child_id =
        baton_tests::wait_until_some("the child to run", Duration::from_secs(60), || {
            let parent = inspect(core, home, &id);
            let child = parent["children"].as_array()?.first()?.clone();
            (child["state"] == "RUNNING").then(|| child["id"].as_str().map(str::to_owned))?
        });
    core.ok(home, &["run", "cancel", &id]);
    wait_for(core, home, &id, "CANCELLED", Duration::from_secs(20));
    let child = wait_for(core, home, &child_id, "CANCELLED", Duration::from_secs(20)).0;
    assert_eq!(child["parent_id"], id.as_str());
}

#[test]
fn a_flow_that_starts_itself_is_cut_by_the_depth_limit() {
    let pools = TwoPools::start();
    let (core, home) = (pools.core(), pools.home());
    pools.deploy("subflow", "edge");

    // Each run starts the next without waiting, so four slots suffice.
    let first = pools.start_parent(
        "subflow/edge",
        "subflow/edge",
        json!({}),
        &["wait=false", "forward=true"],
    );
    let mut chain = vec![first];
    let last = loop {
        let id = chain.last().unwrap().clone();
        let run = baton_tests::wait_until_some("the run to end", Duration::from_secs(60), || {
            let run = inspect(core, home, &id);
            ["COMPLETED", "FAILED", "CRASHED"].contains(&run["state"].as_str()?).then_some(run)
        });
        if run["state"] != "COMPLETED" {
            break run;
        }
        chain.push(run["output"]["id"].as_str().unwrap().to_owned());
        assert!(chain.len() <= 20, "the chain did not stop: {chain:?}");
    };
    let message = last["state_message"].as_str().unwrap_or_default();
    assert_eq!(last["state"], "FAILED", "{last:#}");
    assert!(message.contains("is 10 subflows deep, the limit"), "{last:#}");
    // The first run and ten subflows below it.
    assert_eq!(chain.len(), 11, "{chain:?}");
    assert_eq!(last["children"], json!([]));
}

/// What a Kubernetes pod's runner does for subflows, all of it but the
/// cluster: its job (from a file) names the core's URL of its run and its
/// execution's key, and its flow's calls go over the API with that key;
/// without the right key the core refuses them.
#[test]
fn a_pod_s_runner_makes_its_subflow_calls_over_the_api_with_its_execution_key() {
    let secret_key = "5e".repeat(32);
    let core = CoreProcess::start_with(None, &["--secret-key", &secret_key]);
    let system = PoolSystem::start_with(core, "edge", "wasm", &[]);
    let (core, home) = (&system.core, system.home());
    core.deploy(home, "hello", "edge", "    work_pool: {name: edge}\n");
    core.ok(home, &["pool", "create", "k8s", "--type", "kubernetes"]);
    core.deploy(home, "subflow", "k8s", "    work_pool: {name: k8s}\n");
    let params = json!({"deployment": "hello/edge", "params": {"a": 2, "b": 3}});
    let parent = run_id(&run_with(
        core,
        home,
        "subflow/k8s",
        &[&format!("params={}", params["params"]), "deployment=hello/edge"],
        &[],
    ));

    let execution_key = PodExecution::start(core, &secret_key, &parent).key;

    let pod = tempfile::tempdir().unwrap();
    let job = |key: &str| PodExecution::job(core, ("subflow", &params), (&parent, key), pod.path());

    let messages = crate::infrastructure::exec_job_file(home, &job(&execution_key), None);
    let finished = messages.last().cloned().unwrap_or_default();
    assert_eq!(finished["outcome"]["outcome"], "completed", "{messages:#?}");
    let output = &finished["outcome"]["output"];
    assert_eq!(
        (&output["state"], &output["output"]),
        (&json!("COMPLETED"), &json!(5)),
        "{output:#}"
    );
    let child = inspect(core, home, output["id"].as_str().unwrap());
    assert_eq!(child["parent_id"], parent.as_str(), "{child:#}");

    // Another run's key, or none that fits, is refused; nothing starts.
    let wrong = "0".repeat(64);
    let messages = crate::infrastructure::exec_job_file(home, &job(&wrong), None);
    let finished = messages.last().cloned().unwrap_or_default();
    assert_eq!(finished["outcome"]["outcome"], "failed", "{messages:#?}");
    let message = finished["outcome"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("the core refused the subflow call (401"), "{message}");
    let children = inspect(core, home, &parent)["children"].as_array().unwrap().len();
    assert_eq!(children, 1, "a refused call started a child");
}

/// Two cores on one PostgreSQL database: parents run on an agent of one
/// (through a relay that can cut it off), their children on an agent of
/// the other. A parent waits for its child across the cores, and goes on
/// waiting through its own core being killed and its agent being cut off
/// for longer than the agent's idle timeout (the child ending meanwhile);
/// each parent completes once with its one child's output.
#[test]
fn a_wait_goes_on_across_cores_through_a_killed_core_and_a_cut_off_agent() {
    const CHILD_MILLIS: u64 = 3_000;
    let url = fresh_postgres_database();
    // A crash window longer than the cut: the parent's execution is not
    // lost, only its connection (the agent's idle timeout is 10 s).
    let mut near = CoreProcess::start_with(Some(&url), &["--crash-after", "40s"]);
    let far = CoreProcess::start_with(Some(&url), &[]);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    far.ok(home, &["pool", "create", "far", "--type", "wasm"]);
    near.deploy(home, "subflow", "near", "");
    far.deploy(home, "sleeps", "far", "    work_pool: {name: far}\n");
    let relay = UdpRelay::start(&near.quic);
    let (near_data, far_data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let token = near.agent_token(home);
    let _near_agent =
        AgentProcess::start_via(&near, home, &token, near_data.path(), &relay.address, 4);
    let token = far.agent_token_for(home, "far");
    let _far_agent = AgentProcess::start_in_pool(&far, home, &token, far_data.path(), "far", 4);

    let mut parents = Vec::new();
    for fault in ["none", "parent's core killed", "parent's agent cut off"] {
        let params = json!({"millis": CHILD_MILLIS});
        let args = ["deployment=sleeps/far".to_owned(), format!("params={params}")];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let parent = run_id(&run_with(&far, home, "subflow/near", &args, &[]));
        baton_tests::wait_until(
            &format!("the child to run ({fault})"),
            Duration::from_secs(60),
            || {
                let parent = inspect(&far, home, &parent);
                parent["children"]
                    .as_array()
                    .and_then(|c| c.first())
                    .is_some_and(|c| c["state"] == "RUNNING")
            },
        );
        match fault {
            "parent's core killed" => near.restart_after(Duration::from_secs(1)),
            "parent's agent cut off" => {
                relay.cut(true);
                std::thread::sleep(Duration::from_secs(12));
                relay.cut(false);
            }
            _ => {}
        }
        let done = wait_for(&far, home, &parent, "COMPLETED", Duration::from_secs(60)).0;
        parents.push((fault, done));
    }

    for (fault, done) in &parents {
        let children = done["children"].as_array().unwrap();
        assert_eq!(children.len(), 1, "{fault}: {done:#}");
        assert_eq!(
            (&done["attempt"], &done["run_count"]),
            (&json!(1), &json!(1)),
            "{fault}: {done:#}"
        );
        let output = &done["output"];
        assert_eq!(
            (&output["state"], &output["output"]),
            (&json!("COMPLETED"), &json!(CHILD_MILLIS)),
            "{fault}: {done:#}"
        );
        let child = inspect(&far, home, children[0]["id"].as_str().unwrap());
        assert_eq!(
            (&child["attempt"], &child["run_count"]),
            (&json!(1), &json!(1)),
            "{fault}: {child:#}"
        );
    }
    // Nothing started twice.
    assert_eq!(far.runs(home, "sleeps/far").len(), parents.len());
}
