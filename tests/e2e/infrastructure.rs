//! Runs on infrastructure of their pool's type: a child process per run
//! (process pools), a container per run on a real engine (Podman's Docker
//! API, which `cargo xtask test` starts), with their job variables, their
//! limits and their deaths named; nothing left behind.

use std::path::Path;
use std::time::Duration;

use baton_tests::{
    AgentProcess, CoreProcess, containers_labelled, docker_api, docker_host, dockerd_host, finish,
};
use serde_json::{Value, json};

use crate::agents::{inspect, run, wait_for};

/// A core with a pool `pool` of type `kind` and an agent serving it.
pub(crate) struct PoolSystem {
    pub(crate) core: CoreProcess,
    home: tempfile::TempDir,
    data: tempfile::TempDir,
    token: String,
    pool: String,
    agent_args: Vec<String>,
    agent: AgentProcess,
}

impl PoolSystem {
    pub(crate) fn start(pool: &str, kind: &str) -> Self {
        Self::start_with(CoreProcess::start(None), pool, kind, &[])
    }

    /// A core with a container pool `box` whose agent uses the engine at
    /// `engine`.
    fn containers(core: CoreProcess, engine: &str) -> Self {
        Self::start_with(core, "box", "container", &["--docker-host", engine])
    }

    pub(crate) fn start_with(
        core: CoreProcess,
        pool: &str,
        kind: &str,
        agent_args: &[&str],
    ) -> Self {
        let home = tempfile::tempdir().unwrap();
        core.ok(home.path(), &["pool", "create", pool, "--type", kind]);
        let token = core.agent_token_for(home.path(), pool);
        let data = tempfile::tempdir().unwrap();
        let agent_args: Vec<String> = agent_args.iter().map(|a| (*a).to_owned()).collect();
        let agent = Self::agent(&core, home.path(), &token, data.path(), pool, &agent_args);
        Self { core, home, data, token, pool: pool.to_owned(), agent_args, agent }
    }

    fn agent(
        core: &CoreProcess,
        home: &Path,
        token: &str,
        data: &Path,
        pool: &str,
        args: &[String],
    ) -> AgentProcess {
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend(["--slots", "4"]);
        AgentProcess::start_in_pool_with(core, home, token, data, pool, &args)
    }

    /// Kills the agent (SIGKILL) and starts it again, same id and data.
    fn restart_agent(&mut self) {
        self.agent.kill();
        let (home, data) = (self.home.path(), self.data.path());
        self.agent = Self::agent(&self.core, home, &self.token, data, &self.pool, &self.agent_args);
    }

    pub(crate) fn home(&self) -> &Path {
        self.home.path()
    }

    pub(crate) fn wait_for(&self, id: &str, state: &str) -> Value {
        wait_for(&self.core, self.home(), id, state, Duration::from_secs(60)).0
    }

    pub(crate) fn log_messages(&self, id: &str) -> Vec<String> {
        let listed = self.core.ok(self.home(), &["run", "logs", id, "--json"]);
        let lines: Vec<Value> = serde_json::from_str(&listed).unwrap();
        lines.iter().map(|line| line["message"].as_str().unwrap_or_default().to_owned()).collect()
    }
}

/// Creates a run of `deployment` with these `--param`s and `--job-var`s;
/// the run as `baton deployment run --json` prints it.
pub(crate) fn run_with(
    core: &CoreProcess,
    home: &Path,
    deployment: &str,
    params: &[&str],
    job_variables: &[&str],
) -> Value {
    let mut args = vec!["deployment", "run", deployment, "--json"];
    for param in params {
        args.extend(["--param", param]);
    }
    for variable in job_variables {
        args.extend(["--job-var", variable]);
    }
    serde_json::from_str(&core.ok(home, &args)).unwrap()
}

pub(crate) fn run_id(run: &Value) -> String {
    run["id"].as_str().unwrap().to_owned()
}

/// A run's history, `STATE: message` each.
fn state_messages(run: &Value) -> Vec<String> {
    run["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!("{}: {}", s["state"].as_str().unwrap(), s["message"].as_str().unwrap_or(""))
        })
        .collect()
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
    let id = run_id(&run_with(core, home, "env-echo/default", &[], &[r#"env={"STAGE":"run"}"#]));
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
    // (It runs in the working directory its job variables name.)
    core.deploy(home, "sleeps", "default", "    work_pool: {name: proc}\n");
    let workdir = tempfile::tempdir().unwrap();
    let working_dir = format!("working_dir={}", workdir.path().display());
    let id =
        run_id(&run_with(core, home, "sleeps/default", &["millis=60000"], &[working_dir.as_str()]));
    let running = system.wait_for(&id, "RUNNING");
    let pid = child_pid(&running);
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert_eq!(cwd, workdir.path().canonicalize().unwrap());
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

/// The runner image, built into the test engine by `baton image build`
/// (as a user would); its reference.
fn runner_image(core: &CoreProcess, home: &Path, engine: &str) -> String {
    let built = core.ok(home, &["image", "build", "--docker-host", engine]);
    let image = built.lines().last().unwrap_or_default().to_owned();
    assert!(image.contains("baton-runner"), "{built}");
    image
}

fn labelled(engine: &str, id: &str) -> Vec<Value> {
    containers_labelled(engine, &format!("io.baton.run-id={id}"))
}

#[test]
fn a_container_pool_runs_each_run_in_a_container_removed_after_it_on_podman() {
    runs_in_containers(&docker_host());
}

#[test]
fn a_container_pool_runs_each_run_in_a_container_removed_after_it_on_docker() {
    runs_in_containers(&dockerd_host());
}

fn runs_in_containers(engine: &str) {
    let system = PoolSystem::containers(CoreProcess::start(None), engine);
    let (core, home) = (&system.core, system.home());
    let image = runner_image(core, home, engine);
    let volume = tempfile::tempdir().unwrap();
    let bind = format!("{}:/data:ro", volume.path().display());
    let yaml = format!(
        "    work_pool: {{name: box, job_variables: {{image: '{image}', env: {{STAGE: deployment}}, labels: {{team: data}}, user: '65534:65534', cpu: 1.5, volumes: ['{bind}'], command: [/bin/baton, flow, exec]}}}}\n"
    );

    // Logs arrive while the run runs, and its container is there then,
    // labelled, as the pool's user, and gone after.
    core.deploy(home, "ticks", "default", &yaml);
    let id = run(core, home, "ticks/default", &["ticks=8", "millis=400"]);
    let running = system.wait_for(&id, "RUNNING");
    assert_eq!(running["infrastructure"]["type"], "container", "{running:#}");
    let container = running["infrastructure"]["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(container.len(), 12, "{running:#}");
    let during = labelled(engine, &id);
    assert_eq!(during.len(), 1, "{during:#?}");
    assert!(during[0]["Id"].as_str().unwrap_or_default().starts_with(&container));
    assert_eq!(during[0]["Labels"]["team"], "data", "{during:#?}");
    assert_eq!(during[0]["Labels"]["io.baton.managed-by"], "baton", "{during:#?}");
    let config = docker_api(engine, "GET", &format!("/containers/{container}/json"));
    assert_eq!(config["Config"]["User"], "65534:65534", "{config:#}");
    assert_eq!(config["HostConfig"]["NetworkMode"], "none", "{config:#}");
    assert_eq!(config["HostConfig"]["NanoCpus"], 1_500_000_000_u64, "{config:#}");
    let binds = config["HostConfig"]["Binds"].as_array().cloned().unwrap_or_default();
    assert!(
        binds.iter().any(|b| b
            .as_str()
            .is_some_and(|b| b.starts_with(&format!("{}:/data", volume.path().display())))),
        "{config:#}"
    );
    let command = [&config["Config"]["Entrypoint"], &config["Config"]["Cmd"]];
    assert_eq!(command, [&json!(["/bin/baton"]), &json!(["flow", "exec"])], "{config:#}");
    baton_tests::wait_until("a log line while the run runs", Duration::from_secs(20), || {
        system.log_messages(&id).iter().any(|line| line == "tick 0")
    });
    assert_eq!(inspect(core, home, &id)["state"], "RUNNING", "the logs came only at the end");
    let done = system.wait_for(&id, "COMPLETED");
    assert_eq!(done["output"]["ticks"], 8, "{done:#}");
    assert_eq!(system.log_messages(&id).iter().filter(|l| l.starts_with("tick ")).count(), 8);
    assert_eq!(labelled(engine, &id), Vec::<Value>::new(), "the run's container outlived it");
    let shown = core.ok(home, &["run", "inspect", &id]);
    assert!(shown.contains(&format!("container {container} on {engine}")), "{shown}");

    // Job variables merged (the run's over the deployment's) reach the flow.
    core.deploy(home, "env-echo", "default", &yaml);
    let id = run_id(&run_with(core, home, "env-echo/default", &[], &[r#"env={"STAGE":"run"}"#]));
    let done = system.wait_for(&id, "COMPLETED");
    assert_eq!(done["output"]["STAGE"], "run", "{done:#}");
    assert_eq!(done["job_variables"]["env"], json!({"STAGE": "run"}), "{done:#}");

    // A memory limit ends a hog OUT_OF_MEMORY, and its container goes too.
    core.deploy(home, "memory-hog", "default", &yaml);
    let id = run_id(&run_with(core, home, "memory-hog/default", &[], &["memory_mib=48"]));
    let failed = system.wait_for(&id, "FAILED");
    let message = failed["state_message"].as_str().unwrap_or_default();
    assert!(message.contains("ran out of memory (limit 48 MiB)"), "{failed:#}");

    // An image that is not there, and may not be pulled: said, not hung.
    let id = run_id(&run_with(
        core,
        home,
        "env-echo/default",
        &[],
        &["image=localhost/baton-nowhere:1", "pull_policy=never"],
    ));
    let crashed = system.wait_for(&id, "CRASHED");
    let message = crashed["state_message"].as_str().unwrap_or_default();
    assert!(
        message.contains("localhost/baton-nowhere:1") && message.contains("`never`"),
        "{crashed:#}"
    );
    assert_eq!(labelled(engine, &id), Vec::<Value>::new());

    // A pool's own engine socket is the one used.
    let id = run_id(&run_with(
        core,
        home,
        "env-echo/default",
        &[],
        &["engine_socket=unix:///nonexistent/engine.sock"],
    ));
    let crashed = system.wait_for(&id, "CRASHED");
    let message = crashed["state_message"].as_str().unwrap_or_default();
    assert!(message.contains("/nonexistent/engine.sock"), "{crashed:#}");
}

#[test]
fn container_runs_cancelled_timed_out_or_removed_end_so_and_leftovers_are_reaped_on_podman() {
    container_faults(&docker_host());
}

#[test]
fn container_runs_cancelled_timed_out_or_removed_end_so_and_leftovers_are_reaped_on_docker() {
    container_faults(&dockerd_host());
}

fn container_faults(engine: &str) {
    let core = CoreProcess::start_with(None, &["--crash-after", "2s"]);
    let mut system = PoolSystem::containers(core, engine);
    let (core, home) = (&system.core, system.home());
    let image = runner_image(core, home, engine);
    let yaml = format!("    work_pool: {{name: box, job_variables: {{image: '{image}'}}}}\n");

    core.deploy(home, "loop-forever", "default", &yaml);
    let id = run(core, home, "loop-forever/default", &[]);
    system.wait_for(&id, "RUNNING");
    assert_eq!(labelled(engine, &id).len(), 1);
    core.ok(home, &["run", "cancel", &id]);
    let (_, took) = wait_for(core, home, &id, "CANCELLED", Duration::from_secs(10));
    assert!(took < Duration::from_secs(10), "cancelling took {took:?}");
    baton_tests::wait_until("the cancelled run's container to go", Duration::from_secs(10), || {
        labelled(engine, &id).is_empty()
    });

    // Past its time limit: stopped in the container, which goes too.
    let yaml_limited = format!(
        "    timeout_seconds: 2\n    work_pool: {{name: box, job_variables: {{image: '{image}'}}}}\n"
    );
    core.deploy(home, "loop-forever", "limited", &yaml_limited);
    let id = run(core, home, "loop-forever/limited", &[]);
    let failed = system.wait_for(&id, "FAILED");
    let message = failed["state_message"].as_str().unwrap_or_default();
    assert!(message.contains("timed out after 2000 ms"), "{failed:#}");
    assert_eq!(labelled(engine, &id), Vec::<Value>::new());

    // A container removed from outside mid-run: the run says so.
    core.deploy(home, "sleeps", "default", &yaml);
    let id = run(core, home, "sleeps/default", &["millis=120000"]);
    let running = system.wait_for(&id, "RUNNING");
    let container = running["infrastructure"]["id"].as_str().unwrap_or_default().to_owned();
    docker_api(engine, "DELETE", &format!("/containers/{container}?force=1"));
    let crashed = system.wait_for(&id, "CRASHED");
    let message = crashed["state_message"].as_str().unwrap_or_default();
    // Gone before Baton looked, or still being removed (killed) then.
    let said = message.contains("vanished") || message.contains("was killed");
    assert!(message.contains(container.as_str()) && said, "{crashed:#}");

    // The agent killed mid-run: the run crashes, and once the agent is
    // back its container is removed.
    let id = run(core, home, "sleeps/default", &["millis=120000"]);
    system.wait_for(&id, "RUNNING");
    system.restart_agent();
    let (core, home) = (&system.core, system.home());
    let crashed = wait_for(core, home, &id, "CRASHED", Duration::from_secs(30)).0;
    assert!(crashed["state_message"].is_string(), "{crashed:#}");
    baton_tests::wait_until(
        "the restarted agent to reap the container",
        Duration::from_secs(30),
        || labelled(engine, &id).is_empty(),
    );
    // And it goes on: the next run completes.
    let id = run(core, home, "sleeps/default", &["millis=1"]);
    system.wait_for(&id, "COMPLETED");
}

#[test]
fn a_wasm_pool_escalates_a_run_that_outgrows_its_sandbox_to_a_container_pool_once() {
    let engine = docker_host();
    let system = PoolSystem::containers(CoreProcess::start(None), &engine);
    let (core, home) = (&system.core, system.home());
    // The container pool's default image, as `baton image build` tags it.
    assert_eq!(runner_image(core, home, &engine), "localhost/baton-runner:latest");
    let refused =
        finish(core.baton(home).args(["pool", "create", "odd", "--escalate-to", "nowhere"]));
    assert_ne!(refused.status, Some(0));
    assert!(refused.stderr.contains("no work pool `nowhere`"), "{}", refused.stderr);
    core.ok(home, &["pool", "create", "small", "--escalate-to", "box"]);
    let shown = core.ok(home, &["pool", "inspect", "small"]);
    assert!(shown.contains("escalates to pool box"), "{shown}");
    let token = core.agent_token_for(home, "small");
    let data = tempfile::tempdir().unwrap();
    let _small = AgentProcess::start_in_pool(core, home, &token, data.path(), "small", 2);
    core.deploy(home, "memory-hog", "default", "    work_pool: {name: small}\n");

    // 300 MiB: over the sandbox's default cap of 256 MiB, so the run runs
    // out of memory in `small`, then completes in a container of `box`.
    let id = run(core, home, "memory-hog/default", &["mib=300"]);
    let done = system.wait_for(&id, "COMPLETED");
    assert_eq!(done["output"], 300, "{done:#}");
    assert_eq!(done["work_pool"], "box", "{done:#}");
    assert_eq!(done["infrastructure"]["type"], "container", "{done:#}");
    let states = state_messages(&done);
    let escalated: Vec<&String> =
        states.iter().filter(|s| s.contains("escalated to pool box")).collect();
    assert_eq!(escalated.len(), 1, "{states:#?}");
    assert!(escalated[0].contains("sandbox memory cap 256 MiB reached"), "{states:#?}");

    // Once only: a hog without end runs out in the container too (limited
    // to 64 MiB by the run's job variable) and is not escalated again.
    let id = run_id(&run_with(core, home, "memory-hog/default", &[], &["memory_mib=64"]));
    let failed = system.wait_for(&id, "FAILED");
    assert_eq!(failed["work_pool"], "box", "{failed:#}");
    let message = failed["state_message"].as_str().unwrap_or_default();
    assert!(message.contains("ran out of memory (limit 64 MiB)"), "{failed:#}");
    let states = state_messages(&failed);
    assert_eq!(states.iter().filter(|s| s.contains("escalated to pool")).count(), 1, "{states:#?}");

    // A run asking for more memory than the sandbox has goes straight there.
    let run = run_with(core, home, "memory-hog/default", &["mib=1"], &["memory_mib=8192"]);
    assert_eq!(run["work_pool"], "box", "{run:#}");
    let message = run["state_message"].as_str().unwrap_or_default();
    assert!(
        message.contains("escalated to pool box: job variable memory_mib asks for 8192 MiB"),
        "{run:#}"
    );
    let done = system.wait_for(run["id"].as_str().unwrap(), "COMPLETED");
    assert_eq!(done["output"], 1, "{done:#}");
}

/// A run of a pool no agent serves (a Kubernetes pool here), moved as its
/// agent would move it, to its first attempt, running; with the key the
/// core gives that attempt (HMAC-SHA256 under `secret_key`, as
/// `SecretCipher::execution_key` derives it), which a pod's runner shows.
pub(crate) struct PodExecution {
    pub(crate) key: String,
}

impl PodExecution {
    pub(crate) fn start(core: &CoreProcess, secret_key: &str, run_id: &str) -> Self {
        use hmac::Mac;
        let address = core.api_address();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let mut http = baton_tests::http::Connection::open(address).await;
            for state in ["PENDING", "RUNNING"] {
                let path = format!("/api/runs/{run_id}/state");
                let (status, answer) = http.json("POST", &path, &json!({"state": state})).await;
                assert_eq!((status, &answer["verdict"]), (200, &json!("accepted")), "{answer:#}");
            }
        });
        let key_bytes = hex::decode(secret_key).unwrap();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key_bytes).unwrap();
        mac.update(b"baton execution key v1\0");
        mac.update(run_id.as_bytes());
        mac.update(b"\0");
        mac.update(&1_u32.to_be_bytes());
        Self { key: hex::encode(mac.finalize().into_bytes()) }
    }
}

impl PodExecution {
    /// The job a pod's runner gets for attempt 1 of `run_id`, a run of
    /// `flow` with `params`, showing `key`; its files in `dir`.
    pub(crate) fn job(
        core: &CoreProcess,
        (flow, params): (&str, &Value),
        (run_id, key): (&str, &str),
        dir: &Path,
    ) -> Value {
        let wasm = baton_tests::flow_wasm(flow);
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&wasm));
        json!({
            "digest": digest,
            "components": dir,
            "cache": dir,
            "params": params,
            "memory_bytes": 64 << 20,
            "timeout_ms": 60_000,
            "artifact_url": format!("{}/api/artifacts/sha256:{digest}/content", core.url),
            "run_url": format!("{}/api/runs/{run_id}", core.url),
            "execution_key": key,
            "attempt": 1,
        })
    }
}

/// The messages `baton flow exec --job-file JOB` printed, run with `token`
/// as its API token.
pub(crate) fn exec_job_file(home: &Path, job: &Value, token: Option<&str>) -> Vec<Value> {
    let file = home.join("job.json");
    std::fs::write(&file, job.to_string()).unwrap();
    let mut command = baton_tests::baton(home);
    command.args(["flow", "exec", "--job-file"]).arg(&file).env_remove("BATON_API_TOKEN");
    if let Some(token) = token {
        command.env("BATON_API_TOKEN", token);
    }
    let done = finish(&mut command);
    assert_eq!(done.status, Some(0), "{}", done.stderr);
    done.stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

/// What a Kubernetes pod's runner does, all of it but the cluster: its job
/// from a mounted file, its component fetched from the core's API with a
/// read token and checked against the digest it was given.
#[test]
fn a_pod_s_runner_takes_its_job_from_a_file_and_its_component_from_the_api() {
    const ADMIN: &str = "adm1n-t0ken";
    let core = CoreProcess::start_with(None, &["--api-token", ADMIN]);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let wasm = baton_tests::flow_wasm("hello");
    std::fs::write(home.join("flow.wasm"), &wasm).unwrap();
    std::fs::write(
        home.join("baton.yaml"),
        "name: hello\nbuild:\n  component: flow.wasm\ndeployments:\n  - name: k8s\n",
    )
    .unwrap();
    let deployed = finish(
        core.baton(home)
            .env("BATON_API_TOKEN", ADMIN)
            .args(["deploy", "--file"])
            .arg(home.join("baton.yaml")),
    );
    assert_eq!(deployed.status, Some(0), "{}", deployed.stderr);
    let made = finish(core.baton(home).env("BATON_API_TOKEN", ADMIN).args([
        "api-token",
        "create",
        "--scope",
        "read",
    ]));
    let read_token = made.stdout.lines().last().unwrap().trim().to_owned();

    let hello = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&wasm));
    // A fresh pod each time: nothing staged, nothing compiled.
    let pods: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let job = |pod: usize, digest: &str| {
        json!({
            "digest": digest,
            "components": pods[pod].path(),
            "cache": pods[pod].path(),
            "params": {"a": 20, "b": 22},
            "memory_bytes": 64 << 20,
            "timeout_ms": 30_000,
            // The URL of hello's bytes, whatever the job names.
            "artifact_url": format!("{}/api/artifacts/sha256:{hello}/content", core.url),
        })
    };
    let outcome = |messages: &[Value]| messages.last().cloned().unwrap_or_default();

    let messages = exec_job_file(home, &job(0, &hello), Some(&read_token));
    assert_eq!(messages.first().map(|m| m["kind"].clone()), Some(json!("started")), "{messages:?}");
    assert!(
        messages.iter().any(|m| m["report"]["message"] == "the sum is 42"),
        "the flow's logs come out as reports: {messages:?}"
    );
    assert_eq!(
        outcome(&messages),
        json!({"kind": "finished", "outcome": {"outcome": "completed", "output": 42}}),
        "{messages:?}"
    );

    // Without the token the core refuses, and the run says so.
    let refused = outcome(&exec_job_file(home, &job(1, &hello), None));
    assert_eq!(refused["outcome"]["outcome"], "crashed", "{refused}");
    let message = refused["outcome"]["message"].as_str().unwrap();
    assert!(message.contains("fetching the component") && message.contains("401"), "{message}");

    // A component that is not the one the job names is not run.
    let other = "0".repeat(64);
    let mismatched = outcome(&exec_job_file(home, &job(2, &other), Some(&read_token)));
    assert_eq!(mismatched["outcome"]["outcome"], "crashed", "{mismatched}");
    let message = mismatched["outcome"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("is not sha256:{other}")), "{message}");
}
