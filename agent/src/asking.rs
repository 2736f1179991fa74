//! What a running flow asks of the core: about its children (start a
//! subflow, wait for one) and of its task cache. The agent asks over its
//! link, each question on a stream of its own; a runner in a pod asks
//! over the core's API with its execution's key. An answer lost on the
//! way is asked for again: starting a child is idempotent by the call's
//! number, waiting and cache lookups are reads, storing a cached result
//! twice stores it once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use baton_proto::v1::link::io::{read_frame, write_frame};
use baton_proto::v1::link::{
    CacheRequest, ChildRequest, Execution, MAX_FRAME_BYTES, StreamRequest,
};
use baton_proto::v1::{CacheAnswer, CacheCall, CacheOp, ChildAnswer, ChildCall, ChildOp};
use baton_sandbox::{CacheAnswerFuture, ChildAnswerFuture, Subflows, TaskCache};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::agent::Shared;

/// The pause before asking again, doubling up to [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// One execution's way to the core, over the agent's link.
pub(crate) struct LinkAsker {
    pub(crate) shared: Arc<Shared>,
    pub(crate) execution: Execution,
}

impl Subflows for LinkAsker {
    fn ask(&self, op: ChildOp) -> ChildAnswerFuture {
        let shared = Arc::clone(&self.shared);
        let execution = self.execution.clone();
        Box::pin(async move {
            let answer = ask_about_child(op, |op| {
                let child = ChildRequest {
                    run_id: execution.run_id.clone(),
                    attempt: execution.attempt,
                    op,
                };
                ask_over_link(&shared, StreamRequest::Child { child })
            });
            answer.await.into_result()
        })
    }
}

impl TaskCache for LinkAsker {
    fn ask(&self, op: CacheOp) -> CacheAnswerFuture {
        let shared = Arc::clone(&self.shared);
        let execution = self.execution.clone();
        Box::pin(async move {
            let answer = ask_until_answered(|| {
                let cache = CacheRequest {
                    run_id: execution.run_id.clone(),
                    attempt: execution.attempt,
                    op: op.clone(),
                };
                ask_over_link(&shared, StreamRequest::Cache { cache })
            });
            answer.await.unwrap_or_else(|reason| CacheAnswer::Refused { reason })
        })
    }
}

/// One execution's way to the core over its API, with the execution's key
/// (a runner in a pod).
pub(crate) struct ApiAsker {
    pub(crate) client: reqwest::Client,
    /// `{api}/api/runs/{id}`.
    pub(crate) run_url: String,
    pub(crate) key: String,
    pub(crate) attempt: u32,
}

impl Subflows for ApiAsker {
    fn ask(&self, op: ChildOp) -> ChildAnswerFuture {
        let (client, key, attempt) = (self.client.clone(), self.key.clone(), self.attempt);
        let url = format!("{}/children", self.run_url);
        Box::pin(async move {
            let answer = ask_about_child(op, |op| {
                let call = ChildCall { attempt, op };
                ask_over_api(&client, (&url, "subflow call"), &key, call)
            });
            answer.await.into_result()
        })
    }
}

impl TaskCache for ApiAsker {
    fn ask(&self, op: CacheOp) -> CacheAnswerFuture {
        let (client, key, attempt) = (self.client.clone(), self.key.clone(), self.attempt);
        let url = format!("{}/task-cache", self.run_url);
        Box::pin(async move {
            let answer = ask_until_answered(|| {
                let call = CacheCall { attempt, op: op.clone() };
                ask_over_api(&client, (&url, "task cache call"), &key, call)
            });
            answer.await.unwrap_or_else(|reason| CacheAnswer::Refused { reason })
        })
    }
}

/// What a question that could not reach an answer says.
enum Unanswered {
    /// Ask again: the way to the core failed, or it could not answer.
    Retry(String),
    /// The core refused to hear it (a bad key): asking again is no use.
    Refused(String),
}

/// Asks with `ask_once` until the core answers (the run's cancellation,
/// or the sandbox giving up, drops this); the error is a refusal.
async fn ask_until_answered<A, F, Fut>(mut ask_once: F) -> Result<A, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<A, Unanswered>>,
{
    let mut pause = FIRST_RETRY_PAUSE;
    loop {
        match ask_once().await {
            Ok(answer) => return Ok(answer),
            Err(Unanswered::Refused(reason)) => return Err(reason),
            Err(Unanswered::Retry(why)) => {
                tracing::debug!(%why, "asking the core again");
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_RETRY_PAUSE);
    }
}

/// Asks about a child until answered; a wait's timeout runs from the
/// flow's call, across tries.
async fn ask_about_child<F, Fut>(op: ChildOp, mut ask_once: F) -> ChildAnswer
where
    F: FnMut(ChildOp) -> Fut,
    Fut: Future<Output = Result<ChildAnswer, Unanswered>>,
{
    let deadline = match &op {
        ChildOp::Wait { timeout_ms: Some(ms), .. } => {
            Some(Instant::now() + Duration::from_millis(*ms))
        }
        _ => None,
    };
    let answer = ask_until_answered(|| {
        let op = match (&op, deadline) {
            (ChildOp::Wait { child_id, .. }, Some(deadline)) => ChildOp::Wait {
                child_id: child_id.clone(),
                timeout_ms: Some(
                    u64::try_from(deadline.saturating_duration_since(Instant::now()).as_millis())
                        .unwrap_or(u64::MAX),
                ),
            },
            (op, _) => op.clone(),
        };
        ask_once(op)
    });
    answer.await.unwrap_or_else(|reason| ChildAnswer::Refused { reason })
}

async fn ask_over_link<A: DeserializeOwned>(
    shared: &Shared,
    request: StreamRequest,
) -> Result<A, Unanswered> {
    let retry = |e: &dyn std::fmt::Display| Unanswered::Retry(e.to_string());
    let connection = shared.connection().ok_or_else(|| retry(&"not connected to the core"))?;
    let (mut send, mut recv) = connection.open_bi().await.map_err(|e| retry(&e))?;
    write_frame(&mut send, &request).await.map_err(|e| retry(&e))?;
    let _ = send.finish();
    read_frame::<A, _>(&mut recv, MAX_FRAME_BYTES)
        .await
        .map_err(|e| retry(&e))?
        .ok_or_else(|| retry(&"the core ended the stream without answering"))
}

/// `POST url` with `body`; `what` names the call in a refusal.
async fn ask_over_api<B: Serialize, A: DeserializeOwned>(
    client: &reqwest::Client,
    (url, what): (&str, &str),
    key: &str,
    body: B,
) -> Result<A, Unanswered> {
    let retry = |e: &dyn std::fmt::Display| Unanswered::Retry(format!("{url}: {e}"));
    let response =
        client.post(url).bearer_auth(key).json(&body).send().await.map_err(|e| retry(&e))?;
    let status = response.status();
    if status.is_success() {
        return response.json::<A>().await.map_err(|e| retry(&e));
    }
    let body = response.text().await.unwrap_or_default();
    let said = format!("{status}: {}", baton_proto::v1::limits::cut(&body, 300));
    match status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        true => Err(retry(&said)),
        false => Err(Unanswered::Refused(format!("the core refused the {what} ({said})"))),
    }
}
