//! A run's log: lines appended through the API, and read back in order of
//! attempt, then line number within the attempt.

use baton_proto::v1::{LogLine, Timestamp};
use sqlx::Row;

use super::{Store, StoreResult};

/// The line number of an attempt's last line, which says why the run left
/// that execution (written by the `flow_runs_ending_log_line` trigger).
const ENDING_LINE_SEQ: u64 = 0xFFFF_FFFF;

impl Store {
    /// Appends log lines; a line already stored (same run, attempt and
    /// `seq`) is skipped, so a resend stores nothing twice. Lines that name
    /// no attempt (0) belong to the run's current one.
    pub async fn append_logs(&self, run_id: &str, mut lines: Vec<LogLine>) -> StoreResult<u64> {
        if let Some(line) = lines.iter().find(|line| line.seq >= ENDING_LINE_SEQ) {
            return Err(super::StoreError::Invalid(format!(
                "log line seq {} is over the largest, {}",
                line.seq,
                ENDING_LINE_SEQ - 1
            )));
        }
        let run = self.run(run_id).await?;
        for line in lines.iter_mut().filter(|line| line.attempt == 0) {
            line.attempt = run.attempt.max(1);
        }
        let run_id = run_id.to_owned();
        self.write_transaction(move |_, conn| {
            Box::pin(async move { super::reports::insert_logs(conn, &run_id, &lines).await })
        })
        .await
    }

    /// Log lines of a run after the position `after` (`LogLine::position`),
    /// in order: every line of an attempt before the next attempt's.
    pub async fn logs(&self, run_id: &str, after: u64, limit: u32) -> StoreResult<Vec<LogLine>> {
        self.run(run_id).await?;
        let rows = sqlx::query(
            "SELECT attempt, seq, at, level, message, task_id FROM logs WHERE run_id = $1 \
             AND (attempt > $2 OR (attempt = $2 AND seq > $3)) ORDER BY attempt, seq LIMIT $4",
        )
        .bind(run_id)
        .bind(i64::try_from(after >> 32).unwrap_or(i64::MAX))
        .bind(i64::try_from(after & u64::from(u32::MAX)).unwrap_or(i64::MAX))
        .bind(i64::from(limit.clamp(1, 10_000)))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                let level: String = row.try_get("level")?;
                let number = |column: &str| -> StoreResult<u64> {
                    Ok(u64::try_from(row.try_get::<i64, _>(column)?).unwrap_or_default())
                };
                Ok(LogLine {
                    attempt: super::as_u32(row.try_get("attempt")?),
                    seq: number("seq")?,
                    at: Timestamp(row.try_get("at")?),
                    level: serde_json::from_value(serde_json::Value::String(level))
                        .map_err(|e| super::StoreError::Corrupt(e.to_string()))?,
                    message: row.try_get("message")?,
                    task_id: row
                        .try_get::<Option<i64>, _>("task_id")?
                        .and_then(|t| u64::try_from(t).ok()),
                })
            })
            .collect()
    }
}
