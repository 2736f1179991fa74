//! A run's attempts: one row per dispatch, written by the
//! `flow_runs_attempts` trigger (migration 0011) with each state change,
//! and what a stale execution said after it had lost the run.

use baton_proto::v1::{RunAttempt, Timestamp};
use sqlx::Row;

use super::{Store, StoreResult, as_u32, parsed_column};

/// Longest stale outcome kept per attempt (it is for diagnosis only).
const MAX_STALE_OUTCOME: usize = 4096;

impl Store {
    /// The attempts of run `id`, oldest first.
    pub async fn attempts(&self, id: &str) -> StoreResult<Vec<RunAttempt>> {
        let rows = sqlx::query(
            "SELECT number, agent_id, dispatched_at, started_at, ended_at, state, message, output, stale_outcome \
             FROM run_attempts WHERE run_id = $1 ORDER BY number",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                let output: Option<String> = row.try_get("output")?;
                Ok(RunAttempt {
                    number: as_u32(row.try_get("number")?),
                    agent_id: row.try_get("agent_id")?,
                    dispatched_at: Timestamp(row.try_get("dispatched_at")?),
                    started_at: row.try_get::<Option<i64>, _>("started_at")?.map(Timestamp),
                    ended_at: row.try_get::<Option<i64>, _>("ended_at")?.map(Timestamp),
                    state: parsed_column(row, "state")?,
                    message: row.try_get("message")?,
                    output: output.and_then(|o| serde_json::from_str(&o).ok()),
                    stale_outcome: row.try_get("stale_outcome")?,
                })
            })
            .collect()
    }

    /// Keeps what attempt `attempt` of run `id` reported after it had lost
    /// the run; it changes nothing else.
    pub async fn record_stale(&self, id: &str, attempt: u32, what: &str) -> StoreResult<()> {
        let what: String = what.chars().take(MAX_STALE_OUTCOME).collect();
        let id = id.to_owned();
        self.write_transaction(move |_, conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE run_attempts SET stale_outcome = $1 WHERE run_id = $2 AND number = $3",
                )
                .bind(what)
                .bind(id)
                .bind(i64::from(attempt))
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }
}
