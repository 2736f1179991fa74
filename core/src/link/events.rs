//! Applying an agent's events: in order for each run, runs side by side (so
//! one agent's many runs share the store's group commits instead of queueing
//! behind each other), each event once, and acknowledged only when every
//! event before it is applied too.

use std::collections::{BTreeSet, HashMap};

use baton_proto::v1::link::{AgentEvent, AgentEventBody, AgentMessage, CoreMessage};
use baton_proto::v1::{ProposeState, RunOutcome, RunReport, StateName, Verdict};
use tokio::sync::mpsc;

use crate::dispatch::Dispatcher;
use crate::store::{Store, StoreError};

/// What applying an agent's events needs; clones share it.
#[derive(Clone)]
pub(super) struct Applier {
    pub store: Store,
    pub dispatcher: Dispatcher,
    pub agent_id: String,
    /// To the agent: acks, and cancellations of runs that must not start.
    pub sender: mpsc::UnboundedSender<CoreMessage>,
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

impl Applier {
    /// Applies the messages of the agent's control stream until it ends or
    /// an event cannot be applied; returns why. `applied` is the last event
    /// applied before this connection.
    pub async fn run(
        self,
        mut messages: mpsc::UnboundedReceiver<Result<AgentMessage, String>>,
        applied: u64,
    ) -> String {
        let (done_tx, mut done) = mpsc::unbounded_channel();
        let mut runs: HashMap<String, mpsc::UnboundedSender<AgentEvent>> = HashMap::new();
        let mut in_flight = BTreeSet::new();
        let mut received = applied;
        let mut acked = applied;
        // A heartbeat's list of running runs counts once every event sent
        // before it is applied (a run it leaves out may have just ended).
        let mut heartbeat: Option<(u64, Vec<String>)> = None;
        loop {
            tokio::select! {
                message = messages.recv() => match message {
                    None => return "the agent closed the link".to_owned(),
                    Some(Err(why)) => return why,
                    Some(Ok(AgentMessage::Heartbeat { running })) => heartbeat = Some((received, running)),
                    Some(Ok(AgentMessage::Event(event))) => {
                        self.dispatcher.heard(&self.agent_id, None);
                        // Sent again after a reconnect: applied already.
                        if event.seq <= acked {
                            let _ = self.sender.send(CoreMessage::Ack { seq: acked });
                            continue;
                        }
                        received = received.max(event.seq);
                        in_flight.insert(event.seq);
                        let last = matches!(event.body, AgentEventBody::Finished { .. } | AgentEventBody::Declined { .. });
                        let run_id = event.run_id.clone();
                        let queue = runs.entry(run_id.clone()).or_insert_with(|| self.clone().spawn_run(run_id.clone(), done_tx.clone()));
                        let _ = queue.send(event);
                        if last {
                            // Its queue ends once drained.
                            runs.remove(&run_id);
                        }
                    }
                },
                Some((seq, result)) = done.recv() => {
                    if let Err(why) = result {
                        // Not acknowledged: the agent sends it again.
                        return format!("could not apply event {seq}: {why}");
                    }
                    in_flight.remove(&seq);
                    let ready = in_flight.first().map_or(received, |first| first - 1);
                    if ready > acked {
                        acked = ready;
                        let _ = self.sender.send(CoreMessage::Ack { seq: acked });
                    }
                }
            }
            if let Some((_, running)) = heartbeat.take_if(|(after, _)| *after <= acked) {
                self.dispatcher.heard(&self.agent_id, Some(running));
                if let Err(e) = self.store.agent_seen(&self.agent_id, acked).await {
                    tracing::warn!(agent = %self.agent_id, error = %e, "could not record a heartbeat");
                }
            }
        }
    }

    /// A queue applying one run's events in order; each event's seq and
    /// result go to `done`.
    fn spawn_run(self, run_id: String, done: Done) -> mpsc::UnboundedSender<AgentEvent> {
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
                            if !self.store_reports(&run_id, &mut reports, &done).await {
                                return;
                            }
                            let result = self.apply(&run_id, body).await.map_err(|e| e.to_string());
                            let failed = result.is_err();
                            let _ = done.send((event.seq, result));
                            if failed {
                                return;
                            }
                        }
                    }
                }
                if !self.store_reports(&run_id, &mut reports, &done).await {
                    return;
                }
            }
        });
        queue
    }

    /// Stores the waiting reports of a run; `false` if that failed.
    async fn store_reports(
        &self,
        run_id: &str,
        reports: &mut Vec<(u64, RunReport)>,
        done: &Done,
    ) -> bool {
        if reports.is_empty() {
            return true;
        }
        let (seqs, reports): (Vec<u64>, Vec<RunReport>) =
            std::mem::take(reports).into_iter().unzip();
        let result = match self.store.store_reports(run_id, reports).await {
            // A run deleted meanwhile: nothing to keep.
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        let stored = result.is_ok();
        for seq in seqs {
            let _ = done.send((seq, result.clone()));
        }
        stored
    }

    /// Applies a run's start, end or hand-back as a proposed transition.
    async fn apply(&self, run_id: &str, body: AgentEventBody) -> Result<(), StoreError> {
        let proposal = match body {
            AgentEventBody::Report { .. } => return Ok(()),
            AgentEventBody::Started => {
                ProposeState { state: StateName::Running, message: None, output: None }
            }
            AgentEventBody::Finished { outcome } => outcome_proposal(outcome),
            AgentEventBody::Declined { reason } => ProposeState {
                state: StateName::Scheduled,
                message: Some(format!("agent {} handed it back: {reason}", self.agent_id)),
                output: None,
            },
        };
        let state = proposal.state;
        let transition = match self.store.propose_state(run_id, proposal).await {
            Ok(transition) => transition,
            // A run deleted meanwhile: nothing to record.
            Err(StoreError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if state == StateName::Running && transition.verdict != Verdict::Accepted {
            // Cancelled (or otherwise moved on) before it started: stop it.
            let _ = self.sender.send(CoreMessage::Cancel { run_id: run_id.to_owned() });
        }
        if state != StateName::Running {
            self.dispatcher.finished(&self.agent_id, run_id);
        }
        Ok(())
    }
}

/// Where a run's queue says which events it applied.
type Done = mpsc::UnboundedSender<(u64, Result<(), String>)>;
