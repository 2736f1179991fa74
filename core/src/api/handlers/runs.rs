//! Flow runs: create, list, count, read, change state, cancel, skip late ones.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use baton_proto::v1::{
    CreateRun, FlowRun, FlowRunDetail, Page, ProposeState, RunArtifact, RunBucket, RunStats,
    SkipLate, Skipped, StateCount, StateName, TaskRun, Timestamp, Transition, UnknownState,
};
use serde::Deserialize;

use super::JsonBody;
use crate::api::{ApiFailure, ApiResult, AppState};
use crate::store::{RunFilter, now};

pub async fn skip_late(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<SkipLate>,
) -> ApiResult<Json<Skipped>> {
    let deployment = match &request.deployment {
        Some(full) => Some(full.split_once('/').ok_or_else(|| {
            ApiFailure::bad_request(format!("deployment `{full}` is not FLOW/DEPLOYMENT"))
        })?),
        None => None,
    };
    Ok(Json(Skipped { skipped: state.store.skip_late(deployment).await? }))
}

pub async fn create_run(
    State(state): State<AppState>,
    Path((flow, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<CreateRun>,
) -> ApiResult<(StatusCode, Json<FlowRun>)> {
    let (run, created) = state.store.create_run(&flow, &name, body).await?;
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
    /// Runs started by this run's flow.
    parent_id: Option<String>,
    /// Only runs planned for later (true), or all but those (false).
    upcoming: Option<bool>,
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
    if bucket < 1000 {
        return Err(ApiFailure::bad_request("bucket_seconds must be at least 1"));
    }
    // An empty or reversed range has no buckets.
    let span = until.saturating_sub(query.since).max(0);
    let count = span / bucket + i64::from(span % bucket != 0);
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
        // Exactly the names, as the OpenAPI document's pattern says.
        Some(list) => list
            .split(',')
            .map(|name| {
                StateName::ALL.into_iter().find(|state| state.as_str() == name).ok_or_else(|| {
                    ApiFailure::bad_request(UnknownState(name.to_owned()).to_string())
                })
            })
            .collect::<Result<_, _>>()?,
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
        parent_id: query.parent_id,
        upcoming: query.upcoming,
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

#[derive(Deserialize)]
pub struct TaskRunQuery {
    cursor: Option<String>,
    limit: Option<u32>,
}

pub async fn list_task_runs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<TaskRunQuery>,
) -> ApiResult<Json<Page<TaskRun>>> {
    let limit = query.limit.unwrap_or(500);
    Ok(Json(state.store.task_runs(&id, query.cursor.as_deref(), limit).await?))
}

pub async fn list_run_artifacts(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<RunArtifact>>> {
    Ok(Json(state.store.run_artifacts(&id).await?))
}

pub async fn latest_run_artifact(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> ApiResult<Json<RunArtifact>> {
    Ok(Json(state.store.latest_run_artifact(&key).await?))
}

pub async fn propose_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ProposeState>,
) -> ApiResult<Json<Transition>> {
    Ok(Json(state.store.propose_state(&id, body).await?))
}

pub async fn retry_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<FlowRun>)> {
    let retry = state.store.retry_run(&id).await?;
    state.dispatcher.wake();
    Ok((StatusCode::CREATED, Json(retry)))
}

pub async fn cancel_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Transition>> {
    Ok(Json(state.dispatcher.cancel_run(&id).await?))
}
