//! The sandbox against real components built from this repository: every
//! outcome, the limits, the caches, and a host that survives all of it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_proto::v1::{CacheAnswer, CacheOp};
use baton_proto::v1::{ReportBody, RunOutcome, TaskOutcome};
use baton_sandbox::{
    LoadError, MemoryTaskCache, ReportCollector, RunLimits, RunRequest, Sandbox, SandboxConfig,
    TaskCache,
};
use serde_json::json;

mod commands;
mod subflows;

fn sandbox() -> Sandbox {
    Sandbox::new(&SandboxConfig { max_instances: 64, ..SandboxConfig::default() }).unwrap()
}

async fn run(
    sandbox: &Sandbox,
    flow: &str,
    params: serde_json::Value,
    limits: RunLimits,
) -> (RunOutcome, Arc<ReportCollector>) {
    let flow = sandbox.load(&baton_tests::flow_wasm(flow)).unwrap();
    let reports = Arc::new(ReportCollector::default());
    let mut request = RunRequest::new(params, reports.clone());
    request.limits = limits;
    (sandbox.run(&flow, request).await, reports)
}

fn log_messages(reports: &ReportCollector) -> Vec<String> {
    reports
        .reports()
        .into_iter()
        .filter_map(|r| match r.body {
            ReportBody::Log { message, .. } => Some(message),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn hello_adds_and_logs() {
    let sandbox = sandbox();
    let (outcome, reports) =
        run(&sandbox, "hello", json!({"a": 2, "b": 3}), RunLimits::default()).await;
    assert_eq!(outcome, RunOutcome::Completed { output: json!(5) });
    let logs = log_messages(&reports);
    assert!(logs.iter().any(|l| l == "adding 2 and 3"), "{logs:?}");
    let seqs: Vec<u64> = reports.reports().iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "reports are numbered without gaps"
    );
}

#[tokio::test]
async fn every_line_a_flow_prints_reaches_the_log_in_order() {
    let sandbox = sandbox();
    let lines = 20_000;
    let (outcome, reports) =
        run(&sandbox, "prints", json!({ "lines": lines }), RunLimits::default()).await;
    assert_eq!(outcome, RunOutcome::Completed { output: json!(lines) });
    let logs = log_messages(&reports);
    assert_eq!(logs.len(), lines + 1, "every stdout line and the stderr line");
    for (i, line) in logs.iter().take(lines).enumerate() {
        assert!(line.starts_with(&format!("line {i} ")), "{line}");
    }
    assert_eq!(logs[lines], format!("printed {lines} lines"));
}

#[tokio::test]
async fn describe_reads_name_version_and_schema() {
    let sandbox = sandbox();
    let flow = sandbox.load(&baton_tests::flow_wasm("hello")).unwrap();
    let info = sandbox.describe(&flow).await.unwrap();
    assert_eq!(info.name, "hello");
    assert_eq!(info.version, "0.1.0");
    assert_eq!(info.description, "Adds two integers and returns the sum");
    assert_eq!(info.parameters["properties"]["a"]["type"], "integer");
    assert_eq!(info.parameters["required"], json!(["a", "b"]));
}

#[tokio::test]
async fn flow_macro_fields_override_the_package() {
    let sandbox = sandbox();
    let flow = sandbox.load(&baton_tests::flow_wasm("returns-error")).unwrap();
    let info = sandbox.describe(&flow).await.unwrap();
    assert_eq!(
        (info.name.as_str(), info.version.as_str(), info.description.as_str()),
        ("always-fails", "2.0.0", "Fails on purpose")
    );
}

#[tokio::test]
async fn etl_retries_a_failed_task_and_reports_progress() {
    let sandbox = sandbox();
    let (outcome, reports) = run(&sandbox, "etl", json!({"count": 6}), RunLimits::default()).await;
    let RunOutcome::Completed { output } = outcome else { panic!("{outcome:?}") };
    assert_eq!(output["loaded"], 6);
    let reports = reports.reports();
    let transform_attempts: Vec<(u64, u32)> = reports
        .iter()
        .filter_map(|r| match &r.body {
            ReportBody::TaskStarted { task_id, name, attempt, .. } if name == "transform" => {
                Some((*task_id, *attempt))
            }
            _ => None,
        })
        .collect();
    assert_eq!(transform_attempts.iter().map(|a| a.1).collect::<Vec<_>>(), [1, 2]);
    let outcome_of = |id: u64| {
        reports.iter().find_map(|r| match &r.body {
            ReportBody::TaskFinished { task_id, outcome } if *task_id == id => {
                Some(outcome.clone())
            }
            _ => None,
        })
    };
    assert!(matches!(outcome_of(transform_attempts[0].0), Some(TaskOutcome::Failed { .. })));
    assert_eq!(outcome_of(transform_attempts[1].0), Some(TaskOutcome::Completed));
    let last_progress = reports.iter().rev().find_map(|r| match &r.body {
        ReportBody::Progress { fraction, .. } => Some(*fraction),
        _ => None,
    });
    assert_eq!(last_progress, Some(1.0));
}

#[tokio::test]
async fn a_cache_key_answers_a_second_run_from_the_cache() {
    let sandbox = sandbox();
    let flow = sandbox.load(&baton_tests::flow_wasm("etl")).unwrap();
    let cache = Arc::new(MemoryTaskCache::default());
    let mut cached_names = Vec::new();
    for _ in 0..2 {
        let reports = Arc::new(ReportCollector::default());
        let mut request = RunRequest::new(json!({"count": 4}), reports.clone());
        request.task_cache = cache.clone();
        assert!(matches!(sandbox.run(&flow, request).await, RunOutcome::Completed { .. }));
        cached_names.push(
            reports
                .reports()
                .into_iter()
                .filter_map(|r| match r.body {
                    ReportBody::TaskCached { name, .. } => Some(name),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(cached_names, [vec![], vec!["extract".to_owned()]]);
}

/// A result stored by an older version whose task returned another type:
/// the task runs (the log says why) and its result replaces the old one.
#[tokio::test]
async fn a_cached_result_of_another_shape_is_replaced_by_running_the_task() {
    let sandbox = sandbox();
    let flow = sandbox.load(&baton_tests::flow_wasm("cached")).unwrap();
    let cache = Arc::new(MemoryTaskCache::default());
    let stale = CacheOp::Put {
        key: baton_sandbox::key_digest("k"),
        output: "42".into(),
        expire_after_ms: None,
    };
    assert!(matches!(cache.ask(stale).await, CacheAnswer::Stored));
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let reports = Arc::new(ReportCollector::default());
        let mut request = RunRequest::new(json!({"key": "k"}), reports.clone());
        request.task_cache = cache.clone();
        let RunOutcome::Completed { output } = sandbox.run(&flow, request).await else {
            panic!("{:?}", log_messages(&reports));
        };
        outputs.push((output, log_messages(&reports)));
    }
    let (first, logs) = &outputs[0];
    assert!(logs.iter().any(|l| l.contains("the cached result is not what the task returns now")));
    assert!(logs.iter().any(|l| l == "computing k"), "{logs:?}");
    // The second run is answered with the first's result, stored in place
    // of the stale one.
    let (second, logs) = &outputs[1];
    assert!(!logs.iter().any(|l| l == "computing k"), "{logs:?}");
    assert_eq!(second, first);
}

#[tokio::test]
async fn a_flow_that_loops_forever_times_out_promptly() {
    let sandbox = sandbox();
    let flow = sandbox.load(&baton_tests::flow_wasm("loop-forever")).unwrap();
    let limit = Duration::from_millis(300);
    let mut request = RunRequest::new(json!({}), Arc::new(ReportCollector::default()));
    request.limits.timeout = limit;
    let started = Instant::now();
    let outcome = sandbox.run(&flow, request).await;
    let elapsed = started.elapsed();
    assert_eq!(outcome, RunOutcome::TimedOut { limit_ms: 300 });
    assert!(elapsed >= limit, "stopped early, after {elapsed:?}");
    assert!(elapsed < limit + Duration::from_millis(100), "stopped after {elapsed:?}");
}

/// Starts `flow`, cancels it after 200 ms; returns its outcome and how
/// long it took to stop after the cancel.
async fn cancel_while_running(flow: &str, params: serde_json::Value) -> (RunOutcome, Duration) {
    let sandbox = Arc::new(sandbox());
    let flow = sandbox.load(&baton_tests::flow_wasm(flow)).unwrap();
    let request = RunRequest::new(params, Arc::new(ReportCollector::default()));
    let cancel = request.cancel.clone();
    let running = {
        let sandbox = sandbox.clone();
        tokio::spawn(async move { sandbox.run(&flow, request).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cancelled_at = Instant::now();
    cancel.cancel();
    let outcome = running.await.unwrap();
    (outcome, cancelled_at.elapsed())
}

#[tokio::test]
async fn cancelling_stops_a_looping_flow_within_100ms() {
    let (outcome, stop) = cancel_while_running("loop-forever", json!({})).await;
    assert_eq!(outcome, RunOutcome::Cancelled);
    assert!(stop < Duration::from_millis(100), "stopped {stop:?} after the cancel");
}

#[tokio::test]
async fn cancelling_stops_a_flow_waiting_in_the_host_within_100ms() {
    let (outcome, stop) = cancel_while_running("sleeps", json!({"millis": 60_000})).await;
    assert_eq!(outcome, RunOutcome::Cancelled);
    assert!(stop < Duration::from_millis(100), "stopped {stop:?} after the cancel");
}

#[tokio::test]
async fn a_memory_bomb_ends_out_of_memory() {
    let sandbox = sandbox();
    let limits = RunLimits {
        memory_bytes: 64 << 20,
        timeout: Duration::from_secs(30),
        ..RunLimits::default()
    };
    let (outcome, _) = run(&sandbox, "memory-hog", json!({}), limits).await;
    assert_eq!(outcome, RunOutcome::OutOfMemory { limit_bytes: 64 << 20 });
}

#[tokio::test]
async fn files_are_not_reachable() {
    let sandbox = sandbox();
    let (outcome, reports) = run(&sandbox, "read-passwd", json!({}), RunLimits::default()).await;
    let RunOutcome::Failed { message, .. } = outcome else { panic!("{outcome:?}") };
    assert!(message.starts_with("reading /etc/passwd"), "{message}");
    assert!(!format!("{:?}", reports.reports()).contains("root:"));
}

#[tokio::test]
async fn the_network_is_not_reachable() {
    // Something is listening, so only the sandbox can refuse the connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let sandbox = sandbox();
    let (outcome, _) =
        run(&sandbox, "open-socket", json!({ "address": address }), RunLimits::default()).await;
    let RunOutcome::Failed { message, .. } = outcome else { panic!("{outcome:?}") };
    assert!(message.starts_with(&format!("connecting to {address}")), "{message}");
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "nothing may have connected");
}

#[tokio::test]
async fn a_panic_crashes_the_run_with_its_message() {
    let sandbox = sandbox();
    let (outcome, _) = run(&sandbox, "panics", json!({}), RunLimits::default()).await;
    let RunOutcome::Crashed { message } = outcome else { panic!("{outcome:?}") };
    assert!(message.contains("this flow panics on purpose"), "{message}");
    assert!(message.contains("unreachable"), "{message}");
}

#[tokio::test]
async fn a_returned_error_fails_the_run_with_its_chain() {
    let sandbox = sandbox();
    let (outcome, _) = run(&sandbox, "returns-error", json!({}), RunLimits::default()).await;
    assert_eq!(
        outcome,
        RunOutcome::Failed {
            message: "loading the batch: the warehouse is closed".into(),
            details: None
        }
    );
}

#[tokio::test]
async fn only_granted_variables_and_secrets_are_readable() {
    let sandbox = sandbox();
    let flow = sandbox.load(&baton_tests::flow_wasm("grants")).unwrap();
    let reports = Arc::new(ReportCollector::default());
    let mut request = RunRequest::new(json!({}), reports.clone());
    request.grants.variables.insert("region".into(), Some("eu-west".into()));
    request.grants.secrets.insert("token".into(), Some("s3cr3t-value".into()));
    let outcome = sandbox.run(&flow, request).await;
    let RunOutcome::Completed { output } = outcome else { panic!("{outcome:?}") };
    assert_eq!(output["region"], "eu-west");
    assert_eq!(output["token_length"], 12);
    assert_eq!(
        output["ungranted"],
        "secret `root-password` is not granted to this flow: list it in its deployment's \
         `capabilities.secrets` (`baton serve --secret root-password`), or run it with \
         `baton flow run --secret root-password=VALUE`"
    );
    assert_eq!(log_messages(&reports), ["using token *** in eu-west"]);

    let mut request = RunRequest::new(json!({}), Arc::new(ReportCollector::default()));
    request.grants.variables.insert("region".into(), None);
    let outcome = sandbox.run(&flow, request).await;
    assert_eq!(
        outcome,
        RunOutcome::Failed {
            message: "variable `region` is granted but has no value".into(),
            details: None
        }
    );
}

#[tokio::test]
async fn the_host_survives_every_outcome_in_turn() {
    let sandbox = sandbox();
    let quick = RunLimits {
        memory_bytes: 64 << 20,
        timeout: Duration::from_millis(200),
        ..RunLimits::default()
    };
    let mut outcomes = Vec::new();
    for (flow, params) in [
        ("loop-forever", json!({})),
        ("memory-hog", json!({})),
        ("panics", json!({})),
        ("returns-error", json!({})),
        ("read-passwd", json!({})),
        ("hello", json!({"a": 1, "b": 1})),
    ] {
        outcomes.push(run(&sandbox, flow, params, quick).await.0.name());
    }
    assert_eq!(
        outcomes,
        ["timed_out", "out_of_memory", "crashed", "failed", "failed", "completed"]
    );
}

#[tokio::test]
async fn many_runs_share_the_sandbox_concurrently() {
    let sandbox = Arc::new(sandbox());
    let flow = sandbox.load(&baton_tests::flow_wasm("hello")).unwrap();
    let runs: Vec<_> = (0..50)
        .map(|i| {
            let sandbox = sandbox.clone();
            let flow = flow.clone();
            tokio::spawn(async move {
                let request =
                    RunRequest::new(json!({"a": i, "b": 1}), Arc::new(ReportCollector::default()));
                sandbox.run(&flow, request).await
            })
        })
        .collect();
    for (i, run) in runs.into_iter().enumerate() {
        assert_eq!(run.await.unwrap(), RunOutcome::Completed { output: json!(i + 1) });
    }
}

#[test]
fn bad_bytes_get_a_named_load_error() {
    let sandbox = sandbox();
    let hello = baton_tests::flow_wasm("hello");
    assert!(matches!(sandbox.load(b"#!/bin/sh\necho hi\n"), Err(LoadError::NotWasm)));
    assert!(matches!(sandbox.load(&[]), Err(LoadError::NotWasm)));
    assert!(matches!(sandbox.load(&hello[..hello.len() / 2]), Err(LoadError::Corrupt(_))));
    let core_module = wat::parse_str("(module)").unwrap();
    assert!(matches!(sandbox.load(&core_module), Err(LoadError::CoreModule)));
    let not_a_flow = wat::parse_str("(component)").unwrap();
    match sandbox.load(&not_a_flow) {
        Err(LoadError::NotAFlow(why)) => assert!(why.contains("baton:flow/flow@0.1"), "{why}"),
        other => panic!("{:?}", other.map(|f| f.digest())),
    }
    let small = Sandbox::new(&SandboxConfig {
        max_component_bytes: 1000,
        max_instances: 4,
        ..SandboxConfig::default()
    })
    .unwrap();
    assert!(matches!(small.load(&hello), Err(LoadError::TooLarge { limit: 1000, .. })));
}

#[test]
fn precompiled_components_are_reused_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let config = SandboxConfig {
        cache_dir: Some(dir.path().to_owned()),
        max_instances: 4,
        ..SandboxConfig::default()
    };
    let digest = {
        let sandbox = Sandbox::new(&config).unwrap();
        sandbox.load(&baton_tests::flow_wasm("hello")).unwrap().digest()
    };
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "one artifact on disk");
    let fresh = Sandbox::new(&config).unwrap();
    assert_eq!(fresh.cached_digests(), [digest]);
    let flow = fresh.load_cached(&digest).expect("loads without the component's bytes");
    assert_eq!(flow.digest(), digest);
}

#[test]
fn concurrent_loads_of_one_component_compile_and_cache_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = SandboxConfig {
        cache_dir: Some(dir.path().to_owned()),
        max_instances: 4,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::new(&config).unwrap();
    let hello = baton_tests::flow_wasm("hello");
    let flows: Vec<_> = std::thread::scope(|scope| {
        let loads: Vec<_> = (0..6).map(|_| scope.spawn(|| sandbox.load(&hello).unwrap())).collect();
        loads.into_iter().map(|load| load.join().unwrap()).collect()
    });
    // One compilation: every load got the same loaded flow.
    assert!(flows.iter().all(|flow| std::sync::Arc::ptr_eq(flow, &flows[0])));
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(files.len() == 1 && files[0].ends_with(".cwasm"), "{files:?}");
}

#[test]
fn a_corrupt_artifact_is_discarded_and_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let config = SandboxConfig {
        cache_dir: Some(dir.path().to_owned()),
        max_instances: 4,
        ..SandboxConfig::default()
    };
    let hello = baton_tests::flow_wasm("hello");
    Sandbox::new(&config).unwrap().load(&hello).unwrap();
    let artifact = std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
    std::fs::write(&artifact, b"garbage").unwrap();
    let fresh = Sandbox::new(&config).unwrap();
    assert!(fresh.load_cached(&baton_sandbox::Digest::of(&hello)).is_none());
    assert!(fresh.load(&hello).is_ok());
}

#[tokio::test]
async fn whatever_a_flow_sends_the_host_leaves_it_within_its_limits() {
    use baton_proto::v1::limits::{MAX_EVENT_BYTES, MAX_MESSAGE_BYTES};
    use baton_proto::v1::link::{MAX_FRAME_BYTES, body_size};
    let sandbox = sandbox();
    let attack = |attack: &str| json!({"attack": attack, "mib": 10});
    let limits = RunLimits::default();

    let (outcome, _) = run(&sandbox, "hostile-sizes", attack("output"), limits).await;
    assert_eq!(
        outcome,
        RunOutcome::Failed {
            message: "output of 10.0 MiB exceeds the 4 MiB limit".into(),
            details: None
        }
    );
    let (outcome, reports) = run(&sandbox, "hostile-sizes", attack("event"), limits).await;
    let RunOutcome::Failed { message, .. } = &outcome else { panic!("{outcome:?}") };
    assert!(
        message.starts_with("event `hostile.big` of 10.0 MiB exceeds the 256 KiB limit"),
        "{message}"
    );
    assert!(!reports.reports().iter().any(|r| matches!(r.body, ReportBody::Event { .. })));
    let (outcome, _) = run(&sandbox, "hostile-sizes", attack("error"), limits).await;
    let RunOutcome::Failed { message, .. } = &outcome else { panic!("{outcome:?}") };
    assert!(message.len() < MAX_MESSAGE_BYTES + 100 && message.ends_with("bytes cut]"));

    // Names and lines are cut; the flow runs on.
    for name in ["task-name", "line"] {
        let (outcome, reports) = run(&sandbox, "hostile-sizes", attack(name), limits).await;
        assert!(matches!(outcome, RunOutcome::Completed { .. }), "{name}: {outcome:?}");
        let largest = reports.reports().iter().map(body_size).max().unwrap();
        assert!(largest < MAX_EVENT_BYTES, "{name}: a report of {largest} bytes");
    }
    // Whatever the outcome, it fits in a frame to the core.
    assert!(body_size(&outcome) < MAX_FRAME_BYTES as usize);
    let (outcome, _) = run(&sandbox, "hostile-sizes", json!({"attack": "none"}), limits).await;
    assert_eq!(outcome, RunOutcome::Completed { output: json!("small") });
}

#[tokio::test]
async fn a_granted_secret_never_leaves_the_sandbox_whatever_the_flow_puts_it_in() {
    let sandbox = sandbox();
    let flow = sandbox.load(&baton_tests::flow_wasm("hostile-secrets")).unwrap();
    let secret = "s3cr3t-t0ken-value";
    for ending in ["error", "panic", "output"] {
        let reports = Arc::new(ReportCollector::default());
        let mut request = RunRequest::new(json!({ "ending": ending }), reports.clone());
        request.grants.secrets.insert("token".into(), Some(secret.into()));
        let outcome = sandbox.run(&flow, request).await;
        let reports = reports.reports();
        // The flow did put it everywhere: the redacted marks are there.
        let seen = serde_json::to_string(&reports).unwrap();
        assert!(seen.matches("***").count() > 50, "{ending}: too few marks");
        assert!(reports.iter().any(|r| matches!(r.body, ReportBody::Event { .. })), "{ending}");
        let artifacts =
            reports.iter().filter(|r| matches!(r.body, ReportBody::Artifact { .. })).count();
        assert_eq!(artifacts, 2, "{ending}");
        let outcome_text = serde_json::to_string(&outcome).unwrap();
        for (what, text) in [("reports", &seen), ("outcome", &outcome_text)] {
            assert!(!text.contains(secret), "{ending}: the secret is in the {what}");
            // Nor any piece of it long enough to rebuild it from a split.
            assert!(!text.contains(&secret[..secret.len() - 1]), "{ending}: {what}");
            assert!(!text.contains(&secret[1..]), "{ending}: {what}");
        }
        match ending {
            "output" => assert!(matches!(outcome, RunOutcome::Completed { .. }), "{outcome:?}"),
            "error" => assert!(matches!(outcome, RunOutcome::Failed { .. }), "{outcome:?}"),
            _ => assert!(matches!(outcome, RunOutcome::Crashed { .. }), "{outcome:?}"),
        }
    }
}

#[tokio::test]
async fn endless_recursion_is_named_a_stack_overflow_and_the_sandbox_runs_on() {
    let sandbox = sandbox();
    let (outcome, _) = run(&sandbox, "hostile-recursion", json!({}), RunLimits::default()).await;
    let RunOutcome::Crashed { message } = &outcome else { panic!("{outcome:?}") };
    assert!(message.contains("stack overflow"), "{message}");
    let (outcome, _) = run(&sandbox, "hello", json!({"a": 1, "b": 1}), RunLimits::default()).await;
    assert_eq!(outcome, RunOutcome::Completed { output: json!(2) });
}

#[tokio::test]
async fn a_log_flood_is_cut_to_the_budget_with_a_count_of_what_was_dropped() {
    let sandbox = sandbox();
    let lines = 300_000;
    let (outcome, reports) =
        run(&sandbox, "prints", json!({ "lines": lines }), RunLimits::default()).await;
    // The outcome is the flow's, whatever its log.
    assert_eq!(outcome, RunOutcome::Completed { output: json!(lines) });
    let logs = log_messages(&reports);
    let dropped: u64 = logs
        .iter()
        .filter_map(|l| {
            l.split_once(" log lines dropped: ").and_then(|(n, _)| n.parse::<u64>().ok())
        })
        .sum();
    let kept = logs.iter().filter(|l| !l.contains(" log lines dropped: ")).count() as u64;
    assert!(dropped > 0, "nothing was dropped from {lines} lines");
    assert!(kept <= 200_000, "{kept} lines kept");
    // Every line printed (and the stderr one) is either kept or counted.
    assert_eq!(kept + dropped, lines as u64 + 1);
}

#[tokio::test]
async fn a_refused_component_leaves_nothing_in_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        SandboxConfig { cache_dir: Some(dir.path().to_owned()), ..SandboxConfig::default() };
    let sandbox = Sandbox::new(&config).unwrap();
    let files = || std::fs::read_dir(dir.path()).unwrap().count();
    // Not a flow: refused at link, before it is cached.
    let not_a_flow = wat::parse_str("(component)").unwrap();
    assert!(matches!(sandbox.load(&not_a_flow), Err(LoadError::NotAFlow(_))));
    assert_eq!(files(), 0);
    // A flow whose describe is refused: forgotten, from disk too.
    let flow = sandbox.load(&baton_tests::flow_wasm("hostile-describe")).unwrap();
    assert_eq!(files(), 1);
    assert!(sandbox.describe(&flow).await.is_err());
    sandbox.forget(&flow.digest());
    assert_eq!(files(), 0);
    assert!(sandbox.cached_digests().is_empty());
}

#[test]
fn the_component_cache_keeps_to_its_budget_evicting_the_least_recently_used() {
    let dir = tempfile::tempdir().unwrap();
    let cache = |cache_max_bytes| {
        Sandbox::new(&SandboxConfig {
            cache_dir: Some(dir.path().to_owned()),
            cache_max_bytes,
            ..SandboxConfig::default()
        })
        .unwrap()
    };
    let total = || -> u64 {
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum()
    };
    // What the three compiled flows take together, to set a budget one
    // less than that.
    let probe = cache(u64::MAX);
    for flow in ["hello", "etl", "sleeps"] {
        probe.load(&baton_tests::flow_wasm(flow)).unwrap();
    }
    let all = total();
    drop(probe);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }

    let sandbox = cache(all - 1);
    let hello = sandbox.load(&baton_tests::flow_wasm("hello")).unwrap().digest();
    std::thread::sleep(Duration::from_millis(20));
    let etl = sandbox.load(&baton_tests::flow_wasm("etl")).unwrap().digest();
    std::thread::sleep(Duration::from_millis(20));
    // hello is used again (from disk, by a fresh sandbox): etl is now the
    // least recently used.
    assert!(cache(all - 1).load_cached(&hello).is_some());
    std::thread::sleep(Duration::from_millis(20));
    let sleeps = sandbox.load(&baton_tests::flow_wasm("sleeps")).unwrap().digest();
    let cached = sandbox.cached_digests();
    assert!(cached.contains(&hello) && cached.contains(&sleeps), "{cached:?}");
    assert!(!cached.contains(&etl), "the least recently used is evicted: {cached:?}");
    assert!(total() < all, "over budget: {} of {}", total(), all - 1);
    // An evicted component loads again from its bytes.
    assert!(sandbox.load(&baton_tests::flow_wasm("etl")).is_ok());
}

#[tokio::test]
async fn a_component_of_the_first_contract_still_runs() {
    let sandbox = sandbox();
    let (outcome, reports) =
        run(&sandbox, "contract-0-1-0", json!({"x": 1}), RunLimits::default()).await;
    assert_eq!(
        outcome,
        RunOutcome::Completed { output: json!({"contract": "0.1.0", "params": {"x": 1}}) }
    );
    assert!(log_messages(&reports).iter().any(|l| l == "a 0.1.0 flow runs"));
    let flow = sandbox.load(&baton_tests::flow_wasm("contract-0-1-0")).unwrap();
    assert_eq!(sandbox.describe(&flow).await.unwrap().version, "0.1.0");
}

#[tokio::test]
async fn a_run_has_a_scratch_directory_of_its_own_held_to_its_cap_and_emptied_after_it() {
    let root = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::new(&SandboxConfig {
        scratch_dir: Some(root.path().to_owned()),
        ..SandboxConfig::default()
    })
    .unwrap();
    let flow = sandbox.load(&baton_tests::flow_wasm("scratch")).unwrap();
    let reports = Arc::new(ReportCollector::default());
    let run = |bytes: u64| {
        let mut request = RunRequest::new(json!({ "bytes": bytes }), reports.clone());
        request.limits.scratch_bytes = 8 << 20;
        sandbox.run(&flow, request)
    };

    let outcome = run(3 << 20).await;
    let RunOutcome::Completed { output } = outcome else { panic!("{outcome:?}") };
    assert_eq!(output["dir"], "/tmp");
    assert_eq!(output["read_back"], 3 << 20);
    assert_eq!(output["entries"], json!(["data.bin"]), "another run's files are visible");
    assert_eq!(output["read_outside"], false, "the flow read a file outside its scratch directory");
    assert_eq!(files_under(root.path()), 0, "a file of the run outlived it");
    // The second run sees an empty directory, not the first one's file.
    let outcome = run(1 << 20).await;
    let RunOutcome::Completed { output } = outcome else { panic!("{outcome:?}") };
    assert_eq!(output["entries"], json!(["data.bin"]));

    // Over the cap, the write fails, and the flow sees the error.
    match run(9 << 20).await {
        RunOutcome::Failed { message, .. } => {
            assert!(message.contains("writing /tmp/data.bin"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let refused = "a write to the run's scratch directory was refused: it holds";
    assert!(
        log_messages(&reports).iter().any(|l| l.starts_with(refused)
            && l.ends_with("of its 8 MiB cap (job variable scratch_mib)")),
        "{:?}",
        log_messages(&reports)
    );
    assert_eq!(files_under(root.path()), 0, "a file of the run outlived it");
}

/// Files (not directories) anywhere under `dir`.
fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| if entry.path().is_dir() { files_under(&entry.path()) } else { 1 })
        .sum()
}

#[tokio::test]
async fn artifacts_are_reported_checked_and_redacted() {
    let sandbox = sandbox();
    let (outcome, reports) =
        run(&sandbox, "report", json!({"title": "Sales"}), RunLimits::default()).await;
    assert_eq!(outcome, RunOutcome::Completed { output: json!(4) });
    let artifacts: Vec<(Option<String>, baton_proto::v1::RunArtifactKind, serde_json::Value)> =
        reports
            .reports()
            .into_iter()
            .filter_map(|r| match r.body {
                ReportBody::Artifact { key, artifact_kind, content, .. } => {
                    Some((key, artifact_kind, content))
                }
                _ => None,
            })
            .collect();
    use baton_proto::v1::RunArtifactKind::*;
    let kinds: Vec<_> = artifacts.iter().map(|(key, kind, _)| (key.as_deref(), *kind)).collect();
    assert_eq!(
        kinds,
        [
            (Some("daily-report"), Markdown),
            (Some("regions"), Table),
            (None, Link),
            (Some("load"), Progress)
        ]
    );
    assert_eq!(
        artifacts[1].2,
        json!([{"region": "eu-west", "orders": 700}, {"region": "us-east", "orders": 504}])
    );
    let logs = log_messages(&reports);
    assert!(logs.iter().any(|l| l.contains("refused: artifact key `Bad Key` must be")), "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("refused: a table artifact's content is an array of objects")),
        "{logs:?}"
    );
}
