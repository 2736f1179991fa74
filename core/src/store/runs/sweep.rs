//! Bulk state changes: the sweep that marks late runs and times out overdue
//! ones, and skipping late runs.

use baton_proto::v1::{ProposeState, StateName, Verdict};

use sqlx::Row;

use crate::store::{Store, StoreResult, now};

/// When the sweep steps in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepConfig {
    /// A run not dispatched this long after its time becomes `LATE`.
    pub late_after_ms: i64,
    /// How long past its timeout a `RUNNING` run is left to its agent,
    /// which enforces the timeout itself and reports it: the sweep is the
    /// backstop, and must not judge a run whose outcome is on its way (say,
    /// behind a burst of log lines).
    pub timeout_grace_ms: i64,
}

/// What one sweep changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    pub marked_late: u32,
    pub timed_out: u32,
}

impl Store {
    /// Marks runs `LATE` whose time passed `late_after_ms` ago undispatched,
    /// and fails `RUNNING` runs past their timeout and its grace (their
    /// retry policy then applies).
    pub async fn sweep(&self, config: SweepConfig) -> StoreResult<Sweep> {
        let SweepConfig { late_after_ms, timeout_grace_ms } = config;
        let at = now().0;
        let mut sweep = Sweep::default();
        let late = sqlx::query(
            "SELECT id FROM flow_runs WHERE state IN ('SCHEDULED', 'AWAITING_RETRY') AND scheduled_at < $1 ORDER BY scheduled_at LIMIT 500",
        )
        .bind(at.saturating_sub(late_after_ms))
        .fetch_all(&self.read)
        .await?;
        for row in late {
            let id: String = row.try_get("id")?;
            let proposal = ProposeState {
                state: StateName::Late,
                message: Some(format!(
                    "not dispatched within {late_after_ms} ms of its scheduled time"
                )),
                output: None,
            };
            if self.propose_state(&id, proposal).await?.verdict == Verdict::Accepted {
                sweep.marked_late += 1;
            }
        }
        let overdue = sqlx::query(
            "SELECT id, timeout_ms FROM flow_runs WHERE state = 'RUNNING' AND timeout_ms IS NOT NULL AND started_at + timeout_ms < $1 LIMIT 500",
        )
        .bind(at.saturating_sub(timeout_grace_ms))
        .fetch_all(&self.read)
        .await?;
        for row in overdue {
            let id: String = row.try_get("id")?;
            let timeout_ms: i64 = row.try_get("timeout_ms")?;
            let proposal = ProposeState {
                state: StateName::Failed,
                message: Some(format!("timed out after {timeout_ms} ms")),
                output: None,
            };
            if self.propose_state(&id, proposal).await?.verdict == Verdict::Accepted {
                sweep.timed_out += 1;
            }
        }
        Ok(sweep)
    }

    /// Cancels every `LATE` run (of one deployment, if given), saying they
    /// were skipped; returns how many.
    pub async fn skip_late(&self, deployment: Option<(&str, &str)>) -> StoreResult<u64> {
        let deployment_id = match deployment {
            Some((flow, name)) => Some(self.deployment(flow, name).await?.id),
            None => None,
        };
        let ids: Vec<String> = sqlx::query(
            "SELECT id FROM flow_runs WHERE state = 'LATE' \
             AND (CAST($1 AS TEXT) IS NULL OR deployment_id = CAST($1 AS TEXT))",
        )
        .bind(deployment_id)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<_, _>>()?;
        let mut skipped = 0;
        for id in ids {
            let proposal = ProposeState {
                state: StateName::Cancelled,
                message: Some("skipped: late".to_owned()),
                output: None,
            };
            // One that started meanwhile is left alone.
            if self.propose_state(&id, proposal).await?.verdict == Verdict::Accepted {
                skipped += 1;
            }
        }
        Ok(skipped)
    }
}
