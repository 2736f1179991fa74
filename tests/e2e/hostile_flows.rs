//! Hostile flows and clients against a core and an agent as separate
//! processes: each attack ends in its named outcome, and the agent goes on
//! serving runs.

use std::time::Duration;

use baton_tests::System;
use baton_tests::http::Connection;
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
        let address = core.url.strip_prefix("http://").unwrap().parse().unwrap();
        let mut connection = Connection::open(address).await;
        let too_many = json!({"parameters": {"attack": "x".repeat(2 << 20)}});
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
