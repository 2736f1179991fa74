//! A run's attempts, read from its history (each history row records the
//! attempt the run was in after the change), and what a stale execution
//! said after it had lost the run.

use baton_proto::v1::{RunAttempt, StateChange, StateName, Timestamp};
use serde::Deserialize;

use super::{Fence, Store, StoreResult};

/// Longest stale outcome kept per attempt (it is for diagnosis only).
const MAX_STALE_OUTCOME: usize = 4096;

impl Store {
    /// Keeps what attempt `attempt` of run `id` reported after it had lost
    /// the run; it changes nothing else.
    pub async fn record_stale(&self, id: &str, attempt: u32, what: &str) -> StoreResult<()> {
        let what: String = what.chars().take(MAX_STALE_OUTCOME).collect();
        let id = id.to_owned();
        self.write_transaction(move |_, conn| {
            Box::pin(async move {
                // The first word stays: it is what the execution said when
                // it was first stale.
                sqlx::query(
                    "INSERT INTO stale_outcomes (run_id, attempt, said) VALUES ($1, $2, $3) \
                     ON CONFLICT (run_id, attempt) DO NOTHING",
                )
                .bind(id)
                .bind(i64::from(attempt))
                .bind(what)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Whether the event `fence` names already changed run `id`: it is
    /// sent again after a failover, before the core that applied it
    /// recorded the agent's events as applied.
    pub async fn applied_before(&self, id: &str, fence: &Fence) -> StoreResult<bool> {
        let Some(seq) = fence.event_seq else {
            return Ok(false);
        };
        let found = sqlx::query(
            "SELECT 1 FROM run_states WHERE run_id = $1 AND attempt = $2 AND agent_id = $3 \
             AND agent_seq = $4 LIMIT 1",
        )
        .bind(id)
        .bind(i64::from(fence.attempt))
        .bind(&fence.agent_id)
        .bind(i64::try_from(seq).unwrap_or(i64::MAX))
        .fetch_optional(&self.read)
        .await?;
        Ok(found.is_some())
    }
}

/// One change of a run's state as its history row records it.
#[derive(Debug, Deserialize)]
pub(crate) struct HistoryRow {
    state: StateName,
    message: Option<String>,
    at: Timestamp,
    /// The attempt the run was in after the change (0 before its first
    /// dispatch).
    attempt: u32,
    agent_id: Option<String>,
    /// The output, on a change to `COMPLETED`.
    output: Option<serde_json::Value>,
}

impl HistoryRow {
    pub(crate) fn change(&self) -> StateChange {
        StateChange { state: self.state, message: self.message.clone(), at: self.at }
    }
}

/// What attempt `attempt` of a run said after it had lost the run.
#[derive(Debug, Deserialize)]
pub(crate) struct StaleOutcome {
    attempt: u32,
    said: String,
}

/// Whether an execution holds its run in `state`: its changes until the
/// first out of such a state are the attempt's.
fn held(state: StateName) -> bool {
    state.holds_slot() || state == StateName::Paused
}

/// A run's attempts from its history, oldest first: an attempt begins with
/// the dispatch that numbered it and follows the run until it leaves the
/// states the execution holds it in (a retry's waiting is not the
/// attempt's).
pub(crate) fn from_history(history: &[HistoryRow], stale: Vec<StaleOutcome>) -> Vec<RunAttempt> {
    let mut attempts: Vec<RunAttempt> = Vec::new();
    let mut held_before = false;
    for change in history {
        match attempts.last_mut() {
            Some(attempt) if attempt.number == change.attempt && held_before => {
                attempt.state = change.state;
                attempt.message.clone_from(&change.message);
                attempt.output =
                    change.output.clone().filter(|_| change.state == StateName::Completed);
                if change.state == StateName::Running && attempt.started_at.is_none() {
                    attempt.started_at = Some(change.at);
                }
                attempt.ended_at = (!held(change.state)).then_some(change.at);
            }
            // The run moved on after the attempt ended (a retry's wait).
            Some(attempt) if attempt.number == change.attempt => {}
            _ if change.attempt > 0 => attempts.push(RunAttempt {
                number: change.attempt,
                agent_id: change.agent_id.clone().unwrap_or_default(),
                dispatched_at: change.at,
                started_at: None,
                ended_at: None,
                state: change.state,
                message: change.message.clone(),
                output: None,
                stale_outcome: None,
            }),
            _ => {}
        }
        held_before = held(change.state);
    }
    for StaleOutcome { attempt, said } in stale {
        if let Some(attempt) = attempts.iter_mut().find(|a| a.number == attempt) {
            attempt.stale_outcome = Some(said);
        }
    }
    attempts
}
