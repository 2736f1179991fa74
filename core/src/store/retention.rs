//! Retention: logs, events, finished runs and agents that went away grow
//! without bound in a busy system, so old ones are deleted in bounded
//! batches.

use std::time::Duration;

use sqlx::Row;

use super::{Store, StoreResult, now};

/// How long things are kept; `None` keeps them forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub logs: Option<Duration>,
    pub events: Option<Duration>,
    /// Runs that ended (and their states, tasks and logs).
    pub finished_runs: Option<Duration>,
    /// Uploaded components no deployment uses (refused at deploy, or
    /// replaced by a newer version), counted from their upload.
    pub unused_artifacts: Option<Duration>,
    /// Agents out of contact (and holding no run) this long, such as those
    /// of stopped `baton serve` processes: no longer listed. One that comes
    /// back is listed again.
    pub disconnected_agents: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        let days = |n: u64| Some(Duration::from_secs(n * 86_400));
        Self {
            logs: days(30),
            events: days(30),
            finished_runs: days(90),
            unused_artifacts: days(1),
            disconnected_agents: days(1),
        }
    }
}

/// Rows deleted per statement, so a prune never holds the writer for long.
const BATCH: i64 = 5_000;

/// What one prune deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub logs: u64,
    pub events: u64,
    pub runs: u64,
    pub artifacts: u64,
    pub agents: u64,
}

fn cutoff(keep: Duration) -> i64 {
    now().0.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX))
}

impl Store {
    /// Deletes one batch of each kind of expired row.
    pub async fn prune(&self, retention: &Retention) -> StoreResult<Pruned> {
        let mut pruned = Pruned::default();
        if let Some(keep) = retention.finished_runs {
            let ids = sqlx::query(
                "SELECT id FROM flow_runs WHERE ended_at IS NOT NULL AND ended_at < $1 LIMIT $2",
            )
            .bind(cutoff(keep))
            .bind(BATCH)
            .fetch_all(&self.read)
            .await?;
            for row in ids {
                let id: String = row.try_get("id")?;
                pruned.runs += sqlx::query("DELETE FROM flow_runs WHERE id = $1")
                    .bind(id)
                    .execute(&self.write)
                    .await?
                    .rows_affected();
            }
        }
        if let Some(keep) = retention.logs {
            pruned.logs = sqlx::query(
                "DELETE FROM logs WHERE (run_id, attempt, seq) IN (SELECT run_id, attempt, seq FROM logs WHERE at < $1 LIMIT $2)",
            )
            .bind(cutoff(keep))
            .bind(BATCH)
            .execute(&self.write)
            .await?
            .rows_affected();
        }
        if let Some(keep) = retention.events {
            pruned.events = sqlx::query("DELETE FROM events WHERE id IN (SELECT id FROM events WHERE occurred < $1 LIMIT $2)")
                .bind(cutoff(keep))
                .bind(BATCH)
                .execute(&self.write)
                .await?
                .rows_affected();
        }
        if let Some(keep) = retention.unused_artifacts {
            pruned.artifacts = sqlx::query(
                "DELETE FROM artifacts WHERE digest IN (SELECT a.digest FROM artifacts a \
                 WHERE a.created_at < $1 AND NOT EXISTS (SELECT 1 FROM deployments d WHERE d.artifact_digest = a.digest) \
                 LIMIT $2)",
            )
            .bind(cutoff(keep))
            .bind(BATCH)
            .execute(&self.write)
            .await?
            .rows_affected();
        }
        if let Some(keep) = retention.disconnected_agents {
            pruned.agents = sqlx::query(concat!(
                "DELETE FROM agents WHERE id IN (SELECT a.id FROM agents a WHERE a.connected = 0 AND a.last_seen < $1 \
                 AND NOT EXISTS (SELECT 1 FROM flow_runs r WHERE r.agent_id = a.id AND r.state IN ",
                holding_states!(),
                ") LIMIT $2)"
            ))
            .bind(cutoff(keep))
            .bind(BATCH)
            .execute(&self.write)
            .await?
            .rows_affected();
        }
        Ok(pruned)
    }
}
