//! Deployments, runs, transitions, concurrency, retries, cancellation,
//! logs, values and retention, on both databases.

use std::time::Duration;

use baton_core::store::{DeploymentFilter, Retention, RunFilter, Store, StoreError, SweepConfig};
use baton_proto::v1::{
    Artifact, ConcurrencyPolicy, CreateRun, DeploymentSpec, FlowInfo, LogLevel, LogLine, PoolKind,
    PoolSpec, ProposeState, StateName, Timestamp, Verdict,
};
use serde_json::json;

use crate::databases::both;

async fn artifact(store: &Store, flow: &str) -> Artifact {
    let info = FlowInfo {
        name: flow.to_owned(),
        version: "1.0.0".to_owned(),
        description: "adds".to_owned(),
        parameters: json!({
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"]
        }),
    };
    let digest = format!("sha256:{flow}");
    store.put_artifact(&digest, &info, flow.as_bytes()).await.unwrap().0
}

pub async fn deploy(store: &Store, name: &str, spec: DeploymentSpec) -> String {
    let artifact = artifact(store, "hello").await;
    let spec = DeploymentSpec { artifact: artifact.digest.clone(), ..spec };
    store.upsert_deployment("hello", name, spec, &artifact).await.unwrap().deployment.id
}

async fn new_run(store: &Store, deployment: &str) -> String {
    let request = CreateRun {
        parameters: json!({"a": 1, "b": 2}).as_object().unwrap().clone(),
        ..CreateRun::default()
    };
    store.create_run("hello", deployment, request).await.unwrap().0.id
}

async fn propose(store: &Store, id: &str, state: StateName) -> (Verdict, StateName) {
    let transition =
        store.propose_state(id, ProposeState { state, message: None, output: None }).await.unwrap();
    (transition.verdict, transition.run.state)
}

#[tokio::test]
async fn artifacts_are_stored_once() {
    for db in both().await {
        let info = FlowInfo {
            name: "x".into(),
            version: "1".into(),
            description: String::new(),
            parameters: json!({}),
        };
        let (first, created) = db.store.put_artifact("sha256:ab", &info, b"bytes").await.unwrap();
        assert!(created, "{}", db.label);
        let (again, created) = db.store.put_artifact("sha256:ab", &info, b"bytes").await.unwrap();
        assert!(!created, "{}", db.label);
        assert_eq!(first, again);
        assert_eq!(db.store.artifact_bytes("sha256:ab").await.unwrap(), b"bytes");
        assert!(matches!(db.store.artifact("sha256:none").await, Err(StoreError::NotFound { .. })));
    }
}

#[tokio::test]
async fn deployments_upsert_report_what_changed_and_filter() {
    for db in both().await {
        let store = &db.store;
        let artifact = artifact(store, "hello").await;
        let spec = DeploymentSpec {
            artifact: artifact.digest.clone(),
            tags: vec!["nightly".into()],
            parameters: json!({"a": 1}).as_object().unwrap().clone(),
            ..DeploymentSpec::default()
        };
        let first =
            store.upsert_deployment("hello", "default", spec.clone(), &artifact).await.unwrap();
        assert!(first.created, "{}", db.label);
        let same =
            store.upsert_deployment("hello", "default", spec.clone(), &artifact).await.unwrap();
        assert!(!same.created && same.changed.is_empty(), "{}: {:?}", db.label, same.changed);
        let changed = DeploymentSpec { description: Some("new".into()), ..spec.clone() };
        let updated =
            store.upsert_deployment("hello", "default", changed, &artifact).await.unwrap();
        assert_eq!(updated.changed, ["description"], "{}", db.label);
        assert_eq!(updated.deployment.id, first.deployment.id);
        // One deployment carries its parameter schema; lists leave it out.
        assert_eq!(updated.deployment.parameter_schema["required"], json!(["a", "b"]));
        let listed = store.deployments(&DeploymentFilter::default()).await.unwrap();
        assert!(listed.iter().all(|d| d.parameter_schema.is_null()), "{}", db.label);
        store
            .upsert_deployment(
                "hello",
                "other",
                DeploymentSpec { tags: vec![], ..spec.clone() },
                &artifact,
            )
            .await
            .unwrap();

        let tagged = store
            .deployments(&DeploymentFilter { tag: Some("nightly".into()), ..Default::default() })
            .await
            .unwrap();
        assert_eq!(
            tagged.iter().map(|d| d.full_name()).collect::<Vec<_>>(),
            ["hello/default"],
            "{}",
            db.label
        );
        store.set_deployment_paused("hello", "other", true).await.unwrap();
        let paused = store
            .deployments(&DeploymentFilter { paused: Some(true), ..Default::default() })
            .await
            .unwrap();
        assert_eq!(
            paused.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
            ["other"],
            "{}",
            db.label
        );

        let bad_default = DeploymentSpec {
            parameters: json!({"a": "x"}).as_object().unwrap().clone(),
            ..spec.clone()
        };
        match store.upsert_deployment("hello", "bad", bad_default, &artifact).await {
            Err(StoreError::InvalidParameters(e)) => {
                assert!(e.to_string().contains("parameter `a`"), "{e}")
            }
            other => panic!("{}: {other:?}", db.label),
        }
        assert!(matches!(
            store.upsert_deployment("other-flow", "x", spec.clone(), &artifact).await,
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.upsert_deployment("hello", "no spaces", spec, &artifact).await,
            Err(StoreError::Invalid(_))
        ));

        store.delete_deployment("hello", "other").await.unwrap();
        assert!(matches!(
            store.deployment("hello", "other").await,
            Err(StoreError::NotFound { .. })
        ));
        let names: Vec<String> =
            store.events(&Default::default()).await.unwrap().into_iter().map(|e| e.name).collect();
        assert!(names.contains(&"deployment.created".to_owned()), "{}: {names:?}", db.label);
        assert!(names.contains(&"deployment.deleted".to_owned()), "{}: {names:?}", db.label);
    }
}

#[tokio::test]
async fn runs_validate_parameters_and_honour_idempotency_keys() {
    for db in both().await {
        let store = &db.store;
        deploy(
            store,
            "default",
            DeploymentSpec {
                parameters: json!({"a": 10}).as_object().unwrap().clone(),
                ..Default::default()
            },
        )
        .await;
        let request = CreateRun {
            parameters: json!({"b": 5}).as_object().unwrap().clone(),
            ..Default::default()
        };
        let (run, created) = store.create_run("hello", "default", request).await.unwrap();
        assert!(created);
        assert_eq!(run.parameters, *json!({"a": 10, "b": 5}).as_object().unwrap(), "{}", db.label);
        assert_eq!(run.state, StateName::Scheduled);

        let bad = CreateRun {
            parameters: json!({"b": "five"}).as_object().unwrap().clone(),
            ..Default::default()
        };
        match store.create_run("hello", "default", bad).await {
            Err(StoreError::InvalidParameters(e)) => {
                assert!(e.to_string().contains("parameter `b`"), "{e}")
            }
            other => panic!("{}: {other:?}", db.label),
        }

        let keyed = CreateRun {
            parameters: json!({"b": 1}).as_object().unwrap().clone(),
            idempotency_key: Some("nightly-2026-11-27".into()),
            ..Default::default()
        };
        let (first, created) = store.create_run("hello", "default", keyed.clone()).await.unwrap();
        assert!(created);
        let (second, created) = store.create_run("hello", "default", keyed).await.unwrap();
        assert!(!created, "{}", db.label);
        assert_eq!(first.id, second.id);
    }
}

#[tokio::test]
async fn runs_list_newest_first_with_cursor_and_filters() {
    for db in both().await {
        let store = &db.store;
        let deployment_id = deploy(store, "default", DeploymentSpec::default()).await;
        let mut ids = Vec::new();
        for _ in 0..7 {
            ids.push(new_run(store, "default").await);
        }
        store.cancel_run(&ids[0]).await.unwrap();
        let mut seen = Vec::new();
        let mut filter =
            RunFilter { deployment_id: Some(deployment_id), limit: 3, ..Default::default() };
        loop {
            let page = store.runs(&filter).await.unwrap();
            seen.extend(page.items.iter().map(|r| r.id.clone()));
            match page.next_cursor {
                Some(cursor) => filter.cursor = Some(cursor),
                None => break,
            }
        }
        ids.reverse();
        assert_eq!(seen, ids, "{}", db.label);
        let cancelled = store
            .runs(&RunFilter {
                states: vec![StateName::Cancelled],
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(cancelled.items.len(), 1, "{}", db.label);
    }
}

#[tokio::test]
async fn a_run_goes_through_the_legal_path_and_illegal_moves_are_refused() {
    for db in both().await {
        let store = &db.store;
        deploy(store, "default", DeploymentSpec::default()).await;
        let id = new_run(store, "default").await;
        assert_eq!(
            propose(store, &id, StateName::Completed).await,
            (Verdict::Rejected, StateName::Scheduled)
        );
        assert_eq!(
            propose(store, &id, StateName::Running).await,
            (Verdict::Rejected, StateName::Scheduled)
        );
        assert_eq!(
            propose(store, &id, StateName::Pending).await,
            (Verdict::Accepted, StateName::Pending)
        );
        assert_eq!(
            propose(store, &id, StateName::Running).await,
            (Verdict::Accepted, StateName::Running)
        );
        assert_eq!(
            propose(store, &id, StateName::Paused).await,
            (Verdict::Accepted, StateName::Paused)
        );
        assert_eq!(
            propose(store, &id, StateName::Running).await,
            (Verdict::Accepted, StateName::Running)
        );
        let done = store
            .propose_state(
                &id,
                ProposeState { state: StateName::Completed, message: None, output: Some(json!(3)) },
            )
            .await
            .unwrap();
        assert_eq!(done.verdict, Verdict::Accepted);
        assert_eq!(done.run.output, Some(json!(3)));
        assert_eq!(
            done.run.run_count, 1,
            "{}: resuming from PAUSED is not a new attempt",
            db.label
        );
        assert!(done.run.ended_at.is_some() && done.run.started_at.is_some());
        assert_eq!(
            propose(store, &id, StateName::Running).await,
            (Verdict::Rejected, StateName::Completed)
        );

        let detail = store.run_detail(&id).await.unwrap();
        let history: Vec<StateName> = detail.states.iter().map(|s| s.state).collect();
        use StateName::*;
        assert_eq!(
            history,
            [Scheduled, Pending, Running, Paused, Running, Completed],
            "{}",
            db.label
        );
        let events = store
            .events(&baton_core::store::EventFilter {
                name: Some("run.*".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(events.len(), history.len(), "{}: one event per accepted transition", db.label);
        assert_eq!(events[0].name, "run.completed");
        assert_eq!(events[0].resource, format!("run/{id}"));
    }
}

#[tokio::test]
async fn a_concurrency_limit_of_one_never_runs_two_and_frees_its_slot_in_every_terminal_state() {
    for db in both().await {
        let store = &db.store;
        deploy(
            store,
            "limited",
            DeploymentSpec { concurrency_limit: Some(1), ..Default::default() },
        )
        .await;
        let endings: [&[StateName]; 4] = [
            &[StateName::Completed],
            &[StateName::Failed],
            &[StateName::Crashed],
            &[StateName::Cancelled],
        ];
        let waiting = new_run(store, "limited").await;
        for ending in endings {
            let holder = new_run(store, "limited").await;
            assert_eq!(
                propose(store, &holder, StateName::Pending).await.0,
                Verdict::Accepted,
                "{}",
                db.label
            );
            assert_eq!(propose(store, &holder, StateName::Running).await.0, Verdict::Accepted);
            assert_eq!(
                propose(store, &waiting, StateName::Pending).await,
                (Verdict::Delayed, StateName::Scheduled),
                "{}",
                db.label
            );
            if ending == [StateName::Cancelled] {
                store.cancel_run(&holder).await.unwrap();
                assert_eq!(
                    propose(store, &waiting, StateName::Pending).await.0,
                    Verdict::Delayed,
                    "CANCELLING still holds it"
                );
            }
            let (verdict, state) = propose(store, &holder, ending[0]).await;
            assert_eq!((verdict, state), (Verdict::Accepted, ending[0]), "{}", db.label);
            // The slot is free: the waiting run could start now. Give it back.
            assert_eq!(
                propose(store, &waiting, StateName::Pending).await.0,
                Verdict::Accepted,
                "{}: after {}",
                db.label,
                ending[0]
            );
            assert_eq!(propose(store, &waiting, StateName::Scheduled).await.0, Verdict::Accepted);
        }
    }
}

#[tokio::test]
async fn racing_dispatches_take_exactly_the_free_slots() {
    for db in both().await {
        let store = db.store.clone();
        deploy(
            &store,
            "limited",
            DeploymentSpec { concurrency_limit: Some(2), ..Default::default() },
        )
        .await;
        let mut ids = Vec::new();
        for _ in 0..10 {
            ids.push(new_run(&store, "limited").await);
        }
        let racing: Vec<_> = ids
            .into_iter()
            .map(|id| {
                let store = store.clone();
                tokio::spawn(async move { propose(&store, &id, StateName::Pending).await.0 })
            })
            .collect();
        let mut accepted = 0;
        for race in racing {
            if race.await.unwrap() == Verdict::Accepted {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 2, "{}", db.label);
    }
}

#[tokio::test]
async fn cancel_new_policy_cancels_runs_beyond_the_limit() {
    for db in both().await {
        let store = &db.store;
        deploy(
            store,
            "strict",
            DeploymentSpec {
                concurrency_limit: Some(1),
                concurrency_policy: ConcurrencyPolicy::CancelNew,
                ..Default::default()
            },
        )
        .await;
        let first = new_run(store, "strict").await;
        let second = new_run(store, "strict").await;
        assert_eq!(propose(store, &first, StateName::Pending).await.1, StateName::Pending);
        assert_eq!(
            propose(store, &second, StateName::Pending).await,
            (Verdict::Accepted, StateName::Cancelled),
            "{}",
            db.label
        );
    }
}

#[tokio::test]
async fn failures_are_retried_then_fail_for_good() {
    for db in both().await {
        let store = &db.store;
        deploy(
            store,
            "flaky",
            DeploymentSpec { retries: 1, retry_delay_seconds: 30, ..Default::default() },
        )
        .await;
        let id = new_run(store, "flaky").await;
        propose(store, &id, StateName::Pending).await;
        propose(store, &id, StateName::Running).await;
        let before = baton_core::store::now_for_tests();
        let retry = store
            .propose_state(
                &id,
                ProposeState {
                    state: StateName::Failed,
                    message: Some("boom".into()),
                    output: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(retry.run.state, StateName::AwaitingRetry, "{}", db.label);
        assert!(retry.run.scheduled_at.0 >= before.0 + 30_000, "{}", db.label);
        assert!(retry.run.state_message.unwrap().contains("boom"));
        assert_eq!(propose(store, &id, StateName::Pending).await.1, StateName::Pending);
        assert_eq!(propose(store, &id, StateName::Running).await.1, StateName::Running);
        assert_eq!(
            propose(store, &id, StateName::Crashed).await,
            (Verdict::Accepted, StateName::Crashed),
            "{}",
            db.label
        );
        assert_eq!(store.run(&id).await.unwrap().run_count, 2);
        // A manual retry schedules it anew.
        assert_eq!(
            propose(store, &id, StateName::Scheduled).await,
            (Verdict::Accepted, StateName::Scheduled)
        );
        assert!(store.run(&id).await.unwrap().ended_at.is_none());
    }
}

#[tokio::test]
async fn cancelling_ends_waiting_runs_at_once_and_running_ones_through_cancelling() {
    for db in both().await {
        let store = &db.store;
        deploy(store, "default", DeploymentSpec::default()).await;
        let waiting = new_run(store, "default").await;
        assert_eq!(
            store.cancel_run(&waiting).await.unwrap().run.state,
            StateName::Cancelled,
            "{}",
            db.label
        );
        assert_eq!(store.cancel_run(&waiting).await.unwrap().verdict, Verdict::Rejected);
        let running = new_run(store, "default").await;
        propose(store, &running, StateName::Pending).await;
        propose(store, &running, StateName::Running).await;
        assert_eq!(store.cancel_run(&running).await.unwrap().run.state, StateName::Cancelling);
        assert_eq!(
            propose(store, &running, StateName::Cancelled).await.1,
            StateName::Cancelled,
            "{}",
            db.label
        );
    }
}

#[tokio::test]
async fn the_sweep_marks_late_runs_and_times_out_overdue_ones() {
    for db in both().await {
        let store = &db.store;
        deploy(store, "default", DeploymentSpec { timeout_seconds: Some(0), ..Default::default() })
            .await;
        let past = CreateRun {
            parameters: json!({"a": 1, "b": 1}).as_object().unwrap().clone(),
            scheduled_at: Some(Timestamp(1_000)),
            ..Default::default()
        };
        let late = store.create_run("hello", "default", past).await.unwrap().0.id;
        let future = CreateRun {
            parameters: json!({"a": 1, "b": 1}).as_object().unwrap().clone(),
            scheduled_at: Some(Timestamp(i64::MAX / 2)),
            ..Default::default()
        };
        let upcoming = store.create_run("hello", "default", future).await.unwrap().0.id;
        let overdue = new_run(store, "default").await;
        propose(store, &overdue, StateName::Pending).await;
        propose(store, &overdue, StateName::Running).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Within its grace, an overdue run is left to its agent.
        let config = SweepConfig { late_after_ms: 15_000, timeout_grace_ms: 3_600_000 };
        let sweep = store.sweep(config).await.unwrap();
        assert_eq!((sweep.marked_late, sweep.timed_out), (1, 0), "{}", db.label);
        let sweep = store.sweep(SweepConfig { timeout_grace_ms: 0, ..config }).await.unwrap();
        assert_eq!(sweep.timed_out, 1, "{}", db.label);
        assert_eq!(store.run(&late).await.unwrap().state, StateName::Late);
        assert_eq!(store.run(&upcoming).await.unwrap().state, StateName::Scheduled);
        let timed_out = store.run(&overdue).await.unwrap();
        assert_eq!(timed_out.state, StateName::Failed, "{}", db.label);
        assert!(timed_out.state_message.unwrap().contains("timed out"));
        assert_eq!(
            propose(store, &late, StateName::Pending).await.1,
            StateName::Pending,
            "a LATE run can still go"
        );
    }
}

#[tokio::test]
async fn logs_are_stored_once_each_and_read_in_order() {
    for db in both().await {
        let store = &db.store;
        deploy(store, "default", DeploymentSpec::default()).await;
        let id = new_run(store, "default").await;
        let line = |attempt, seq| LogLine {
            attempt,
            seq,
            at: Timestamp(1),
            level: LogLevel::Info,
            message: format!("line {seq}"),
            task_id: None,
        };
        // No attempt named: the run's current one (the first).
        assert_eq!(store.append_logs(&id, vec![line(0, 1), line(0, 2)]).await.unwrap(), 2);
        assert_eq!(
            store.append_logs(&id, vec![line(1, 2), line(1, 3)]).await.unwrap(),
            1,
            "{}: a resent line is skipped",
            db.label
        );
        // A second execution numbers its lines from 1 again: kept apart,
        // after the first's.
        assert_eq!(store.append_logs(&id, vec![line(2, 1)]).await.unwrap(), 1);
        let after = store.logs(&id, 0, 100).await.unwrap()[0].position();
        let lines = store.logs(&id, after, 100).await.unwrap();
        assert_eq!(
            lines.iter().map(|l| (l.attempt, l.seq)).collect::<Vec<_>>(),
            [(1, 2), (1, 3), (2, 1)],
            "{}",
            db.label
        );
        assert!(matches!(
            store.append_logs(&id, vec![line(1, u64::from(u32::MAX) + 1)]).await,
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.append_logs("no-such-run", vec![line(1, 1)]).await,
            Err(StoreError::NotFound { .. })
        ));
    }
}

#[tokio::test]
async fn secrets_are_sealed_and_never_listed_in_plain_text() {
    for db in both().await {
        let store = &db.store;
        store.set_variable("region", "eu-west").await.unwrap();
        assert_eq!(store.variable("region").await.unwrap().value, "eu-west");
        store.set_secret("token", "s3cr3t-value").await.unwrap();
        assert_eq!(store.secret("token").await.unwrap(), "s3cr3t-value", "{}", db.label);
        let listed = format!("{:?}", store.secrets().await.unwrap());
        assert!(listed.contains("token") && !listed.contains("s3cr3t"), "{listed}");
        store.delete_secret("token").await.unwrap();
        assert!(matches!(store.secret("token").await, Err(StoreError::NotFound { .. })));
    }
}

#[tokio::test]
async fn retention_deletes_expired_runs_logs_and_events() {
    for db in both().await {
        let store = &db.store;
        deploy(store, "default", DeploymentSpec::default()).await;
        let finished = new_run(store, "default").await;
        store.cancel_run(&finished).await.unwrap();
        let active = new_run(store, "default").await;
        // An upload no deployment uses (say, refused at deploy).
        let unused = artifact(store, "etl").await;
        // Agents: one gone (disconnected, holding nothing), one connected,
        // one gone but holding a run.
        use baton_core::store::{AgentLease, AgentRecord};
        for (id, connected, holds) in
            [("gone", false, false), ("here", true, false), ("holding", false, true)]
        {
            let agent = AgentRecord {
                id: id.into(),
                name: id.into(),
                pool: "default".into(),
                queues: vec![],
                slots: 1,
                version: "0.1.0".into(),
                core_address: "127.0.0.1:4201".into(),
            };
            let lease = AgentLease {
                agent_id: id.into(),
                session: "s".into(),
                until: Timestamp(0),
                acked_seq: 0,
            };
            store.agent_connected(&agent, "core", &lease).await.unwrap();
            if holds {
                store.dispatch_run(&active, id).await.unwrap();
            }
            if !connected {
                store.agent_disconnected(id, "s", 0).await.unwrap();
            }
        }
        // Everything above is older than the cut-off, by the clock's grain.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let everything = Retention {
            logs: Some(Duration::ZERO),
            events: Some(Duration::ZERO),
            finished_runs: Some(Duration::ZERO),
            unused_artifacts: Some(Duration::ZERO),
            disconnected_agents: Some(Duration::ZERO),
        };
        let pruned = store.prune(&everything).await.unwrap();
        assert_eq!(pruned.agents, 1, "{}", db.label);
        let listed: Vec<String> = store.agents().await.unwrap().into_iter().map(|a| a.id).collect();
        assert_eq!(listed, ["here", "holding"], "{}", db.label);
        assert_eq!(pruned.runs, 1, "{}", db.label);
        assert_eq!(pruned.artifacts, 1, "only the unused artifact goes ({})", db.label);
        assert!(matches!(store.artifact(&unused.digest).await, Err(StoreError::NotFound { .. })));
        assert!(pruned.events > 0);
        assert!(matches!(store.run(&finished).await, Err(StoreError::NotFound { .. })));
        assert_eq!(
            store.run(&active).await.unwrap().state,
            StateName::Pending,
            "unfinished runs are kept"
        );
        let keep_all = Retention {
            logs: None,
            events: None,
            finished_runs: None,
            unused_artifacts: None,
            disconnected_agents: None,
        };
        assert_eq!(store.prune(&keep_all).await.unwrap(), Default::default());
    }
}

/// Brings a new run of `deployment` to `state` by legal steps.
async fn run_in(store: &Store, deployment: &str, state: StateName) -> String {
    use StateName::*;
    let id = new_run(store, deployment).await;
    let path: &[StateName] = match state {
        Scheduled => &[],
        Late => &[Late],
        Pending => &[Pending],
        Running => &[Pending, Running],
        Paused => &[Pending, Running, Paused],
        Cancelling => &[Pending, Running, Cancelling],
        // The `retrying` deployment allows one retry.
        AwaitingRetry => &[Pending, Running, Failed],
        Completed => &[Pending, Running, Completed],
        Failed => &[Pending, Running, Failed],
        Crashed => &[Pending, Running, Crashed],
        Cancelled => &[Cancelled],
    };
    for step in path {
        assert_eq!(
            propose(store, &id, *step).await.0,
            Verdict::Accepted,
            "{step} on the way to {state}"
        );
    }
    assert_eq!(store.run(&id).await.unwrap().state, state);
    id
}

#[tokio::test]
async fn every_transition_is_accepted_exactly_when_it_is_legal() {
    for db in both().await {
        let store = &db.store;
        deploy(store, "default", DeploymentSpec::default()).await;
        deploy(store, "retrying", DeploymentSpec { retries: 1, ..Default::default() }).await;
        for from in StateName::ALL {
            let deployment = if from == StateName::AwaitingRetry { "retrying" } else { "default" };
            for to in StateName::ALL {
                let id = run_in(store, deployment, from).await;
                let before = store.run_detail(&id).await.unwrap();
                let (verdict, state) = propose(store, &id, to).await;
                let legal =
                    to != StateName::AwaitingRetry && baton_core::orchestration::is_legal(from, to);
                if legal {
                    assert_eq!(
                        (verdict, state),
                        (Verdict::Accepted, to),
                        "{}: {from} -> {to}",
                        db.label
                    );
                } else {
                    assert_eq!(verdict, Verdict::Rejected, "{}: {from} -> {to}", db.label);
                    assert_eq!(
                        store.run_detail(&id).await.unwrap(),
                        before,
                        "a refused move changes nothing"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn racing_creates_with_one_idempotency_key_make_one_run() {
    for db in both().await {
        let store = db.store.clone();
        deploy(&store, "default", DeploymentSpec::default()).await;
        let racing: Vec<_> = (0..10)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let request = CreateRun {
                        parameters: json!({"a": 1, "b": 2}).as_object().unwrap().clone(),
                        idempotency_key: Some("once".into()),
                        ..Default::default()
                    };
                    store.create_run("hello", "default", request).await.unwrap()
                })
            })
            .collect();
        let mut created = 0;
        let mut ids = std::collections::BTreeSet::new();
        for race in racing {
            let (run, new) = race.await.unwrap();
            created += usize::from(new);
            ids.insert(run.id);
        }
        assert_eq!((created, ids.len()), (1, 1), "{}", db.label);
    }
}

#[tokio::test]
async fn racing_proposals_for_one_run_land_once_each_way() {
    for db in both().await {
        let store = db.store.clone();
        deploy(&store, "default", DeploymentSpec::default()).await;
        // Many runs moving at once share group commits; several proposals
        // for one run never both land.
        let mut ids = Vec::new();
        for _ in 0..20 {
            ids.push(run_in(&store, "default", StateName::Running).await);
        }
        let racing: Vec<_> = ids
            .iter()
            .flat_map(|id| {
                [StateName::Completed, StateName::Failed, StateName::Completed]
                    .map(|state| (state, id.clone()))
            })
            .map(|(state, id)| {
                let store = store.clone();
                tokio::spawn(async move { (id.clone(), propose(&store, &id, state).await) })
            })
            .collect();
        let mut accepted = std::collections::HashMap::new();
        for race in racing {
            let (id, (verdict, _)) = race.await.unwrap();
            if verdict == Verdict::Accepted {
                *accepted.entry(id).or_insert(0) += 1;
            }
        }
        for id in &ids {
            assert_eq!(accepted.get(id), Some(&1), "{}: {id}", db.label);
            let detail = store.run_detail(id).await.unwrap();
            let ends = detail.states.iter().filter(|s| s.state.is_terminal()).count();
            assert_eq!(ends, 1, "{}: one terminal state in the history", db.label);
            assert!(detail.run.state.is_terminal());
        }
    }
}

#[tokio::test]
async fn due_runs_follow_queue_priority_and_skip_paused_and_full_deployments() {
    use baton_core::store::{AgentLease, AgentRecord};
    use baton_proto::v1::{PoolSpec, WorkQueue};
    for db in both().await {
        let store = &db.store;
        store.create_pool(PoolSpec { name: "edge".into(), ..Default::default() }).await.unwrap();
        let urgent = WorkQueue {
            name: "urgent".into(),
            priority: 1,
            concurrency_limit: None,
            paused: false,
        };
        store.upsert_queue("edge", &urgent).await.unwrap();
        let default = WorkQueue {
            name: "default".into(),
            priority: 10,
            concurrency_limit: None,
            paused: false,
        };
        store.upsert_queue("edge", &default).await.unwrap();
        let in_queue = |queue: Option<&str>, limit: Option<u32>| DeploymentSpec {
            work_pool: Some("edge".into()),
            work_queue: queue.map(str::to_owned),
            concurrency_limit: limit,
            ..Default::default()
        };
        deploy(store, "slow", in_queue(None, None)).await;
        deploy(store, "fast", in_queue(Some("urgent"), None)).await;
        deploy(store, "single", in_queue(None, Some(1))).await;
        deploy(store, "elsewhere", DeploymentSpec::default()).await;
        let slow = new_run(store, "slow").await;
        let fast = new_run(store, "fast").await;
        let single = [new_run(store, "single").await, new_run(store, "single").await];
        new_run(store, "elsewhere").await;
        let queues = ["urgent".to_owned(), "default".to_owned()];

        let due: Vec<String> = store
            .due_runs("edge", &queues, &[], 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(
            due,
            [fast.clone(), slow.clone(), single[0].clone(), single[1].clone()],
            "{}",
            db.label
        );

        // A dispatch records its agent; a deployment at its limit waits.
        let pushed = store.dispatch_run(&single[0], "agent-1").await.unwrap();
        assert_eq!(pushed.run.agent_id.as_deref(), Some("agent-1"), "{}", db.label);
        assert_eq!(store.run(&single[0]).await.unwrap().agent_id.as_deref(), Some("agent-1"));
        store.set_deployment_paused("hello", "slow", true).await.unwrap();
        let due: Vec<String> = store
            .due_runs("edge", &queues, &[], 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(due, [fast], "{}", db.label);
        assert_eq!(store.active_in_pool("edge", None).await.unwrap(), 1);
        assert_eq!(store.active_in_pool("edge", Some("urgent")).await.unwrap(), 0);
        let held = store.held_runs().await.unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(
            (held[0].id.as_str(), held[0].agent_id.as_str(), held[0].attempt),
            (single[0].as_str(), "agent-1", 1)
        );
        assert_eq!(held[0].lease_until, Timestamp(0), "{}: no core holds the agent", db.label);

        // Agents: the last applied event seq survives a reconnect, and a
        // session's late disconnect leaves the newer session alone.
        let agent = AgentRecord {
            id: "agent-1".into(),
            name: "box".into(),
            pool: "edge".into(),
            queues: vec![],
            slots: 4,
            version: "0.1.0".into(),
            core_address: "127.0.0.1:4201".into(),
        };
        let lease = |session: &str, until, acked_seq| AgentLease {
            agent_id: "agent-1".into(),
            session: session.into(),
            until: Timestamp(until),
            acked_seq,
        };
        assert_eq!(store.agent_connected(&agent, "core-a", &lease("s1", 10, 0)).await.unwrap(), 0);
        assert!(store.renew_leases(vec![lease("s1", 20, 7)]).await.unwrap().is_empty());
        assert!(store.renew_leases(vec![lease("s1", 15, 5)]).await.unwrap().is_empty());
        assert_eq!(store.held_runs().await.unwrap()[0].lease_until, Timestamp(20), "{}", db.label);
        assert_eq!(
            store.agent_connected(&agent, "core-b", &lease("s2", 30, 0)).await.unwrap(),
            7,
            "{}",
            db.label
        );
        store.agent_disconnected("agent-1", "s1", 7).await.unwrap();
        assert_eq!(
            store.renew_leases(vec![lease("s1", 40, 7)]).await.unwrap(),
            ["agent-1"],
            "{}: the old session learns it was replaced",
            db.label
        );
        let listed = store.agents().await.unwrap();
        assert_eq!((listed[0].running, listed[0].connected), (1, true), "{}", db.label);
        store.agent_disconnected("agent-1", "s2", 9).await.unwrap();
        assert!(!store.agents().await.unwrap()[0].connected, "{}", db.label);
        assert_eq!(store.held_runs().await.unwrap()[0].lease_until, Timestamp(30));
    }
}

#[tokio::test]
async fn agent_tokens_admit_only_their_secret() {
    for db in both().await {
        let store = &db.store;
        let (id, secret) = store.create_agent_token("edge").await.unwrap();
        assert_eq!(store.agent_token_pool(&id, &secret).await.unwrap().as_deref(), Some("edge"));
        assert_eq!(
            store.agent_token_pool(&id, &"0".repeat(64)).await.unwrap(),
            None,
            "{}",
            db.label
        );
        assert_eq!(store.agent_token_pool("nope", &secret).await.unwrap(), None);
    }
}

#[tokio::test]
async fn reports_from_agents_are_stored_once() {
    use baton_proto::v1::{ReportBody, RunReport, TaskOutcome};
    for db in both().await {
        let store = &db.store;
        deploy(store, "default", DeploymentSpec::default()).await;
        let id = new_run(store, "default").await;
        let reports = vec![
            RunReport {
                seq: 1,
                at: Timestamp(10),
                body: ReportBody::TaskStarted {
                    task_id: 1,
                    name: "extract".into(),
                    attempt: 1,
                    max_attempts: 2,
                    cache_key: None,
                },
            },
            RunReport {
                seq: 2,
                at: Timestamp(11),
                body: ReportBody::Log {
                    level: LogLevel::Warn,
                    message: "slow".into(),
                    task_id: Some(1),
                },
            },
            RunReport {
                seq: 3,
                at: Timestamp(12),
                body: ReportBody::TaskFinished { task_id: 1, outcome: TaskOutcome::Completed },
            },
            RunReport {
                seq: 4,
                at: Timestamp(13),
                body: ReportBody::Event {
                    name: "etl.loaded".into(),
                    resource: "table/x".into(),
                    payload: json!({"rows": 3}),
                },
            },
        ];
        store.store_reports(&id, 1, reports.clone()).await.unwrap();
        store.store_reports(&id, 1, reports.clone()).await.unwrap();
        let logs = store.logs(&id, 0, 100).await.unwrap();
        assert_eq!(logs.len(), 1, "{}", db.label);
        assert_eq!((logs[0].level, logs[0].message.as_str()), (LogLevel::Warn, "slow"));
        let detail = store.run_detail(&id).await.unwrap();
        assert_eq!(detail.task_runs.len(), 1);
        assert_eq!(
            (detail.task_runs[0].state, detail.task_runs[0].ended_at),
            (StateName::Completed, Some(Timestamp(12)))
        );
        let filter = baton_core::store::EventFilter {
            name: Some("etl.loaded".into()),
            ..Default::default()
        };
        assert_eq!(store.events(&filter).await.unwrap().len(), 1, "{}", db.label);
        // The same reports from a second execution are its own.
        store.store_reports(&id, 2, reports).await.unwrap();
        let logs = store.logs(&id, 0, 100).await.unwrap();
        assert_eq!(logs.iter().map(|l| l.attempt).collect::<Vec<_>>(), [1, 2], "{}", db.label);
        let detail = store.run_detail(&id).await.unwrap();
        assert_eq!(
            detail.task_runs.iter().map(|t| t.run_attempt).collect::<Vec<_>>(),
            [1, 2],
            "{}",
            db.label
        );
        assert_eq!(store.events(&filter).await.unwrap().len(), 2, "{}", db.label);
    }
}

#[tokio::test]
async fn a_run_s_artifacts_are_stored_once_and_the_latest_of_a_key_is_found_across_runs() {
    use baton_proto::v1::{ReportBody, RunArtifactKind, RunReport};
    for db in both().await {
        let store = &db.store;
        deploy(store, "default", DeploymentSpec::default()).await;
        let artifact =
            |seq: u64, at: i64, key: Option<&str>, kind, content: serde_json::Value| RunReport {
                seq,
                at: Timestamp(at),
                body: ReportBody::Artifact {
                    key: key.map(str::to_owned),
                    artifact_kind: kind,
                    description: None,
                    content,
                },
            };
        let first = new_run(store, "default").await;
        let reports = vec![
            artifact(1, 10, Some("daily-report"), RunArtifactKind::Markdown, json!("# Monday")),
            artifact(2, 11, None, RunArtifactKind::Table, json!([{"region": "eu", "orders": 3}])),
        ];
        store.store_reports(&first, 1, reports.clone()).await.unwrap();
        store.store_reports(&first, 1, reports).await.unwrap();
        let listed = store.run_artifacts(&first).await.unwrap();
        assert_eq!(listed.len(), 2, "a resent report was stored twice ({})", db.label);
        assert_eq!(listed[1].content, json!([{"region": "eu", "orders": 3}]), "{}", db.label);
        assert_eq!(listed[1].key, None);
        let detail = store.run_detail(&first).await.unwrap();
        assert_eq!(detail.artifacts, listed, "{}", db.label);

        let second = new_run(store, "default").await;
        let later =
            artifact(1, 20, Some("daily-report"), RunArtifactKind::Markdown, json!("# Tuesday"));
        store.store_reports(&second, 1, vec![later]).await.unwrap();
        let latest = store.latest_run_artifact("daily-report").await.unwrap();
        assert_eq!(
            (latest.run_id.as_str(), &latest.content),
            (second.as_str(), &json!("# Tuesday")),
            "{}",
            db.label
        );
        assert!(store.latest_run_artifact("nothing-here").await.is_err());
        assert!(store.run_artifacts("no-such-run").await.is_err());
        assert!(
            store.run_detail(&new_run(store, "default").await).await.unwrap().artifacts.is_empty()
        );
    }
}

#[tokio::test]
async fn a_run_s_task_runs_come_a_page_at_a_time() {
    use baton_proto::v1::{ReportBody, RunReport};
    for db in both().await {
        let store = &db.store;
        deploy(store, "default", DeploymentSpec::default()).await;
        let id = new_run(store, "default").await;
        let started = |attempt: u32, count: u64| {
            let reports = (1..=count)
                .map(|task_id| RunReport {
                    seq: task_id,
                    at: Timestamp(10),
                    body: ReportBody::TaskStarted {
                        task_id,
                        name: format!("task {task_id}"),
                        attempt: 1,
                        max_attempts: 1,
                        cache_key: None,
                    },
                })
                .collect::<Vec<_>>();
            store.store_reports(&id, attempt, reports)
        };
        started(1, 700).await.unwrap();
        started(2, 501).await.unwrap();
        let detail = store.run_detail(&id).await.unwrap();
        assert_eq!(detail.task_runs.len(), 500, "{}", db.label);
        let mut seen: Vec<(u32, u64)> =
            detail.task_runs.iter().map(|t| (t.run_attempt, t.task_id)).collect();
        let mut cursor = detail.task_runs_next_cursor.clone();
        while let Some(after) = cursor {
            let page = store.task_runs(&id, Some(&after), 300).await.unwrap();
            assert!(page.items.len() <= 300);
            seen.extend(page.items.iter().map(|t| (t.run_attempt, t.task_id)));
            cursor = page.next_cursor;
        }
        let expected: Vec<(u32, u64)> =
            (1..=700).map(|t| (1, t)).chain((1..=501).map(|t| (2, t))).collect();
        assert_eq!(seen, expected, "every task run once, in order ({})", db.label);
        assert!(store.task_runs(&id, Some("garbage"), 10).await.is_err());
        assert!(matches!(
            store.task_runs("no-such-run", None, 10).await,
            Err(StoreError::NotFound { .. })
        ));
    }
}

#[tokio::test]
async fn only_the_current_attempt_changes_a_run_and_each_attempt_is_kept() {
    use baton_core::store::Fence;
    for db in both().await {
        let store = &db.store;
        deploy(store, "retrying", DeploymentSpec { retries: 1, ..Default::default() }).await;
        let id = new_run(store, "retrying").await;
        let first = store.dispatch_run(&id, "agent-1").await.unwrap();
        assert_eq!(first.run.attempt, 1, "{}", db.label);
        let fence =
            |agent: &str, attempt| Fence { agent_id: agent.into(), attempt, event_seq: None };
        let state = |state, output: Option<serde_json::Value>| ProposeState {
            state,
            message: None,
            output,
        };
        store
            .propose_fenced(&id, &fence("agent-1", 1), state(StateName::Running, None))
            .await
            .unwrap();
        // The watchdog judges attempt 1 lost; the retry is attempt 2.
        let crashed = store
            .propose_fenced(&id, &fence("agent-1", 1), state(StateName::Crashed, None))
            .await
            .unwrap();
        assert_eq!(crashed.run.state, StateName::AwaitingRetry, "{}", db.label);
        let second = store.dispatch_run(&id, "agent-2").await.unwrap();
        assert_eq!(second.run.attempt, 2, "{}", db.label);
        // The first execution was alive after all: its outcome is stale.
        let late = store
            .propose_fenced(&id, &fence("agent-1", 1), state(StateName::Completed, Some(json!(1))))
            .await;
        assert!(matches!(late, Err(StoreError::Stale { attempt: 1, current: 2, .. })), "{late:?}");
        // Nor may another agent speak for attempt 2.
        let impostor =
            store.propose_fenced(&id, &fence("agent-1", 2), state(StateName::Running, None)).await;
        assert!(matches!(impostor, Err(StoreError::Stale { .. })), "{}", db.label);
        store.record_stale(&id, 1, "COMPLETED: 1").await.unwrap();
        store
            .propose_fenced(&id, &fence("agent-2", 2), state(StateName::Running, None))
            .await
            .unwrap();
        let done = store
            .propose_fenced(&id, &fence("agent-2", 2), state(StateName::Completed, Some(json!(2))))
            .await
            .unwrap();
        assert_eq!((done.run.state, done.run.output), (StateName::Completed, Some(json!(2))));
        // Once ended, even the holder's attempt is stale.
        let after_end =
            store.propose_fenced(&id, &fence("agent-2", 2), state(StateName::Failed, None)).await;
        assert!(matches!(after_end, Err(StoreError::Stale { .. })), "{}", db.label);

        let attempts = store.run_detail(&id).await.unwrap().attempts;
        let summary: Vec<_> = attempts
            .iter()
            .map(|a| {
                (
                    a.number,
                    a.agent_id.as_str(),
                    a.state,
                    a.started_at.is_some(),
                    a.ended_at.is_some(),
                    a.stale_outcome.as_deref(),
                    a.output.clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (1, "agent-1", StateName::AwaitingRetry, true, true, Some("COMPLETED: 1"), None),
                (2, "agent-2", StateName::Completed, true, true, None, Some(json!(2))),
            ],
            "{}",
            db.label
        );
    }
}

#[tokio::test]
async fn an_execution_s_event_applied_before_is_known_by_its_number() {
    use baton_core::store::Fence;
    for db in both().await {
        let store = &db.store;
        deploy(store, "once", DeploymentSpec::default()).await;
        let id = new_run(store, "once").await;
        store.dispatch_run(&id, "agent-1").await.unwrap();
        let event = |seq| Fence { agent_id: "agent-1".into(), attempt: 1, event_seq: Some(seq) };
        let state = |state| ProposeState { state, message: Some("boom".into()), output: None };
        store.propose_fenced(&id, &event(7), state(StateName::Running)).await.unwrap();
        store.propose_fenced(&id, &event(9), state(StateName::Failed)).await.unwrap();
        // Event 9 sent again (to another core, after a failover): it ended
        // the run; nothing else of this execution did.
        let again = store.propose_fenced(&id, &event(9), state(StateName::Failed)).await;
        assert!(matches!(again, Err(StoreError::Stale { .. })), "{again:?}");
        assert!(store.applied_before(&id, &event(9)).await.unwrap(), "{}", db.label);
        assert!(store.applied_before(&id, &event(7)).await.unwrap(), "{}", db.label);
        assert!(!store.applied_before(&id, &event(8)).await.unwrap(), "{}", db.label);
        let other_agent = Fence { agent_id: "agent-2".into(), ..event(9) };
        assert!(!store.applied_before(&id, &other_agent).await.unwrap(), "{}", db.label);
        // The core's own verdicts carry no event: never taken for a replay.
        let verdict = Fence { event_seq: None, ..event(9) };
        assert!(!store.applied_before(&id, &verdict).await.unwrap(), "{}", db.label);

        // A run the core judged lost: the execution's late outcome is
        // stale, not applied.
        let lost = new_run(store, "once").await;
        store.dispatch_run(&lost, "agent-1").await.unwrap();
        let core_verdict = Fence { event_seq: None, ..event(1) };
        store.propose_fenced(&lost, &core_verdict, state(StateName::Crashed)).await.unwrap();
        assert!(!store.applied_before(&lost, &event(11)).await.unwrap(), "{}", db.label);
    }
}

#[tokio::test]
async fn other_cores_hear_of_due_runs_and_cancellations() {
    use baton_core::store::Signal;
    for db in both().await {
        let store = &db.store;
        let Some(other) = crate::databases::second_store(&db).await else {
            // SQLite has one core, which wakes itself: nothing to hear.
            assert!(store.signals().await.unwrap().is_none());
            continue;
        };
        let mut signals = other.signals().await.unwrap().expect("PostgreSQL has signals");
        let mut next = async || {
            tokio::time::timeout(Duration::from_secs(5), signals.next())
                .await
                .expect("no signal within 5 s")
                .unwrap()
        };
        deploy(store, "default", DeploymentSpec::default()).await;
        let id = new_run(store, "default").await;
        assert_eq!(next().await, Signal::Due { pool: "default".into() });
        store.dispatch_run(&id, "agent-1").await.unwrap();
        propose(store, &id, StateName::Running).await;
        store.cancel_run(&id).await.unwrap();
        assert_eq!(next().await, Signal::Cancel { agent_id: "agent-1".into() });
        // The run's end frees its slot: the pool's waiting runs may go.
        propose(store, &id, StateName::Cancelled).await;
        assert_eq!(next().await, Signal::Due { pool: "default".into() });
    }
}

#[tokio::test]
async fn runs_are_counted_by_state_and_bucket_of_scheduled_time() {
    for db in both().await {
        let store = &db.store;
        deploy(store, "counted", DeploymentSpec::default()).await;
        let since = Timestamp(1_800_000_000_000);
        let minute = 60_000;
        let mut ids = Vec::new();
        for offset in [0, 1, 2 * minute + 7, 5 * minute] {
            let request = CreateRun {
                parameters: json!({"a": 1, "b": 2}).as_object().unwrap().clone(),
                scheduled_at: Some(Timestamp(since.0 + offset)),
                ..CreateRun::default()
            };
            ids.push(store.create_run("hello", "counted", request).await.unwrap().0.id);
        }
        propose(store, &ids[1], StateName::Cancelled).await;
        let counts =
            store.run_counts(since, Timestamp(since.0 + 5 * minute), minute).await.unwrap();
        let mut counts: Vec<_> = counts.into_iter().map(|(b, s, n)| (b, s.as_str(), n)).collect();
        counts.sort();
        // The run at exactly `until` is outside the window.
        assert_eq!(
            counts,
            [(0, "CANCELLED", 1), (0, "SCHEDULED", 1), (2, "SCHEDULED", 1)],
            "{}",
            db.label
        );
    }
}

#[tokio::test]
async fn job_variables_merge_pool_deployment_and_run_and_reach_the_assignment() {
    for db in both().await {
        let store = &db.store;
        let pool =
            PoolSpec { name: "big".into(), kind: PoolKind::Container, ..PoolSpec::default() };
        store.create_pool(pool).await.unwrap();
        let spec = DeploymentSpec {
            work_pool: Some("big".into()),
            job_variables: json!({"image": "acme/flows:1", "memory_mib": 512})
                .as_object()
                .unwrap()
                .clone(),
            ..DeploymentSpec::default()
        };
        deploy(store, "big", spec).await;
        let own = json!({"memory_mib": 1024}).as_object().unwrap().clone();
        let request = CreateRun {
            parameters: json!({"a": 1, "b": 2}).as_object().unwrap().clone(),
            job_variables: own.clone(),
            ..CreateRun::default()
        };
        let (run, _) = store.create_run("hello", "big", request.clone()).await.unwrap();
        assert_eq!(run.job_variables, own, "{}", db.label);
        assert_eq!(store.run(&run.id).await.unwrap().job_variables, own, "{}", db.label);
        let assignment = store.assignment(&run).await.unwrap();
        assert_eq!(assignment.pool_kind, PoolKind::Container, "{}", db.label);
        let resolved = &assignment.job_variables;
        assert_eq!(resolved["image"], "acme/flows:1", "the deployment's ({})", db.label);
        assert_eq!(resolved["memory_mib"], 1024, "the run's ({})", db.label);
        assert_eq!(resolved["network_mode"], "none", "the pool's default ({})", db.label);
        // A bad one is refused naming the field; no run is made.
        let bad = CreateRun {
            job_variables: json!({"memory_mib": "lots"}).as_object().unwrap().clone(),
            ..request.clone()
        };
        let error = store.create_run("hello", "big", bad).await.unwrap_err();
        assert!(error.to_string().contains("job variable `memory_mib`"), "{error} ({})", db.label);
        // Job variables, and templates, over their limits: refused, named.
        let huge = json!({"env": {"BLOB": "x".repeat(70_000)}}).as_object().unwrap().clone();
        let over = CreateRun { job_variables: huge.clone(), ..request };
        let error = store.create_run("hello", "big", over).await.unwrap_err();
        assert!(
            error.to_string().contains("job variables of 68.4 KiB exceeds the 64 KiB limit"),
            "{error} ({})",
            db.label
        );
        let artifact = artifact(store, "hello").await;
        let spec = DeploymentSpec {
            artifact: artifact.digest.clone(),
            work_pool: Some("big".into()),
            job_variables: huge,
            ..DeploymentSpec::default()
        };
        let error = store.upsert_deployment("hello", "huge", spec, &artifact).await.unwrap_err();
        assert!(error.to_string().contains("job variables of"), "{error} ({})", db.label);
        let mut template = baton_proto::v1::default_base_job_template(PoolKind::Process);
        template.insert("padding".into(), json!("x".repeat(300_000)));
        let pool = PoolSpec {
            name: "padded".into(),
            kind: PoolKind::Process,
            base_job_template: template,
            ..PoolSpec::default()
        };
        let error = store.create_pool(pool).await.unwrap_err();
        assert!(error.to_string().contains("the base job template of"), "{error} ({})", db.label);
        let runs = store.runs(&RunFilter::default()).await.unwrap();
        assert_eq!(runs.items.len(), 1, "{}", db.label);
        // A run of the default pool without any: a wasm pool's defaults.
        deploy(store, "plain", DeploymentSpec::default()).await;
        let plain = store.run(&new_run(store, "plain").await).await.unwrap();
        assert!(plain.job_variables.is_empty());
        let assignment = store.assignment(&plain).await.unwrap();
        assert_eq!(assignment.pool_kind, PoolKind::Wasm, "{}", db.label);
        assert_eq!(assignment.job_variables["memory_mib"], 256, "{}", db.label);
    }
}

#[tokio::test]
async fn a_wasm_pool_escalates_a_run_once_to_the_pool_it_names() {
    use baton_core::store::Fence;
    for db in both().await {
        let store = &db.store;
        let to_nowhere = PoolSpec {
            name: "small".into(),
            escalate_to: Some("box".into()),
            ..PoolSpec::default()
        };
        let error = store.create_pool(to_nowhere.clone()).await.unwrap_err();
        assert!(error.to_string().contains("no work pool `box`"), "{error} ({})", db.label);
        let container =
            PoolSpec { name: "box".into(), kind: PoolKind::Container, ..PoolSpec::default() };
        store.create_pool(container.clone()).await.unwrap();
        let from_container = PoolSpec { escalate_to: Some("small".into()), ..container };
        let error = store
            .create_pool(PoolSpec { name: "box2".into(), ..from_container })
            .await
            .unwrap_err();
        assert!(error.to_string().contains("only a wasm pool"), "{error} ({})", db.label);
        store.create_pool(to_nowhere).await.unwrap();
        let spec = DeploymentSpec { work_pool: Some("small".into()), ..DeploymentSpec::default() };
        deploy(store, "hog", spec).await;

        // Out of sandbox memory: SCHEDULED in `box`, saying why, once.
        let id = new_run(store, "hog").await;
        assert_eq!(store.escalation_for(&id).await.unwrap().as_deref(), Some("box"));
        store.dispatch_run(&id, "agent-1").await.unwrap();
        let fence = Fence { agent_id: "agent-1".into(), attempt: 1, event_seq: None };
        let running = ProposeState { state: StateName::Running, message: None, output: None };
        store.propose_fenced(&id, &fence, running).await.unwrap();
        let message = "escalated to pool box: sandbox memory cap 256 MiB reached".to_owned();
        let moved = store.escalate_run(&id, &fence, "box", message.clone()).await.unwrap();
        assert_eq!(moved.run.state, StateName::Scheduled, "{}", db.label);
        assert_eq!(moved.run.work_pool, "box", "{}", db.label);
        let stored = store.run(&id).await.unwrap();
        assert_eq!((stored.work_pool.as_str(), stored.state), ("box", StateName::Scheduled));
        assert_eq!(stored.state_message.as_deref(), Some(message.as_str()), "{}", db.label);
        assert_eq!(store.escalation_for(&id).await.unwrap(), None, "{}", db.label);
        // The old execution can no longer escalate or change it.
        let stale = store.escalate_run(&id, &fence, "box", "again".into()).await;
        assert!(matches!(stale, Err(StoreError::Stale { .. })), "{stale:?} ({})", db.label);

        // Asking for more memory than the sandbox has: created in `box`.
        let request = CreateRun {
            parameters: json!({"a": 1, "b": 2}).as_object().unwrap().clone(),
            job_variables: json!({"memory_mib": 8192}).as_object().unwrap().clone(),
            ..CreateRun::default()
        };
        let (run, _) = store.create_run("hello", "hog", request).await.unwrap();
        assert_eq!(run.work_pool, "box", "{}", db.label);
        let message = run.state_message.unwrap_or_default();
        assert!(
            message.contains("escalated to pool box: job variable memory_mib asks for 8192 MiB")
        );
        let detail = store.run_detail(&run.id).await.unwrap();
        assert_eq!(detail.states[0].message.as_deref(), Some(message.as_str()), "{}", db.label);
    }
}

#[tokio::test]
async fn a_bad_outgoing_host_is_refused_at_deploy_naming_it() {
    for db in both().await {
        let store = &db.store;
        let artifact = artifact(store, "hello").await;
        let mut spec =
            DeploymentSpec { artifact: artifact.digest.clone(), ..DeploymentSpec::default() };
        spec.capabilities.outgoing_hosts =
            vec!["api.example.com".into(), "ftp://files.example.com".into()];
        let error =
            store.upsert_deployment("hello", "fetch", spec.clone(), &artifact).await.unwrap_err();
        assert!(
            error.to_string().contains("outgoing host `ftp://files.example.com` is not valid"),
            "{error} ({})",
            db.label
        );
        spec.capabilities.outgoing_hosts.pop();
        store.upsert_deployment("hello", "fetch", spec, &artifact).await.unwrap();
        // The grant travels with the run to its agent.
        let run = store.run(&new_run(store, "fetch").await).await.unwrap();
        let assignment = store.assignment(&run).await.unwrap();
        assert_eq!(assignment.outgoing_hosts, ["api.example.com"], "{}", db.label);
    }
}

#[tokio::test]
async fn a_run_s_detail_lists_its_first_hundred_children_and_the_filter_all_of_them() {
    use baton_core::store::Asker;
    use baton_proto::v1::ChildStart;
    for db in both().await {
        let store = &db.store;
        deploy(store, "default", DeploymentSpec::default()).await;
        let parent = new_run(store, "default").await;
        store.dispatch_run(&parent, "agent-1").await.unwrap();
        let mut started = Vec::new();
        for call in 1..=101 {
            let start = ChildStart {
                call,
                deployment: "hello/default".into(),
                parameters: json!({"a": 1, "b": 2}).as_object().unwrap().clone(),
                wait: false,
            };
            let (child, _) =
                store.start_child(Asker::Agent("agent-1"), &parent, 1, start).await.unwrap();
            started.push(child.id);
            if call < 100 {
                continue;
            }
            // At the cap and one over it: the first hundred, in order.
            let detail = store.run_detail(&parent).await.unwrap();
            let listed: Vec<&str> = detail.children.iter().map(|c| c.id.as_str()).collect();
            let first: Vec<&str> = started.iter().take(100).map(String::as_str).collect();
            assert_eq!(listed, first, "{call} children ({})", db.label);
        }
        let filter =
            RunFilter { parent_id: Some(parent.clone()), limit: 500, ..RunFilter::default() };
        assert_eq!(store.runs(&filter).await.unwrap().items.len(), 101, "{}", db.label);
    }
}
#[tokio::test]
async fn a_held_run_starts_each_child_once_within_the_depth_limit_and_lists_them() {
    use baton_core::store::Asker;
    use baton_proto::v1::{ChildStart, MAX_SUBFLOW_DEPTH};
    for db in both().await {
        let store = &db.store;
        deploy(store, "default", DeploymentSpec::default()).await;
        let parent = new_run(store, "default").await;
        store.dispatch_run(&parent, "agent-1").await.unwrap();
        let start = |call, parameters: serde_json::Value, wait| ChildStart {
            call,
            deployment: "hello/default".into(),
            parameters: parameters.as_object().unwrap().clone(),
            wait,
        };
        let ok = json!({"a": 1, "b": 2});

        // Only the agent holding this attempt of the parent starts children.
        for (agent, attempt) in [("agent-2", 1), ("agent-1", 2)] {
            let refused = store.start_child(
                Asker::Agent(agent),
                &parent,
                attempt,
                start(1, ok.clone(), true),
            );
            let error = refused.await.unwrap_err();
            assert!(matches!(error, StoreError::Stale { .. }), "{error} ({})", db.label);
        }
        let (child, created) = store
            .start_child(Asker::Agent("agent-1"), &parent, 1, start(1, ok.clone(), true))
            .await
            .unwrap();
        assert!(created, "{}", db.label);
        // The same call asked again finds the child it started.
        let (again, created) = store
            .start_child(Asker::Agent("agent-1"), &parent, 1, start(1, ok.clone(), true))
            .await
            .unwrap();
        assert_eq!((again.id.as_str(), created), (child.id.as_str(), false), "{}", db.label);
        // Its execution, proven by its key (a pod's runner), may too.
        let (same, _) = store
            .start_child(Asker::Execution, &parent, 1, start(1, ok.clone(), true))
            .await
            .unwrap();
        assert_eq!(same.id, child.id, "{}", db.label);
        let stale = store.start_child(Asker::Execution, &parent, 2, start(1, ok.clone(), true));
        assert!(matches!(stale.await, Err(StoreError::Stale { .. })), "{}", db.label);
        let (unwaited, _) = store
            .start_child(Asker::Agent("agent-1"), &parent, 1, start(2, ok.clone(), false))
            .await
            .unwrap();
        let bad = store.start_child(
            Asker::Agent("agent-1"),
            &parent,
            1,
            start(3, json!({"a": "x"}), true),
        );
        assert!(matches!(bad.await, Err(StoreError::InvalidParameters(_))), "{}", db.label);
        let mut unknown = start(4, ok.clone(), true);
        unknown.deployment = "hello/nope".into();
        let error =
            store.start_child(Asker::Agent("agent-1"), &parent, 1, unknown).await.unwrap_err();
        assert!(error.to_string().contains("not found"), "{error} ({})", db.label);

        // Each side records the other.
        assert_eq!(store.run(&child.id).await.unwrap().parent_id.as_deref(), Some(&*parent));
        let detail = store.run_detail(&parent).await.unwrap();
        let listed: Vec<&str> = detail.children.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(listed, [child.id.as_str(), unwaited.id.as_str()], "{}", db.label);
        assert_eq!(detail.children[0].state, StateName::Scheduled);
        assert_eq!(detail.children[0].deployment, "hello/default");
        let filter = RunFilter { parent_id: Some(parent.clone()), ..RunFilter::default() };
        assert_eq!(store.runs(&filter).await.unwrap().items.len(), 2, "{}", db.label);
        // Only the child it waits for goes down with it.
        assert_eq!(store.waited_children(&parent).await.unwrap(), [child.id.as_str()]);

        // A chain of parents stops at the depth limit.
        let mut holder = child.id.clone();
        for _ in 1..MAX_SUBFLOW_DEPTH {
            store.dispatch_run(&holder, "agent-1").await.unwrap();
            let next =
                store.start_child(Asker::Agent("agent-1"), &holder, 1, start(1, ok.clone(), true));
            holder = next.await.unwrap().0.id;
        }
        store.dispatch_run(&holder, "agent-1").await.unwrap();
        let error =
            store.start_child(Asker::Agent("agent-1"), &holder, 1, start(1, ok.clone(), true));
        let error = error.await.unwrap_err().to_string();
        assert!(error.contains("is 10 subflows deep, the limit"), "{error} ({})", db.label);
    }
}

#[tokio::test]
async fn a_run_leaving_its_execution_ends_that_attempt_s_log_and_open_tasks() {
    use baton_proto::v1::{LogLine, ReportBody, RunReport};
    for db in both().await {
        let store = &db.store;
        deploy(store, "default", DeploymentSpec { retries: 1, ..DeploymentSpec::default() }).await;
        let id = new_run(store, "default").await;
        let fail = |message: &str| ProposeState {
            state: StateName::Failed,
            message: Some(message.to_owned()),
            output: None,
        };
        for (attempt, expected) in [(1, "AWAITING_RETRY: boom 1"), (2, "FAILED: boom 2")] {
            store.dispatch_run(&id, "agent-1").await.unwrap();
            propose(store, &id, StateName::Running).await;
            let started = RunReport {
                seq: 1,
                at: Timestamp(10),
                body: ReportBody::TaskStarted {
                    task_id: 1,
                    name: "extract".into(),
                    attempt: 1,
                    max_attempts: 1,
                    cache_key: None,
                },
            };
            store.store_reports(&id, attempt, vec![started]).await.unwrap();
            let ended = store.propose_state(&id, fail(&format!("boom {attempt}"))).await.unwrap();
            assert_eq!(ended.verdict, Verdict::Accepted, "{}", db.label);
            let logs = store.logs(&id, 0, 100).await.unwrap();
            let last = logs.last().unwrap();
            assert_eq!(
                (last.attempt, last.seq, last.level),
                (attempt, u64::from(u32::MAX), LogLevel::Error),
                "{}",
                db.label
            );
            assert!(last.message.starts_with(expected), "{} ({})", last.message, db.label);
            let detail = store.run_detail(&id).await.unwrap();
            let task = detail.task_runs.iter().find(|t| t.run_attempt == attempt).unwrap();
            let state = if attempt == 1 { StateName::Crashed } else { StateName::Failed };
            assert_eq!((task.state, task.ended_at.is_some()), (state, true), "{}", db.label);
        }
        // The line number is the core's: a client may not write it.
        let line = LogLine {
            attempt: 2,
            seq: u64::from(u32::MAX),
            at: Timestamp(1),
            level: LogLevel::Info,
            message: "mine".into(),
            task_id: None,
        };
        let refused = store.append_logs(&id, vec![line]).await.unwrap_err();
        assert!(refused.to_string().contains("over the largest"), "{refused} ({})", db.label);
    }
}

#[tokio::test]
async fn a_retry_is_a_new_run_linked_to_an_ended_one_and_planned_runs_list_apart() {
    use baton_core::store::RunFilter;
    for db in both().await {
        let store = &db.store;
        deploy(store, "default", DeploymentSpec::default()).await;
        let id = new_run(store, "default").await;
        let early = store.retry_run(&id).await.unwrap_err();
        assert!(early.to_string().contains("only a run that has ended"), "{early} ({})", db.label);
        store.cancel_run(&id).await.unwrap();
        let retry = store.retry_run(&id).await.unwrap();
        assert_ne!(retry.id, id);
        assert_eq!(retry.retry_of.as_deref(), Some(id.as_str()), "{}", db.label);
        assert_eq!(store.run(&retry.id).await.unwrap().retry_of.as_deref(), Some(id.as_str()));
        assert_eq!(serde_json::Value::Object(retry.parameters), json!({"a": 1, "b": 2}));

        // A run planned for later is listed apart from the rest.
        let later = CreateRun {
            parameters: json!({"a": 1, "b": 2}).as_object().unwrap().clone(),
            scheduled_at: Some(Timestamp(
                i64::try_from(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_millis(),
                )
                .unwrap()
                    + 3_600_000,
            )),
            ..CreateRun::default()
        };
        let planned = store.create_run("hello", "default", later).await.unwrap().0.id;
        let listed = |upcoming| {
            let filter = RunFilter { upcoming, limit: 100, ..RunFilter::default() };
            async move {
                let page = store.runs(&filter).await.unwrap();
                page.items.into_iter().map(|r| r.id).collect::<Vec<_>>()
            }
        };
        assert_eq!(listed(Some(true)).await, std::slice::from_ref(&planned), "{}", db.label);
        assert_eq!(listed(Some(false)).await, [retry.id.clone(), id.clone()], "{}", db.label);
        assert_eq!(listed(None).await.len(), 3, "{}", db.label);

        // A paused deployment takes no run, saying why; a misspelt one is
        // named.
        store.set_deployment_paused("hello", "default", true).await.unwrap();
        let request = CreateRun {
            parameters: json!({"a": 1, "b": 2}).as_object().unwrap().clone(),
            ..CreateRun::default()
        };
        let paused = store.create_run("hello", "default", request.clone()).await.unwrap_err();
        assert!(paused.to_string().contains("is paused"), "{paused} ({})", db.label);
        let misspelt = store.create_run("hello", "defualt", request).await.unwrap_err();
        assert!(
            misspelt.to_string().ends_with("not found; did you mean `hello/default`?"),
            "{misspelt} ({})",
            db.label
        );
    }
}

#[tokio::test]
async fn the_task_cache_answers_later_runs_of_its_deployment_until_expiry_within_budget() {
    use baton_core::store::Asker;
    use baton_proto::v1::{CacheAnswer, CacheOp, MAX_CACHED_RESULT_BYTES};
    let digest = |i: u32| format!("{i:064x}");
    let put = |key: String, output: String, expire_after_ms| CacheOp::Put {
        key,
        output,
        expire_after_ms,
    };
    let get = |key: String| CacheOp::Get { key };
    for db in both().await {
        let store = &db.store;
        let label = &db.label;
        deploy(store, "default", DeploymentSpec::default()).await;
        deploy(store, "other", DeploymentSpec::default()).await;
        let held = |deployment: &'static str| async move {
            let run = new_run(store, deployment).await;
            store.dispatch_run(&run, "agent-1").await.unwrap();
            run
        };
        let agent = Asker::Agent("agent-1");
        let ask = |run: String, op: CacheOp| async move {
            store.answer_task_cache(agent, &run, 1, op).await
        };

        // Stored by one run, used by a later run of the same deployment
        // (with the run that stored it), not by another deployment's.
        let first = held("default").await;
        let stored = ask(first.clone(), put(digest(1), "\"one\"".into(), None)).await.unwrap();
        assert_eq!(stored, CacheAnswer::Stored, "{label}");
        let second = held("default").await;
        let hit = CacheAnswer::Hit { output: "\"one\"".into(), run_id: Some(first.clone()) };
        assert_eq!(ask(second.clone(), get(digest(1))).await.unwrap(), hit, "{label}");
        let elsewhere = held("other").await;
        assert_eq!(ask(elsewhere, get(digest(1))).await.unwrap(), CacheAnswer::Miss, "{label}");

        // Stored again, the newer result and run answer.
        ask(second.clone(), put(digest(1), "\"two\"".into(), None)).await.unwrap();
        let hit = CacheAnswer::Hit { output: "\"two\"".into(), run_id: Some(second.clone()) };
        assert_eq!(ask(second.clone(), get(digest(1))).await.unwrap(), hit, "{label}");

        // An expired result is not used; one within its time is.
        ask(second.clone(), put(digest(2), "2".into(), Some(0))).await.unwrap();
        assert_eq!(ask(second.clone(), get(digest(2))).await.unwrap(), CacheAnswer::Miss);
        ask(second.clone(), put(digest(3), "3".into(), Some(60_000))).await.unwrap();
        assert!(matches!(
            ask(second.clone(), get(digest(3))).await.unwrap(),
            CacheAnswer::Hit { .. }
        ));

        // Only the holder of the execution asks; a key must be a digest; a
        // result over the limit is refused.
        let other_agent =
            store.answer_task_cache(Asker::Agent("agent-2"), &second, 1, get(digest(1)));
        assert!(matches!(other_agent.await, Err(StoreError::Stale { .. })), "{label}");
        let not_dispatched = new_run(store, "default").await;
        assert!(matches!(ask(not_dispatched, get(digest(1))).await, Err(StoreError::Stale { .. })));
        let refused = ask(second.clone(), get("plain key".into())).await.unwrap();
        assert!(matches!(refused, CacheAnswer::Refused { .. }), "{label}");
        let big = "x".repeat(MAX_CACHED_RESULT_BYTES + 1);
        let refused = ask(second.clone(), put(digest(4), big, None)).await.unwrap();
        assert!(
            matches!(&refused, CacheAnswer::Refused { reason } if reason.contains("1 MiB")),
            "{refused:?}"
        );

        // 64 MiB a deployment: the 65th result of 1 MiB pushes the oldest out.
        let full = "y".repeat(MAX_CACHED_RESULT_BYTES);
        for i in 100..165 {
            ask(second.clone(), put(digest(i), full.clone(), None)).await.unwrap();
        }
        let kept = |i| {
            let second = second.clone();
            async move { matches!(ask(second, get(digest(i))).await.unwrap(), CacheAnswer::Hit { .. }) }
        };
        assert!(kept(164).await && kept(103).await, "{label}");
        assert!(!kept(1).await && !kept(100).await, "the oldest were kept ({label})");
    }
}

#[tokio::test]
async fn every_deployment_command_names_the_nearest_deployment_when_one_is_misspelt() {
    for db in both().await {
        let store = &db.store;
        deploy(store, "default", DeploymentSpec::default()).await;
        let hinted = |error: StoreError| match error {
            StoreError::NotFound { hint, .. } => hint.contains("did you mean `hello/default`?"),
            _ => false,
        };
        let paused = store.set_deployment_paused("hello", "defualt", true).await.unwrap_err();
        assert!(hinted(paused), "pause ({})", db.label);
        let deleted = store.delete_deployment("hello", "defualt").await.unwrap_err();
        assert!(hinted(deleted), "delete ({})", db.label);
        let edited = store.edit_schedules("hello", "defualt", |_| Ok(())).await.unwrap_err();
        assert!(hinted(edited), "schedules ({})", db.label);
        let shown = store.deployment("hello", "defualt").await.unwrap_err();
        assert!(hinted(shown), "read ({})", db.label);
    }
}
