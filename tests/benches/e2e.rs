//! End to end on loopback, as recorded in BENCHMARKS.md: a core (`baton
//! server start`, SQLite) and one agent (`baton agent start`), each its own
//! process, driven through the REST API.
//!
//! `cargo bench -p baton-tests --bench e2e`
//!
//! - latency: from the API call that creates a run of `hello` until the
//!   core records it `COMPLETED`, one run at a time; measured by the client
//!   (polling the run every 0.25 ms) and by the core's own timestamps;
//! - subflows: a run of `subflow` that starts a run of `hello` and waits
//!   for it, one at a time: from the child's creation to the parent's
//!   completion by the core's clock (the call, the child's whole run, the
//!   parent resuming and ending), and the parent's create -> COMPLETED;
//! - throughput: a burst of runs created by 8 clients, from the first
//!   creation to the last completion, by the core's timestamps;
//! - Windmill's scenario: 40 runs of a flow that sleeps 10 ms, each
//!   created when the previous one completed; and as one run of a flow
//!   with 40 such tasks;
//! - cancelling a run that loops forever, until the core records it
//!   `CANCELLED`;
//! - the backends side by side: create -> COMPLETED of `hello` in the
//!   sandbox, in a process pool (a child process per run) and in a
//!   container pool (a container per run, on the engine at
//!   `BATON_TEST_DOCKER_HOST`), in turn, beside a bare `podman run --rm` of
//!   the runner image; and the container agent's memory with 16 runs;
//! - the idle agent's resident memory.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark code"
)]

use std::time::{Duration, Instant};

use baton_tests::bench::{completed, create, recorded_ms, run_burst, state_at};
use baton_tests::http::Connection;
use baton_tests::measure::{peak_resident_kib, percentile, resident_kib, unix_ms};
use baton_tests::{AgentProcess, CoreProcess};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// Waits until a connected agent of `pool` holds `digest` compiled.
async fn wait_until_held(connection: &mut Connection, pool: &str, digest: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (_, agents) = connection.json("GET", "/api/agents", &Value::Null).await;
        let held = agents.as_array().unwrap().iter().any(|agent| {
            agent["pool"] == pool
                && agent["cached"].as_array().is_some_and(|c| c.iter().any(|d| d == digest))
        });
        if held {
            return;
        }
        assert!(Instant::now() < deadline, "{digest} was never compiled on an agent of {pool}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: a quick smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let (latency_runs, burst, clients) = if full { (500, 5_000, 8) } else { (10, 40, 2) };

    let core = CoreProcess::start(None);
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let token = core.agent_token(home.path());
    core.deploy(home.path(), "hello", "bench", "");
    core.deploy(home.path(), "sleeps", "bench", "");
    core.deploy(home.path(), "loop-forever", "bench", "");
    core.deploy(home.path(), "chain", "bench", "");
    core.deploy(home.path(), "subflow", "bench", "");
    core.deploy(home.path(), "cached", "bench", "");
    // One agent; enough slots that runs in flight, not slots, bound the burst.
    let agent = AgentProcess::start_with_slots(&core, home.path(), &token, data.path(), 64);
    // And one of a process pool, for the backends side by side.
    core.ok(home.path(), &["pool", "create", "native", "--type", "process"]);
    core.deploy(home.path(), "hello", "native", "    work_pool: {name: native}\n");
    let native_token = core.agent_token_for(home.path(), "native");
    let native_data = tempfile::tempdir().unwrap();
    let _native = AgentProcess::start_in_pool(
        &core,
        home.path(),
        &native_token,
        native_data.path(),
        "native",
        16,
    );
    // And one of a container pool, on the test engine, with the runner image.
    let docker = baton_tests::docker_host();
    let built = core.ok(home.path(), &["image", "build", "--docker-host", &docker]);
    let image = built.lines().last().unwrap().to_owned();
    core.ok(home.path(), &["pool", "create", "box", "--type", "container"]);
    let in_box = format!("    work_pool: {{name: box, job_variables: {{image: '{image}'}}}}\n");
    core.deploy(home.path(), "hello", "box", &in_box);
    core.deploy(home.path(), "sleeps", "box", &in_box);
    let box_token = core.agent_token_for(home.path(), "box");
    let box_data = tempfile::tempdir().unwrap();
    let box_agent = AgentProcess::start_in_pool_with(
        &core,
        home.path(),
        &box_token,
        box_data.path(),
        "box",
        &["--slots", "16", "--docker-host", &docker],
    );
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "idle agent, connected 2 s, nothing run yet: resident {} kB",
        resident_kib(Some(agent.pid()))
    );
    let address = core.api_address();

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut connection = Connection::open(address).await;
        // Warm up: the agent fetches and compiles the components once.
        let subflow_params =
            |i: usize| json!({"deployment": "hello/bench", "params": {"a": i, "b": 1}});
        for (deployment, params) in [
            ("hello/bench", json!({"a": 1, "b": 2})),
            ("sleeps/bench", json!({"millis": 1})),
            ("subflow/bench", subflow_params(0)),
            ("cached/bench", json!({"key": "hit"})),
        ] {
            let id = create(&mut connection, deployment, params).await;
            completed(&mut connection, &id).await;
        }

        let mut measured = Vec::with_capacity(latency_runs);
        let mut recorded = Vec::with_capacity(latency_runs);
        // Where the time goes, by the core's clock: created -> PENDING
        // (dispatch), -> RUNNING (the agent's start applied), -> COMPLETED.
        let mut stages = [0_i64; 3];
        for i in 0..latency_runs {
            let sent = Instant::now();
            let id = create(&mut connection, "hello/bench", json!({"a": i, "b": 1})).await;
            let run = completed(&mut connection, &id).await;
            measured.push(sent.elapsed());
            recorded.push(recorded_ms(&run));
            let (_, detail) = connection.json("GET", &format!("/api/runs/{id}"), &Value::Null).await;
            let created = run["created_at"].as_i64().unwrap();
            let pending = state_at(&detail, "PENDING");
            let running = state_at(&detail, "RUNNING");
            for (stage, (from, to)) in
                stages.iter_mut().zip([(created, pending), (pending, running), (running, run["ended_at"].as_i64().unwrap())])
            {
                *stage += to - from;
            }
        }
        measured.sort_unstable();
        recorded.sort_unstable();
        println!(
            "latency, create -> COMPLETED, one run at a time ({latency_runs} runs of hello): \
             measured by the client p50 {:.2?}, p99 {:.2?}; recorded by the core p50 {} ms, p99 {} ms",
            percentile(&measured, 0.50),
            percentile(&measured, 0.99),
            recorded[recorded.len() / 2],
            recorded[(recorded.len() - 1) * 99 / 100],
        );
        let mean = |total: i64| total as f64 / latency_runs as f64;
        println!(
            "latency by stage, means by the core's clock: created -> PENDING {:.2} ms, PENDING -> RUNNING {:.2} ms, RUNNING -> COMPLETED {:.2} ms",
            mean(stages[0]),
            mean(stages[1]),
            mean(stages[2]),
        );

        // Subflows, one at a time.
        let mut parent_took = Vec::new();
        let mut child_to_parent_end = Vec::new();
        for i in 0..latency_runs.min(200) {
            let sent = Instant::now();
            let id = create(&mut connection, "subflow/bench", subflow_params(i)).await;
            let parent = completed(&mut connection, &id).await;
            parent_took.push(sent.elapsed());
            assert_eq!(parent["output"]["output"], json!(i + 1), "{parent:#}");
            let child_id = parent["output"]["id"].as_str().unwrap();
            let (_, child) =
                connection.json("GET", &format!("/api/runs/{child_id}"), &Value::Null).await;
            child_to_parent_end.push(
                parent["ended_at"].as_i64().unwrap() - child["created_at"].as_i64().unwrap(),
            );
        }
        parent_took.sort_unstable();
        child_to_parent_end.sort_unstable();
        println!(
            "subflows, one at a time ({} parents, each waiting for a child run of hello): \
             child created -> parent COMPLETED by the core's clock p50 {} ms, p99 {} ms; \
             parent create -> COMPLETED measured by the client p50 {:.2?}, p99 {:.2?}",
            parent_took.len(),
            child_to_parent_end[child_to_parent_end.len() / 2],
            child_to_parent_end[(child_to_parent_end.len() - 1) * 99 / 100],
            percentile(&parent_took, 0.50),
            percentile(&parent_took, 0.99),
        );

        // The task cache, one run at a time: a key seen before (the core
        // answers with the stored result) and a new key each run (the task
        // runs and its result is stored), beside `hello` above.
        let mut hit = Vec::new();
        let mut miss = Vec::new();
        for i in 0..latency_runs.min(200) {
            for (took, key) in [(&mut hit, "hit".to_owned()), (&mut miss, format!("miss-{i}"))] {
                let sent = Instant::now();
                let id = create(&mut connection, "cached/bench", json!({"key": key})).await;
                completed(&mut connection, &id).await;
                took.push(sent.elapsed());
            }
        }
        hit.sort_unstable();
        miss.sort_unstable();
        println!(
            "task cache, one run at a time ({} runs each of cached, one task with a cache key): \
             create -> COMPLETED measured by the client, answered from the cache p50 {:.2?}, p99 {:.2?}; \
             a new key (task runs, result stored) p50 {:.2?}, p99 {:.2?}",
            hit.len(),
            percentile(&hit, 0.50),
            percentile(&hit, 0.99),
            percentile(&miss, 0.50),
            percentile(&miss, 0.99),
        );

        // Python: its deploy until the agent has compiled the 19 MB
        // component (asked to at deploy), the first run after that, then
        // warm runs one at a time, beside `hello` above.
        let python = std::fs::read(baton_tests::python_flow("examples/flows/hello-py")).unwrap();
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&python)));
        let deployed = Instant::now();
        core.deploy_component(home.path(), "hello-py", "bench", &python, "");
        wait_until_held(&mut connection, "default", &digest).await;
        let compiled = deployed.elapsed();
        let sent = Instant::now();
        let id = create(&mut connection, "hello-py/bench", json!({"a": 1, "b": 2})).await;
        assert_eq!(completed(&mut connection, &id).await["output"], 3);
        let first = sent.elapsed();
        let mut warm = Vec::new();
        for i in 0..latency_runs.min(200) {
            let sent = Instant::now();
            let id = create(&mut connection, "hello-py/bench", json!({"a": i, "b": 1})).await;
            completed(&mut connection, &id).await;
            warm.push(sent.elapsed());
        }
        warm.sort_unstable();
        println!(
            "python, hello-py (a {:.1} MB component): deploy -> compiled on the agent {:.2?}; the first run after that {:.2?}; \
             then one run at a time ({} runs), create -> COMPLETED measured by the client p50 {:.2?}, p99 {:.2?}",
            python.len() as f64 / 1e6,
            compiled,
            first,
            warm.len(),
            percentile(&warm, 0.50),
            percentile(&warm, 0.99),
        );

        // The backends side by side: the same flow in the agent's sandbox,
        // in a child process per run and in a container per run, in turn,
        // and beside them a bare `podman run --rm` of the runner image.
        let backends = [("wasm", "hello/bench"), ("process", "hello/native"), ("container", "hello/box")];
        let mut took: Vec<Vec<Duration>> = vec![Vec::new(); backends.len() + 1];
        for i in 0..if full { 100 } else { 3 } {
            for ((_, deployment), took) in backends.iter().zip(&mut took) {
                let sent = Instant::now();
                let id = create(&mut connection, deployment, json!({"a": i, "b": 1})).await;
                completed(&mut connection, &id).await;
                // The first of each is a warm-up (fetch, compile).
                if i > 0 {
                    took.push(sent.elapsed());
                }
            }
            let started = Instant::now();
            let bare = std::process::Command::new("podman")
                .args(["--url", &docker, "run", "--rm", "--network", "none", &image, "--version"])
                .output()
                .unwrap();
            assert!(bare.status.success(), "{}", String::from_utf8_lossy(&bare.stderr));
            took[backends.len()].push(started.elapsed());
        }
        let names = backends.iter().map(|(name, _)| *name).chain(["bare `podman run --rm`"]);
        let by_backend: Vec<String> = names
            .zip(&mut took)
            .map(|(name, took)| {
                took.sort_unstable();
                format!("{name} p50 {:.2?}, p99 {:.2?}", percentile(took, 0.5), percentile(took, 0.99))
            })
            .collect();
        println!(
            "backends, create -> COMPLETED of hello, one run at a time, in turn ({} runs each): {}",
            took[0].len(),
            by_backend.join("; ")
        );

        // The container pool's agent with 16 runs in containers at once.
        let mut ids = Vec::new();
        for _ in 0..16 {
            ids.push(create(&mut connection, "sleeps/box", json!({"millis": 8000})).await);
        }
        for id in &ids {
            let path = format!("/api/runs/{id}");
            while connection.json("GET", &path, &Value::Null).await.1["state"] != "RUNNING" {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        println!(
            "container pool's agent with 16 runs in containers: resident {} kB",
            resident_kib(Some(box_agent.pid()))
        );
        for id in &ids {
            completed(&mut connection, id).await;
        }

        // A burst from several clients.
        let warm = run_burst(&[address], "hello/bench", burst, clients).await;
        println!(
            "throughput: {} runs of hello created by {clients} clients, all COMPLETED in {} ms = {:.0} runs/s",
            warm.runs,
            warm.span_ms,
            warm.rate()
        );

        // Just deployed, on a fresh agent: its compile happens at deploy
        // (the core asks the pool's agents to prepare the component), once,
        // and not on any run's path. Rust's burst starts right after its
        // deploy; Python's once the agent says the component is compiled
        // (the time to that is printed).
        core.ok(home.path(), &["pool", "create", "fresh"]);
        let fresh_token = core.agent_token_for(home.path(), "fresh");
        let fresh_data = tempfile::tempdir().unwrap();
        const FRESH_SLOTS: u32 = 64;
        let fresh = AgentProcess::start_in_pool(&core, home.path(), &fresh_token, fresh_data.path(), "fresh", FRESH_SLOTS);
        let in_fresh = "    work_pool: {name: fresh}\n";
        let fresh_burst = if full { 4_000 } else { 40 };
        core.deploy(home.path(), "hello", "fresh", in_fresh);
        let rust = run_burst(&[address], "hello/fresh", fresh_burst, clients).await;
        let deployed = Instant::now();
        core.deploy_component(home.path(), "hello-py", "fresh", &python, in_fresh);
        wait_until_held(&mut connection, "fresh", &digest).await;
        let prepared = deployed.elapsed();
        // The precompiled artifact the agent keeps (in its data dir's
        // `cache`) for the Python component.
        let digest_hex = digest.trim_start_matches("sha256:");
        let artifact_bytes = std::fs::read_dir(fresh_data.path().join("cache"))
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.contains(digest_hex) && name.ends_with(".cwasm")
            })
            .map(|entry| entry.metadata().unwrap().len())
            .max()
            .expect("the agent keeps the precompiled Python component");
        let python_burst = run_burst(&[address], "hello-py/fresh", fresh_burst, clients).await;
        // While the burst keeps its slots busy, each holds a live
        // Python instance: the agent's growth over its idle size, per slot.
        let idle = resident_kib(Some(fresh.pid()));
        let (python_warm, peak) = tokio::task::block_in_place(|| {
            let handle = tokio::runtime::Handle::current();
            peak_resident_kib(fresh.pid(), || {
                handle.block_on(run_burst(&[address], "hello-py/fresh", fresh_burst, clients))
            })
        });
        println!(
            "just deployed, on a fresh agent with {FRESH_SLOTS} slots, {} runs from {clients} clients: \
             hello right after its deploy {:.0} runs/s ({} LATE); \
             hello-py deploy -> compiled on the agent {:.2?} (its precompiled artifact {:.1} MB), then {:.0} runs/s ({} LATE), \
             the same burst again on the now warm agent {:.0} runs/s ({} LATE); agent resident {} kB before it, \
             at most {} kB during it ({} kB per busy slot), {} kB after",
            fresh_burst,
            rust.rate(),
            rust.late,
            prepared,
            artifact_bytes as f64 / 1e6,
            python_burst.rate(),
            python_burst.late,
            python_warm.rate(),
            python_warm.late,
            idle,
            peak,
            peak.saturating_sub(idle) / u64::from(FRESH_SLOTS),
            resident_kib(Some(fresh.pid())),
        );
        drop(fresh);

        // Windmill's scenario: 40 jobs of 10 ms in sequence.
        let started = Instant::now();
        for _ in 0..40 {
            let id = create(&mut connection, "sleeps/bench", json!({"millis": 10})).await;
            completed(&mut connection, &id).await;
        }
        println!(
            "40 runs of a 10 ms flow in sequence (each created when the previous completed): {:.0?}",
            started.elapsed()
        );
        // The same as 40 tasks of one flow (each task reported to the core).
        let mut took = Vec::new();
        for _ in 0..if full { 5 } else { 1 } {
            let started = Instant::now();
            let id = create(&mut connection, "chain/bench", json!({"tasks": 40, "millis": 10})).await;
            let run = completed(&mut connection, &id).await;
            assert_eq!(run["output"], 40);
            took.push(started.elapsed());
        }
        took.sort_unstable();
        println!(
            "one run of a flow with 40 tasks of 10 ms in sequence ({} runs): p50 {:.0?}",
            took.len(),
            percentile(&took, 0.5)
        );

        // Cancelling a run that spins forever: from the request until the
        // core records it CANCELLED (the agent stops it by epoch interruption).
        let mut took = Vec::new();
        for _ in 0..if full { 20 } else { 2 } {
            let id = create(&mut connection, "loop-forever/bench", json!({})).await;
            let path = format!("/api/runs/{id}");
            while connection.json("GET", &path, &Value::Null).await.1["state"] != "RUNNING" {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            // Let it spin a little.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let asked = Instant::now();
            let (status, _) = connection.json("POST", &format!("{path}/cancel"), &Value::Null).await;
            assert!(status < 300);
            loop {
                let (_, run) = connection.json("GET", &path, &Value::Null).await;
                if run["state"] == "CANCELLED" {
                    break;
                }
                assert!(asked.elapsed() < Duration::from_secs(10), "not cancelled: {run:#}");
                tokio::time::sleep(Duration::from_micros(250)).await;
            }
            took.push(asked.elapsed());
        }
        took.sort_unstable();
        println!(
            "cancel a looping run, request -> CANCELLED ({} runs): p50 {:.2?}, max {:.2?}",
            took.len(),
            percentile(&took, 0.5),
            took[took.len() - 1]
        );

        // Schedules fire on time: an every-second schedule; the lag is from
        // a run's time until the core records it PENDING (pushed).
        let (status, schedule) = connection
            .json(
                "POST",
                "/api/deployments/hello/bench/schedules",
                &json!({"interval_seconds": 1, "parameters": {"a": 1, "b": 1}}),
            )
            .await;
        assert_eq!(status, 201, "{schedule}");
        let fired = if full { 30 } else { 3 };
        tokio::time::sleep(Duration::from_secs(fired + 2)).await;
        let path = format!("/api/deployments/hello/bench/schedules/{}", schedule["id"].as_str().unwrap());
        let (status, _) = connection.json("DELETE", &path, &Value::Null).await;
        assert_eq!(status, 204);
        let (_, page) = connection.json("GET", "/api/runs?deployment=hello/bench&state=COMPLETED&limit=200", &Value::Null).await;
        let mut lags = Vec::new();
        for run in page["items"].as_array().unwrap() {
            if !run["idempotency_key"].as_str().unwrap_or_default().starts_with("schedule:") {
                continue;
            }
            let (_, detail) = connection.json("GET", &format!("/api/runs/{}", run["id"].as_str().unwrap()), &Value::Null).await;
            let pending = state_at(&detail, "PENDING");
            lags.push(Duration::from_millis(u64::try_from(pending - run["scheduled_at"].as_i64().unwrap()).unwrap_or(0)));
        }
        assert!(lags.len() as u64 >= fired, "{} scheduled runs completed", lags.len());
        lags.sort_unstable();
        println!(
            "schedule fire lag, a run's time -> PENDING ({} runs of an every-second schedule): p50 {:?}, p99 {:?}",
            lags.len(),
            percentile(&lags, 0.5),
            percentile(&lags, 0.99)
        );

        // Event to action: a webhook call until the run its automation
        // starts is RUNNING (by the core's clock; same machine).
        let (status, _) = connection.json("POST", "/api/webhooks", &json!({"slug": "bench"})).await;
        assert_eq!(status, 201);
        let automation = json!({
            "name": "bench",
            "trigger": {"reactive": {"event": "webhook.bench"}},
            "actions": [{"run-deployment": {"deployment": "hello/bench", "parameters": {"a": 0, "b": "{{ event.payload.i }}"}}}],
        });
        let (status, answer) = connection.json("POST", "/api/automations", &automation).await;
        assert_eq!(status, 201, "{answer}");
        let mut took = Vec::new();
        for i in 0..if full { 50 } else { 3 } {
            let marker = 1_000_000 + i;
            let sent = unix_ms();
            let (status, _) = connection.json("POST", "/hooks/bench", &json!({"i": marker})).await;
            assert_eq!(status, 202);
            let started = loop {
                let (_, page) = connection.json("GET", "/api/runs?deployment=hello/bench&limit=5", &Value::Null).await;
                let run = page["items"].as_array().unwrap().iter().find(|r| r["parameters"]["b"] == marker).cloned();
                if let Some(run) = run.filter(|r| r["started_at"].is_i64()) {
                    break run["started_at"].as_i64().unwrap();
                }
                tokio::time::sleep(Duration::from_micros(250)).await;
            };
            took.push(Duration::from_millis(u64::try_from(started - sent).unwrap_or(0)));
            // Let it finish before the next.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        took.sort_unstable();
        println!(
            "webhook call -> triggered run RUNNING ({} calls): p50 {:?}, max {:?}",
            took.len(),
            percentile(&took, 0.5),
            took[took.len() - 1]
        );
    });

    std::thread::sleep(Duration::from_secs(2));
    println!(
        "agent after the benchmark, idle 2 s: resident {} kB",
        resident_kib(Some(agent.pid()))
    );
}
