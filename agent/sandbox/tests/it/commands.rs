//! Native commands from a flow (`baton:flow/commands`): refused unless
//! granted and listed; when run, their output reaches the flow and the run
//! log, their exit status the flow; a timeout or the run's cancellation
//! kills the whole process group.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_proto::v1::{ReportBody, RunOutcome};
use baton_sandbox::{CommandGrant, ReportCollector, RunRequest, Sandbox};
use serde_json::{Value, json};

use baton_tests::{processes_with, unique_sleep};

use crate::{log_messages, sandbox};

/// Runs the `command` test flow with `params` under `grant`.
async fn command(
    sandbox: &Sandbox,
    grant: CommandGrant,
    params: Value,
) -> (RunOutcome, Arc<ReportCollector>) {
    let flow = sandbox.load(&baton_tests::flow_wasm("command")).unwrap();
    let reports = Arc::new(ReportCollector::default());
    let mut request = RunRequest::new(params, reports.clone());
    request.grants.commands = grant;
    (sandbox.run(&flow, request).await, reports)
}

fn sh() -> CommandGrant {
    CommandGrant::Allowed(vec!["sh".into()])
}

fn failure(outcome: &RunOutcome) -> &str {
    match outcome {
        RunOutcome::Failed { message, .. } => message,
        other => panic!("not FAILED: {other:?}"),
    }
}

#[tokio::test]
async fn a_granted_command_runs_with_its_input_and_its_output_reaches_the_flow_and_the_log() {
    let sandbox = sandbox();
    let script = "read name; echo \"hello $name from $WHERE\"; echo 'to stderr' >&2; exit 3";
    let (outcome, reports) = command(
        &sandbox,
        sh(),
        json!({"program": "sh", "args": ["-c", script], "stdin": "flow\n", "env": {"WHERE": "sh"}}),
    )
    .await;
    let RunOutcome::Completed { output } = outcome else { panic!("{outcome:?}") };
    assert_eq!(output["status"], 3, "{output:#}");
    assert_eq!(output["stdout"], "hello flow from sh\n");
    assert_eq!(output["stderr"], "to stderr\n");
    assert_eq!(output["truncated"], false);
    let logs = log_messages(&reports);
    for line in [
        r#"running `sh -c 'read name; echo "hello $name from $WHERE"; echo '\''to stderr'\'' >&2; exit 3'`"#,
        "hello flow from sh",
        "to stderr",
        "`sh` exited with 3",
    ] {
        assert!(logs.iter().any(|l| l == line), "{line:?} not in {logs:?}");
    }
}

#[tokio::test]
async fn a_command_is_refused_in_the_shared_sandbox_and_when_its_deployment_does_not_list_it() {
    let sandbox = sandbox();
    let marker = Path::new("/tmp").join(format!("baton-refused-{}", std::process::id()));
    let touch = json!({"program": "sh", "args": ["-c", format!("touch {}", marker.display())]});

    let (outcome, reports) = command(&sandbox, CommandGrant::default(), touch.clone()).await;
    assert!(
        failure(&outcome).contains("never run in the agent's shared wasm sandbox"),
        "{outcome:?}"
    );
    assert!(log_messages(&reports).iter().any(|l| l.starts_with("command `sh -c 'touch ")));

    let grant = CommandGrant::Allowed(vec!["python3".into(), "/bin/sh".into()]);
    let (outcome, _) = command(&sandbox, grant, touch).await;
    assert!(
        failure(&outcome).contains(
            "`sh` refused: it is not in the deployment's capabilities.commands (python3, /bin/sh)"
        ),
        "{outcome:?}"
    );
    assert!(!marker.exists(), "a refused command ran");

    let (outcome, _) = command(
        &sandbox,
        CommandGrant::Allowed(vec!["no-such-program".into()]),
        json!({"program": "no-such-program"}),
    )
    .await;
    assert!(failure(&outcome).contains("starting `no-such-program`: No such file"), "{outcome:?}");
}

#[tokio::test]
async fn output_past_the_cap_reaches_the_flow_cut_and_marked() {
    let sandbox = sandbox();
    let bytes = baton_sandbox::MAX_COMMAND_OUTPUT_BYTES + 4096;
    let script = format!("head -c {bytes} /dev/zero | tr '\\0' x; echo; echo done");
    let (outcome, reports) =
        command(&sandbox, sh(), json!({"program": "sh", "args": ["-c", script]})).await;
    let RunOutcome::Completed { output } = outcome else { panic!("{outcome:?}") };
    assert_eq!(output["truncated"], true, "{output:#}");
    assert_eq!(output["stdout_bytes"], baton_sandbox::MAX_COMMAND_OUTPUT_BYTES);
    assert_eq!(output["status"], 0);
    // The log had it all, in pieces (within the log's budget).
    assert!(log_messages(&reports).iter().any(|l| l == "done"));
}

#[tokio::test]
async fn a_timeout_kills_the_command_and_everything_it_started() {
    let sandbox = sandbox();
    let (first, second) = (unique_sleep(1), unique_sleep(2));
    let script = format!("echo started; sleep {first} & sleep {second}");
    let started = Instant::now();
    let (outcome, reports) = command(
        &sandbox,
        sh(),
        json!({"program": "sh", "args": ["-c", script], "timeout_ms": 300}),
    )
    .await;
    assert!(
        failure(&outcome).contains("`sh` ran past its timeout of 300 ms and was killed"),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(log_messages(&reports).iter().any(|l| l == "started"));
    baton_tests::wait_until("the command's processes to be gone", Duration::from_secs(5), || {
        processes_with(&first).is_empty() && processes_with(&second).is_empty()
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_the_run_kills_a_running_command() {
    let sandbox = sandbox();
    let marker = unique_sleep(3);
    let flow = sandbox.load(&baton_tests::flow_wasm("command")).unwrap();
    let reports = Arc::new(ReportCollector::default());
    let params =
        json!({"program": "sh", "args": ["-c", format!("sleep {marker}; echo not killed")]});
    let mut request = RunRequest::new(params, reports.clone());
    request.grants.commands = sh();
    let cancel = request.cancel.clone();
    let run = tokio::spawn(async move { sandbox.run(&flow, request).await });
    baton_tests::wait_until("the command to start", Duration::from_secs(10), || {
        !processes_with(&marker).is_empty()
    });
    cancel.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(5), run).await.unwrap().unwrap();
    assert_eq!(outcome, RunOutcome::Cancelled);
    baton_tests::wait_until("the command to be killed", Duration::from_secs(5), || {
        processes_with(&marker).is_empty()
    });
    let logs = reports.reports();
    assert!(
        !logs
            .iter()
            .any(|r| matches!(&r.body, ReportBody::Log { message, .. } if message == "not killed")),
        "the command ran on after its run was cancelled"
    );
}
