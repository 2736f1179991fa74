//! What a running flow reports through its agent: log lines, task runs and
//! its own events, stored together in one write. Each report carries its
//! execution's report `seq` and is kept under the run's attempt, so a
//! report sent twice is stored once and two executions never mix.

use baton_proto::v1::{LogLevel, LogLine, ReportBody, RunReport, StateName, TaskOutcome};
use sqlx::AnyConnection;

use super::events::{self, NewEvent};
use super::{Store, StoreResult};

/// How a level is stored: its serde name (`info`), which `logs` reads back.
pub(super) fn stored_level(level: LogLevel) -> String {
    serde_json::to_value(level).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn seq(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Most log lines one INSERT takes (7 values each; SQLite allows 32,766).
const LOGS_PER_INSERT: usize = 500;

/// Stores log lines in as few statements as possible; a line already
/// stored (same run, attempt and `seq`) is skipped, so a resend stores
/// nothing twice.
/// Returns how many were new.
pub(super) async fn insert_logs(
    conn: &mut AnyConnection,
    run_id: &str,
    lines: &[LogLine],
) -> StoreResult<u64> {
    let mut stored = 0;
    for chunk in lines.chunks(LOGS_PER_INSERT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let n = i * 6;
                format!(
                    "($1, ${}, ${}, ${}, ${}, ${}, ${})",
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5,
                    n + 6,
                    n + 7
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO logs (run_id, attempt, seq, at, level, message, task_id) VALUES {} \
             ON CONFLICT (run_id, attempt, seq) DO NOTHING",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(run_id);
        for line in chunk {
            query = query
                .bind(i64::from(line.attempt))
                .bind(seq(line.seq))
                .bind(line.at.0)
                .bind(stored_level(line.level))
                .bind(line.message.clone())
                .bind(line.task_id.map(seq));
        }
        stored += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(stored)
}

/// The log lines among `reports` of attempt `attempt`.
fn log_lines(attempt: u32, reports: &[RunReport]) -> Vec<LogLine> {
    reports
        .iter()
        .filter_map(|report| match &report.body {
            ReportBody::Log { level, message, task_id } => Some(LogLine {
                attempt,
                seq: report.seq,
                at: report.at,
                level: *level,
                message: message.clone(),
                task_id: *task_id,
            }),
            _ => None,
        })
        .collect()
}

async fn store_report(
    conn: &mut AnyConnection,
    run_id: &str,
    attempt: u32,
    report: &RunReport,
) -> StoreResult<()> {
    let run_attempt = i64::from(attempt);
    match &report.body {
        // Stored together by `insert_logs`.
        ReportBody::Log { .. } => {}
        ReportBody::TaskStarted { task_id, name, attempt, max_attempts, .. } => {
            sqlx::query(
                "INSERT INTO task_runs (run_id, run_attempt, task_id, name, attempt, max_attempts, state, message, started_at, ended_at) \
                 VALUES ($1, $7, $2, $3, $4, $5, 'RUNNING', NULL, $6, NULL) ON CONFLICT (run_id, run_attempt, task_id) DO NOTHING",
            )
            .bind(run_id)
            .bind(seq(*task_id))
            .bind(name)
            .bind(i64::from(*attempt))
            .bind(i64::from(*max_attempts))
            .bind(report.at.0)
            .bind(run_attempt)
            .execute(&mut *conn)
            .await?;
        }
        ReportBody::TaskFinished { task_id, outcome } => {
            let (state, message) = match outcome {
                TaskOutcome::Completed => (StateName::Completed, None),
                TaskOutcome::Failed { message } => (StateName::Failed, Some(message.as_str())),
            };
            sqlx::query(
                "UPDATE task_runs SET state = $1, message = $2, ended_at = $3 \
                 WHERE run_id = $4 AND task_id = $5 AND run_attempt = $6",
            )
            .bind(state.as_str())
            .bind(message)
            .bind(report.at.0)
            .bind(run_id)
            .bind(seq(*task_id))
            .bind(run_attempt)
            .execute(&mut *conn)
            .await?;
        }
        ReportBody::Event { name, resource, payload } => {
            // A flow's own event, once: its id is fixed by run, attempt
            // and seq.
            events::record_once(
                conn,
                &format!("{run_id}:{attempt}:{}", report.seq),
                report.at,
                NewEvent {
                    name,
                    resource: resource.clone(),
                    related: vec![format!("run/{run_id}")],
                    payload: payload.clone(),
                },
            )
            .await?;
        }
        ReportBody::Artifact { key, artifact_kind, description, content } => {
            sqlx::query(
                "INSERT INTO run_artifacts (run_id, attempt, seq, artifact_key, kind, description, content, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (run_id, attempt, seq) DO NOTHING",
            )
            .bind(run_id)
            .bind(run_attempt)
            .bind(seq(report.seq))
            .bind(key.as_deref())
            .bind(artifact_kind.as_str())
            .bind(description.as_deref())
            .bind(content.to_string())
            .bind(report.at.0)
            .execute(&mut *conn)
            .await?;
        }
        // The latest of the current attempt's, kept on the run: a resent
        // or late report never replaces a newer one.
        ReportBody::Progress { fraction, message } => {
            sqlx::query(
                "UPDATE flow_runs SET progress_fraction = $1, progress_message = $2, progress_at = $3 \
                 WHERE id = $4 AND attempt = $5 AND (progress_at IS NULL OR progress_at <= $3)",
            )
            .bind(f64::from(*fraction))
            .bind(message.as_str())
            .bind(report.at.0)
            .bind(run_id)
            .bind(run_attempt)
            .execute(&mut *conn)
            .await?;
        }
        // A task answered from the cache: a task run that did not run,
        // begun and ended at once. Older agents number none: not kept.
        ReportBody::TaskCached { name, task_id: Some(task_id), from_run, .. } => {
            sqlx::query(
                "INSERT INTO task_runs (run_id, run_attempt, task_id, name, attempt, max_attempts, state, message, started_at, ended_at, cached_from) \
                 VALUES ($1, $2, $3, $4, 1, 1, 'COMPLETED', NULL, $5, $5, $6) ON CONFLICT (run_id, run_attempt, task_id) DO NOTHING",
            )
            .bind(run_id)
            .bind(run_attempt)
            .bind(seq(*task_id))
            .bind(name)
            .bind(report.at.0)
            .bind(from_run.as_deref().unwrap_or(run_id))
            .execute(&mut *conn)
            .await?;
        }
        ReportBody::TaskCached { task_id: None, .. } => {}
    }
    Ok(())
}

impl Store {
    /// Stores what attempt `attempt` of a run reported, in one write.
    pub async fn store_reports(
        &self,
        run_id: &str,
        attempt: u32,
        reports: Vec<RunReport>,
    ) -> StoreResult<()> {
        let run_id = run_id.to_owned();
        self.write_transaction(move |_, conn| {
            Box::pin(async move {
                insert_logs(conn, &run_id, &log_lines(attempt, &reports)).await?;
                for report in &reports {
                    store_report(conn, &run_id, attempt, report).await?;
                }
                Ok(())
            })
        })
        .await
    }
}
