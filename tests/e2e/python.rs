//! Python flows end to end with the real binary: built with `baton flow
//! build` (componentize-py), inspected and run locally; an exception or
//! `sys.exit` ends a run FAILED with the reason (and the traceback) in its
//! log; a native-extension dependency is refused at build, by name; an
//! unchanged project builds to the same bytes; on an agent, the ETL twin's
//! tasks, retry and logs reach the API and eight Python runs go at once; a
//! deployed component is compiled on the pool's agents before any run.

use std::time::Duration;

use baton_tests::{AgentProcess, System, baton, finish, python_flow, wait_until};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::agents::{run, wait_for};

fn home() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn a_python_flow_builds_inspects_and_runs_and_its_failures_are_named() {
    let home = home();
    let hello = python_flow("examples/flows/hello-py");
    let inspected = finish(baton(home.path()).arg("flow").arg("inspect").arg(&hello));
    assert_eq!(inspected.status, Some(0), "{}", inspected.stderr);
    for expected in [
        "hello-py 0.1.0",
        "Adds two integers and returns the sum.",
        "a: integer, required - First addend.",
        "b: integer, required - Second addend.",
    ] {
        assert!(inspected.stdout.contains(expected), "no {expected:?} in:\n{}", inspected.stdout);
    }
    let ran = finish(
        baton(home.path())
            .arg("flow")
            .arg("run")
            .arg(&hello)
            .args(["--param", "a=2", "--param", "b=3"]),
    );
    assert_eq!((ran.status, ran.stdout.as_str()), (Some(0), "5\n"), "{}", ran.stderr);
    assert!(ran.stderr.contains("adding 2 and 3"), "{}", ran.stderr);

    // An unchanged project builds to the same component, byte for byte.
    let again = finish(baton(home.path()).args(["flow", "build", "examples/flows/hello-py"]));
    assert_eq!(again.status, Some(0), "{}", again.stderr);
    assert_eq!(again.stdout.lines().last().unwrap(), hello.to_str().unwrap());
    assert!(again.stderr.contains("unchanged since its last build"), "{}", again.stderr);

    let raises = python_flow("tests/python-flows/raises");
    let outcome = |mode: &str| {
        finish(
            baton(home.path())
                .arg("flow")
                .arg("run")
                .arg(&raises)
                .args(["--param", &format!("mode={mode}")]),
        )
    };
    let raised = outcome("raise");
    assert_eq!(raised.status, Some(1), "an exception is a FAILED run:\n{}", raised.stderr);
    for expected in [
        "Traceback (most recent call last)",
        // Named as in the project, not by the component's mount (`/0/`).
        "File \"flow.py\", line",
        "return table[key]",
        "KeyError: 'missing-key'",
    ] {
        assert!(raised.stderr.contains(expected), "no {expected:?} in:\n{}", raised.stderr);
    }
    let exited = outcome("exit");
    assert_eq!(exited.status, Some(1), "{}", exited.stderr);
    assert!(exited.stderr.contains("the flow exited with status 3"), "{}", exited.stderr);
    let succeeded = outcome("succeed");
    assert_eq!((succeeded.status, succeeded.stdout.as_str()), (Some(0), "\"fine\"\n"));
}

#[test]
fn a_native_extension_dependency_is_refused_at_build_by_name() {
    let built =
        finish(baton(home().path()).args(["flow", "build", "tests/python-flows/native-dep"]));
    assert_ne!(built.status, Some(0));
    assert!(
        built.stderr.contains("dependency `pydantic-core` is a native extension")
            && built.stderr.contains("pure-Python packages only"),
        "{}",
        built.stderr
    );
}

#[test]
fn python_runs_on_an_agent_with_tasks_retries_and_logs_eight_at_once() {
    let system = System::start(8);
    let (core, home) = (&system.core, system.home.path());
    let etl = std::fs::read(python_flow("examples/flows/etl-py")).unwrap();
    core.deploy_component(home, "etl-py", "default", &etl, "");
    let id = run(core, home, "etl-py/default", &["count=5"]);
    let (done, _) = wait_for(core, home, &id, "COMPLETED", Duration::from_secs(120));
    assert_eq!(done["output"]["loaded"], 5, "{done:#}");
    let tasks: Vec<(String, String)> = done["task_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_owned(), t["state"].as_str().unwrap().to_owned()))
        .collect();
    let expected = [
        ("extract", "COMPLETED"),
        ("transform", "FAILED"),
        ("transform", "COMPLETED"),
        ("load", "COMPLETED"),
    ];
    assert_eq!(tasks, expected.map(|(n, s)| (n.to_owned(), s.to_owned())), "{done:#}");
    let logs = system.ok(&["run", "logs", &id]);
    assert!(logs.contains("extracted 5 readings") && logs.contains("is hot"), "{logs}");

    let hello = std::fs::read(python_flow("examples/flows/hello-py")).unwrap();
    core.deploy_component(home, "hello-py", "default", &hello, "");
    let ids: Vec<String> =
        (0..8).map(|i| run(core, home, "hello-py/default", &["a=2", &format!("b={i}")])).collect();
    for (i, id) in ids.iter().enumerate() {
        let (done, _) = wait_for(core, home, id, "COMPLETED", Duration::from_secs(120));
        assert_eq!(done["output"], Value::from(2 + i), "{done:#}");
    }
}

#[test]
fn init_python_writes_a_project_that_deploys_runs_and_redeploys_unchanged() {
    let system = System::start(2);
    let (core, home) = (&system.core, system.home.path());
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("greeter-py");
    let init = finish(core.baton(home).args(["init", "--python"]).arg(&project));
    assert_eq!(init.status, Some(0), "{}", init.stderr);
    assert!(project.join("flow.py").is_file() && project.join("pyproject.toml").is_file());
    let deploy = || finish(core.baton(home).current_dir(&project).arg("deploy"));
    let deployed = deploy();
    assert_eq!(deployed.status, Some(0), "{}", deployed.stderr);
    assert!(deployed.stdout.contains("created greeter-py/default"), "{}", deployed.stdout);
    let id = run(core, home, "greeter-py/default", &[]);
    let (done, _) = wait_for(core, home, &id, "COMPLETED", Duration::from_secs(120));
    assert_eq!(done["output"], "hello, world!", "{done:#}");
    // Unchanged source: the same component, so the deployment stays as it is.
    let again = deploy();
    assert_eq!(again.status, Some(0), "{}", again.stderr);
    assert!(again.stdout.contains("unchanged greeter-py/default"), "{}", again.stdout);
}

#[test]
fn a_deployed_component_is_compiled_on_its_pool_s_agents_before_any_run() {
    let system = System::start(2);
    let (core, home) = (&system.core, system.home.path());
    let hello = std::fs::read(python_flow("examples/flows/hello-py")).unwrap();
    let artifact = format!("sha256:{}", hex::encode(Sha256::digest(&hello)));
    let holding = || -> usize {
        let agents: Value = serde_json::from_str(&system.ok(&["agent", "ls", "--json"])).unwrap();
        let holds = |agent: &&Value| {
            agent["cached"].as_array().is_some_and(|c| c.iter().any(|d| *d == *artifact))
        };
        agents.as_array().unwrap().iter().filter(holds).count()
    };
    assert_eq!(holding(), 0, "the component is new to the agent");
    core.deploy_component(home, "hello-py", "default", &hello, "");
    // No run asked for it: the agent was told at deploy.
    wait_until(
        "the connected agent compiled the deployed component",
        Duration::from_secs(120),
        || holding() == 1,
    );
    assert!(system.runs("hello-py/default").is_empty());
    // An agent of the pool that connects later is told when it connects.
    let data = tempfile::tempdir().unwrap();
    let token = core.agent_token(home);
    let _later = AgentProcess::start(core, home, &token, data.path());
    wait_until("the agent that connected later compiled it", Duration::from_secs(120), || {
        holding() == 2
    });
    let id = run(core, home, "hello-py/default", &["a=2", "b=3"]);
    let (done, _) = wait_for(core, home, &id, "COMPLETED", Duration::from_secs(60));
    assert_eq!(done["output"], 5, "{done:#}");
}
