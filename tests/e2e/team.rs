//! An installation for a team: several cores on one PostgreSQL database,
//! started together; the metrics and traces a team watches them by.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_tests::http::Connection;
use baton_tests::{
    AgentProcess, CoreProcess, finish, fresh_postgres_database, python_tools, repo_root,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// One value from `sql` run on `url` with psql.
fn psql(url: &str, sql: &str) -> String {
    let output = Command::new("psql").args([url, "-tAc", sql]).output().unwrap();
    assert!(output.status.success(), "{sql}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Three cores started at the same moment on an empty database: one
/// migrates it while the others wait on its lock, every migration is
/// recorded once and succeeded, all three serve, and they share one CA (a
/// token made through any of them is good for each).
#[test]
fn three_cores_started_at_once_on_an_empty_database_migrate_it_once() {
    let url = fresh_postgres_database();
    let cores: Vec<CoreProcess> = std::thread::scope(|scope| {
        let starting: Vec<_> =
            (0..3).map(|_| scope.spawn(|| CoreProcess::start(Some(&url)))).collect();
        starting.into_iter().map(|core| core.join().unwrap()).collect()
    });

    let migrations = std::fs::read_dir(repo_root().join("core/migrations/postgres"))
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().extension().is_some_and(|e| e == "sql"))
        .count();
    assert!(migrations > 20, "{migrations} migration files found");
    let applied = psql(&url, "SELECT COUNT(*) FROM _sqlx_migrations WHERE success");
    assert_eq!(applied, migrations.to_string(), "each migration applied once");
    assert_eq!(psql(&url, "SELECT COUNT(*) FROM core_identity"), "1", "one shared CA");

    let home = tempfile::tempdir().unwrap();
    let fingerprints: Vec<String> = cores
        .iter()
        .map(|core| {
            let token = core.agent_token(home.path());
            token.rsplit('.').next().unwrap().to_owned()
        })
        .collect();
    assert!(fingerprints.iter().all(|f| *f == fingerprints[0]), "{fingerprints:?}");
    for core in &cores {
        let listed = finish(core.baton(home.path()).args(["deployment", "ls"]));
        assert_eq!(listed.status, Some(0), "{}", listed.stderr);
    }
}

/// One sample of a metrics text: its name and labels.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

/// The samples of a metrics text as the official Prometheus client's
/// (strict) OpenMetrics parser reads them.
fn parse_metrics(text: &str) -> Samples {
    const PARSE: &str = "import json, sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        print(json.dumps([[s.name, s.labels, s.value] \
        for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]))";
    let mut python = Command::new(python_tools().join("bin").join("python"))
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    python.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = python.wait_with_output().unwrap();
    assert!(output.status.success(), "{}\n{text}", String::from_utf8_lossy(&output.stderr));
    let samples: Vec<(String, BTreeMap<String, String>, f64)> =
        serde_json::from_slice(&output.stdout).unwrap();
    samples.into_iter().map(|(name, labels, value)| ((name, labels), value)).collect()
}

/// The value of `name` with exactly `labels` (0 if absent: a counter not
/// yet moved).
fn sample(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    samples.get(&(name.to_owned(), labels)).copied().unwrap_or(0.0)
}

/// `GET /metrics` at `address`.
async fn scrape_text(address: SocketAddr) -> String {
    let mut http = Connection::open(address).await;
    let (status, body) = http.call("GET", "/metrics", b"").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    String::from_utf8(body).unwrap()
}

/// `GET /metrics` at `address`, parsed.
async fn scrape(address: SocketAddr) -> Samples {
    parse_metrics(&scrape_text(address).await)
}

/// The metric families a metrics text declares (`# TYPE NAME ...`).
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The metric families the README's tables list, the agent's or the
/// core's; a counter's family is its name without `_total`.
fn documented(agent: bool) -> BTreeSet<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    readme
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split(['`', '{']).next())
        .filter(|name| name.starts_with("baton_") && name.starts_with("baton_agent_") == agent)
        .map(|name| name.strip_suffix("_total").unwrap_or(name).to_owned())
        .collect()
}

/// N runs through a core and its agent move the counters of both by N:
/// created, finished by state, durations observed; the gauges say what is
/// connected, waiting and how many slots there are; an automation's
/// firings are counted. Every metric written is in the README's tables,
/// and every metric there is written.
#[test]
fn the_core_s_and_the_agent_s_metrics_count_the_runs_they_saw() {
    const RUNS: usize = 25;
    let core = CoreProcess::start(None);
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    core.deploy(home.path(), "hello", "default", "    parameters: {a: 1, b: 2}\n");
    // A run of a pool no agent serves waits: the automation makes one.
    core.ok(home.path(), &["pool", "create", "nowhere", "--type", "wasm"]);
    core.deploy(
        home.path(),
        "hello",
        "nowhere",
        "    parameters: {a: 1, b: 2}\n    work_pool: {name: nowhere}\n",
    );
    let automation = home.path().join("automation.yaml");
    std::fs::write(
        &automation,
        "name: one-waits\n\
         trigger:\n  reactive:\n    event: run.completed\n    related: deployment/hello/default\n\
         actions:\n  - run-deployment: {deployment: hello/nowhere}\n",
    )
    .unwrap();
    core.ok(home.path(), &["automation", "create", "-f", automation.to_str().unwrap()]);
    let token = core.agent_token(home.path());
    let agent_metrics = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let _agent = AgentProcess::start_in_pool_with(
        &core,
        home.path(),
        &token,
        data.path(),
        "default",
        &["--slots", "4", "--metrics", &agent_metrics.to_string()],
    );
    let api = core.api_address();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        let before = loop {
            let samples = scrape(api).await;
            if sample(&samples, "baton_agents_connected", &[("pool", "default")]) == 1.0 {
                break samples;
            }
            assert!(Instant::now() < deadline, "the agent never connected");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut http = Connection::open(api).await;
        for _ in 0..RUNS {
            let (status, created) =
                http.json("POST", "/api/deployments/hello/default/runs", &json!({})).await;
            assert_eq!(status, 201, "{created}");
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, done) = http
                .json(
                    "GET",
                    "/api/runs?deployment=hello/default&state=COMPLETED&limit=100",
                    &Value::Null,
                )
                .await;
            if done["items"].as_array().unwrap().len() == RUNS {
                break;
            }
            assert!(Instant::now() < deadline, "the runs did not complete");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let after = loop {
            let samples = scrape(api).await;
            if sample(&samples, "baton_runs_waiting", &[("pool", "nowhere"), ("queue", "default")])
                >= 1.0
            {
                break samples;
            }
            assert!(Instant::now() < deadline, "no run of hello/nowhere waits: {samples:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let fired =
            sample(&after, "baton_automation_firings_total", &[("automation", "one-waits")]);
        assert!(fired >= 1.0, "{after:?}");
        let moved = |name: &str, labels: &[(&str, &str)]| {
            sample(&after, name, labels) - sample(&before, name, labels)
        };
        let runs = RUNS as f64;
        let hello = [("deployment", "hello/default")];
        assert_eq!(moved("baton_runs_created_total", &hello), runs);
        let completed = [("deployment", "hello/default"), ("state", "COMPLETED")];
        assert_eq!(moved("baton_runs_finished_total", &completed), runs);
        assert_eq!(moved("baton_run_duration_seconds_count", &[]), runs);
        assert_eq!(moved("baton_run_start_delay_seconds_count", &[]), runs);
        assert!(moved("baton_dispatch_pass_seconds_count", &[]) >= 1.0, "{after:?}");
        assert!(moved("baton_store_write_seconds_count", &[]) >= runs * 3.0, "{after:?}");

        // Every metric is in the README, and the README lists no other.
        assert_eq!(families(&scrape_text(api).await), documented(false));
        assert_eq!(families(&scrape_text(agent_metrics).await), documented(true));

        let agent = scrape(agent_metrics).await;
        let completed = [("outcome", "completed")];
        assert_eq!(sample(&agent, "baton_agent_runs_finished_total", &completed), runs);
        assert_eq!(sample(&agent, "baton_agent_run_duration_seconds_count", &[]), runs);
        assert_eq!(sample(&agent, "baton_agent_slots", &[]), 4.0);
        assert_eq!(sample(&agent, "baton_agent_slots_in_use", &[]), 0.0);
        assert_eq!(sample(&agent, "baton_agent_connected", &[]), 1.0);
        // One compile (at deploy, or on the first run), then hits.
        let loads =
            |source| sample(&agent, "baton_agent_component_loads_total", &[("source", source)]);
        assert_eq!(loads("compiled"), 1.0, "{agent:?}");
        assert!(loads("memory") >= runs - 1.0, "{agent:?}");
        assert!(sample(&agent, "baton_agent_component_cache_bytes", &[]) > 0.0, "{agent:?}");
    });
}

/// A small OTLP/HTTP receiver: every span posted to `/v1/traces` (JSON
/// bodies) goes to the returned list.
async fn otlp_receiver() -> (SocketAddr, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let spans = Arc::new(Mutex::new(Vec::new()));
    let received = Arc::clone(&spans);
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let spans = Arc::clone(&received);
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0_u8; 64 * 1024];
                loop {
                    // One request: its head, then Content-Length bytes.
                    let end = loop {
                        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            break end + 4;
                        }
                        let n = stream.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..n]);
                    };
                    let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                    assert!(head.starts_with("post /v1/traces "), "{head}");
                    assert!(head.contains("content-type: application/json"), "{head}");
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap();
                    while buffer.len() < end + length {
                        let n = stream.read(&mut chunk).await.unwrap();
                        assert!(n > 0, "the exporter hung up mid-request");
                        buffer.extend_from_slice(&chunk[..n]);
                    }
                    let body: Value = serde_json::from_slice(&buffer[end..end + length]).unwrap();
                    buffer.drain(..end + length);
                    for resource in body["resourceSpans"].as_array().unwrap() {
                        let service = resource["resource"]["attributes"]
                            .as_array()
                            .and_then(|a| a.iter().find(|kv| kv["key"] == "service.name"))
                            .map(|kv| kv["value"]["stringValue"].clone())
                            .unwrap_or(Value::Null);
                        for scope in resource["scopeSpans"].as_array().unwrap() {
                            for span in scope["spans"].as_array().unwrap() {
                                let mut span = span.clone();
                                span["service"] = service.clone();
                                spans.lock().unwrap().push(span);
                            }
                        }
                    }
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                    if stream.write_all(ok).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (address, spans)
}

/// A span's attribute, as a string.
fn attribute(span: &Value, key: &str) -> Option<String> {
    span["attributes"].as_array()?.iter().find(|kv| kv["key"] == key).map(|kv| {
        let value = &kv["value"];
        value["stringValue"].as_str().map_or_else(|| value.to_string(), str::to_owned)
    })
}

/// With `--otlp-endpoint`, each run is one trace: its root from the core,
/// its creation and dispatch under it from the core, its execution under it
/// from the agent, and each task run under the execution; runs' traces do
/// not mix.
#[test]
fn each_run_is_one_trace_from_its_creation_to_its_tasks() {
    const RUNS: usize = 3;
    const TASKS: usize = 3;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (receiver, spans) = runtime.block_on(otlp_receiver());
    let endpoint = format!("http://{receiver}");
    let core = CoreProcess::start_with(None, &["--otlp-endpoint", &endpoint]);
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    core.deploy(home.path(), "chain", "traced", "");
    let token = core.agent_token(home.path());
    let _agent = AgentProcess::start_in_pool_with(
        &core,
        home.path(),
        &token,
        data.path(),
        "default",
        &["--otlp-endpoint", &endpoint],
    );
    let api = core.api_address();
    runtime.block_on(async {
        let mut http = Connection::open(api).await;
        let mut ids = Vec::new();
        for _ in 0..RUNS {
            let (status, created) = http
                .json(
                    "POST",
                    "/api/deployments/chain/traced/runs",
                    &json!({"parameters": {"tasks": TASKS, "millis": 5}}),
                )
                .await;
            assert_eq!(status, 201, "{created}");
            ids.push(created["id"].as_str().unwrap().to_owned());
        }
        let spans_of = |id: &str| -> Vec<Value> {
            spans
                .lock()
                .unwrap()
                .iter()
                .filter(|s| attribute(s, "baton.run_id").as_deref() == Some(id))
                .cloned()
                .collect()
        };
        // Every run's spans: root, create, dispatch, execute and its tasks.
        let wanted = 4 + TASKS;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ids.iter().all(|id| spans_of(id).len() >= wanted) {
            assert!(
                Instant::now() < deadline,
                "spans missing: {:#}",
                Value::from(spans.lock().unwrap().clone())
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut traces = BTreeSet::new();
        for id in &ids {
            let run = spans_of(id);
            assert_eq!(run.len(), wanted, "{run:#?}");
            let trace = run[0]["traceId"].as_str().unwrap().to_owned();
            assert!(run.iter().all(|s| s["traceId"] == trace), "one trace per run: {run:#?}");
            assert!(traces.insert(trace), "two runs share a trace");
            let named =
                |name: &str| -> Vec<&Value> { run.iter().filter(|s| s["name"] == name).collect() };
            let root = named("run");
            assert_eq!(root.len(), 1, "{run:#?}");
            let root = root[0];
            assert!(root["parentSpanId"].as_str().is_none_or(str::is_empty), "{root:#}");
            assert_eq!(root["service"], "baton-core");
            assert_eq!(attribute(root, "baton.state").as_deref(), Some("COMPLETED"));
            assert_eq!(attribute(root, "baton.deployment").as_deref(), Some("chain/traced"));
            for (name, service) in
                [("create", "baton-core"), ("dispatch", "baton-core"), ("execute", "baton-agent")]
            {
                let span = named(name);
                assert_eq!(span.len(), 1, "{name}: {run:#?}");
                assert_eq!(span[0]["parentSpanId"], root["spanId"], "{name} under the root");
                assert_eq!(span[0]["service"], service, "{name}");
            }
            let execute = named("execute")[0];
            assert_eq!(attribute(execute, "baton.outcome").as_deref(), Some("completed"));
            for step in 0..TASKS {
                let task = named(&format!("step-{step}"));
                assert_eq!(task.len(), 1, "step-{step}: {run:#?}");
                assert_eq!(
                    task[0]["parentSpanId"], execute["spanId"],
                    "a task under its execution"
                );
            }
        }
    });
}
