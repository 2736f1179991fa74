//! The REST API through the real router (no socket), and once through a
//! real server on 127.0.0.1.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use baton_core::api::{self, AppState, Auth, LinkInfo, ROUTES};
use baton_core::dispatch::{DispatchConfig, Dispatcher};
use baton_core::scheduler::{Scheduler, SchedulerConfig};
use baton_sandbox::{Sandbox, SandboxConfig};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::databases::{TestStore, sqlite};

struct Api {
    router: axum::Router,
    _db: TestStore,
}

async fn api_with(token: Option<&str>, max_artifact_bytes: usize) -> Api {
    let db = sqlite().await;
    let sandbox =
        Sandbox::new(&SandboxConfig { max_instances: 4, ..SandboxConfig::default() }).unwrap();
    let dispatcher = Dispatcher::new(db.store.clone(), DispatchConfig::default());
    let feed = baton_core::feed::Feed::new();
    let state = AppState {
        store: db.store.clone(),
        sandbox: Arc::new(sandbox),
        auth: Auth::new(token.map(str::to_owned)),
        max_artifact_bytes,
        automations: baton_core::automations::Automations::new(
            db.store.clone(),
            feed.clone(),
            dispatcher.clone(),
        ),
        subflows: baton_core::subflows::Subflows {
            store: db.store.clone(),
            dispatcher: dispatcher.clone(),
            feed: feed.clone(),
        },
        dispatcher,
        scheduler: Scheduler::new(db.store.clone(), SchedulerConfig::default()),
        feed,
        link: Some(LinkInfo {
            address: "127.0.0.1:4201".parse().unwrap(),
            fingerprint: "ab".repeat(32),
        }),
    };
    Api { router: api::router(state), _db: db }
}

async fn api() -> Api {
    api_with(None, 64 << 20).await
}

impl Api {
    async fn call(&self, method: Method, uri: &str, body: Body) -> (StatusCode, Value) {
        self.call_as(None, method, uri, body).await
    }

    /// A call with `Authorization: Bearer TOKEN` when `token` is given.
    async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        uri: &str,
        body: Body,
    ) -> (StatusCode, Value) {
        let mut request =
            Request::builder().method(method).uri(uri).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(body).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        // A live stream never ends: its head is the answer.
        if response.headers().get("content-type").is_some_and(|t| t == "text/event-stream") {
            return (status, Value::Null);
        }
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn json(&self, method: Method, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call(method, uri, Body::from(body.to_string())).await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, Body::empty()).await
    }

    /// A new API token with `scope` (on a core without --api-token).
    async fn token(&self, scope: &str) -> String {
        let (status, created) =
            self.json(Method::POST, "/api/api-tokens", json!({"scope": scope})).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created["token"].as_str().unwrap().to_owned()
    }

    /// Uploads `hello` and deploys it as `hello/default`.
    async fn deploy_hello(&self, spec: Value) -> Value {
        let (status, artifact) = self
            .call(Method::POST, "/api/artifacts", Body::from(baton_tests::flow_wasm("hello")))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{artifact}");
        let mut spec = spec;
        spec["artifact"] = artifact["digest"].clone();
        let (status, upserted) =
            self.json(Method::PUT, "/api/deployments/hello/default", spec).await;
        assert_eq!(status, StatusCode::CREATED, "{upserted}");
        upserted
    }
}

#[tokio::test]
async fn uploads_are_checked_stored_once_and_readable() {
    let api = api().await;
    let hello = baton_tests::flow_wasm("hello");
    let (status, artifact) =
        api.call(Method::POST, "/api/artifacts", Body::from(hello.clone())).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(artifact["flow"]["name"], "hello");
    assert_eq!(artifact["flow"]["parameters"]["required"], json!(["a", "b"]));
    let (status, _) = api.call(Method::POST, "/api/artifacts", Body::from(hello.clone())).await;
    assert_eq!(status, StatusCode::OK, "the same bytes again change nothing");
    let digest = artifact["digest"].as_str().unwrap();
    let request =
        Request::get(format!("/api/artifacts/{digest}/content")).body(Body::empty()).unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes().as_ref(), hello.as_slice());

    let (status, error) = api.call(Method::POST, "/api/artifacts", Body::from("not wasm")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["code"], "not_a_component");
    let (status, error) =
        api.call(Method::POST, "/api/artifacts", Body::from(b"\0asm\x0d\0\x01\0".to_vec())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["code"], "not_a_flow", "{error}");
}

#[tokio::test]
async fn a_flow_that_describes_itself_too_large_or_by_a_path_is_refused_at_upload() {
    let api = api().await;
    for (flow, expected) in [
        ("hostile-describe", "its parameter schema of 20.0 MiB exceeds the 256 KiB limit"),
        ("hostile-name", "its flow name `../../etc` must be"),
    ] {
        let wasm = baton_tests::flow_wasm(flow);
        let (status, error) = api.call(Method::POST, "/api/artifacts", Body::from(wasm)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{flow}: {error}");
        assert_eq!(error["code"], "not_a_flow");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(expected), "{flow}: {message}");
    }
}

#[tokio::test]
async fn an_oversized_upload_is_refused_with_the_limit() {
    let api = api_with(None, 1000).await;
    let (status, error) =
        api.call(Method::POST, "/api/artifacts", Body::from(vec![0_u8; 1500])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error["message"].as_str().unwrap().contains("over the limit of 1000 bytes"), "{error}");
    // Far over the limit, the body is not even read: still the API's
    // error, with the limit.
    let (status, error) =
        api.call(Method::POST, "/api/artifacts", Body::from(vec![0_u8; 50_000])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error["code"], "component_too_large", "{error}");
    assert!(error["message"].as_str().unwrap().contains("over the limit of 1000 bytes"), "{error}");
    // Any other body is limited to 2 MiB, answered likewise.
    let (status, error) = api
        .json(Method::POST, "/api/events", json!({"name": "x", "payload": "y".repeat(3 << 20)}))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error["code"], "too_large", "{error}");
    assert!(error["message"].as_str().unwrap().contains("over the limit of 2 MiB"), "{error}");
}

#[tokio::test]
async fn runs_are_created_validated_listed_driven_and_cancelled() {
    let api = api().await;
    api.deploy_hello(json!({"parameters": {"a": 1}, "tags": ["demo"]})).await;
    let (status, run) = api
        .json(Method::POST, "/api/deployments/hello/default/runs", json!({"parameters": {"b": 2}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    assert_eq!(run["state"], "SCHEDULED");
    assert_eq!(run["parameters"], json!({"a": 1, "b": 2}));
    let id = run["id"].as_str().unwrap().to_owned();

    let (status, error) = api
        .json(
            Method::POST,
            "/api/deployments/hello/default/runs",
            json!({"parameters": {"b": "two"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["code"], "invalid_parameters");
    assert_eq!(error["fields"][0]["field"], "b", "{error}");

    let (status, error) = api
        .json(Method::POST, "/api/deployments/hello/default/runs", json!({"paramters": {}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(error["message"].as_str().unwrap().contains("paramters"), "{error}");

    for (state, expected) in
        [("COMPLETED", "rejected"), ("PENDING", "accepted"), ("RUNNING", "accepted")]
    {
        let (status, transition) =
            api.json(Method::POST, &format!("/api/runs/{id}/state"), json!({"state": state})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(transition["verdict"], expected, "{state}: {transition}");
    }
    let (_, cancelled) = api.json(Method::POST, &format!("/api/runs/{id}/cancel"), json!({})).await;
    assert_eq!(cancelled["run"]["state"], "CANCELLING");

    let (status, page) = api.get("/api/runs?state=CANCELLING&deployment=hello/default").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (status, error) = api.get("/api/runs?state=DONE").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error["message"].as_str().unwrap().contains("unknown state `DONE`"));

    let (_, detail) = api.get(&format!("/api/runs/{id}")).await;
    let states: Vec<&str> =
        detail["states"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["SCHEDULED", "PENDING", "RUNNING", "CANCELLING"]);
    let (status, _) = api.get("/api/runs/no-such-run").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A bad query string is answered in the API's JSON, not plain text.
    let (status, error) = api.get("/api/runs?limit=many").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["code"], "bad_request", "{error}");
    assert!(error["message"].as_str().unwrap().contains("limit"), "{error}");
}

#[tokio::test]
async fn every_documented_route_exists() {
    let api = api().await;
    for route in ROUTES {
        let uri = route
            .path
            .replace("{flow}", "hello")
            .replace("{name}", "x")
            .replace("{queue}", "q")
            .replace("{id}", "r")
            .replace("{digest}", "d")
            .replace("{slug}", "s");
        let method = Method::from_bytes(route.method.to_ascii_uppercase().as_bytes()).unwrap();
        let (status, body) = api.json(method, &uri, json!({})).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{} {uri}", route.method);
        if status == StatusCode::NOT_FOUND {
            assert_ne!(
                body["message"], "no such endpoint; see /api/openapi.json",
                "{} {uri}",
                route.method
            );
        }
    }
    let (status, document) = api.get("/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        document["paths"].as_object().unwrap().len(),
        ROUTES.iter().map(|r| r.path).collect::<std::collections::BTreeSet<_>>().len()
    );
    // Every schema reference resolves, and the bodies are described.
    fn refs(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(fields) => {
                if let Some(Value::String(target)) = fields.get("$ref") {
                    found.push(target.clone());
                }
                fields.values().for_each(|v| refs(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    refs(&document, &mut found);
    assert!(found.len() > 20, "{found:?}");
    for target in &found {
        let pointer = target.strip_prefix('#').unwrap();
        assert!(document.pointer(pointer).is_some(), "unresolved {target}");
    }
    let run = &document["components"]["schemas"]["FlowRun"];
    assert_eq!(run["properties"]["state"]["$ref"], "#/components/schemas/StateName", "{run}");
    let create = &document["paths"]["/api/deployments/{flow}/{name}/runs"]["post"];
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreateRun"
    );
    // A person reads this document: changes to it are reviewed as a diff.
    baton_tests::assert_snapshot("openapi", &serde_json::to_string_pretty(&document).unwrap());
    let (status, _) = api.get("/api/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_token_guards_everything_but_health() {
    let api = api_with(Some("t0ken"), 1 << 20).await;
    assert_eq!(api.get("/api/health").await.0, StatusCode::OK);
    let (status, error) = api.get("/api/deployments").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error["code"], "unauthorized");
    let request = Request::get("/api/deployments")
        .header("authorization", "Bearer t0ken")
        .body(Body::empty())
        .unwrap();
    assert_eq!(api.router.clone().oneshot(request).await.unwrap().status(), StatusCode::OK);
    let request = Request::get("/api/deployments")
        .header("authorization", "Bearer t0kem")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        api.router.clone().oneshot(request).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn secrets_are_listed_without_values_and_read_only_by_an_admin_token() {
    let api = api().await;
    let (status, _) = api.json(Method::PUT, "/api/secrets/token", json!({"value": "s3cr3t"})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, listed) = api.get("/api/secrets").await;
    assert!(!listed.to_string().contains("s3cr3t"), "{listed}");
    // A core without --api-token takes callers without a token, but gives
    // them no secret value.
    let (status, refused) = api.get("/api/secrets/token").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(!refused.to_string().contains("s3cr3t"), "{refused}");
    let admin = api.token("admin").await;
    let (status, value) =
        api.call_as(Some(&admin), Method::GET, "/api/secrets/token", Body::empty()).await;
    assert_eq!((status, &value["value"]), (StatusCode::OK, &json!("s3cr3t")));
}

#[tokio::test]
async fn api_tokens_may_do_what_their_scope_says_until_revoked() {
    let api = api_with(Some("t0ken"), 1 << 20).await;
    let as_admin = |method, uri: &'static str, body: Value| {
        api.call_as(Some("t0ken"), method, uri, Body::from(body.to_string()))
    };
    let (status, _) = as_admin(Method::PUT, "/api/secrets/key", json!({"value": "s3cr3t"})).await;
    assert_eq!(status, StatusCode::OK);
    let mut tokens = Vec::new();
    for scope in ["read", "run", "admin"] {
        let (status, created) =
            as_admin(Method::POST, "/api/api-tokens", json!({"scope": scope, "name": scope})).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["scope"], scope);
        tokens.push(created["token"].as_str().unwrap().to_owned());
    }
    let [read, run, admin] = [&tokens[0], &tokens[1], &tokens[2]].map(|t| Some(t.as_str()));
    // A name is a name: at most 100 characters.
    let long = "n".repeat(101);
    let (status, refused) =
        as_admin(Method::POST, "/api/api-tokens", json!({"scope": "read", "name": long})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let (status, _) = as_admin(
        Method::POST,
        "/api/api-tokens",
        json!({"scope": "read", "name": "n".repeat(100)}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // (token, method, path, expected status): each scope's edge.
    let run_body = json!({"parameters": {}});
    let cases = [
        (None, Method::GET, "/api/runs", StatusCode::UNAUTHORIZED),
        (None, Method::GET, "/api/secrets/key", StatusCode::UNAUTHORIZED),
        (Some("baton-api.nope.nope"), Method::GET, "/api/runs", StatusCode::UNAUTHORIZED),
        (read, Method::GET, "/api/runs", StatusCode::OK),
        (read, Method::GET, "/api/secrets", StatusCode::OK),
        (read, Method::GET, "/api/secrets/key", StatusCode::FORBIDDEN),
        (read, Method::POST, "/api/deployments/hello/default/runs", StatusCode::FORBIDDEN),
        (read, Method::GET, "/api/api-tokens", StatusCode::FORBIDDEN),
        // Past the check: no such deployment.
        (run, Method::POST, "/api/deployments/hello/default/runs", StatusCode::NOT_FOUND),
        (run, Method::GET, "/api/secrets/key", StatusCode::FORBIDDEN),
        (run, Method::PUT, "/api/secrets/key", StatusCode::FORBIDDEN),
        (admin, Method::GET, "/api/secrets/key", StatusCode::OK),
        (admin, Method::GET, "/api/api-tokens", StatusCode::OK),
    ];
    for (token, method, path, expected) in cases {
        let body =
            if method == Method::GET { Body::empty() } else { Body::from(run_body.to_string()) };
        let (status, answer) = api.call_as(token, method.clone(), path, body).await;
        assert_eq!(status, expected, "{token:?} {method} {path}: {answer}");
        if path == "/api/secrets/key" && status != StatusCode::OK {
            assert!(!answer.to_string().contains("s3cr3t"), "{answer}");
        }
    }
    // Listed with their scopes, never their secrets.
    let (_, listed) = as_admin(Method::GET, "/api/api-tokens", Value::Null).await;
    assert_eq!(listed.as_array().unwrap().len(), 4, "{listed}");
    for token in &tokens {
        let secret = token.rsplit('.').next().unwrap();
        assert!(!listed.to_string().contains(secret), "{listed}");
    }
    // Revoked: refused at once.
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    let (status, _) = api
        .call_as(Some("t0ken"), Method::DELETE, &format!("/api/api-tokens/{id}"), Body::empty())
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api.call_as(read, Method::GET, "/api/runs", Body::empty()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_real_server_answers_on_loopback_and_refuses_open_addresses_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = baton_core::server::ServerConfig::new(
        dir.path().to_owned(),
        "127.0.0.1:0".parse().unwrap(),
    );
    let server = baton_core::server::Server::start(config).await.unwrap();
    let address = server.address;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"database\":\"sqlite\""), "{response}");
    server.stop();
    server.wait().await.unwrap();
    assert!(dir.path().join("baton.db").exists());

    let open =
        baton_core::server::ServerConfig::new(dir.path().to_owned(), "0.0.0.0:0".parse().unwrap());
    let error = baton_core::server::Server::start(open).await.err().unwrap();
    assert!(error.to_string().contains("without an API token"), "{error}");

    // An empty token would be matched by an empty `Bearer` header.
    let mut empty =
        baton_core::server::ServerConfig::new(dir.path().to_owned(), "0.0.0.0:0".parse().unwrap());
    empty.api_token = Some("  ".to_owned());
    let error = baton_core::server::Server::start(empty).await.err().unwrap();
    assert!(error.to_string().contains("the API token is empty"), "{error}");
}

#[tokio::test]
async fn the_event_stream_takes_the_token_in_its_query_and_nothing_else_does() {
    let api = api_with(Some("t0ken"), 1 << 20).await;
    assert_eq!(api.get("/api/events/stream?token=t0ken").await.0, StatusCode::OK);
    assert_eq!(api.get("/api/events/stream?token=wrong").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(api.get("/api/deployments?token=t0ken").await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn run_stats_count_runs_by_state_per_bucket_of_their_scheduled_time() {
    let api = api().await;
    api.deploy_hello(json!({"parameters": {"a": 1, "b": 2}})).await;
    let hour = 3_600_000i64;
    let since = 1_800_000_000_000i64;
    for (offset, count) in [(0, 2), (2 * hour + 5, 1)] {
        for _ in 0..count {
            let body = json!({"scheduled_at": since + offset});
            let (status, run) =
                api.json(Method::POST, "/api/deployments/hello/default/runs", body).await;
            assert_eq!(status, StatusCode::CREATED, "{run}");
        }
    }
    let (status, stats) = api
        .get(&format!(
            "/api/runs/stats?since={since}&until={}&bucket_seconds=3600",
            since + 3 * hour
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let buckets = stats["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 3, "every bucket, empty ones too: {stats}");
    assert_eq!(buckets[0]["start"], since);
    assert_eq!(buckets[0]["counts"], json!([{"state": "SCHEDULED", "count": 2}]));
    assert_eq!(buckets[1]["counts"], json!([]));
    assert_eq!(buckets[2]["counts"], json!([{"state": "SCHEDULED", "count": 1}]));
    // Bounded: too many buckets is refused, not computed.
    let (status, error) =
        api.get(&format!("/api/runs/stats?since=0&until={since}&bucket_seconds=60")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error["message"].as_str().unwrap().contains("at most 1000"), "{error}");
}

#[tokio::test]
async fn the_ui_is_served_at_every_page_path_and_api_paths_stay_json() {
    let api = api().await;
    let page = |path: &'static str, gzip: bool| {
        let router = api.router.clone();
        async move {
            let mut request = Request::get(path);
            if gzip {
                request = request.header("accept-encoding", "br, gzip");
            }
            router.oneshot(request.body(Body::empty()).unwrap()).await.unwrap()
        }
    };
    let index = baton_web::index();
    for path in ["/", "/runs/0192-abc", "/deployments/hello/default", "/work-pools"] {
        let response = page(path, false).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()["content-type"], index.content_type);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], index.body, "{path} is not the UI's page");
    }
    // The page compressed when the browser takes it, and revalidated by tag.
    let response = page("/", true).await;
    if !index.gzip.is_empty() {
        assert_eq!(response.headers()["content-encoding"], "gzip");
    }
    let request =
        Request::get("/").header("if-none-match", index.etag).body(Body::empty()).unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    // Unknown API paths and other methods are the API's 404.
    let (status, error) = api.get("/api/no-such-thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], "not_found");
    let (status, _) = api.json(Method::POST, "/runs/x", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_run_s_logs_stream_as_they_are_written_and_end_with_the_run() {
    let api = api().await;
    api.deploy_hello(json!({"parameters": {"a": 1, "b": 2}})).await;
    let (_, run) = api.json(Method::POST, "/api/deployments/hello/default/runs", json!({})).await;
    let id = run["id"].as_str().unwrap().to_owned();
    let line =
        |seq: u64, message: &str| json!({"seq": seq, "at": 1, "level": "info", "message": message});
    let (status, _) =
        api.json(Method::POST, &format!("/api/runs/{id}/logs"), json!([line(1, "first")])).await;
    assert_eq!(status, StatusCode::OK);

    // While the run lives, the stream stays open and sends what comes.
    let request = Request::get(format!("/api/runs/{id}/logs/stream")).body(Body::empty()).unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut seen = String::new();
    let mut wrote_second = false;
    while !seen.contains("second") {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
            .await
            .expect("the stream went quiet")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
        if seen.contains("first") && !wrote_second {
            wrote_second = true;
            api.json(Method::POST, &format!("/api/runs/{id}/logs"), json!([line(2, "second")]))
                .await;
        }
    }
    // An event's id is the line's position (attempt << 32 | seq), the cursor
    // a reconnecting browser sends back.
    let position = |seq: u64| (1u64 << 32) | seq;
    assert!(
        seen.contains("event: logs") && seen.contains(&format!("id: {}", position(2))),
        "{seen}"
    );

    // Once the run has ended, the stream sends what is left and ends; a
    // reconnecting browser's Last-Event-ID picks up after that line.
    api.json(Method::POST, &format!("/api/runs/{id}/cancel"), json!({})).await;
    let request = Request::get(format!("/api/runs/{id}/logs/stream"))
        .header("last-event-id", position(1).to_string())
        .body(Body::empty())
        .unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    let all =
        tokio::time::timeout(std::time::Duration::from_secs(5), response.into_body().collect())
            .await
            .expect("the stream of an ended run did not end")
            .unwrap()
            .to_bytes();
    let all = String::from_utf8_lossy(&all);
    assert!(all.contains("second") && !all.contains("first"), "{all}");
    assert!(all.trim_end().ends_with("event: end\ndata: ended"), "{all}");
    let (status, _) = api.get("/api/runs/no-such-run/logs/stream").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn errors_axum_answers_itself_are_json_too() {
    let api = api().await;
    // A path segment that is not UTF-8.
    let (status, error) = api.get("/api/runs/%FF%FE").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["code"], "bad_request", "{error}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
    // A method the route lacks.
    let request = Request::patch("/api/runs").body(Body::empty()).unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers().contains_key("allow"), "{:?}", response.headers());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let error: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(error["code"], "method_not_allowed", "{error}");
}

/// What Schemathesis found (tests/e2e/api_fuzz.rs): the server takes a
/// body as its JSON Schema in the OpenAPI document says, no more, no less.
#[tokio::test]
async fn bodies_and_queries_are_taken_as_the_openapi_document_describes_them() {
    let api = api().await;
    // JSON Schema counts `2.0` as an integer; serde alone refused it.
    let (status, pool) = api
        .json(Method::POST, "/api/pools", json!({"name": "fuzzed", "concurrency_limit": 3.0}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{pool}");
    assert_eq!(pool["concurrency_limit"], 3);
    let (status, error) =
        api.json(Method::PUT, "/api/pools/fuzzed/queues/q", json!({"priority": 2.5})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(error["message"].as_str().unwrap().contains("priority"), "{error}");
    // An array is not an object, even where serde would take one for a
    // struct whose fields all have defaults.
    let (status, error) = api.json(Method::POST, "/api/runs/skip-late", json!([])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["message"], "the body must be object, not array");
    let deployed = api.deploy_hello(json!({})).await;
    let digest = deployed["deployment"]["artifact"].clone();
    let (status, error) = api
        .json(
            Method::PUT,
            "/api/deployments/hello/default",
            json!({"artifact": digest, "capabilities": []}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["message"], "`capabilities` must be object, not array");
    // Not JSON at all.
    let request = Request::post("/api/runs/skip-late").body(Body::from("{}")).unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // State names exactly as documented; an empty list is no list.
    for query in ["state=", "state=failed", "state=FAILED,"] {
        let (status, error) = api.get(&format!("/api/runs?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {error}");
    }
    let (status, _) = api.get("/api/runs?state=FAILED,COMPLETED").await;
    assert_eq!(status, StatusCode::OK);
    // A range with nothing in it has no buckets.
    let (status, stats) = api.get("/api/runs/stats?since=2000&until=1000").await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["buckets"], json!([]));
}

/// A pool's type and its base job template: its type's default when none
/// is given, a given one checked.
#[tokio::test]
async fn pools_get_their_type_s_job_template_and_a_given_one_is_checked() {
    let api = api().await;
    let (status, pool) =
        api.json(Method::POST, "/api/pools", json!({"name": "big", "type": "container"})).await;
    assert_eq!(status, StatusCode::CREATED, "{pool}");
    assert_eq!(pool["type"], "container");
    let variables = &pool["base_job_template"]["variables"]["properties"];
    assert_eq!(variables["network_mode"]["default"], "none", "{pool}");
    assert!(variables["memory_mib"].is_object(), "{pool}");
    // `kind`, as earlier clients wrote it, is read too.
    let (status, pool) =
        api.json(Method::POST, "/api/pools", json!({"name": "k8s", "kind": "kubernetes"})).await;
    assert_eq!(status, StatusCode::CREATED, "{pool}");
    assert_eq!(
        pool["base_job_template"]["variables"]["properties"]["namespace"]["default"],
        "default"
    );
    let custom = json!({"variables": {"type": "object", "properties": {"image": {"type": "string", "default": "acme/flows:1"}}}});
    let (status, pool) = api
        .json(
            Method::POST,
            "/api/pools",
            json!({"name": "own", "type": "container", "base_job_template": custom}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{pool}");
    assert_eq!(pool["base_job_template"], custom);
    for (template, named) in [
        (json!({"image": "x"}), "needs `variables`"),
        (
            json!({"variables": {"type": "object", "properties": {"a": {"type": 7}}}}),
            "not a valid JSON schema",
        ),
        (
            json!({"variables": {"properties": {"a": {"type": "integer", "default": "one"}}}}),
            "job variable `a`",
        ),
    ] {
        let (status, error) = api
            .json(Method::POST, "/api/pools", json!({"name": "bad", "base_job_template": template}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        assert!(error["message"].as_str().unwrap().contains(named), "{error}");
    }
    // A deployment's job variables are checked against its pool's template.
    let deployed = api
        .deploy_hello(json!({"work_pool": "big", "job_variables": {"image": "acme/flows:1"}}))
        .await;
    assert_eq!(deployed["deployment"]["job_variables"]["image"], "acme/flows:1");
    let digest = deployed["deployment"]["artifact"].clone();
    for (spec, named) in [
        (
            json!({"work_pool": "big", "job_variables": {"memory_mib": "lots"}}),
            "job variable `memory_mib`",
        ),
        // No pool named: the `default` pool's, a wasm pool's, has no image.
        (json!({"job_variables": {"image": "acme/flows:1"}}), "image"),
    ] {
        let mut spec = spec;
        spec["artifact"] = digest.clone();
        let (status, error) = api.json(Method::PUT, "/api/deployments/hello/default", spec).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        assert!(error["message"].as_str().unwrap().contains(named), "{error}");
    }
}

#[tokio::test]
async fn an_automation_is_put_checked_by_a_dry_run_and_replaced_by_name() {
    let api = api().await;
    let spec = |event: &str, within: Value| {
        json!({"name": "watch", "trigger": {"proactive": {"event": event, "within": within}},
            "actions": [{"cancel-run": {}}]})
    };
    let (status, error) =
        api.json(Method::PUT, "/api/automations/watch?dry_run=true", spec("run.*", json!(0))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert!(error["message"].as_str().unwrap().contains("needs `within`"), "{error}");
    let (status, _) = api
        .json(Method::PUT, "/api/automations/watch?dry_run=true", spec("run.*", json!("1h")))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, listed) = api.get("/api/automations").await;
    assert_eq!(listed, json!([]), "a dry run wrote");
    let (status, made) =
        api.json(Method::PUT, "/api/automations/watch", spec("run.*", json!("1h"))).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let (status, replaced) =
        api.json(Method::PUT, "/api/automations/watch", spec("run.failed", json!(60))).await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["id"], made["id"]);
    assert_eq!(replaced["trigger"]["proactive"]["event"], "run.failed");
    assert_eq!(replaced["trigger"]["proactive"]["within"], 60);
}
