//! Events: list, emit and stream.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use baton_proto::v1::{EmitEvent, Event, Timestamp};
use serde::Deserialize;
use tokio::sync::broadcast;

use super::JsonBody;
use crate::api::{ApiFailure, ApiResult, AppState};
use crate::feed::name_matches;
use crate::store::EventFilter;

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
    JsonBody(event): JsonBody<EmitEvent>,
) -> ApiResult<(StatusCode, Json<Event>)> {
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
