//! The agent against a fake core over real QUIC on loopback, running real
//! components in the real sandbox: the handshake and its pinned CA, runs
//! and their events, fetches, reconnects and cancellation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

mod fake_core;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use baton_agent::{Agent, AgentError};
use baton_proto::v1::link::{AgentEvent, AgentEventBody, AgentMessage, CoreMessage};
use baton_proto::v1::{Infrastructure, ReportBody, RunOutcome};
use baton_tests::TempDir;
use serde_json::json;

use fake_core::{FakeCore, PATIENCE, assignment, digest};

fn seqs(events: &[AgentEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

fn log_lines(events: &[AgentEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            AgentEventBody::Report { report } => match &report.body {
                ReportBody::Log { message, .. } => Some(message.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Started, reports, Finished{Completed(5)} for `run_id`: what `hello`
/// with a=2, b=3 produces.
fn assert_hello_run(events: &[AgentEvent], run_id: &str) {
    assert!(events.iter().all(|e| e.run_id == run_id), "{events:?}");
    assert_eq!(
        events.first().unwrap().body,
        AgentEventBody::Started { infrastructure: Infrastructure::sandbox() }
    );
    assert_eq!(
        events.last().unwrap().body,
        AgentEventBody::Finished { outcome: RunOutcome::Completed { output: json!(5) } }
    );
    let middle = &events[1..events.len() - 1];
    assert!(middle.iter().all(|e| matches!(e.body, AgentEventBody::Report { .. })), "{events:?}");
    let logs = log_lines(events);
    assert!(logs.contains(&"adding 2 and 3".to_owned()), "{logs:?}");
    assert!(logs.contains(&"the sum is 5".to_owned()), "{logs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_an_assigned_flow_fetched_from_the_core() {
    let wasm = baton_tests::flow_wasm("hello");
    let artifact = digest(&wasm);
    let core = FakeCore::start();
    let data = TempDir::new().unwrap();
    let token = core.token();
    let config = core.agent_config(token.clone(), data.path(), 3);

    let (agent, mut session) = tokio::join!(Agent::start(config), core.accept_and_welcome(0));
    let agent = agent.unwrap();
    let hello = &session.hello;
    assert_eq!(hello.token, token.to_string());
    assert_eq!(hello.agent_id, agent.id());
    assert_eq!((hello.pool.as_str(), hello.slots), ("default", 3));
    assert_eq!(hello.queues, ["fast"]);
    assert_eq!(hello.name, "test-agent");
    assert_eq!(hello.version, env!("CARGO_PKG_VERSION"));
    assert!(hello.cached.is_empty() && hello.running.is_empty(), "{hello:?}");
    let id_file = std::fs::read_to_string(data.path().join("agent-id")).unwrap();
    assert_eq!(id_file.trim(), agent.id());

    session.serve_fetches(BTreeMap::from([(artifact.clone(), wasm)]));
    session.send(&assignment("run-1", &artifact, json!({"a": 2, "b": 3}))).await;
    let events = session.events_until_finished("run-1").await;
    assert_eq!(seqs(&events), (1..=events.len() as u64).collect::<Vec<_>>());
    assert_hello_run(&events, "run-1");

    // Acknowledged, and the run is no longer in the heartbeats.
    session.send(&CoreMessage::Ack { seq: events.len() as u64 }).await;
    loop {
        match session.next_message().await {
            AgentMessage::Heartbeat { running, .. } if running.is_empty() => break,
            AgentMessage::Heartbeat { .. } => {}
            AgentMessage::Event(event) => panic!("unexpected event {event:?}"),
        }
    }
    // The compiled component was kept in the data directory's cache.
    let cached = std::fs::read_dir(data.path().join("cache")).unwrap().count();
    assert!(cached > 0, "nothing in the component cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_another_ca_fails_the_handshake() {
    let core = FakeCore::start();
    let data = TempDir::new().unwrap();
    let mut token = core.token();
    token.fingerprint = "0".repeat(64);
    let config = core.agent_config(token, data.path(), 1);
    let endpoint = core.endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            assert!(incoming.await.is_err(), "the handshake should fail");
        }
    });
    let error = tokio::time::timeout(PATIENCE, Agent::start(config)).await.unwrap().unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, AgentError::Fingerprint { .. }), "{error:?}");
    assert!(message.contains("does not match the token's fingerprint"), "{message}");
    assert!(message.contains(&core.address.to_string()), "{message}");
    assert!(message.contains(&core.fingerprint), "names what the core presented: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_agent_does_not_start() {
    let core = FakeCore::start();
    let data = TempDir::new().unwrap();
    let config = core.agent_config(core.token(), data.path(), 1);
    let refuse = async {
        let mut session = core.accept().await;
        session.send(&CoreMessage::Refused { reason: "unknown token".to_owned() }).await;
        session
    };
    let (agent, _session) = tokio::join!(Agent::start(config), refuse);
    let error = agent.unwrap_err();
    assert!(
        matches!(&error, AgentError::Refused(reason) if reason == "unknown token"),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "the core refused this agent: unknown token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_reconnect_unacknowledged_events_are_sent_again() {
    let wasm = baton_tests::flow_wasm("hello");
    let artifact = digest(&wasm);
    let core = FakeCore::start();
    let data = TempDir::new().unwrap();
    let config = core.agent_config(core.token(), data.path(), 1);

    let (agent, mut first) = tokio::join!(Agent::start(config), core.accept_and_welcome(0));
    let agent = agent.unwrap();
    first.serve_fetches(BTreeMap::from([(artifact.clone(), wasm)]));
    first.send(&assignment("run-1", &artifact, json!({"a": 2, "b": 3}))).await;
    let started = first.next_event().await;
    assert_eq!(
        (started.seq, &started.body),
        (1, &AgentEventBody::Started { infrastructure: Infrastructure::sandbox() })
    );
    // Gone without acknowledging anything.
    first.connection.close(0_u32.into(), b"test: dropped");

    let mut second = core.accept().await;
    assert_eq!(second.hello.agent_id, agent.id());
    assert!(second.hello.cached.contains(&artifact), "{:?}", second.hello.cached);
    second.send(&CoreMessage::Welcome { acked_seq: 0, heartbeat_ms: 200, lease_ms: 0 }).await;
    let events = second.events_until_finished("run-1").await;
    assert_eq!(events[0], started, "the Started event again, same seq");
    assert_eq!(seqs(&events), (1..=events.len() as u64).collect::<Vec<_>>());
    assert_hello_run(&events, "run-1");

    // A Welcome that acknowledges some events: only the rest come again.
    second.connection.close(0_u32.into(), b"test: dropped again");
    let mut third = core.accept().await;
    third.send(&CoreMessage::Welcome { acked_seq: 2, heartbeat_ms: 200, lease_ms: 0 }).await;
    let again = third.events_until_finished("run-1").await;
    assert_eq!(again, events[2..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_flow_and_a_full_agent_declines() {
    let wasm = baton_tests::flow_wasm("loop-forever");
    let artifact = digest(&wasm);
    let core = FakeCore::start();
    let data = TempDir::new().unwrap();
    let config = core.agent_config(core.token(), data.path(), 1);

    let (agent, mut session) = tokio::join!(Agent::start(config), core.accept_and_welcome(0));
    let agent = agent.unwrap();
    session.serve_fetches(BTreeMap::from([(artifact.clone(), wasm)]));
    session.send(&assignment("spin", &artifact, json!({}))).await;
    assert_eq!(
        session.next_event().await.body,
        AgentEventBody::Started { infrastructure: Infrastructure::sandbox() }
    );
    // Reports arrive while the flow runs, not when it ends.
    let report = session.next_event().await;
    assert_eq!(log_lines(std::slice::from_ref(&report)), ["spinning"]);

    session.send(&assignment("second", &artifact, json!({}))).await;
    let declined = session.next_event().await;
    assert_eq!(declined.run_id, "second");
    assert_eq!(declined.body, AgentEventBody::Declined { reason: "no free slot".to_owned() });

    let cancelled_at = Instant::now();
    session.send(&CoreMessage::Cancel { run_id: "spin".to_owned(), attempt: 1 }).await;
    let finished = session.next_event().await;
    let took = cancelled_at.elapsed();
    assert_eq!(finished.run_id, "spin");
    assert_eq!(finished.body, AgentEventBody::Finished { outcome: RunOutcome::Cancelled });
    assert!(took < Duration::from_secs(1), "cancelling took {took:?}");
    assert_eq!(finished.seq, 4);

    // Stopping closes the connection and ends the agent.
    session.send(&CoreMessage::Ack { seq: finished.seq }).await;
    agent.stop();
    tokio::time::timeout(Duration::from_secs(5), agent.wait()).await.unwrap();
    let closed = session.connection.closed().await;
    assert!(closed.to_string().contains("agent stopping"), "{closed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_corrupt_component_declines_the_run() {
    let hello = baton_tests::flow_wasm("hello");
    let core = FakeCore::start();
    let data = TempDir::new().unwrap();
    let config = core.agent_config(core.token(), data.path(), 2);

    let (agent, mut session) = tokio::join!(Agent::start(config), core.accept_and_welcome(0));
    let _agent = agent.unwrap();
    // Some other bytes served under the digest the assignment names.
    let claimed = digest(b"another component");
    session.serve_fetches(BTreeMap::from([(claimed.clone(), hello)]));

    session.send(&assignment("corrupt", &claimed, json!({}))).await;
    let declined = session.next_event().await;
    let AgentEventBody::Declined { reason } = &declined.body else { panic!("{declined:?}") };
    assert_eq!(declined.run_id, "corrupt");
    assert!(reason.contains(&claimed) && reason.contains("has digest"), "{reason}");

    let missing = digest(b"nothing");
    session.send(&assignment("missing", &missing, json!({}))).await;
    let declined = session.next_event().await;
    assert_eq!(declined.run_id, "missing");
    assert_eq!(
        declined.body,
        AgentEventBody::Declined { reason: format!("no artifact {missing}") }
    );
}
