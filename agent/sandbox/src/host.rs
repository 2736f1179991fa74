//! The `baton:flow/host` interface: what a running flow may ask of the host,
//! and the traits through which the embedder (the agent, the CLI, a test)
//! receives what the flow reports and answers what it asks.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use baton_proto::v1::{LogLevel, ReportBody, RunReport, TaskOutcome, Timestamp};

use crate::bindings::{self, AccessError, Level, TaskSpec, TaskStart};

/// Longest log line or task error kept; the rest is cut off with a marker,
/// so one runaway line cannot swamp the log store.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Receives everything a run reports, in order, as it happens.
pub trait RunReporter: Send + Sync {
    fn report(&self, report: RunReport);
}

/// Results of tasks stored under their cache keys.
pub trait TaskCache: Send + Sync {
    fn get(&self, key: &str) -> Option<String>;
    fn put(&self, key: &str, output_json: &str);
}

/// What a deployment grants a flow to read. A name mapped to `None` is
/// granted but has no value.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    pub variables: BTreeMap<String, Option<String>>,
    pub secrets: BTreeMap<String, Option<String>>,
}

/// A [`RunReporter`] that keeps every report in memory.
#[derive(Debug, Default)]
pub struct ReportCollector(Mutex<Vec<RunReport>>);

impl ReportCollector {
    /// The reports received so far.
    pub fn reports(&self) -> Vec<RunReport> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl RunReporter for ReportCollector {
    fn report(&self, report: RunReport) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(report);
    }
}

/// A [`TaskCache`] in memory, for one process.
#[derive(Debug, Default)]
pub struct MemoryTaskCache(Mutex<HashMap<String, String>>);

impl TaskCache for MemoryTaskCache {
    fn get(&self, key: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    fn put(&self, key: &str, output_json: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), output_json.to_owned());
    }
}

/// The host side of one run.
pub(crate) struct FlowHost {
    reporter: Arc<dyn RunReporter>,
    task_cache: Arc<dyn TaskCache>,
    grants: Grants,
    next_seq: u64,
    next_task_id: u64,
    /// Task attempts started and not yet finished: id to cache key.
    open_tasks: HashMap<u64, Option<String>>,
    /// The most recently started open task, to attribute log lines.
    current_task: Option<u64>,
}

impl FlowHost {
    pub(crate) fn new(
        reporter: Arc<dyn RunReporter>,
        task_cache: Arc<dyn TaskCache>,
        grants: Grants,
    ) -> Self {
        Self {
            reporter,
            task_cache,
            grants,
            next_seq: 1,
            next_task_id: 1,
            open_tasks: HashMap::new(),
            current_task: None,
        }
    }

    pub(crate) fn emit(&mut self, body: ReportBody) {
        let report = RunReport {
            seq: self.next_seq,
            at: now(),
            body,
        };
        self.next_seq += 1;
        self.reporter.report(report);
    }

    /// Logs a line on the flow's behalf (its stdout and stderr).
    pub(crate) fn log_line(&mut self, level: LogLevel, message: &str) {
        let message = self.redact(message);
        self.emit(ReportBody::Log {
            level,
            message,
            task_id: self.current_task,
        });
    }

    /// Removes granted secrets' values from text that leaves the sandbox.
    fn redact(&self, text: &str) -> String {
        let mut text = truncate(text);
        for value in self.grants.secrets.values().flatten() {
            // Very short values would blank out ordinary words.
            if value.len() >= 4 && text.contains(value.as_str()) {
                text = text.replace(value.as_str(), "***");
            }
        }
        text
    }
}

fn truncate(text: &str) -> String {
    if text.len() <= MAX_MESSAGE_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… [{} bytes cut]",
        text.get(..end).unwrap_or_default(),
        text.len() - end
    )
}

pub(crate) fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    Timestamp(i64::try_from(millis).unwrap_or(i64::MAX))
}

fn level(level: Level) -> LogLevel {
    match level {
        Level::Trace => LogLevel::Trace,
        Level::Debug => LogLevel::Debug,
        Level::Info => LogLevel::Info,
        Level::Warn => LogLevel::Warn,
        Level::Error => LogLevel::Error,
    }
}

fn lookup(granted: &BTreeMap<String, Option<String>>, name: &str) -> Result<String, AccessError> {
    match granted.get(name) {
        None => Err(AccessError::NotGranted),
        Some(None) => Err(AccessError::NotFound),
        Some(Some(value)) => Ok(value.clone()),
    }
}

impl bindings::baton::flow::types::Host for FlowHost {}

impl bindings::baton::flow::host::Host for FlowHost {
    fn log(&mut self, level_: Level, message: String) {
        self.log_line(level(level_), &message);
    }

    fn start_task(&mut self, spec: TaskSpec) -> TaskStart {
        if let Some(key) = &spec.cache_key
            && let Some(cached) = self.task_cache.get(key)
        {
            self.emit(ReportBody::TaskCached {
                name: spec.name,
                cache_key: key.clone(),
            });
            return TaskStart::Cached(cached);
        }
        let task_id = self.next_task_id;
        self.next_task_id += 1;
        self.open_tasks.insert(task_id, spec.cache_key.clone());
        self.current_task = Some(task_id);
        self.emit(ReportBody::TaskStarted {
            task_id,
            name: truncate(&spec.name),
            attempt: spec.attempt,
            max_attempts: spec.max_attempts,
            cache_key: spec.cache_key,
        });
        TaskStart::Run(task_id)
    }

    fn finish_task(&mut self, task_id: u64, outcome: Result<String, String>) {
        // A flow that finishes a task it never started (or twice) is
        // reported as is; it cannot corrupt the host's state.
        let cache_key = self.open_tasks.remove(&task_id).flatten();
        if self.current_task == Some(task_id) {
            self.current_task = self.open_tasks.keys().max().copied();
        }
        let outcome = match outcome {
            Ok(output_json) => {
                if let Some(key) = cache_key {
                    self.task_cache.put(&key, &output_json);
                }
                TaskOutcome::Completed
            }
            Err(message) => TaskOutcome::Failed {
                message: self.redact(&message),
            },
        };
        self.emit(ReportBody::TaskFinished { task_id, outcome });
    }

    fn variable(&mut self, name: String) -> Result<String, AccessError> {
        lookup(&self.grants.variables, &name)
    }

    fn secret(&mut self, name: String) -> Result<String, AccessError> {
        lookup(&self.grants.secrets, &name)
    }

    fn emit_event(&mut self, name: String, resource: String, payload: String) {
        // A payload that is not JSON is kept as a string rather than lost.
        let payload = serde_json::from_str(&payload)
            .unwrap_or_else(|_| serde_json::Value::String(self.redact(&payload)));
        self.emit(ReportBody::Event {
            name: truncate(&name),
            resource: truncate(&resource),
            payload,
        });
    }

    fn progress(&mut self, fraction: f32, message: String) {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        let message = self.redact(&message);
        self.emit(ReportBody::Progress { fraction, message });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let text = "é".repeat(MAX_MESSAGE_BYTES);
        let cut = truncate(&text);
        assert!(cut.len() < text.len());
        assert!(cut.ends_with("bytes cut]"), "{}", &cut[cut.len() - 30..]);
    }

    #[test]
    fn secrets_are_redacted_from_logs() {
        let collector = Arc::new(ReportCollector::default());
        let mut grants = Grants::default();
        grants
            .secrets
            .insert("token".into(), Some("hunter22".into()));
        let mut host = FlowHost::new(
            collector.clone(),
            Arc::new(MemoryTaskCache::default()),
            grants,
        );
        host.log_line(LogLevel::Info, "token is hunter22!");
        let reports = collector.reports();
        let ReportBody::Log { message, .. } = &reports[0].body else {
            panic!("not a log")
        };
        assert_eq!(message, "token is ***!");
        assert_eq!(reports[0].seq, 1);
    }
}
