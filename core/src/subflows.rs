//! Subflows, as the command layer answers them: an execution's questions
//! about its run's children (start one, wait for one to end), asked by
//! its agent over the link (a stream per question) or, from a pod, over
//! the API with the execution's key. Each is answered once; an answer
//! lost on the way is asked for again (starting is idempotent by the
//! call's key), so nothing is started twice.

use std::time::Duration;

use baton_proto::v1::link::ChildRequest;
use baton_proto::v1::{ChildAnswer, ChildOp, ChildRun, FlowRun};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::dispatch::Dispatcher;
use crate::feed::Feed;
use crate::store::{Asker, Store, StoreError, child_run};

/// How often a waited-for child is read again even if the feed says
/// nothing about it (the feed is the fast path, this the safety net).
const RECHECK: Duration = Duration::from_secs(2);

/// Answers subflow calls; clones share everything.
#[derive(Clone)]
pub struct Subflows {
    pub store: Store,
    pub dispatcher: Dispatcher,
    /// Where a wait hears of its child's end.
    pub feed: Feed,
}

impl Subflows {
    /// The answer to `request` from `asker`, or `None` when the database
    /// failed (no answer: the asker asks again).
    pub async fn answer(&self, asker: Asker<'_>, request: ChildRequest) -> Option<ChildAnswer> {
        let ChildRequest { run_id, attempt, op } = request;
        let result = match op {
            ChildOp::Start(start) => {
                let started = self.store.start_child(asker, &run_id, attempt, start).await;
                if let Ok((child, true)) = &started {
                    self.dispatcher.wake();
                    tracing::info!(run = %child.id, parent = %run_id, deployment = %child.deployment, "subflow started");
                }
                started.map(|(child, _)| child)
            }
            ChildOp::Wait { child_id, timeout_ms } => {
                self.wait(&run_id, &child_id, timeout_ms.map(Duration::from_millis)).await
            }
        };
        match result {
            Ok(child) => Some(ChildAnswer::Run { run: child }),
            Err(error) => error.refusal(&run_id).map(|reason| ChildAnswer::Refused { reason }),
        }
    }

    /// The child `child_id` of `parent_id` once it has ended, or as it is
    /// after `timeout`.
    async fn wait(
        &self,
        parent_id: &str,
        child_id: &str,
        timeout: Option<Duration>,
    ) -> Result<ChildRun, StoreError> {
        // Subscribed before the first read, so no end goes unseen: ends
        // this core writes are heard as they commit, other cores' through
        // the feed (which reads them from the database).
        let mut ends = self.store.run_ends();
        let mut events = self.feed.subscribe();
        let deadline = timeout.map(|t| Instant::now() + t);
        let resource = format!("run/{child_id}");
        loop {
            let run: FlowRun = self.store.run(child_id).await?;
            if run.parent_id.as_deref() != Some(parent_id) {
                return Err(StoreError::Invalid(format!(
                    "run {child_id} is not a subflow of run {parent_id}"
                )));
            }
            let now = Instant::now();
            if run.state.is_terminal() || deadline.is_some_and(|d| d <= now) {
                return Ok(child_run(run));
            }
            let next = deadline.map_or(now + RECHECK, |d| d.min(now + RECHECK));
            let pause = tokio::time::sleep_until(next);
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    () = &mut pause => break,
                    end = ends.recv() => match end {
                        Ok(id) if *id == *child_id => break,
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => break,
                        Err(RecvError::Closed) => {
                            (&mut pause).await;
                            break;
                        }
                    },
                    event = events.recv() => match event {
                        Ok(event) if event.resource == resource => break,
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => break,
                        Err(RecvError::Closed) => {
                            (&mut pause).await;
                            break;
                        }
                    },
                }
            }
        }
    }
}
