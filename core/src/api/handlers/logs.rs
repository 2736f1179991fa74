//! A run's log lines: read, stream and append.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use baton_proto::v1::LogLine;
use serde::Deserialize;

use super::JsonBody;
use crate::api::{ApiResult, AppState};

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
    JsonBody(body): JsonBody<Vec<LogLine>>,
) -> ApiResult<Json<serde_json::Value>> {
    let stored = state.store.append_logs(&id, body).await?;
    Ok(Json(serde_json::json!({ "stored": stored })))
}
