//! Prints what a run reports (logs, tasks, progress, events) to stderr as it
//! happens, one line each, so stdout carries only the output.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, PoisonError};

use baton_agent::sandbox::RunReporter;
use baton_proto::v1::{ReportBody, RunArtifactKind, RunReport, TaskOutcome, Timestamp};

/// A [`RunReporter`] that writes human-readable lines to stderr.
#[derive(Default)]
pub struct StderrReporter {
    /// Open task attempts: id to name and start time.
    tasks: Mutex<HashMap<u64, (String, Timestamp)>>,
}

impl RunReporter for StderrReporter {
    fn report(&self, report: RunReport) {
        let line = self.describe(&report);
        let mut stderr = std::io::stderr().lock();
        // Nowhere to report a closed stderr; the run goes on.
        let _ = writeln!(stderr, "{} {line}", clock(report.at));
    }
}

impl StderrReporter {
    fn describe(&self, report: &RunReport) -> String {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        match &report.body {
            ReportBody::Log { level, message, task_id } => {
                match task_id.and_then(|id| tasks.get(&id)) {
                    Some((task, _)) => format!("{:<5} [{task}] {message}", level.as_str()),
                    None => format!("{:<5} {message}", level.as_str()),
                }
            }
            ReportBody::TaskStarted { task_id, name, attempt, max_attempts, .. } => {
                tasks.insert(*task_id, (name.clone(), report.at));
                format!("TASK  {name} started (attempt {attempt}/{max_attempts})")
            }
            ReportBody::TaskFinished { task_id, outcome } => {
                let (name, started) =
                    tasks.remove(task_id).unwrap_or_else(|| (format!("#{task_id}"), report.at));
                let took = report.at.0.saturating_sub(started.0);
                match outcome {
                    TaskOutcome::Completed => format!("TASK  {name} completed in {took} ms"),
                    TaskOutcome::Failed { message } => {
                        format!("TASK  {name} failed after {took} ms: {message}")
                    }
                }
            }
            ReportBody::TaskCached { name, cache_key, .. } => {
                format!("TASK  {name} answered from the cache (key {cache_key})")
            }
            ReportBody::Progress { fraction, message } => {
                format!("PROG  {:>3.0}% {message}", fraction * 100.0)
            }
            ReportBody::Event { name, resource, payload } => {
                format!("EVENT {name} on {resource}: {payload}")
            }
            ReportBody::Artifact { key, artifact_kind, content, .. } => {
                format!("ARTIFACT {}", artifact_line(key.as_deref(), *artifact_kind, content))
            }
        }
    }
}

/// An artifact in one line: its key, kind and what it holds, in brief.
pub fn artifact_line(
    key: Option<&str>,
    kind: RunArtifactKind,
    content: &serde_json::Value,
) -> String {
    use serde_json::Value;
    let gist = match (kind, content) {
        (RunArtifactKind::Markdown, Value::String(text)) => {
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
            baton_proto::v1::limits::cut(first.trim(), 100)
        }
        (RunArtifactKind::Table, Value::Array(rows)) => {
            let columns = baton_proto::v1::table_columns(rows);
            format!("{} rows × {} columns ({})", rows.len(), columns.len(), columns.join(", "))
        }
        (RunArtifactKind::Link, link) => {
            let url = link["url"].as_str().unwrap_or_default();
            match link["text"].as_str() {
                Some(text) if !text.is_empty() => format!("{text} <{url}>"),
                _ => url.to_owned(),
            }
        }
        (RunArtifactKind::Progress, fraction) => {
            format!("{:.0}%", fraction.as_f64().unwrap_or_default() * 100.0)
        }
        (_, other) => baton_proto::v1::limits::cut(&other.to_string(), 100),
    };
    format!("{} {}: {gist}", key.unwrap_or("(no key)"), kind.as_str())
}

/// `HH:MM:SS.mmm` in UTC.
fn clock(at: Timestamp) -> String {
    let ms_of_day = at.0.rem_euclid(86_400_000);
    let (hours, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    format!("{hours:02}:{minutes:02}:{:02}.{:03}", rest / 1000, rest % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_proto::v1::LogLevel;

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(clock(Timestamp(1_700_000_000_123)), "22:13:20.123");
    }

    #[test]
    fn logs_inside_a_task_name_the_task_and_tasks_are_timed() {
        let reporter = StderrReporter::default();
        let report = |seq, at, body| RunReport { seq, at: Timestamp(at), body };
        let started = reporter.describe(&report(
            1,
            1000,
            ReportBody::TaskStarted {
                task_id: 7,
                name: "extract".into(),
                attempt: 1,
                max_attempts: 3,
                cache_key: None,
            },
        ));
        assert_eq!(started, "TASK  extract started (attempt 1/3)");
        let log = reporter.describe(&report(
            2,
            1010,
            ReportBody::Log { level: LogLevel::Info, message: "hi".into(), task_id: Some(7) },
        ));
        assert_eq!(log, "INFO  [extract] hi");
        let finished = reporter.describe(&report(
            3,
            1042,
            ReportBody::TaskFinished { task_id: 7, outcome: TaskOutcome::Completed },
        ));
        assert_eq!(finished, "TASK  extract completed in 42 ms");
    }
}
