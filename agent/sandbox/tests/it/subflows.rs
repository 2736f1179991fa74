//! `run-deployment` in the sandbox: calls numbered and handed to the
//! embedder's `Subflows`, its answers shaped for the flow, a wait asked
//! only for a child that has not ended, and a refusal where nothing
//! answers (a local run).

use std::sync::{Arc, Mutex};

use baton_proto::v1::{ChildOp, ChildRun, RunOutcome, StateName, Timestamp};
use baton_sandbox::{ChildAnswerFuture, ReportCollector, RunRequest, Subflows};
use serde_json::json;

use super::{log_messages, sandbox};

/// Answers as a core would: a child starts SCHEDULED, and a wait finds it
/// COMPLETED with an output; remembers every question.
#[derive(Default)]
struct Recording(Mutex<Vec<ChildOp>>);

impl Subflows for Recording {
    fn ask(&self, op: ChildOp) -> ChildAnswerFuture {
        self.0.lock().unwrap().push(op.clone());
        let child = |state, output| ChildRun {
            id: "child-1".to_owned(),
            deployment: "hello/default".to_owned(),
            state,
            state_message: None,
            created_at: Timestamp(0),
            started_at: None,
            ended_at: None,
            output,
        };
        Box::pin(async move {
            match op {
                ChildOp::Start(start) if start.deployment == "nope/nope" => {
                    Err("deployment nope/nope not found".to_owned())
                }
                ChildOp::Start(_) => Ok(child(StateName::Scheduled, None)),
                ChildOp::Wait { .. } => Ok(child(StateName::Completed, Some(json!(42)))),
            }
        })
    }
}

#[tokio::test]
async fn a_subflow_call_is_started_then_waited_for_through_the_embedder() {
    let sandbox = sandbox();
    let flow = sandbox.load(&baton_tests::flow_wasm("subflow")).unwrap();
    let recording = Arc::new(Recording::default());
    let params =
        json!({"deployment": "hello/default", "params": {"a": 40, "b": 2}, "timeout_ms": 5000});
    let mut request = RunRequest::new(params, Arc::new(ReportCollector::default()));
    request.subflows = recording.clone();
    let outcome = sandbox.run(&flow, request).await;
    let RunOutcome::Completed { output } = outcome else { panic!("{outcome:?}") };
    assert_eq!(output["state"], "COMPLETED");
    assert_eq!(output["output"], 42);
    let asked = recording.0.lock().unwrap().clone();
    let [ChildOp::Start(start), ChildOp::Wait { child_id, timeout_ms }] = asked.as_slice() else {
        panic!("{asked:?}")
    };
    assert_eq!((start.call, start.deployment.as_str(), start.wait), (1, "hello/default", true));
    assert_eq!(serde_json::Value::Object(start.parameters.clone()), json!({"a": 40, "b": 2}));
    assert_eq!((child_id.as_str(), *timeout_ms), ("child-1", Some(5000)));

    // Without waiting, only the start is asked.
    let recording = Arc::new(Recording::default());
    let params = json!({"deployment": "hello/default", "wait": false});
    let mut request = RunRequest::new(params, Arc::new(ReportCollector::default()));
    request.subflows = recording.clone();
    let outcome = sandbox.run(&flow, request).await;
    let RunOutcome::Completed { output } = outcome else { panic!("{outcome:?}") };
    assert_eq!(output["state"], "SCHEDULED");
    assert_eq!(recording.0.lock().unwrap().len(), 1);

    // A refusal fails the flow with the embedder's words, logged too.
    let reports = Arc::new(ReportCollector::default());
    let mut request = RunRequest::new(json!({"deployment": "nope/nope"}), reports.clone());
    request.subflows = Arc::new(Recording::default());
    let outcome = sandbox.run(&flow, request).await;
    let RunOutcome::Failed { message, .. } = &outcome else { panic!("{outcome:?}") };
    assert!(
        message.contains("run_deployment nope/nope: deployment nope/nope not found"),
        "{message}"
    );
    let logs = log_messages(&reports);
    assert!(logs.iter().any(|l| l.contains("subflow of nope/nope refused")), "{logs:?}");
}

#[tokio::test]
async fn without_a_core_a_subflow_call_is_refused_saying_why() {
    let sandbox = sandbox();
    let flow = sandbox.load(&baton_tests::flow_wasm("subflow")).unwrap();
    let request = RunRequest::new(
        json!({"deployment": "hello/default"}),
        Arc::new(ReportCollector::default()),
    );
    let outcome = sandbox.run(&flow, request).await;
    let RunOutcome::Failed { message, .. } = &outcome else { panic!("{outcome:?}") };
    assert!(message.contains("subflows need a core"), "{message}");
}

#[tokio::test]
async fn a_subflow_s_parameters_over_a_run_s_limit_are_refused_before_they_are_sent() {
    use baton_proto::v1::limits::MAX_PARAMETERS_BYTES;
    let sandbox = sandbox();
    let flow = sandbox.load(&baton_tests::flow_wasm("subflow")).unwrap();
    // `{"s":"…"}` is the text's length and 8 bytes more.
    for (text, refused) in [(MAX_PARAMETERS_BYTES - 8, false), (MAX_PARAMETERS_BYTES - 7, true)] {
        let recording = Arc::new(Recording::default());
        let params = json!({"deployment": "hello/default", "params": {"s": "x".repeat(text)}});
        let mut request = RunRequest::new(params, Arc::new(ReportCollector::default()));
        request.subflows = recording.clone();
        let outcome = sandbox.run(&flow, request).await;
        let asked = recording.0.lock().unwrap().len();
        if refused {
            let RunOutcome::Failed { message, .. } = &outcome else { panic!("{outcome:?}") };
            assert!(
                message.contains("a subflow's parameters of") && message.contains("limit"),
                "{message}"
            );
            assert_eq!(asked, 0, "parameters over the limit were sent");
        } else {
            assert!(matches!(outcome, RunOutcome::Completed { .. }), "{outcome:?}");
            assert_eq!(asked, 2, "at the limit the call goes through");
        }
    }
}
