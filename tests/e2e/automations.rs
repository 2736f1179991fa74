//! Automations end to end, with a core and an agent: run B when run A
//! fails (a failing action recorded, the others still done, an outgoing
//! webhook with the event rendered in), a proactive trigger firing once
//! when its event does not come, and a loop cut off.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use baton_tests::{CoreProcess, System, finish, flow_wasm, wait_until};
use serde_json::Value;

/// Creates an automation from YAML with `baton automation create -f`.
fn create_automation(system: &System, yaml: &str) {
    let file = system.home.path().join("automation.yaml");
    std::fs::write(&file, yaml).unwrap();
    system.ok(&["automation", "create", "-f", file.to_str().unwrap()]);
}

fn automations(system: &System) -> Value {
    serde_json::from_str(&system.ok(&["automation", "ls", "--json"])).unwrap()
}

/// Deploys the flow that always fails (`always-fails/a`).
fn deploy_failing(core: &CoreProcess, home: &Path) {
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("flow.wasm"), flow_wasm("returns-error")).unwrap();
    let file = project.path().join("baton.yaml");
    std::fs::write(
        &file,
        "name: always-fails\nbuild:\n  component: flow.wasm\ndeployments:\n  - name: a\n",
    )
    .unwrap();
    let deployed = finish(core.baton(home).args(["deploy", "--file"]).arg(&file));
    assert_eq!(deployed.status, Some(0), "{}", deployed.stderr);
}

/// A one-request HTTP server; returns its address and the body it got.
fn one_request_server() -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (sender, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut chunk = [0_u8; 4096];
        loop {
            let n = stream.read(&mut chunk).unwrap();
            request.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    stream
                        .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                        .unwrap();
                    let _ = sender.send(body.to_owned());
                    return;
                }
            }
            if n == 0 {
                return;
            }
        }
    });
    (address, received)
}

#[test]
fn run_b_when_run_a_fails() {
    let system = System::start(4);
    deploy_failing(&system.core, system.home.path());
    system.core.deploy(system.home.path(), "hello", "b", "    parameters: {a: 1}\n");
    let (hook, received) = one_request_server();
    create_automation(
        &system,
        &format!(
            r#"name: b-after-a
description: Run B when A fails
trigger:
  reactive:
    event: run.failed
    related: deployment/always-fails/a
actions:
  - pause-deployment: {{deployment: no-such/deployment}}
  - run-deployment:
      deployment: hello/b
      parameters: {{b: 2}}
  - call-webhook:
      url: http://{hook}/notify
      body: "{{{{ event.resource }}}} went {{{{ event.payload.to }}}} at {{{{ event.occurred }}}}"
"#
        ),
    );
    let listed = automations(&system);
    assert_eq!(listed[0]["name"], "b-after-a");

    system.ok(&["deployment", "run", "always-fails/a"]);
    wait_until("run B completed", Duration::from_secs(30), || {
        system.runs("hello/b").first().is_some_and(|r| r["state"] == "COMPLETED")
    });
    let failed = system.events("run.failed");
    let body = received.recv_timeout(Duration::from_secs(10)).unwrap();
    // The event's time as RFC 3339, to the millisecond, in UTC.
    let occurred = failed[0]["occurred"].as_i64().unwrap();
    let (seconds, millis) = (occurred.div_euclid(1000), occurred.rem_euclid(1000));
    let date = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{seconds}"), "+%Y-%m-%dT%H:%M:%S"])
        .output()
        .unwrap();
    let at = format!("{}.{millis:03}Z", String::from_utf8_lossy(&date.stdout).trim());
    assert_eq!(body, format!("{} went FAILED at {at}", failed[0]["resource"].as_str().unwrap()));

    // The failing first action is on record, and did not stop the others.
    let failures = system.events("automation.action-failed");
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert_eq!(failures[0]["payload"]["action"], 0);
    assert!(
        failures[0]["payload"]["error"].as_str().unwrap().contains("not found"),
        "{failures:#?}"
    );
    assert_eq!(system.events("automation.triggered").len(), 1);

    // Paused, it acts on nothing.
    system.ok(&["automation", "pause", "b-after-a"]);
    system.ok(&["deployment", "run", "always-fails/a"]);
    wait_until("two failures", Duration::from_secs(30), || system.events("run.failed").len() == 2);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(system.runs("hello/b").len(), 1);
    system.ok(&["automation", "delete", "b-after-a"]);
    assert_eq!(automations(&system), serde_json::json!([]));
}

#[test]
fn a_proactive_trigger_fires_once_when_its_event_does_not_come() {
    let system = System::start(4);
    system.core.deploy(system.home.path(), "hello", "alarm", "    parameters: {a: 1, b: 2}\n");
    for (name, event) in [("silent", "nightly.done"), ("chatty", "chatty.done")] {
        create_automation(
            &system,
            &format!(
                "name: {name}\ntrigger:\n  proactive:\n    event: {event}\n    within: 3s\nactions:\n  - run-deployment: {{deployment: hello/alarm}}\n"
            ),
        );
    }
    // `chatty.done` keeps coming; `nightly.done` never does.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(4500) {
        system.ok(&["event", "emit", "chatty.done"]);
        std::thread::sleep(Duration::from_millis(700));
    }
    let triggered = system.events("automation.triggered");
    assert_eq!(triggered.len(), 1, "{triggered:#?}");
    assert_eq!(triggered[0]["payload"]["automation"], "silent");
    assert_eq!(triggered[0]["payload"]["cause"]["expected"], "nightly.done");
    wait_until("the alarm run", Duration::from_secs(20), || {
        system.runs("hello/alarm").first().is_some_and(|r| r["state"] == "COMPLETED")
    });
    assert_eq!(system.runs("hello/alarm").len(), 1);
}

#[test]
fn an_automation_that_would_trigger_itself_is_cut_off() {
    let system = System::start(4);
    system.core.deploy(system.home.path(), "hello", "again", "    parameters: {a: 1, b: 2}\n");
    create_automation(
        &system,
        "name: forever\ntrigger:\n  reactive:\n    event: run.completed\n    related: deployment/hello/again\nactions:\n  - run-deployment: {deployment: hello/again}\n",
    );
    system.ok(&["deployment", "run", "hello/again"]);
    wait_until("the automation's run", Duration::from_secs(30), || {
        let runs = system.runs("hello/again");
        runs.len() == 2 && runs.iter().all(|r| r["state"] == "COMPLETED")
    });
    // Its own run's completion does not start a third.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(system.runs("hello/again").len(), 2);
    assert_eq!(system.events("automation.triggered").len(), 1);
}
