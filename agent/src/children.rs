//! A run's questions about its children (start a subflow, wait for one),
//! asked of the core: by the agent, each on a stream of its own over its
//! link; by a runner in a pod, over the core's API with its execution's
//! key. An answer lost on the way is asked for again: starting is
//! idempotent by the call's number, waiting is a read.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use baton_proto::v1::link::io::{read_frame, write_frame};
use baton_proto::v1::link::{ChildRequest, Execution, MAX_FRAME_BYTES, StreamRequest};
use baton_proto::v1::{ChildAnswer, ChildCall, ChildOp};
use baton_sandbox::{ChildAnswerFuture, Subflows};
use tokio::time::Instant;

use crate::agent::Shared;

/// The pause before asking again, doubling up to [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// One execution's way to its children, over the agent's link.
pub(crate) struct LinkSubflows {
    pub(crate) shared: Arc<Shared>,
    pub(crate) execution: Execution,
}

impl Subflows for LinkSubflows {
    fn ask(&self, op: ChildOp) -> ChildAnswerFuture {
        let shared = Arc::clone(&self.shared);
        let execution = self.execution.clone();
        Box::pin(async move {
            let answer = ask_until_answered(op, |op| {
                let request = ChildRequest {
                    run_id: execution.run_id.clone(),
                    attempt: execution.attempt,
                    op,
                };
                ask_over_link(&shared, request)
            });
            answer.await.into_result()
        })
    }
}

/// One execution's way to its children over the core's API, with its key
/// (a runner in a pod).
pub(crate) struct ApiSubflows {
    pub(crate) client: reqwest::Client,
    /// `POST /api/runs/{id}/children`.
    pub(crate) url: String,
    pub(crate) key: String,
    pub(crate) attempt: u32,
}

impl Subflows for ApiSubflows {
    fn ask(&self, op: ChildOp) -> ChildAnswerFuture {
        let (client, url, key) = (self.client.clone(), self.url.clone(), self.key.clone());
        let attempt = self.attempt;
        Box::pin(async move {
            let answer = ask_until_answered(op, |op| {
                let call = ChildCall { attempt, op };
                ask_over_api(&client, &url, &key, call)
            });
            answer.await.into_result()
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

/// Asks with `ask_once` until the core answers (the run's cancellation
/// drops this). A wait's timeout runs from the flow's call, across tries.
async fn ask_until_answered<F, Fut>(op: ChildOp, mut ask_once: F) -> ChildAnswer
where
    F: FnMut(ChildOp) -> Fut,
    Fut: Future<Output = Result<ChildAnswer, Unanswered>>,
{
    // A wait's timeout runs from the flow's call, across reconnects.
    let deadline = match &op {
        ChildOp::Wait { timeout_ms: Some(ms), .. } => {
            Some(Instant::now() + Duration::from_millis(*ms))
        }
        _ => None,
    };
    let mut pause = FIRST_RETRY_PAUSE;
    loop {
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
        match ask_once(op).await {
            Ok(answer) => return answer,
            Err(Unanswered::Refused(reason)) => return ChildAnswer::Refused { reason },
            Err(Unanswered::Retry(why)) => {
                tracing::debug!(%why, "asking the core about a subflow again");
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_RETRY_PAUSE);
    }
}

async fn ask_over_link(shared: &Shared, request: ChildRequest) -> Result<ChildAnswer, Unanswered> {
    let retry = |e: &dyn std::fmt::Display| Unanswered::Retry(e.to_string());
    let connection = shared.connection().ok_or_else(|| retry(&"not connected to the core"))?;
    let (mut send, mut recv) = connection.open_bi().await.map_err(|e| retry(&e))?;
    write_frame(&mut send, &StreamRequest::Child { child: request })
        .await
        .map_err(|e| retry(&e))?;
    let _ = send.finish();
    read_frame::<ChildAnswer, _>(&mut recv, MAX_FRAME_BYTES)
        .await
        .map_err(|e| retry(&e))?
        .ok_or_else(|| retry(&"the core ended the stream without answering"))
}

async fn ask_over_api(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    call: ChildCall,
) -> Result<ChildAnswer, Unanswered> {
    let retry = |e: &dyn std::fmt::Display| Unanswered::Retry(format!("{url}: {e}"));
    let response =
        client.post(url).bearer_auth(key).json(&call).send().await.map_err(|e| retry(&e))?;
    let status = response.status();
    if status.is_success() {
        return response.json::<ChildAnswer>().await.map_err(|e| retry(&e));
    }
    let body = response.text().await.unwrap_or_default();
    let said = format!("{status}: {}", baton_proto::v1::limits::cut(&body, 300));
    match status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        true => Err(retry(&said)),
        false => Err(Unanswered::Refused(format!("the core refused the subflow call ({said})"))),
    }
}
