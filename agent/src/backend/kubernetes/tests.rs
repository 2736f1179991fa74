//! The Kubernetes backend against scripted API exchanges (no API server
//! can run here): each test plays the cluster's side of the conversation
//! request by request, checking what the backend asks and answering as an
//! API server would. The manifests it sends are kept as golden files that
//! `kubernetes-validate --strict` checks against Kubernetes' own schema.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use baton_proto::v1::link::{Assignment, Execution};
use baton_proto::v1::{
    Infrastructure, LogLevel, PoolKind, ReportBody, RunOutcome, RunReport, Timestamp,
};
use baton_sandbox::{CancellationToken, Digest, RunReporter};
use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{self, Handle, SendResponse};

use super::manifest::{self, Variables};
use super::{Kubernetes, Submission};
use crate::runner::{RunnerJob, RunnerMessage};

type MockBody = BoxBody<Bytes, Infallible>;

const AGENT: &str = "0193a1b2c3d47e5f8a9b0c1d2e3f4a5b";
const RUN: &str = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const JOB: &str = "baton-0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b-1";
const POD: &str = "baton-0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b-1-x7k2p";

/// The API server's side of the conversation.
struct Cluster(Handle<Request<Body>, Response<MockBody>>);

/// One request the backend made, and the way to answer it.
struct Exchange {
    uri: http::Uri,
    body: Value,
    respond: SendResponse<Response<MockBody>>,
}

impl Cluster {
    fn new() -> (Kubernetes, Cluster) {
        let (service, handle) = mock::pair::<Request<Body>, Response<MockBody>>();
        let backend = Kubernetes::new(AGENT.to_owned());
        *backend.client.try_lock().unwrap() = Some(Client::new(service, "default"));
        (backend, Cluster(handle))
    }

    /// The next request, which must be `method` on `path`.
    async fn expect(&mut self, method: Method, path: &str) -> Exchange {
        let (request, respond) =
            tokio::time::timeout(Duration::from_secs(10), self.0.next_request())
                .await
                .unwrap_or_else(|_| panic!("no request came; expected {method} {path}"))
                .expect("the client is gone");
        let (parts, body) = request.into_parts();
        assert_eq!((&parts.method, parts.uri.path()), (&method, path), "{}", parts.uri);
        let bytes = body.collect_bytes().await.unwrap();
        let body =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        Exchange { uri: parts.uri, body, respond }
    }

    /// Asserts that the backend makes no more requests.
    async fn expect_silence(&mut self) {
        let next = tokio::time::timeout(Duration::from_millis(300), self.0.next_request()).await;
        if let Ok(Some((request, _))) = next {
            panic!("an unexpected request: {} {}", request.method(), request.uri());
        }
    }

    /// The run's teardown: its Job deleted in the foreground with its
    /// grace period, then its Secret.
    async fn expect_teardown(&mut self, namespace: &str, grace: u64) {
        let deleted = self
            .expect(Method::DELETE, &format!("/apis/batch/v1/namespaces/{namespace}/jobs/{JOB}"))
            .await;
        assert_eq!(deleted.body["propagationPolicy"], "Foreground");
        assert_eq!(deleted.body["gracePeriodSeconds"], grace);
        deleted.json(200, status_success());
        self.expect(Method::DELETE, &format!("/api/v1/namespaces/{namespace}/secrets/{JOB}"))
            .await
            .json(200, status_success());
    }

    /// The Secret and the Job made, answered as created; the Secret's job.
    async fn expect_creation(&mut self, namespace: &str) -> (RunnerJob, Value) {
        let secret =
            self.expect(Method::POST, &format!("/api/v1/namespaces/{namespace}/secrets")).await;
        let encoded = secret.body["data"]["job.json"].as_str().unwrap().to_owned();
        let job: RunnerJob = serde_json::from_slice(&BASE64.decode(&encoded).unwrap()).unwrap();
        let body = secret.body.clone();
        secret.json(201, body);
        let created =
            self.expect(Method::POST, &format!("/apis/batch/v1/namespaces/{namespace}/jobs")).await;
        let manifest = created.body.clone();
        created.json(201, manifest.clone());
        (job, manifest)
    }
}

impl Exchange {
    fn query(&self, key: &str) -> Option<String> {
        form_urlencoded::parse(self.uri.query().unwrap_or_default().as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    fn json(self, status: u16, body: Value) {
        let response = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())).boxed())
            .unwrap();
        self.respond.send_response(response);
    }

    /// Answers with these lines, then ends the body.
    fn lines(self, lines: &[String]) {
        let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
        let response =
            Response::builder().status(200).body(Full::new(Bytes::from(text)).boxed()).unwrap();
        self.respond.send_response(response);
    }

    /// Answers with a body that stays open until the sender is dropped.
    fn open_stream(self) -> tokio::sync::mpsc::Sender<Bytes> {
        let (send, receive) = tokio::sync::mpsc::channel::<Bytes>(16);
        let frames = futures_util::stream::unfold(receive, |mut receive| async move {
            let chunk = receive.recv().await?;
            Some((Ok::<_, Infallible>(Frame::data(chunk)), receive))
        });
        let response =
            Response::builder().status(200).body(StreamBody::new(frames).boxed()).unwrap();
        self.respond.send_response(response);
        send
    }
}

fn status_success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200})
}

fn status_not_found(name: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
           "message": format!("pods \"{name}\" not found")})
}

/// A pod of the run in `phase`, its runner container in `state`.
fn pod(phase: &str, state: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": POD, "namespace": "flows", "labels": {"io.baton.run-id": RUN, "io.baton.attempt": "1"}},
        "spec": {"nodeName": "node-7", "containers": [{"name": "runner", "image": "baton-runner:latest"}]},
        "status": {"phase": phase, "containerStatuses": [{
            "name": "runner", "image": "baton-runner:latest", "imageID": "", "ready": phase == "Running",
            "restartCount": 0, "state": state
        }]}
    })
}

fn watch_event(kind: &str, object: Value) -> String {
    json!({"type": kind, "object": object}).to_string()
}

/// A log line as the API server sends it with `timestamps=true`.
fn log_line(second: u32, nanos: u32, message: &RunnerMessage) -> String {
    format!("2026-11-30T12:00:{second:02}.{nanos:09}Z {}", serde_json::to_string(message).unwrap())
}

fn log(seq: u64, message: &str) -> RunnerMessage {
    RunnerMessage::Report {
        report: RunReport {
            seq,
            at: Timestamp(0),
            body: ReportBody::Log {
                level: LogLevel::Info,
                message: message.to_owned(),
                task_id: None,
            },
        },
    }
}

fn finished(outcome: RunOutcome) -> RunnerMessage {
    RunnerMessage::Finished { outcome }
}

#[derive(Default)]
struct Reports(Mutex<Vec<String>>);

impl RunReporter for Reports {
    fn report(&self, report: RunReport) {
        if let ReportBody::Log { message, .. } = report.body {
            self.0.lock().unwrap().push(message);
        }
    }
}

/// What the test sees of a run: its reports and where it said it started.
struct Watched {
    reports: Arc<Reports>,
    started: Arc<Mutex<Option<Infrastructure>>>,
    cancel: CancellationToken,
}

fn submission(job_variables: Value) -> (Submission, Watched) {
    let reports = Arc::new(Reports::default());
    let started = Arc::new(Mutex::new(None));
    let cancel = CancellationToken::new();
    let Value::Object(job_variables) = job_variables else { panic!("job variables are an object") };
    let assignment = Assignment {
        run_id: RUN.to_owned(),
        attempt: 1,
        flow: "hello".to_owned(),
        deployment: "hello/k8s".to_owned(),
        artifact: format!("sha256:{}", digest()),
        parameters: serde_json::Map::from_iter([("name".to_owned(), json!("cluster"))]),
        memory_bytes: None,
        timeout_ms: Some(60_000),
        variables: Default::default(),
        secrets: [("TOKEN".to_owned(), Some("s3cr3t".to_owned()))].into(),
        outgoing_hosts: Vec::new(),
        commands: Vec::new(),
        execution_key: Some("e".repeat(64)),
        pool_kind: PoolKind::Kubernetes,
        job_variables,
    };
    let submission = Submission {
        assignment,
        digest: digest(),
        reporter: Arc::clone(&reports) as Arc<dyn RunReporter>,
        started: Box::new({
            let started = Arc::clone(&started);
            move |infrastructure| *started.lock().unwrap() = Some(infrastructure)
        }),
        cancel: cancel.clone(),
    };
    (submission, Watched { reports, started, cancel })
}

fn digest() -> Digest {
    Digest::of(b"a component")
}

fn flows_pool() -> Value {
    json!({"namespace": "flows", "api_url": "http://baton.baton.svc:4200/", "memory_limit": "64Mi", "stop_grace_seconds": 10})
}

/// The run's pod watched into running.
async fn expect_pod_running(cluster: &mut Cluster) {
    let watch = cluster.expect(Method::GET, "/api/v1/namespaces/flows/pods").await;
    assert_eq!(watch.query("watch").as_deref(), Some("true"));
    assert_eq!(
        watch.query("labelSelector").as_deref(),
        Some(format!("io.baton.run-id={RUN},io.baton.attempt=1").as_str())
    );
    watch.lines(&[
        watch_event("ADDED", pod("Pending", json!({"waiting": {"reason": "ContainerCreating"}}))),
        watch_event(
            "MODIFIED",
            pod("Running", json!({"running": {"startedAt": "2026-11-30T12:00:00Z"}})),
        ),
    ]);
}

/// The API path of the run's pod, and of its log.
fn pod_path() -> String {
    format!("/api/v1/namespaces/flows/pods/{POD}")
}

fn log_path() -> String {
    format!("{}/log", pod_path())
}

/// A run of the `flows` pool submitted, its Secret and Job created and its
/// pod watched into running: the cluster, the run, and what it reports.
async fn run_with_its_pod_running(
    job_variables: Value,
) -> (Cluster, tokio::task::JoinHandle<RunOutcome>, Watched) {
    let (backend, mut cluster) = Cluster::new();
    let (submission, watched) = submission(job_variables);
    let run = tokio::spawn(async move { backend.submit(submission).await });
    cluster.expect_creation("flows").await;
    expect_pod_running(&mut cluster).await;
    (cluster, run, watched)
}

#[tokio::test]
async fn a_run_is_a_job_whose_pod_log_is_the_run_and_both_job_and_secret_are_deleted_after() {
    let (backend, mut cluster) = Cluster::new();
    let (submission, watched) = submission(flows_pool());
    let run = tokio::spawn(async move { backend.submit(submission).await });

    let (job, manifest) = cluster.expect_creation("flows").await;
    assert_eq!(
        job.artifact_url.as_deref(),
        Some(
            format!("http://baton.baton.svc:4200/api/artifacts/sha256:{}/content", digest())
                .as_str()
        )
    );
    assert_eq!(job.memory_bytes, 64 << 20, "the pod's memory limit is the flow's cap");
    assert_eq!(
        job.secrets["TOKEN"].as_deref(),
        Some("s3cr3t"),
        "granted secrets travel in the Secret"
    );
    assert_eq!(manifest["metadata"]["name"], JOB);
    assert_eq!(manifest["metadata"]["labels"]["io.baton.run-id"], RUN);
    assert_eq!(manifest["metadata"]["labels"]["io.baton.agent-id"], AGENT);
    let container = &manifest["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["args"], json!(["flow", "exec", "--job-file", "/baton/job/job.json"]));
    assert_eq!(container["resources"]["limits"]["memory"], "64Mi");

    expect_pod_running(&mut cluster).await;
    let logs = cluster.expect(Method::GET, &log_path()).await;
    assert_eq!(logs.query("follow").as_deref(), Some("true"));
    assert_eq!(logs.query("timestamps").as_deref(), Some("true"));
    assert_eq!(logs.query("container").as_deref(), Some("runner"));
    let stream = logs.open_stream();
    stream.send(Bytes::from(log_line(1, 0, &RunnerMessage::Started) + "\n")).await.unwrap();
    stream.send(Bytes::from(log_line(1, 5, &log(1, "hello, cluster")) + "\n")).await.unwrap();
    // The runner's stderr comes mixed in the same log.
    stream
        .send(Bytes::from("2026-11-30T12:00:01.000000007Z  INFO baton: compiled\n"))
        .await
        .unwrap();
    // Logs stream while the run runs.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while watched.reports.0.lock().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the log line never came through");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stream
        .send(Bytes::from(
            log_line(2, 0, &finished(RunOutcome::Completed { output: json!("hi") })) + "\n",
        ))
        .await
        .unwrap();
    cluster.expect_teardown("flows", 10).await;
    let outcome = run.await.unwrap();
    assert_eq!(outcome, RunOutcome::Completed { output: json!("hi") });
    assert_eq!(*watched.reports.0.lock().unwrap(), ["hello, cluster"]);
    let started = watched.started.lock().unwrap().clone().expect("the start was told");
    assert_eq!(
        started,
        Infrastructure {
            kind: PoolKind::Kubernetes,
            id: Some(JOB.to_owned()),
            host: Some("node-7".to_owned())
        }
    );
    cluster.expect_silence().await;
}

#[tokio::test]
async fn a_log_stream_that_breaks_is_resumed_without_a_line_lost_or_taken_twice() {
    let (mut cluster, run, watched) = run_with_its_pod_running(flows_pool()).await;
    let path = log_path();
    cluster.expect(Method::GET, &path).await.lines(&[
        log_line(1, 0, &RunnerMessage::Started),
        log_line(3, 100, &log(1, "one")),
        log_line(3, 100, &log(2, "two, same instant")),
    ]);
    // The stream ended with the pod still running: resumed from that second.
    cluster
        .expect(Method::GET, &pod_path())
        .await
        .json(200, pod("Running", json!({"running": {}})));
    let resumed = cluster.expect(Method::GET, &path).await;
    assert_eq!(resumed.query("sinceTime").as_deref(), Some("2026-11-30T12:00:03Z"));
    resumed.lines(&[
        log_line(3, 100, &log(1, "one")),
        log_line(3, 100, &log(2, "two, same instant")),
        log_line(3, 100, &log(3, "three, same instant")),
        log_line(4, 0, &log(4, "four")),
        log_line(5, 0, &finished(RunOutcome::Completed { output: json!(4) })),
    ]);
    cluster.expect_teardown("flows", 10).await;
    assert_eq!(run.await.unwrap(), RunOutcome::Completed { output: json!(4) });
    assert_eq!(
        *watched.reports.0.lock().unwrap(),
        ["one", "two, same instant", "three, same instant", "four"]
    );
}

#[tokio::test]
async fn a_pod_killed_for_memory_is_out_of_memory_and_one_that_exits_is_crashed_with_its_stderr() {
    // Past the Job's deadline: the run's time limit, 10 s of grace and the
    // pod's 300 s to start, unless the variables set one.
    let mut past_deadline =
        pod("Failed", json!({"terminated": {"exitCode": 137, "reason": "Error"}}));
    past_deadline["status"]["reason"] = json!("DeadlineExceeded");
    for (ended, expected) in [
        (
            pod("Failed", json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}})),
            RunOutcome::OutOfMemory { limit_bytes: 64 << 20 },
        ),
        (
            pod("Failed", json!({"terminated": {"exitCode": 101, "reason": "Error"}})),
            RunOutcome::Crashed {
                message: format!(
                    "the run's pod {POD} exited with status 101 (Error) before its run ended: thread 'main' panicked"
                ),
            },
        ),
        (past_deadline, RunOutcome::TimedOut { limit_ms: (60 + 10 + 300) * 1000 }),
    ] {
        let (mut cluster, run, _watched) = run_with_its_pod_running(flows_pool()).await;
        cluster.expect(Method::GET, &log_path()).await.lines(&[
            log_line(1, 0, &RunnerMessage::Started),
            "2026-11-30T12:00:02.000000000Z thread 'main' panicked".to_owned(),
        ]);
        cluster.expect(Method::GET, &pod_path()).await.json(200, ended.clone());
        // One last read, not followed, for what a broken stream missed.
        let last = cluster.expect(Method::GET, &log_path()).await;
        assert_eq!(last.query("follow"), None);
        last.lines(&[]);
        cluster.expect(Method::GET, &pod_path()).await.json(200, ended.clone());
        cluster.expect_teardown("flows", 10).await;
        assert_eq!(run.await.unwrap(), expected, "{ended}");
    }
}

#[tokio::test]
async fn cancelling_deletes_the_job_with_its_grace_period_at_once() {
    let (mut cluster, run, watched) = run_with_its_pod_running(
        json!({"namespace": "flows", "api_url": "http://core:4200", "stop_grace_seconds": 3}),
    )
    .await;
    let stream = cluster.expect(Method::GET, &log_path()).await.open_stream();
    stream.send(Bytes::from(log_line(1, 0, &RunnerMessage::Started) + "\n")).await.unwrap();
    watched.cancel.cancel();
    let asked = tokio::time::Instant::now();
    cluster.expect_teardown("flows", 3).await;
    assert!(asked.elapsed() < Duration::from_secs(2), "the Job was deleted at once");
    assert_eq!(run.await.unwrap(), RunOutcome::Cancelled);
    drop(stream);
}

#[tokio::test]
async fn a_pod_that_cannot_start_crashes_the_run_with_the_reason() {
    let (backend, mut cluster) = Cluster::new();
    let (submission, _watched) = submission(
        json!({"namespace": "flows", "api_url": "http://core:4200", "api_token_secret": "baton-api/token"}),
    );
    let run = tokio::spawn(async move { backend.submit(submission).await });
    let (_, manifest) = cluster.expect_creation("flows").await;
    let env = &manifest["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env[0]["name"], "BATON_API_TOKEN");
    assert_eq!(
        env[0]["valueFrom"]["secretKeyRef"],
        json!({"name": "baton-api", "key": "token", "optional": false})
    );
    cluster.expect(Method::GET, "/api/v1/namespaces/flows/pods").await.lines(&[watch_event(
        "ADDED",
        pod("Pending", json!({"waiting": {"reason": "CreateContainerConfigError", "message": "secret \"baton-api\" not found"}})),
    )]);
    cluster.expect_teardown("flows", 10).await;
    assert_eq!(
        run.await.unwrap(),
        RunOutcome::Crashed {
            message: format!(
                "the run's pod (Job {JOB}) cannot start: CreateContainerConfigError: secret \"baton-api\" not found"
            ),
        }
    );
}

#[tokio::test]
async fn a_pod_deleted_outside_baton_crashes_the_run_as_vanished() {
    let (mut cluster, run, _watched) = run_with_its_pod_running(flows_pool()).await;
    cluster.expect(Method::GET, &log_path()).await.lines(&[log_line(
        1,
        0,
        &RunnerMessage::Started,
    )]);
    // Gone when the log ends, and when the backend asks how it ended.
    for _ in 0..2 {
        cluster.expect(Method::GET, &pod_path()).await.json(404, status_not_found(POD));
    }
    cluster.expect_teardown("flows", 10).await;
    assert_eq!(
        run.await.unwrap(),
        RunOutcome::Crashed {
            message: format!("the run's pod {POD} vanished: it was deleted outside Baton")
        }
    );
}

#[tokio::test]
async fn without_an_api_url_the_run_crashes_naming_it_and_nothing_is_created() {
    let (backend, mut cluster) = Cluster::new();
    let (submission, _watched) = submission(json!({"namespace": "flows"}));
    let outcome = backend.submit(submission).await;
    let RunOutcome::Crashed { message } = outcome else { panic!("{outcome:?}") };
    assert!(message.contains("`api_url`"), "{message}");
    cluster.expect_silence().await;
}

#[tokio::test]
async fn the_reaper_deletes_the_jobs_and_secrets_of_executions_not_running_here() {
    let (backend, mut cluster) = Cluster::new();
    let running = [Execution { run_id: RUN.to_owned(), attempt: 1 }];
    let reaping = tokio::spawn(async move { backend.reap_jobs(&running).await });
    let listed = cluster.expect(Method::GET, "/apis/batch/v1/jobs").await;
    assert_eq!(
        listed.query("labelSelector").as_deref(),
        Some(format!("io.baton.managed-by=baton,io.baton.agent-id={AGENT}").as_str())
    );
    let job = |name: &str, run: &str| {
        json!({
            "metadata": {"name": name, "namespace": "flows", "labels": {"io.baton.run-id": run, "io.baton.attempt": "1", "io.baton.agent-id": AGENT}}
        })
    };
    listed.json(
        200,
        json!({"apiVersion": "batch/v1", "kind": "JobList", "metadata": {}, "items": [
            job(JOB, RUN),
            job("baton-left-behind-1", "left-behind"),
        ]}),
    );
    let deleted = cluster
        .expect(Method::DELETE, "/apis/batch/v1/namespaces/flows/jobs/baton-left-behind-1")
        .await;
    assert_eq!(deleted.body["propagationPolicy"], "Foreground");
    deleted.json(200, status_success());
    cluster
        .expect(Method::DELETE, "/api/v1/namespaces/flows/secrets/baton-left-behind-1")
        .await
        .json(404, status_not_found("baton-left-behind-1"));
    reaping.await.unwrap();
    cluster.expect_silence().await;
}

#[tokio::test]
async fn a_reaper_that_may_not_list_everywhere_looks_in_the_namespaces_it_knows() {
    let (backend, mut cluster) = Cluster::new();
    backend.namespaces.lock().unwrap().insert("flows".to_owned());
    let reaping = tokio::spawn(async move { backend.reap_jobs(&[]).await });
    cluster.expect(Method::GET, "/apis/batch/v1/jobs").await.json(
        403,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403, "message": "jobs.batch is forbidden"}),
    );
    let empty = json!({"apiVersion": "batch/v1", "kind": "JobList", "metadata": {}, "items": []});
    cluster
        .expect(Method::GET, "/apis/batch/v1/namespaces/default/jobs")
        .await
        .json(200, empty.clone());
    cluster.expect(Method::GET, "/apis/batch/v1/namespaces/flows/jobs").await.json(200, empty);
    reaping.await.unwrap();
    cluster.expect_silence().await;
}

/// The golden manifests: what the backend makes of a pool's defaults and of
/// every variable set. `BATON_BLESS=1` rewrites them.
fn golden_manifests() -> Vec<(&'static str, Value)> {
    let execution = Execution { run_id: RUN.to_owned(), attempt: 1 };
    let defaults =
        Variables { api_url: Some("http://baton:4200".to_owned()), ..Variables::default() };
    let every: Variables = serde_json::from_value(json!({
        "image": "registry.example.com/acme/flows:1.4",
        "namespace": "flows",
        "api_url": "http://baton.baton.svc:4200",
        "api_token_secret": "baton-api/token",
        "service_account_name": "flows",
        "env": {"MODE": "full", "REGION": "eu"},
        "cpu_request": "500m", "cpu_limit": "2",
        "memory_request": "256Mi", "memory_limit": "1Gi",
        "node_selector": {"kubernetes.io/arch": "amd64"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "flows", "effect": "NoSchedule"}],
        "image_pull_policy": "Always",
        "ttl_seconds_after_finished": 300,
        "backoff_limit": 0,
        "active_deadline_seconds": 7200,
        "pod_start_timeout_seconds": 120,
        "stop_grace_seconds": 30,
        "labels": {"team": "data"},
        "annotations": {"example.com/owner": "data-team"}
    }))
    .unwrap();
    let job = RunnerJob::for_assignment(&submission(json!({})).0.assignment, &digest(), 64 << 20);
    vec![
        (
            "job-defaults.json",
            serde_json::to_value(manifest::job(&execution, AGENT, &defaults, 3_670)).unwrap(),
        ),
        (
            "job-every-variable.json",
            serde_json::to_value(manifest::job(&execution, AGENT, &every, 3_670)).unwrap(),
        ),
        (
            "secret.json",
            serde_json::to_value(manifest::job_secret(
                &execution,
                AGENT,
                "flows",
                &serde_json::to_vec(&job).unwrap(),
            ))
            .unwrap(),
        ),
    ]
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/kubernetes")
}

#[test]
fn the_manifests_are_the_golden_ones() {
    let bless = std::env::var_os("BATON_BLESS").is_some();
    for (file, manifest) in golden_manifests() {
        let path = golden_dir().join(file);
        let text = serde_json::to_string_pretty(&manifest).unwrap() + "\n";
        if bless {
            std::fs::create_dir_all(golden_dir()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let golden = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (BATON_BLESS=1 writes it)", path.display()));
        assert_eq!(
            text, golden,
            "{file} changed; BATON_BLESS=1 rewrites it, and CI checks it against Kubernetes' schema"
        );
    }
}

#[test]
fn the_golden_manifests_pass_kubernetes_own_schema() {
    let validate = baton_tests::python_tools().join("bin/kubernetes-validate");
    assert!(
        validate.exists(),
        "{} is missing: `cargo xtask setup` installs it",
        validate.display()
    );
    let files: Vec<PathBuf> =
        golden_manifests().iter().map(|(file, _)| golden_dir().join(file)).collect();
    let output = std::process::Command::new(&validate)
        .args(["--strict", "-k", "1.33.0"])
        .args(&files)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    for file in &files {
        assert!(said.contains(&format!("{} passed", file.display())), "{}: {said}", file.display());
    }
    // The check can fail: a field Kubernetes does not know is refused.
    let broken = std::env::temp_dir().join(format!("baton-broken-job-{}.json", std::process::id()));
    let mut job = golden_manifests().remove(0).1;
    job["spec"]["template"]["spec"]["containers"][0]["memoryMib"] = json!(64);
    std::fs::write(&broken, job.to_string()).unwrap();
    let output = std::process::Command::new(&validate)
        .args(["--strict", "-k", "1.33.0"])
        .arg(&broken)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&broken);
    assert!(!output.status.success(), "a Job with an unknown field passed");
}
