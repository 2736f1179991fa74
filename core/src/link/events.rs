//! Applying an agent's events: in order for each execution, executions side
//! by side (so one agent's many runs share the store's group commits
//! instead of queueing behind each other), each event once, acknowledged
//! only when every event before it is applied too, and fenced: only the
//! run's current attempt changes it. A write the store cannot make now is
//! tried again (never replaced by a guessed outcome), and heartbeats never
//! wait for the store.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use baton_proto::v1::link::{AgentEvent, AgentEventBody, AgentMessage, CoreMessage, Execution};
use baton_proto::v1::{ProposeState, RunOutcome, RunReport, StateName, Verdict};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::dispatch::Dispatcher;
use crate::store::{ESCALATED, Fence, Store, StoreError};

/// What applying an agent's events needs; clones share it.
#[derive(Clone)]
pub(super) struct Applier {
    pub store: Store,
    pub dispatcher: Dispatcher,
    pub agent_id: String,
    /// To the agent: acks, and stops of executions that lost their runs.
    pub sender: mpsc::UnboundedSender<CoreMessage>,
    /// The session ended: queues stop retrying.
    pub ended: CancellationToken,
}

/// The state a run's outcome on an agent proposes, with its message.
fn outcome_proposal(outcome: RunOutcome) -> ProposeState {
    let (state, message, output) = match outcome {
        RunOutcome::Completed { output } => (StateName::Completed, None, Some(output)),
        RunOutcome::Failed { message, .. } => (StateName::Failed, Some(message), None),
        RunOutcome::Crashed { message } => (StateName::Crashed, Some(message), None),
        RunOutcome::TimedOut { limit_ms } => {
            (StateName::Failed, Some(format!("timed out after {limit_ms} ms")), None)
        }
        RunOutcome::OutOfMemory { limit_bytes } => (
            StateName::Failed,
            Some(format!("ran out of memory (limit {} MiB)", limit_bytes >> 20)),
            None,
        ),
        RunOutcome::Cancelled => (StateName::Cancelled, Some("cancelled".to_owned()), None),
    };
    ProposeState { state, message, output }
}

/// A failed write that may succeed if tried again: the database did not
/// answer or was full, or the run changed under the proposal.
fn worth_retrying(error: &StoreError) -> bool {
    matches!(error, StoreError::Database(_) | StoreError::Conflict(_))
}

/// First and longest pause between tries of a write.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MOST: Duration = Duration::from_secs(2);

impl Applier {
    /// Applies the messages of the agent's control stream until it ends or
    /// fails; returns why. `applied` is the last event applied before this
    /// connection.
    pub async fn run(
        self,
        mut messages: mpsc::UnboundedReceiver<Result<AgentMessage, String>>,
        applied: u64,
    ) -> String {
        let (done_tx, mut done) = mpsc::unbounded_channel();
        let mut queues: HashMap<Execution, mpsc::UnboundedSender<AgentEvent>> = HashMap::new();
        let mut in_flight = BTreeSet::new();
        let mut received = applied;
        let mut acked = applied;
        // A heartbeat's list of running executions counts once every event
        // sent before it is applied (a run it leaves out may have just
        // ended).
        let mut heartbeat: Option<(u64, Vec<Execution>)> = None;
        loop {
            tokio::select! {
                message = messages.recv() => {
                    // Whatever it is, the agent is alive.
                    self.dispatcher.heard(&self.agent_id);
                    match message {
                        None => return "the agent closed the link".to_owned(),
                        Some(Err(why)) => return why,
                        Some(Ok(AgentMessage::Heartbeat { running, prepared })) => {
                            self.dispatcher.prepared(&self.agent_id, prepared);
                            // Answered at once: the agent's lease clock
                            // counts from the core's last word.
                            let _ = self.sender.send(CoreMessage::Ack { seq: acked });
                            heartbeat = Some((received, running));
                        }
                        Some(Ok(AgentMessage::Event(event))) => {
                            // Sent again after a reconnect: applied already.
                            if event.seq <= acked {
                                let _ = self.sender.send(CoreMessage::Ack { seq: acked });
                                continue;
                            }
                            received = received.max(event.seq);
                            in_flight.insert(event.seq);
                            let last = matches!(event.body, AgentEventBody::Finished { .. } | AgentEventBody::Declined { .. });
                            let execution = Execution { run_id: event.run_id.clone(), attempt: event.attempt };
                            let queue = queues
                                .entry(execution.clone())
                                .or_insert_with(|| self.clone().spawn_queue(execution.clone(), done_tx.clone()));
                            let _ = queue.send(event);
                            if last {
                                // Its queue ends once drained.
                                queues.remove(&execution);
                            }
                        }
                    }
                },
                Some(seq) = done.recv() => {
                    in_flight.remove(&seq);
                    let ready = in_flight.first().map_or(received, |first| first - 1);
                    if ready > acked {
                        acked = ready;
                        self.dispatcher.acked(&self.agent_id, acked);
                        let _ = self.sender.send(CoreMessage::Ack { seq: acked });
                    }
                }
            }
            if let Some((_, running)) = heartbeat.take_if(|(after, _)| *after <= acked) {
                self.dispatcher.heartbeat(&self.agent_id, running);
            }
        }
    }

    /// A queue applying one execution's events in order; each event's seq
    /// goes to `done` once applied.
    fn spawn_queue(self, execution: Execution, done: Done) -> mpsc::UnboundedSender<AgentEvent> {
        let (queue, mut events) = mpsc::unbounded_channel::<AgentEvent>();
        tokio::spawn(async move {
            while let Some(first) = events.recv().await {
                let mut batch = vec![first];
                while let Ok(event) = events.try_recv() {
                    batch.push(event);
                }
                // Reports in a row are stored in one write.
                let mut reports = Vec::new();
                for event in batch {
                    match event.body {
                        AgentEventBody::Report { report } => reports.push((event.seq, report)),
                        body => {
                            if !self.store_reports(&execution, &mut reports, &done).await {
                                return;
                            }
                            let seq = event.seq;
                            if !self.retrying(|| self.apply(&execution, seq, body.clone())).await {
                                return;
                            }
                            let _ = done.send(seq);
                        }
                    }
                }
                if !self.store_reports(&execution, &mut reports, &done).await {
                    return;
                }
            }
        });
        queue
    }

    /// Runs `write` until it succeeds, gives up for good (logged) or the
    /// session ends; `false` only in the last case, when nothing more of
    /// this session may be acknowledged.
    async fn retrying<F, Fut>(&self, write: F) -> bool
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), StoreError>>,
    {
        let mut pause = RETRY_FIRST;
        loop {
            match write().await {
                Ok(()) => return true,
                Err(e) if worth_retrying(&e) => {
                    tracing::warn!(agent = %self.agent_id, error = %e, "could not apply an agent's event; trying again");
                }
                Err(e) => {
                    // It can never be applied: keeping it would hold back
                    // every later acknowledgement.
                    tracing::error!(agent = %self.agent_id, error = %e, "dropping an agent's event that cannot be applied");
                    return true;
                }
            }
            tokio::select! {
                () = self.ended.cancelled() => return false,
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(RETRY_MOST);
        }
    }

    /// Stores the waiting reports of an execution (of any attempt: each is
    /// kept under its own); `false` if the session ended first.
    async fn store_reports(
        &self,
        execution: &Execution,
        reports: &mut Vec<(u64, RunReport)>,
        done: &Done,
    ) -> bool {
        if reports.is_empty() {
            return true;
        }
        let (seqs, reports): (Vec<u64>, Vec<RunReport>) =
            std::mem::take(reports).into_iter().unzip();
        let stored = self
            .retrying(|| async {
                match self
                    .store
                    .store_reports(&execution.run_id, execution.attempt, reports.clone())
                    .await
                {
                    // A run deleted meanwhile: nothing to keep.
                    Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .await;
        if stored {
            for seq in seqs {
                let _ = done.send(seq);
            }
        }
        stored
    }

    /// Applies an execution's start, end or hand-back (its event `seq`) as
    /// a proposed transition of its run, if it still holds the run;
    /// otherwise, unless it was applied before, keeps what it said for
    /// diagnosis and tells it to stop.
    async fn apply(
        &self,
        execution: &Execution,
        seq: u64,
        body: AgentEventBody,
    ) -> Result<(), StoreError> {
        let mut infrastructure = None;
        let mut escalate_to = None;
        let proposal = match body {
            AgentEventBody::Report { .. } => return Ok(()),
            AgentEventBody::Started { infrastructure: at } => {
                infrastructure = Some(at);
                ProposeState { state: StateName::Running, message: None, output: None }
            }
            AgentEventBody::Finished { outcome: RunOutcome::OutOfMemory { limit_bytes } }
                if let Some(pool) = self.store.escalation_for(&execution.run_id).await? =>
            {
                let message = format!(
                    "{ESCALATED}{pool}: sandbox memory cap {} MiB reached",
                    limit_bytes >> 20
                );
                escalate_to = Some(pool);
                ProposeState { state: StateName::Scheduled, message: Some(message), output: None }
            }
            AgentEventBody::Finished { outcome } => outcome_proposal(outcome),
            AgentEventBody::Declined { reason } => ProposeState {
                state: StateName::Scheduled,
                message: Some(format!("agent {} handed it back: {reason}", self.agent_id)),
                output: None,
            },
        };
        let state = proposal.state;
        let fence = Fence {
            agent_id: self.agent_id.clone(),
            attempt: execution.attempt,
            event_seq: Some(seq),
        };
        let run_id = &execution.run_id;
        let proposed = match (infrastructure, &escalate_to) {
            (Some(at), _) => self.store.propose_started(run_id, &fence, at).await,
            (None, Some(pool)) => {
                let message = proposal.message.clone().unwrap_or_default();
                self.store.escalate_run(run_id, &fence, pool, message).await
            }
            (None, None) => self.store.propose_fenced(run_id, &fence, proposal.clone()).await,
        };
        let transition = match proposed {
            Ok(transition) => transition,
            // A run deleted meanwhile: nothing to record.
            Err(StoreError::NotFound { .. }) => return Ok(()),
            // Sent again after a failover, before the core that applied it
            // recorded it as applied: not a stale execution's word.
            Err(StoreError::Stale { .. }) if self.store.applied_before(run_id, &fence).await? => {
                if state != StateName::Running {
                    self.dispatcher.finished(&self.agent_id, run_id, execution.attempt);
                }
                return Ok(());
            }
            Err(stale @ StoreError::Stale { .. }) => {
                if state != StateName::Running {
                    let said = match &proposal.output {
                        Some(output) => format!("{state}: {output}"),
                        None => format!("{state}: {}", proposal.message.unwrap_or_default()),
                    };
                    tracing::warn!(run = %run_id, attempt = execution.attempt, %said, "ignoring a stale execution's outcome");
                    self.store.record_stale(run_id, execution.attempt, &said).await?;
                    self.dispatcher.finished(&self.agent_id, run_id, execution.attempt);
                } else {
                    self.dispatcher.stop(&self.agent_id, execution.clone(), stale.to_string());
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if state == StateName::Running && transition.verdict != Verdict::Accepted {
            // The fence held, so this execution holds the run and it is
            // past PENDING: the start was applied before, and is sent again
            // after a reconnect to a core whose record of the events
            // applied lagged. The execution goes on.
            tracing::debug!(run = %run_id, attempt = execution.attempt, "a start applied before");
        }
        if state != StateName::Running {
            self.dispatcher.finished(&self.agent_id, run_id, execution.attempt);
        }
        if escalate_to.is_some() {
            // Due at once, in another pool.
            self.dispatcher.wake();
        }
        Ok(())
    }
}

/// Where an execution's queue says which events it applied.
type Done = mpsc::UnboundedSender<u64>;
