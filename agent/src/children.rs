//! A run's questions about its children (start a subflow, wait for one),
//! asked of the core on a stream of their own. An answer lost with its
//! connection is asked for again once the agent is back: starting is
//! idempotent by the call's number, waiting is a read.

use std::sync::Arc;
use std::time::Duration;

use baton_proto::v1::link::io::{read_frame, write_frame};
use baton_proto::v1::link::{ChildRequest, Execution, MAX_FRAME_BYTES, StreamRequest};
use baton_proto::v1::{ChildAnswer, ChildOp};
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
        Box::pin(async move { ask_until_answered(&shared, execution, op).await.into_result() })
    }
}

/// Asks until the core answers (the run's cancellation drops this).
async fn ask_until_answered(shared: &Shared, execution: Execution, op: ChildOp) -> ChildAnswer {
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
        let request =
            ChildRequest { run_id: execution.run_id.clone(), attempt: execution.attempt, op };
        match ask_once(shared, request).await {
            Ok(answer) => return answer,
            Err(why) => {
                tracing::debug!(run_id = %execution.run_id, %why, "asking the core about a subflow again");
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_RETRY_PAUSE);
    }
}

async fn ask_once(shared: &Shared, request: ChildRequest) -> Result<ChildAnswer, String> {
    let connection = shared.connection().ok_or("not connected to the core")?;
    let (mut send, mut recv) = connection.open_bi().await.map_err(|e| e.to_string())?;
    write_frame(&mut send, &StreamRequest::Child { child: request })
        .await
        .map_err(|e| e.to_string())?;
    let _ = send.finish();
    read_frame::<ChildAnswer, _>(&mut recv, MAX_FRAME_BYTES)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the core ended the stream without answering".to_owned())
}
