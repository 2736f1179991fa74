//! A run's attempts: one row per dispatch, written by the
//! `flow_runs_attempts` trigger (migration 0011) with each state change,
//! and what a stale execution said after it had lost the run (they are
//! read with the run's detail).

use super::{Store, StoreResult};

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
