//! One function per endpoint; each turns HTTP into a store call and back.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use tokio::sync::broadcast;

use crate::feed::name_matches;
use baton_proto::v1::link::AgentToken;
use baton_proto::v1::{
    AgentInfo, AgentTokenCreated, Artifact, Automation, AutomationSpec, CreateAgentToken,
    CreateRun, Deployment, DeploymentSpec, DeploymentUpserted, EmitEvent, Event, FlowRun,
    FlowRunDetail, Health, LogLine, Page, PoolSpec, ProposeState, QueueSpec, RunBucket, RunStats,
    SIGNATURE_HEADER, Schedule, ScheduleSpec, SecretInfo, SecretValue, SetValue, SkipLate, Skipped,
    StateCount, StateName, Timestamp, Transition, Variable, Webhook, WebhookSpec, WorkPool,
    WorkQueue,
};
use serde::Deserialize;

use super::{ApiFailure, ApiResult, AppState};
use crate::store::{DeploymentFilter, EventFilter, RunFilter, StoreError, now};

/// The body, or a 400 that says what is wrong with it.
fn body<T>(payload: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    payload
        .map(|Json(value)| value)
        .map_err(|rejection| ApiFailure::bad_request(rejection.body_text()))
}

/// How long `/api/health` waits for the database: it answers within its
/// own time even while the database does not.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let store = match tokio::time::timeout(HEALTH_TIMEOUT, state.store.ping()).await {
        Err(_) => "unreachable",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: the database failed");
            "failing"
        }
        Ok(Ok(())) if state.store.is_full() => "full",
        Ok(Ok(())) => "ok",
    };
    let ok = store == "ok";
    let health = Health {
        status: if ok { "ok" } else { "degraded" }.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        database: format!("{:?}", state.store.dialect()).to_lowercase(),
        store: store.to_owned(),
        core_id: state.dispatcher.core_id().to_owned(),
    };
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(health))
}

pub async fn openapi_document() -> Json<serde_json::Value> {
    Json(super::document())
}

/// `sha256:<hex>` whether or not the prefix was given.
fn digest(raw: &str) -> String {
    if raw.starts_with("sha256:") { raw.to_owned() } else { format!("sha256:{raw}") }
}

pub async fn upload_artifact(
    State(state): State<AppState>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<Artifact>)> {
    if bytes.len() > state.max_artifact_bytes {
        return Err(baton_sandbox::LoadError::TooLarge {
            size: bytes.len(),
            limit: state.max_artifact_bytes,
        }
        .into());
    }
    let sandbox = state.sandbox.clone();
    let wasm = bytes.clone();
    // Compiling is CPU work; keep it off the async workers.
    let flow = tokio::task::spawn_blocking(move || sandbox.load(&wasm)).await.map_err(|e| {
        ApiFailure::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    })??;
    let info = state.sandbox.describe(&flow).await?;
    let (artifact, created) =
        state.store.put_artifact(&format!("sha256:{}", flow.digest()), &info, &bytes).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(artifact)))
}

pub async fn artifact_info(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> ApiResult<Json<Artifact>> {
    Ok(Json(state.store.artifact(&digest(&raw)).await?))
}

pub async fn artifact_content(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let bytes = state.store.artifact_bytes(&digest(&raw)).await?;
    Ok(([(header::CONTENT_TYPE, "application/wasm")], bytes))
}

#[derive(Deserialize)]
pub struct DeploymentQuery {
    flow: Option<String>,
    tag: Option<String>,
    paused: Option<bool>,
}

pub async fn list_deployments(
    State(state): State<AppState>,
    Query(query): Query<DeploymentQuery>,
) -> ApiResult<Json<Vec<Deployment>>> {
    let filter = DeploymentFilter { flow: query.flow, tag: query.tag, paused: query.paused };
    Ok(Json(state.store.deployments(&filter).await?))
}

pub async fn upsert_deployment(
    State(state): State<AppState>,
    Path((flow, name)): Path<(String, String)>,
    payload: Result<Json<DeploymentSpec>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<DeploymentUpserted>)> {
    let spec = body(payload)?;
    if spec.artifact.is_empty() {
        return Err(ApiFailure::bad_request(
            "`artifact` (the digest of an uploaded component) is required",
        ));
    }
    let artifact = state.store.artifact(&digest(&spec.artifact)).await?;
    let spec = DeploymentSpec { artifact: artifact.digest.clone(), ..spec };
    let upserted = state.store.upsert_deployment(&flow, &name, spec, &artifact).await?;
    Ok((if upserted.created { StatusCode::CREATED } else { StatusCode::OK }, Json(upserted)))
}

pub async fn get_deployment(
    State(state): State<AppState>,
    Path((flow, name)): Path<(String, String)>,
) -> ApiResult<Json<Deployment>> {
    Ok(Json(state.store.deployment(&flow, &name).await?))
}

pub async fn delete_deployment(
    State(state): State<AppState>,
    Path((flow, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.store.delete_deployment(&flow, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_schedules(
    State(state): State<AppState>,
    Path((flow, name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<Schedule>>> {
    Ok(Json(state.store.schedules(&flow, &name).await?))
}

/// A deployment's schedule by id, as listed.
async fn schedule_of(
    state: &AppState,
    flow: &str,
    name: &str,
    id: &str,
) -> ApiResult<Json<Schedule>> {
    let schedules = state.store.schedules(flow, name).await?;
    schedules
        .into_iter()
        .find(|s| s.id == id)
        .map(Json)
        .ok_or_else(|| StoreError::not_found(format!("schedule {id} of {flow}/{name}")).into())
}

pub async fn add_schedule(
    State(state): State<AppState>,
    Path((flow, name)): Path<(String, String)>,
    payload: Result<Json<ScheduleSpec>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Schedule>)> {
    let id = state.store.add_schedule(&flow, &name, body(payload)?).await?;
    state.scheduler.wake();
    Ok((StatusCode::CREATED, schedule_of(&state, &flow, &name, &id).await?))
}

pub async fn pause_schedule(
    State(state): State<AppState>,
    Path((flow, name, id)): Path<(String, String, String)>,
) -> ApiResult<Json<Schedule>> {
    state.store.set_schedule_active(&flow, &name, &id, false).await?;
    state.scheduler.wake();
    schedule_of(&state, &flow, &name, &id).await
}

pub async fn resume_schedule(
    State(state): State<AppState>,
    Path((flow, name, id)): Path<(String, String, String)>,
) -> ApiResult<Json<Schedule>> {
    state.store.set_schedule_active(&flow, &name, &id, true).await?;
    state.scheduler.wake();
    schedule_of(&state, &flow, &name, &id).await
}

pub async fn delete_schedule(
    State(state): State<AppState>,
    Path((flow, name, id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    state.store.delete_schedule(&flow, &name, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn skip_late(
    State(state): State<AppState>,
    payload: Result<Json<SkipLate>, JsonRejection>,
) -> ApiResult<Json<Skipped>> {
    let request = body(payload)?;
    let deployment = match &request.deployment {
        Some(full) => Some(full.split_once('/').ok_or_else(|| {
            ApiFailure::bad_request(format!("deployment `{full}` is not FLOW/DEPLOYMENT"))
        })?),
        None => None,
    };
    Ok(Json(Skipped { skipped: state.store.skip_late(deployment).await? }))
}

pub async fn pause_deployment(
    State(state): State<AppState>,
    Path((flow, name)): Path<(String, String)>,
) -> ApiResult<Json<Deployment>> {
    Ok(Json(state.store.set_deployment_paused(&flow, &name, true).await?))
}

pub async fn resume_deployment(
    State(state): State<AppState>,
    Path((flow, name)): Path<(String, String)>,
) -> ApiResult<Json<Deployment>> {
    Ok(Json(state.store.set_deployment_paused(&flow, &name, false).await?))
}

pub async fn create_run(
    State(state): State<AppState>,
    Path((flow, name)): Path<(String, String)>,
    payload: Result<Json<CreateRun>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<FlowRun>)> {
    let (run, created) = state.store.create_run(&flow, &name, body(payload)?).await?;
    state.dispatcher.wake();
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(run)))
}

#[derive(Deserialize)]
pub struct RunQuery {
    /// Comma-separated state names.
    state: Option<String>,
    /// `flow/name`.
    deployment: Option<String>,
    flow: Option<String>,
    tag: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub struct StatsQuery {
    since: i64,
    until: Option<i64>,
    #[serde(default = "hourly")]
    bucket_seconds: u64,
}

fn hourly() -> u64 {
    3600
}

/// Most buckets one stats answer has.
const MAX_BUCKETS: i64 = 1000;

/// `GET /api/runs/stats`: runs by state per time bucket, for charts.
pub async fn run_stats(
    State(state): State<AppState>,
    Query(query): Query<StatsQuery>,
) -> ApiResult<Json<RunStats>> {
    let until = query.until.unwrap_or_else(|| now().0);
    let bucket = i64::try_from(query.bucket_seconds).unwrap_or(i64::MAX).saturating_mul(1000);
    if bucket < 1000 || until <= query.since {
        return Err(ApiFailure::bad_request("want since < until and bucket_seconds >= 1"));
    }
    let count = (until - query.since + bucket - 1) / bucket;
    if count > MAX_BUCKETS {
        return Err(ApiFailure::bad_request(format!(
            "{count} buckets asked for; at most {MAX_BUCKETS} (widen bucket_seconds)"
        )));
    }
    let mut buckets: Vec<RunBucket> = (0..count)
        .map(|i| RunBucket { start: Timestamp(query.since + i * bucket), counts: Vec::new() })
        .collect();
    let counts = state.store.run_counts(Timestamp(query.since), Timestamp(until), bucket).await?;
    for (index, run_state, count) in counts {
        if let Some(b) = usize::try_from(index).ok().and_then(|i| buckets.get_mut(i)) {
            b.counts.push(StateCount { state: run_state, count });
        }
    }
    Ok(Json(RunStats {
        since: Timestamp(query.since),
        until: Timestamp(until),
        bucket_seconds: query.bucket_seconds,
        buckets,
    }))
}

pub async fn list_runs(
    State(state): State<AppState>,
    Query(query): Query<RunQuery>,
) -> ApiResult<Json<Page<FlowRun>>> {
    let states = match &query.state {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(str::parse::<StateName>)
            .collect::<Result<_, _>>()
            .map_err(|e| ApiFailure::bad_request(e.to_string()))?,
    };
    let deployment_id = match &query.deployment {
        None => None,
        Some(full) => {
            let (flow, name) = full.split_once('/').ok_or_else(|| {
                ApiFailure::bad_request(format!("deployment `{full}` is not FLOW/NAME"))
            })?;
            Some(state.store.deployment(flow, name).await?.id)
        }
    };
    let filter = RunFilter {
        states,
        deployment_id,
        flow: query.flow,
        tag: query.tag,
        since: query.since.map(Timestamp),
        until: query.until.map(Timestamp),
        cursor: query.cursor,
        limit: query.limit.unwrap_or(50),
    };
    Ok(Json(state.store.runs(&filter).await?))
}

pub async fn get_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<FlowRunDetail>> {
    Ok(Json(state.store.run_detail(&id).await?))
}

pub async fn propose_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
    payload: Result<Json<ProposeState>, JsonRejection>,
) -> ApiResult<Json<Transition>> {
    Ok(Json(state.store.propose_state(&id, body(payload)?).await?))
}

pub async fn cancel_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Transition>> {
    Ok(Json(state.dispatcher.cancel_run(&id).await?))
}

#[derive(Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    after: u64,
    limit: Option<u32>,
}

pub async fn get_logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<LogQuery>,
) -> ApiResult<Json<Vec<LogLine>>> {
    Ok(Json(state.store.logs(&id, query.after, query.limit.unwrap_or(1000)).await?))
}

/// Most log lines one stream event carries.
const LOG_BATCH: u32 = 500;

/// `GET /api/runs/{id}/logs/stream`: the run's log lines after `after` (or
/// the `Last-Event-ID` a reconnecting browser sends) as server-sent events
/// of `logs` (a JSON array), read again after each write to the store, and
/// an `end` event once the run has ended and every line was sent.
pub async fn stream_logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<LogQuery>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl futures_util::Stream<Item = Result<SseEvent, std::convert::Infallible>>>> {
    state.store.run(&id).await?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(query.after);
    let start = LogTail {
        store: state.store.clone(),
        writes: state.store.writes(),
        id,
        after,
        ended: false,
    };
    let stream = futures_util::stream::unfold(start, |mut tail| async move {
        if tail.ended {
            return None;
        }
        let event = tail.next().await;
        Some((Ok(event), tail))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Where a log stream stands.
struct LogTail {
    store: crate::store::Store,
    writes: tokio::sync::watch::Receiver<u64>,
    id: String,
    after: u64,
    ended: bool,
}

impl LogTail {
    /// The next event: new lines as soon as there are some, or the end.
    async fn next(&mut self) -> SseEvent {
        loop {
            // The state first: lines are written before a run's final
            // state, so once it reads ended, the read after it has them all.
            let ended = self.store.run(&self.id).await.map_or(true, |run| run.state.is_terminal());
            let lines = self.store.logs(&self.id, self.after, LOG_BATCH).await.unwrap_or_default();
            if let Some(last) = lines.last() {
                self.after = last.position();
                let data = serde_json::to_string(&lines).unwrap_or_default();
                return SseEvent::default().id(self.after.to_string()).event("logs").data(data);
            }
            if ended {
                self.ended = true;
                // Browsers drop an event without data.
                return SseEvent::default().event("end").data("ended");
            }
            tokio::select! {
                _ = self.writes.changed() => {}
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
            // At most a few reads a second per stream, however busy the
            // store is.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

pub async fn append_logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    payload: Result<Json<Vec<LogLine>>, JsonRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let stored = state.store.append_logs(&id, body(payload)?).await?;
    Ok(Json(serde_json::json!({ "stored": stored })))
}

pub async fn list_pools(State(state): State<AppState>) -> ApiResult<Json<Vec<WorkPool>>> {
    Ok(Json(state.store.pools().await?))
}

pub async fn create_pool(
    State(state): State<AppState>,
    payload: Result<Json<PoolSpec>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<WorkPool>)> {
    Ok((StatusCode::CREATED, Json(state.store.create_pool(body(payload)?).await?)))
}

pub async fn get_pool(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<WorkPool>> {
    Ok(Json(state.store.pool(&name).await?))
}

pub async fn delete_pool(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_pool(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn pause_pool(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<WorkPool>> {
    Ok(Json(state.store.set_pool_paused(&name, true).await?))
}

pub async fn resume_pool(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<WorkPool>> {
    Ok(Json(state.store.set_pool_paused(&name, false).await?))
}

pub async fn upsert_queue(
    State(state): State<AppState>,
    Path((pool, queue)): Path<(String, String)>,
    payload: Result<Json<QueueSpec>, JsonRejection>,
) -> ApiResult<Json<WorkPool>> {
    let spec = body(payload)?;
    let queue = WorkQueue {
        name: queue,
        priority: spec.priority,
        concurrency_limit: spec.concurrency_limit,
        paused: spec.paused,
    };
    Ok(Json(state.store.upsert_queue(&pool, &queue).await?))
}

pub async fn list_variables(State(state): State<AppState>) -> ApiResult<Json<Vec<Variable>>> {
    Ok(Json(state.store.variables().await?))
}

pub async fn set_variable(
    State(state): State<AppState>,
    Path(name): Path<String>,
    payload: Result<Json<SetValue>, JsonRejection>,
) -> ApiResult<Json<Variable>> {
    Ok(Json(state.store.set_variable(&name, &body(payload)?.value).await?))
}

pub async fn get_variable(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Variable>> {
    Ok(Json(state.store.variable(&name).await?))
}

pub async fn delete_variable(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_variable(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_secrets(State(state): State<AppState>) -> ApiResult<Json<Vec<SecretInfo>>> {
    Ok(Json(state.store.secrets().await?))
}

pub async fn set_secret(
    State(state): State<AppState>,
    Path(name): Path<String>,
    payload: Result<Json<SetValue>, JsonRejection>,
) -> ApiResult<Json<SecretInfo>> {
    Ok(Json(state.store.set_secret(&name, &body(payload)?.value).await?))
}

pub async fn get_secret(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<SecretValue>> {
    let value = state.store.secret(&name).await?;
    Ok(Json(SecretValue { name, value }))
}

pub async fn delete_secret(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_secret(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Clone, Deserialize)]
pub struct EventQuery {
    name: Option<String>,
    resource: Option<String>,
    since: Option<i64>,
    limit: Option<u32>,
}

pub async fn list_events(
    State(state): State<AppState>,
    Query(query): Query<EventQuery>,
) -> ApiResult<Json<Vec<Event>>> {
    let filter = EventFilter {
        name: query.name,
        resource: query.resource,
        since: query.since.map(Timestamp),
        limit: query.limit.unwrap_or(100),
    };
    Ok(Json(state.store.events(&filter).await?))
}

pub async fn emit_event(
    State(state): State<AppState>,
    payload: Result<Json<EmitEvent>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Event>)> {
    let event = body(payload)?;
    if event.name.is_empty() || event.name.contains('*') {
        return Err(ApiFailure::bad_request("an event name must be non-empty, without `*`"));
    }
    let resource = event.resource.unwrap_or_else(|| "api".to_owned());
    let stored =
        state.store.record_event(&event.name, resource, event.related, event.payload).await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

/// `GET /api/events/stream`: new events as server-sent events, filtered
/// like the list.
pub async fn stream_events(
    State(state): State<AppState>,
    Query(query): Query<EventQuery>,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, std::convert::Infallible>>> {
    let receiver = state.feed.subscribe();
    let stream = futures_util::stream::unfold(receiver, move |mut receiver| {
        let query = query.clone();
        async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => {
                        let wanted =
                            query.name.as_deref().is_none_or(|p| name_matches(p, &event.name))
                                && query
                                    .resource
                                    .as_deref()
                                    .is_none_or(|p| name_matches(p, &event.resource));
                        if wanted {
                            let data = serde_json::to_string(&*event).unwrap_or_default();
                            let sse =
                                SseEvent::default().id(event.id.clone()).event("event").data(data);
                            return Some((Ok(sse), receiver));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        let sse = SseEvent::default().event("lagged").data(missed.to_string());
                        return Some((Ok(sse), receiver));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

pub async fn list_webhooks(State(state): State<AppState>) -> ApiResult<Json<Vec<Webhook>>> {
    Ok(Json(state.store.webhooks().await?))
}

pub async fn create_webhook(
    State(state): State<AppState>,
    payload: Result<Json<WebhookSpec>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Webhook>)> {
    Ok((StatusCode::CREATED, Json(state.store.create_webhook(body(payload)?).await?)))
}

pub async fn delete_webhook(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_webhook(&slug).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /hooks/{slug}`: an outside call becomes an event. A webhook with a
/// secret needs `X-Baton-Signature: sha256=<hex HMAC-SHA256 of the body>`.
pub async fn receive_webhook(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<Event>)> {
    let (hook, secret) = state.store.webhook(&slug).await?;
    if let Some(secret) = secret {
        let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
        if !crate::hooks::signature_matches(&secret, &bytes, signature) {
            return Err(ApiFailure::unauthorized(format!(
                "missing or wrong {SIGNATURE_HEADER}: expected sha256=<hex HMAC-SHA256 of the body with the webhook's secret>"
            )));
        }
    }
    let payload = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::json!({ "body": String::from_utf8_lossy(&bytes) }));
    let event = state
        .store
        .record_event(&hook.event, format!("webhook/{slug}"), Vec::new(), payload)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(event)))
}

pub async fn list_automations(State(state): State<AppState>) -> ApiResult<Json<Vec<Automation>>> {
    Ok(Json(state.store.automations().await?))
}

pub async fn create_automation(
    State(state): State<AppState>,
    payload: Result<Json<AutomationSpec>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Automation>)> {
    let automation = state.store.create_automation(body(payload)?).await?;
    state.automations.reload();
    Ok((StatusCode::CREATED, Json(automation)))
}

pub async fn get_automation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Automation>> {
    Ok(Json(state.store.automation(&id).await?))
}

pub async fn pause_automation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Automation>> {
    let automation = state.store.set_automation_paused(&id, true).await?;
    state.automations.reload();
    Ok(Json(automation))
}

pub async fn resume_automation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Automation>> {
    let automation = state.store.set_automation_paused(&id, false).await?;
    state.automations.reload();
    Ok(Json(automation))
}

pub async fn delete_automation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_automation(&id).await?;
    state.automations.reload();
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_agents(State(state): State<AppState>) -> ApiResult<Json<Vec<AgentInfo>>> {
    let mut agents = state.store.agents().await?;
    for agent in agents.iter_mut().filter(|a| a.connected) {
        agent.cached = state.dispatcher.cached(&agent.id);
    }
    Ok(Json(agents))
}

/// Makes a token for agents of a pool (creating the pool if it is new).
pub async fn create_agent_token(
    State(state): State<AppState>,
    payload: Result<Json<CreateAgentToken>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<AgentTokenCreated>)> {
    let request = body(payload)?;
    let Some(link) = &state.link else {
        return Err(ApiFailure::bad_request(
            "this core does not listen for agents (start it with --quic)",
        ));
    };
    state.store.ensure_pool(&request.pool).await?;
    let (id, secret) = state.store.create_agent_token(&request.pool).await?;
    let token = AgentToken { id, secret, fingerprint: link.fingerprint.clone() };
    Ok((
        StatusCode::CREATED,
        Json(AgentTokenCreated {
            pool: request.pool,
            token: token.to_string(),
            quic_address: link.address.to_string(),
        }),
    ))
}
