//! Hostile flows and clients against a core and an agent as separate
//! processes: each attack ends in its named outcome, and the agent goes on
//! serving runs.

use std::time::Duration;

use baton_tests::http::Connection;
use baton_tests::measure::resident_kib;
use baton_tests::{System, finish};
use serde_json::{Value, json};

use crate::agents::{run, wait_for};

#[test]
fn outputs_and_events_over_their_limits_fail_the_run_and_the_agent_serves_the_next() {
    let system = System::start(4);
    let (core, home) = (&system.core, system.home.path());
    core.deploy(home, "hostile-sizes", "attack", "");
    core.deploy(home, "hello", "default", "    parameters: {a: 1, b: 2}\n");
    for (attack, expected) in [
        ("output", "output of 10.0 MiB exceeds the 4 MiB limit"),
        ("event", "event `hostile.big` of 10.0 MiB exceeds the 256 KiB limit"),
    ] {
        let id = run(core, home, "hostile-sizes/attack", &[&format!("attack={attack}"), "mib=10"]);
        let (failed, _) = wait_for(core, home, &id, "FAILED", Duration::from_secs(60));
        let message = failed["state_message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{attack}: {failed:#}");
        // The same agent completes the next run, of another deployment.
        let next = run(core, home, "hello/default", &[]);
        let (done, took) = wait_for(core, home, &next, "COMPLETED", Duration::from_secs(10));
        assert_eq!(done["agent_id"], failed["agent_id"]);
        assert_eq!(done["output"], 3);
        println!("after a 10 MiB {attack}: the next run completed in {took:?}");
    }
}

#[test]
fn parameters_over_the_limit_are_refused_at_creation() {
    let system = System::start(1);
    let (core, home) = (&system.core, system.home.path());
    core.deploy(home, "hostile-sizes", "attack", "");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let address = core.api_address();
        let mut connection = Connection::open(address).await;
        // 1.5 MiB: over the parameters' limit, within the request body's.
        let too_many = json!({"parameters": {"attack": "x".repeat(3 << 19)}});
        let (status, body) =
            connection.json("POST", "/api/deployments/hostile-sizes/attack/runs", &too_many).await;
        assert_eq!(status, 413, "{body}");
        assert_eq!(body["code"], "too_large");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("exceeds the 1 MiB limit"), "{message}");
        let (_, runs) =
            connection.json("GET", "/api/runs?deployment=hostile-sizes/attack", &Value::Null).await;
        assert_eq!(runs["items"], json!([]), "a refused run was created");
    });
}

#[test]
fn a_granted_secret_is_in_no_answer_of_the_api_whatever_the_flow_put_it_in() {
    let system = System::start(2);
    let (core, home) = (&system.core, system.home.path());
    let secret = "e2e-s3cr3t-t0ken";
    let set = finish(core.baton(home).args(["secret", "set", "token", secret]));
    assert_eq!(set.status, Some(0), "{}", set.stderr);
    core.deploy(home, "hostile-secrets", "leaky", "    capabilities: {secrets: [token]}\n");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for ending in ["error", "panic", "output"] {
        let id = run(core, home, "hostile-secrets/leaky", &[&format!("ending={ending}")]);
        let expected = match ending {
            "error" => "FAILED",
            "panic" => "CRASHED",
            _ => "COMPLETED",
        };
        wait_for(core, home, &id, expected, Duration::from_secs(60));
        runtime.block_on(async {
            let address = core.api_address();
            let mut connection = Connection::open(address).await;
            let mut marks = 0;
            for path in [
                format!("/api/runs/{id}"),
                format!("/api/runs/{id}/logs"),
                "/api/events".to_owned(),
            ] {
                let (status, body) = connection.json("GET", &path, &Value::Null).await;
                assert_eq!(status, 200, "{path}: {body}");
                let text = body.to_string();
                assert!(!text.contains(secret), "{ending}: the secret is in GET {path}");
                marks += text.matches("***").count();
            }
            // The flow did put it everywhere: what it put is there, redacted.
            assert!(marks > 50, "{ending}: only {marks} redactions");
        });
    }
}

#[test]
fn a_log_flood_keeps_the_run_s_outcome_and_says_what_it_dropped() {
    let system = System::start(2);
    let (core, home) = (&system.core, system.home.path());
    // The flow prints for a second or two, well within its timeout; its
    // lines take longer than that to reach the core, and must not make the
    // run look timed out.
    core.deploy(home, "prints", "flood", "    timeout_seconds: 15\n");
    let lines = 400_000;
    let id = run(core, home, "prints/flood", &[&format!("lines={lines}")]);
    let (done, took) = wait_for(core, home, &id, "COMPLETED", Duration::from_secs(60));
    assert_eq!(done["output"], lines, "{done:#}");
    println!("{lines} lines printed: COMPLETED after {took:?}");
    let logs = finish(core.baton(home).args(["run", "logs", &id, "--json"]));
    assert_eq!(logs.status, Some(0), "{}", logs.stderr);
    let lines_json: Value = serde_json::from_str(&logs.stdout).unwrap();
    let messages: Vec<String> = lines_json
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|item| item["message"].as_str().map(str::to_owned))
        .collect();
    let dropped: u64 = messages
        .iter()
        .filter_map(|m| {
            m.split_once(" log lines dropped: ").and_then(|(n, _)| n.parse::<u64>().ok())
        })
        .sum();
    let kept = messages.iter().filter(|m| !m.contains(" log lines dropped: ")).count() as u64;
    println!("kept {kept} lines, dropped {dropped} (said so)");
    assert!(dropped > 0, "nothing dropped from {lines} lines");
    assert_eq!(kept + dropped, lines + 1, "every line kept or counted as dropped");
}

#[test]
fn an_event_flood_is_cut_to_the_run_s_budget_and_says_what_it_dropped() {
    let system = System::start(2);
    let (core, home) = (&system.core, system.home.path());
    core.deploy(home, "hostile-sizes", "attack", "");
    let count: u64 = 20_000;
    let id = run(core, home, "hostile-sizes/attack", &["attack=events", &format!("count={count}")]);
    let (done, took) = wait_for(core, home, &id, "COMPLETED", Duration::from_secs(60));
    assert_eq!(done["output"], format!("emitted {count}"), "{done:#}");
    let logs = finish(core.baton(home).args(["run", "logs", &id, "--json"]));
    assert_eq!(logs.status, Some(0), "{}", logs.stderr);
    let lines: Value = serde_json::from_str(&logs.stdout).unwrap();
    let dropped: u64 = lines
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|line| line["message"].as_str()?.split_once(" events dropped: "))
        .filter_map(|(n, _)| n.parse::<u64>().ok())
        .sum();
    let kept = count - dropped;
    println!("{count} events emitted in {took:?}: {kept} kept, {dropped} dropped (said so)");
    assert!(dropped > 0, "nothing dropped of {count} events");
    // A burst of 1,000, then 100 a second.
    let seconds = u64::try_from(took.as_millis() / 1000).unwrap() + 1;
    assert!(kept <= 1_000 + 100 * seconds, "{kept} events kept in {took:?}");
    let listed =
        core.ok(home, &["event", "ls", "--json", "--name", "hostile.flood", "--limit", "1000"]);
    let stored: Vec<Value> = serde_json::from_str(&listed).unwrap();
    assert_eq!(stored.len() as u64, kept.min(1_000), "the stored events are the ones kept");
}

/// Components whose `describe` attacks the core at upload: each is refused
/// naming why, the core stays healthy, and its resident memory stays within
/// twice its idle figure.
#[test]
fn hostile_uploads_are_refused_naming_why_and_leave_the_core_as_it_was() {
    let system = System::start(1);
    let (core, home) = (&system.core, system.home.path());
    core.deploy(home, "hello", "default", "");
    let idle = resident_kib(Some(core.pid()));
    for (flow, named) in [
        ("hostile-describe", "its parameter schema of 20.0 MiB exceeds the 256 KiB limit"),
        ("hostile-describe-loop", "its `describe` export did not return within"),
        ("hostile-describe-hog", "its `describe` export needs more than"),
        ("hostile-name", "its flow name `../../etc` must be"),
    ] {
        let project = tempfile::tempdir().unwrap();
        std::fs::write(project.path().join("flow.wasm"), baton_tests::flow_wasm(flow)).unwrap();
        let file = project.path().join("baton.yaml");
        let yaml = format!(
            "name: {flow}\nbuild:\n  component: flow.wasm\ndeployments:\n  - name: attack\n"
        );
        std::fs::write(&file, yaml).unwrap();
        let deployed = finish(core.baton(home).args(["deploy", "--file"]).arg(&file));
        println!("{flow}: {}", deployed.stderr.trim());
        assert_ne!(deployed.status, Some(0), "{flow} was deployed");
        assert!(deployed.stderr.contains(named), "{flow}: {}", deployed.stderr);
        let health = core.ok(home, &["deployment", "ls", "--json"]);
        assert!(health.contains("hello"), "{health}");
    }
    let after = resident_kib(Some(core.pid()));
    println!("core resident: idle {idle} kB, after the uploads {after} kB");
    assert!(after <= 2 * idle, "the core kept {after} kB against {idle} kB idle");
}

/// Every attack on one agent: each run ends in its named outcome, the same
/// agent then completes a run of `hello` within 1 s of its creation (by the
/// core's clock), and after them all its resident memory is within twice
/// its idle figure.
#[test]
fn hostile_flows_end_in_their_named_outcome_and_leave_the_agent_as_it_was() {
    let system = System::start(2);
    let (core, home) = (&system.core, system.home.path());
    core.deploy(home, "hello", "default", "    parameters: {a: 1, b: 2}\n");
    // (flow, more deployment YAML, parameters, outcome, words it is named by)
    let cases: [(&str, &str, &[&str], &str, &str); 10] = [
        ("memory-hog", "", &[], "FAILED", "ran out of memory"),
        ("loop-forever", "    timeout_seconds: 1\n", &[], "FAILED", "timed out after 1000 ms"),
        // Which stack runs out first, wasm's own or the one Rust keeps in
        // linear memory, is the compiler's choice: both are named so.
        ("hostile-recursion", "", &[], "CRASHED", "stack overflow"),
        ("panics", "", &[], "CRASHED", "this flow panics on purpose"),
        ("read-passwd", "", &[], "FAILED", "/etc/passwd"),
        ("open-socket", "", &[], "FAILED", "127.0.0.1"),
        ("hostile-sizes", "", &["attack=output", "mib=10"], "FAILED", "exceeds the 4 MiB limit"),
        ("hostile-sizes", "", &["attack=event", "mib=10"], "FAILED", "exceeds the 256 KiB limit"),
        ("hostile-sizes", "", &["attack=events", "count=20000"], "COMPLETED", ""),
        ("prints", "", &["lines=100000"], "COMPLETED", ""),
    ];
    let mut deployed = std::collections::BTreeSet::new();
    for (flow, extra, ..) in cases {
        if deployed.insert(flow) {
            core.deploy(home, flow, "attack", extra);
        }
    }
    // Idle: connected, `hello` compiled and run once.
    let warm = run(core, home, "hello/default", &[]);
    wait_for(core, home, &warm, "COMPLETED", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    let idle = resident_kib(Some(system.agent_pid()));
    for (flow, _, params, state, named) in cases {
        let id = run(core, home, &format!("{flow}/attack"), params);
        let (ended, _) = wait_for(core, home, &id, state, Duration::from_secs(120));
        let message = ended["state_message"].as_str().unwrap_or_default();
        assert!(message.contains(named), "{flow} {params:?}: {ended:#}");
        let next = run(core, home, "hello/default", &[]);
        let (done, _) = wait_for(core, home, &next, "COMPLETED", Duration::from_secs(30));
        assert_eq!(done["agent_id"], ended["agent_id"]);
        let took = done["ended_at"].as_i64().unwrap() - done["created_at"].as_i64().unwrap();
        let resident = resident_kib(Some(system.agent_pid()));
        println!(
            "{flow} {params:?}: {state} ({message}); the next run took {took} ms; agent {resident} kB"
        );
        assert!(took <= 1000, "after {flow} {params:?} the next run took {took} ms");
    }
    std::thread::sleep(Duration::from_secs(1));
    let after = resident_kib(Some(system.agent_pid()));
    println!("agent resident: idle {idle} kB, after the attacks {after} kB");
    assert!(after <= 2 * idle, "the agent kept {after} kB against {idle} kB idle");
}
