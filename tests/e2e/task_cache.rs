//! The task cache across runs through a real core and agents: a task with
//! a cache key runs once and later runs of its deployment get its result
//! (shown as CACHED, with the run it came from) until it expires, in the
//! wasm sandbox and in a process runner (whose flow asks through its
//! agent); another deployment has a cache of its own; results the cache
//! must not keep (too large, holding a secret) are not kept and the log
//! says why; a pod's runner asks over the API with its execution's key;
//! the run page's Gantt chart marks a cached task.

use serde_json::{Value, json};

use crate::infrastructure::{PodExecution, PoolSystem, exec_job_file, run_id, run_with};
use crate::subflows::TwoPools;

/// A finished run of `cached/pool` with these params: the run, and whether
/// its task ran (`computing` in its log).
fn cached_run(pools: &TwoPools, pool: &str, params: &[&str]) -> (Value, bool) {
    let (core, home) = (pools.core(), pools.home());
    let id = run_id(&run_with(core, home, &format!("cached/{pool}"), params, &[]));
    let done = pools.system.wait_for(&id, "COMPLETED");
    let computed = pools.system.log_messages(&id).iter().any(|m| m.starts_with("computing"));
    (done, computed)
}

/// The run a run's task result came from, if it was answered from the
/// cache (and it had exactly one task run).
fn cached_from(run: &Value) -> Option<String> {
    let tasks = run["task_runs"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{run:#}");
    assert_eq!(tasks[0]["state"], "COMPLETED", "{run:#}");
    tasks[0]["cached_from"].as_str().map(str::to_owned)
}

#[test]
fn a_cached_task_answers_later_runs_of_its_deployment_until_it_expires() {
    let pools = TwoPools::start();
    let (core, home) = (pools.core(), pools.home());
    let mut computed_first = Vec::new();
    for pool in ["edge", "proc"] {
        pools.deploy("cached", pool);
        // Computed once, then answered from the cache with that result.
        let (first, computed) = cached_run(&pools, pool, &["key=a"]);
        assert!(computed, "{pool}: the first run's task did not run: {first:#}");
        assert_eq!(cached_from(&first), None, "{pool}");
        let first_id = run_id(&first);
        let (second, computed) = cached_run(&pools, pool, &["key=a"]);
        assert!(!computed, "{pool}: the task ran again: {second:#}");
        assert_eq!(second["output"], first["output"], "{pool}");
        assert_eq!(cached_from(&second).as_deref(), Some(first_id.as_str()), "{pool}");
        let shown = core.ok(home, &["run", "inspect", &run_id(&second)]);
        let says = format!("compute: CACHED (the result of run {first_id})");
        assert!(shown.contains(&says), "{pool}: `run inspect` says:\n{shown}");
        computed_first.push(first["output"].clone());

        // Another key runs.
        let (other, computed) = cached_run(&pools, pool, &["key=b"]);
        assert!(computed && other["output"] != first["output"], "{pool}: {other:#}");

        // With an expiry: used within it, computed again after it.
        let expiring = ["key=e", "expire_ms=1500"];
        let (stored, computed) = cached_run(&pools, pool, &expiring);
        assert!(computed, "{pool}");
        let (within, computed) = cached_run(&pools, pool, &expiring);
        assert!(!computed && within["output"] == stored["output"], "{pool}: {within:#}");
        let stored_at = stored["task_runs"][0]["ended_at"].as_i64().unwrap();
        // Past the expiry (on this machine's clock, which the core shares).
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        let now = i64::try_from(now.as_millis()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(
            u64::try_from(stored_at + 2000 - now).unwrap_or(0),
        ));
        let (after, computed) = cached_run(&pools, pool, &expiring);
        assert!(computed && after["output"] != stored["output"], "{pool}: {after:#}");
        assert_eq!(cached_from(&after), None, "{pool}");
    }
    // Each deployment has a cache of its own: key `a` was computed in both.
    assert_ne!(computed_first[0], computed_first[1]);
}

#[test]
fn results_the_cache_must_not_keep_are_not_kept_and_the_log_says_why() {
    let system = PoolSystem::start("edge", "wasm");
    let (core, home) = (&system.core, system.home());
    core.ok(home, &["secret", "set", "token", "s3cr3t-t0ken-value"]);
    core.deploy(
        home,
        "cached",
        "edge",
        "    work_pool: {name: edge}\n    capabilities: {secrets: [token]}\n",
    );
    for (params, why) in [
        (vec!["key=big", "pad_bytes=1100000"], "exceeds the 1 MiB limit"),
        (vec!["key=secret", "secret=token"], "holds a secret's value"),
    ] {
        for _ in 0..2 {
            let id = run_id(&run_with(core, home, "cached/edge", &params, &[]));
            let done = system.wait_for(&id, "COMPLETED");
            assert_eq!(cached_from(&done), None, "{params:?}: answered from the cache");
            let log = system.log_messages(&id);
            assert!(
                log.iter().any(|m| m.contains("task `compute` was not cached") && m.contains(why)),
                "{params:?}: {log:#?}"
            );
            assert!(
                !log.iter().any(|m| m.contains("s3cr3t-t0ken-value")),
                "the secret is in the log: {log:#?}"
            );
        }
    }
}

/// What a Kubernetes pod's runner does for its task cache, all of it but
/// the cluster: its job (from a file) names its run's URL and key; its
/// second execution is answered from what its first stored; with another
/// key the core refuses, the flow is told and the task runs.
#[test]
fn a_pod_s_runner_asks_its_task_cache_over_the_api_with_its_execution_key() {
    let secret_key = "7a".repeat(32);
    let core = baton_tests::CoreProcess::start_with(None, &["--secret-key", &secret_key]);
    let system = PoolSystem::start_with(core, "edge", "wasm", &[]);
    let (core, home) = (&system.core, system.home());
    core.ok(home, &["pool", "create", "k8s", "--type", "kubernetes"]);
    core.deploy(home, "cached", "k8s", "    work_pool: {name: k8s}\n");
    let run = run_id(&run_with(core, home, "cached/k8s", &["key=pod"], &[]));
    let key = PodExecution::start(core, &secret_key, &run).key;

    let pod = tempfile::tempdir().unwrap();
    let params = json!({"key": "pod"});
    let job = |key: &str| PodExecution::job(core, ("cached", &params), (&run, key), pod.path());
    let reports = |messages: &[Value], kind: &str| -> Vec<Value> {
        messages
            .iter()
            .filter(|m| m["kind"] == "report" && m["report"]["kind"] == kind)
            .map(|m| m["report"].clone())
            .collect()
    };
    let outputs: Vec<Value> = (0..2)
        .map(|_| {
            let messages = exec_job_file(home, &job(&key), None);
            let finished = messages.last().cloned().unwrap_or_default();
            assert_eq!(finished["outcome"]["outcome"], "completed", "{messages:#?}");
            (finished["outcome"]["output"].clone(), reports(&messages, "task_cached"))
        })
        .map(|(output, cached)| json!({"output": output, "cached": cached}))
        .collect();
    assert_eq!(outputs[0]["cached"], json!([]), "{outputs:#?}");
    assert_eq!(outputs[1]["cached"][0]["from_run"], run.as_str(), "{outputs:#?}");
    assert_eq!(outputs[1]["output"], outputs[0]["output"], "{outputs:#?}");

    let messages = exec_job_file(home, &job(&"0".repeat(64)), None);
    let finished = messages.last().cloned().unwrap_or_default();
    assert_eq!(finished["outcome"]["outcome"], "completed", "{messages:#?}");
    assert_eq!(reports(&messages, "task_cached"), Vec::<Value>::new());
    let refused = reports(&messages, "log").iter().any(|line| {
        line["message"].as_str().is_some_and(|m| {
            m.contains("the task cache did not answer")
                && m.contains("the core refused the task cache call (401")
        })
    });
    assert!(refused, "{messages:#?}");
}

/// A run answered from the cache shows its task as CACHED on its page's
/// Gantt chart, naming the run whose result it reused.
#[test]
fn the_run_page_s_gantt_chart_marks_a_cached_task() {
    let system = baton_tests::System::start(2);
    let (core, home) = (&system.core, system.home.path());
    core.deploy(home, "cached", "default", "");
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let id = crate::agents::run(core, home, "cached/default", &["key=ui"]);
            crate::agents::wait_for(
                core,
                home,
                &id,
                "COMPLETED",
                std::time::Duration::from_secs(30),
            );
            id
        })
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let browser = baton_tests::browser::Browser::start().await;
        // The first ran its task: no cached mark.
        browser.client.goto(&format!("{}/runs/{}", core.url, ids[0])).await.unwrap();
        browser.wait_text("svg.gantt g.task", "compute").await;
        let marks = "return document.querySelectorAll('svg.gantt g.cached').length;";
        assert_eq!(browser.client.execute(marks, vec![]).await.unwrap(), json!(0));
        // The second did not: marked, with the run it came from.
        browser.client.goto(&format!("{}/runs/{}", core.url, ids[1])).await.unwrap();
        browser.wait_text("svg.gantt g.task.cached", "cached").await;
        let title = browser
            .client
            .execute(
                "return document.querySelector('svg.gantt g.cached title').textContent;",
                vec![],
            )
            .await
            .unwrap();
        let says = format!("compute: CACHED, the result of run {}", ids[0]);
        assert_eq!(title, json!(says));
        browser.close().await;
    });
}
