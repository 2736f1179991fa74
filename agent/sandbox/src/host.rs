//! The `baton:flow/host` interface: what a running flow may ask of the host,
//! and the traits through which the embedder (the agent, the CLI, a test)
//! receives what the flow reports and answers what it asks.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use baton_proto::v1::limits::{MAX_EVENT_BYTES, MAX_MESSAGE_BYTES, cut, over_limit};
use baton_proto::v1::outgoing::OutgoingHosts;
use baton_proto::v1::{
    LogLevel, ReportBody, RunArtifactKind, RunReport, TaskOutcome, Timestamp, check_run_artifact,
};

use crate::bindings::{
    self, AccessError, ArtifactKind, Command, CommandError, CommandOutput, Level, TaskSpec,
    TaskStart,
};
use crate::commands::{self, CommandGrant};
use crate::subflows::Subflows;
use crate::task_cache::{OpenTask, TaskCache};

/// A flow sent the host something over a size limit: the call traps with
/// this error, and the run ends `FAILED` with its message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct LimitExceeded(pub(crate) String);

/// Receives everything a run reports, in order, as it happens.
pub trait RunReporter: Send + Sync {
    fn report(&self, report: RunReport);
}

/// What a deployment grants a flow to read. A name mapped to `None` is
/// granted but has no value.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    pub variables: BTreeMap<String, Option<String>>,
    pub secrets: BTreeMap<String, Option<String>>,
    /// Where the flow may send HTTP requests; nowhere by default.
    pub outgoing_hosts: OutgoingHosts,
    /// Which native programs it may run; none by default.
    pub commands: CommandGrant,
}

/// A [`RunReporter`] that keeps every report in memory.
#[derive(Debug, Default)]
pub struct ReportCollector(Mutex<Vec<RunReport>>);

impl ReportCollector {
    /// The reports received so far.
    pub fn reports(&self) -> Vec<RunReport> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl RunReporter for ReportCollector {
    fn report(&self, report: RunReport) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(report);
    }
}

/// Numbers a run's reports and hands them to the embedder, in order; shared
/// by the host interface and the guest's stdout and stderr.
pub(crate) struct RunLog {
    reporter: Arc<dyn RunReporter>,
    /// Values of granted secrets, removed from every message.
    secrets: Vec<String>,
    state: Mutex<LogState>,
}

struct LogState {
    next_seq: u64,
    /// The most recently started open task, to attribute log lines.
    current_task: Option<u64>,
    lines: Budget,
    events: Budget,
    artifacts: Budget,
}

/// How much of something (log lines, events) a run may send: a rate with
/// bursts, and a total in items and bytes. A flood beyond it is dropped and
/// counted, and a log line says how many, so nothing is lost silently and
/// a flood never delays the run's outcome behind it (or fills the core).
struct Budget {
    limits: &'static BudgetLimits,
    tokens: f64,
    refilled: Instant,
    count: u64,
    bytes: u64,
    /// Dropped since the last line that said so.
    dropped: u64,
}

struct BudgetLimits {
    /// What is counted, plural (`log lines`).
    what: &'static str,
    /// The budget's name in the marker (`log`).
    name: &'static str,
    per_second: f64,
    burst: f64,
    max_count: u64,
    max_bytes: u64,
}

const LOG_BUDGET: BudgetLimits = BudgetLimits {
    what: "log lines",
    name: "log",
    per_second: 5_000.0,
    burst: 50_000.0,
    max_count: 200_000,
    max_bytes: 64 << 20,
};

/// Artifacts are reports for people: fewer still.
const ARTIFACT_BUDGET: BudgetLimits = BudgetLimits {
    what: "artifacts",
    name: "artifact",
    per_second: 10.0,
    burst: 100.0,
    max_count: 1_000,
    max_bytes: 64 << 20,
};

/// Events are for automations and people, not telemetry: far fewer.
const EVENT_BUDGET: BudgetLimits = BudgetLimits {
    what: "events",
    name: "event",
    per_second: 100.0,
    burst: 1_000.0,
    max_count: 10_000,
    max_bytes: 64 << 20,
};

impl Budget {
    fn new(limits: &'static BudgetLimits) -> Self {
        Self {
            limits,
            tokens: limits.burst,
            refilled: Instant::now(),
            count: 0,
            bytes: 0,
            dropped: 0,
        }
    }

    /// Whether one more of `len` bytes may be sent; counts it as sent or
    /// as dropped.
    fn admit(&mut self, len: usize) -> bool {
        let limits = self.limits;
        let now = Instant::now();
        let earned = now.duration_since(self.refilled).as_secs_f64() * limits.per_second;
        self.tokens = (self.tokens + earned).min(limits.burst);
        self.refilled = now;
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        if self.tokens < 1.0
            || self.count >= limits.max_count
            || self.bytes + len > limits.max_bytes
        {
            self.dropped += 1;
            return false;
        }
        self.tokens -= 1.0;
        self.count += 1;
        self.bytes += len;
        true
    }

    /// The marker line for what was dropped since the last one, if any.
    fn dropped_marker(&mut self) -> Option<String> {
        if self.dropped == 0 {
            return None;
        }
        let limits = self.limits;
        let unit = limits.what.rsplit(' ').next().unwrap_or(limits.what);
        Some(format!(
            "{} {} dropped: over the run's {} budget ({} {unit} a second, bursts of {}, {} {unit} and {} in all)",
            std::mem::take(&mut self.dropped),
            limits.what,
            limits.name,
            limits.per_second,
            limits.burst,
            limits.max_count,
            baton_proto::v1::limits::human_bytes(
                usize::try_from(limits.max_bytes).unwrap_or(usize::MAX)
            ),
        ))
    }
}

impl RunLog {
    pub(crate) fn new(reporter: Arc<dyn RunReporter>, grants: &Grants) -> Self {
        Self {
            reporter,
            // Very short values would blank out ordinary words.
            secrets: grants.secrets.values().flatten().filter(|v| v.len() >= 4).cloned().collect(),
            state: Mutex::new(LogState {
                next_seq: 1,
                current_task: None,
                lines: Budget::new(&LOG_BUDGET),
                events: Budget::new(&EVENT_BUDGET),
                artifacts: Budget::new(&ARTIFACT_BUDGET),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn emit_locked(&self, state: &mut LogState, body: ReportBody) {
        let report = RunReport { seq: state.next_seq, at: now(), body };
        state.next_seq += 1;
        // Delivered under the lock, so reports arrive in `seq` order.
        self.reporter.report(report);
    }

    pub(crate) fn emit(&self, body: ReportBody) {
        let mut state = self.lock();
        self.emit_locked(&mut state, body);
    }

    /// Writes a log line, attributed to the task that is running, if the
    /// run's log budget allows; else counts it as dropped.
    pub(crate) fn log(&self, level: LogLevel, message: &str) {
        if !self.lock().lines.admit(message.len()) {
            return;
        }
        // Redacted outside the lock: the guest's other stream may log meanwhile.
        let message = self.redact(message);
        let mut state = self.lock();
        self.say_dropped(&mut state);
        let task_id = state.current_task;
        self.emit_locked(&mut state, ReportBody::Log { level, message, task_id });
    }

    /// Says how many lines and events were dropped, if any were since it
    /// last said so: before the next line or event that is kept, and when
    /// the run ends.
    fn say_dropped(&self, state: &mut LogState) {
        let markers = [
            state.lines.dropped_marker(),
            state.events.dropped_marker(),
            state.artifacts.dropped_marker(),
        ];
        for message in markers.into_iter().flatten() {
            let body = ReportBody::Log { level: LogLevel::Warn, message, task_id: None };
            self.emit_locked(state, body);
        }
    }

    /// Sends an event, if the run's event budget allows; else counts it as
    /// dropped.
    pub(crate) fn event(
        &self,
        name: &str,
        resource: &str,
        payload: serde_json::Value,
        size: usize,
    ) {
        if !self.lock().events.admit(size) {
            return;
        }
        // Redacted outside the lock, as log lines are.
        let body = ReportBody::Event {
            name: self.redact(name),
            resource: self.redact(resource),
            payload: self.redact_json(payload),
        };
        let mut state = self.lock();
        self.say_dropped(&mut state);
        self.emit_locked(&mut state, body);
    }

    /// Sends an artifact, checked and redacted, if the run's artifact
    /// budget allows; `Err` says why not (the flow sees it).
    pub(crate) fn artifact(
        &self,
        key: Option<String>,
        kind: RunArtifactKind,
        content: &str,
        description: Option<String>,
    ) -> Result<(), String> {
        let description_bytes = description.as_ref().map_or(0, String::len);
        let size = content.len().saturating_add(description_bytes);
        let content = check_run_artifact(key.as_deref(), kind, content, description_bytes)?;
        if !self.lock().artifacts.admit(size) {
            return Err(format!(
                "artifact refused: over the run's artifact budget ({} a second, bursts of {}, {} in all)",
                ARTIFACT_BUDGET.per_second, ARTIFACT_BUDGET.burst, ARTIFACT_BUDGET.max_count
            ));
        }
        let body = ReportBody::Artifact {
            key: key.map(|key| self.redact(&key)),
            artifact_kind: kind,
            description: description.map(|d| self.redact(&d)),
            content: self.redact_json(content),
        };
        let mut state = self.lock();
        self.say_dropped(&mut state);
        self.emit_locked(&mut state, body);
        Ok(())
    }

    /// The run has ended: says what was dropped since the last line.
    pub(crate) fn finish(&self) {
        let mut state = self.lock();
        self.say_dropped(&mut state);
    }

    fn set_current_task(&self, task: Option<u64>) {
        self.lock().current_task = task;
    }

    /// Removes granted secrets' values from `text`, then cuts it to size
    /// (in that order, so a cut never leaves part of a secret behind).
    pub(crate) fn redact(&self, text: &str) -> String {
        truncate(&self.hide_secrets(text))
    }

    /// Whether `text` holds a granted secret's value.
    pub(crate) fn holds_secret(&self, text: &str) -> bool {
        self.secrets.iter().any(|value| text.contains(value.as_str()))
    }

    fn hide_secrets(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for value in &self.secrets {
            if text.contains(value.as_str()) {
                text = text.replace(value.as_str(), "***");
            }
        }
        text
    }

    /// `value` with secrets removed from every string in it, keys included.
    pub(crate) fn redact_json(&self, value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        if self.secrets.is_empty() {
            return value;
        }
        match value {
            Value::String(text) => Value::String(self.hide_secrets(&text)),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|item| self.redact_json(item)).collect())
            }
            Value::Object(fields) => Value::Object(
                fields
                    .into_iter()
                    .map(|(key, field)| (self.hide_secrets(&key), self.redact_json(field)))
                    .collect(),
            ),
            other => other,
        }
    }

    /// The length of the longest secret value redacted (0: none).
    pub(crate) fn longest_secret(&self) -> usize {
        self.secrets.iter().map(String::len).max().unwrap_or(0)
    }

    /// Where a long line may be split into pieces that are logged one by
    /// one: at most `limit` bytes in, and never inside a secret's value
    /// (one that may still continue after `line` is held back whole).
    pub(crate) fn split_point(&self, line: &[u8], limit: usize) -> usize {
        let longest = self.longest_secret();
        let mut split = limit.min(line.len());
        if longest == 0 || longest > limit / 2 {
            return split;
        }
        // A secret may begin in the last `longest - 1` bytes and go on in
        // what is written next: keep those bytes for the next piece.
        split = split.min(line.len().saturating_sub(longest - 1));
        // Nor split one that straddles the point (moving the point back may
        // put it inside another: look again until none straddles it).
        loop {
            let straddled = self.secrets.iter().find_map(|value| {
                let value = value.as_bytes();
                let from = split.saturating_sub(value.len() - 1);
                let window = line.get(from..(split + value.len() - 1).min(line.len()))?;
                let offset = window.windows(value.len()).position(|w| w == value)?;
                Some(from + offset)
            });
            match straddled {
                Some(at) if at < split => split = at,
                _ => return split.max(1),
            }
        }
    }
}

/// The host side of one run.
pub(crate) struct FlowHost {
    log: Arc<RunLog>,
    task_cache: Arc<dyn TaskCache>,
    grants: Grants,
    next_task_id: u64,
    /// Task attempts started and not yet finished, by id.
    open_tasks: HashMap<u64, OpenTask>,
    /// The run's scratch directory on the host: where commands run.
    scratch: Option<PathBuf>,
    subflows: Arc<dyn Subflows>,
    /// `run-deployment` calls made so far.
    child_calls: u32,
}

impl FlowHost {
    pub(crate) fn new(
        log: Arc<RunLog>,
        task_cache: Arc<dyn TaskCache>,
        grants: Grants,
        subflows: Arc<dyn Subflows>,
    ) -> Self {
        Self {
            log,
            task_cache,
            grants,
            next_task_id: 1,
            open_tasks: HashMap::new(),
            scratch: None,
            subflows,
            child_calls: 0,
        }
    }

    /// Numbers a `run-deployment` call, from 1.
    pub(crate) fn next_child_call(&mut self) -> u32 {
        self.child_calls = self.child_calls.saturating_add(1);
        self.child_calls
    }

    pub(crate) fn subflows(&self) -> Arc<dyn Subflows> {
        Arc::clone(&self.subflows)
    }

    pub(crate) fn set_scratch(&mut self, dir: &Path) {
        self.scratch = Some(dir.to_owned());
    }

    pub(crate) fn log(&self) -> &Arc<RunLog> {
        &self.log
    }

    pub(crate) fn outgoing_hosts(&self) -> &OutgoingHosts {
        &self.grants.outgoing_hosts
    }

    pub(crate) fn task_cache(&self) -> Arc<dyn TaskCache> {
        Arc::clone(&self.task_cache)
    }

    /// Numbers a task attempt (or a cached answer), from 1.
    pub(crate) fn next_task_id(&mut self) -> u64 {
        let task_id = self.next_task_id;
        self.next_task_id += 1;
        task_id
    }

    /// Marks `task_id` started: lines logged now are its.
    pub(crate) fn open_task(&mut self, task_id: u64, task: OpenTask) {
        self.open_tasks.insert(task_id, task);
        self.log.set_current_task(Some(task_id));
    }

    pub(crate) fn open_task_mut(&mut self, task_id: u64) -> Option<&mut OpenTask> {
        self.open_tasks.get_mut(&task_id)
    }
}

/// Longest log line, name or task error kept; the rest is cut off with a
/// marker, so one runaway line cannot swamp the log store.
fn truncate(text: &str) -> String {
    cut(text, MAX_MESSAGE_BYTES)
}

/// The time a report is stamped with.
pub fn now() -> Timestamp {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
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

impl bindings::baton::flow::artifacts::Host for FlowHost {
    fn create(
        &mut self,
        key: Option<String>,
        kind: ArtifactKind,
        content: String,
        description: Option<String>,
    ) -> Result<(), String> {
        let kind = match kind {
            ArtifactKind::Markdown => RunArtifactKind::Markdown,
            ArtifactKind::Table => RunArtifactKind::Table,
            ArtifactKind::Link => RunArtifactKind::Link,
            ArtifactKind::Progress => RunArtifactKind::Progress,
        };
        self.log.artifact(key, kind, &content, description)
    }
}

impl bindings::baton::flow::commands::Host for FlowHost {
    async fn run(&mut self, command: Command) -> Result<CommandOutput, CommandError> {
        commands::run(&self.grants.commands, &self.log, self.scratch.as_deref(), command).await
    }
}

impl bindings::baton::flow::host::Host for FlowHost {
    fn log(&mut self, level_: Level, message: String) {
        self.log.log(level(level_), &message);
    }

    async fn start_task(&mut self, spec: TaskSpec) -> TaskStart {
        self.start_cached_task(spec).await
    }

    async fn finish_task(&mut self, task_id: u64, outcome: Result<String, String>) {
        // A flow that finishes a task it never started (or twice) is
        // reported as is; it cannot corrupt the host's state.
        let task = self.open_tasks.remove(&task_id);
        self.log.set_current_task(self.open_tasks.keys().max().copied());
        let (outcome, output) = match outcome {
            Ok(output_json) => (TaskOutcome::Completed, Some(output_json)),
            Err(message) => (TaskOutcome::Failed { message: self.log.redact(&message) }, None),
        };
        self.log.emit(ReportBody::TaskFinished { task_id, outcome });
        if let (Some(task), Some(output_json)) = (task, output) {
            self.cache_result(task, &output_json).await;
        }
    }

    fn variable(&mut self, name: String) -> Result<String, AccessError> {
        lookup(&self.grants.variables, &name)
    }

    fn secret(&mut self, name: String) -> Result<String, AccessError> {
        lookup(&self.grants.secrets, &name)
    }

    fn emit_event(
        &mut self,
        name: String,
        resource: String,
        payload: String,
    ) -> wasmtime::Result<()> {
        let size = name.len() + resource.len() + payload.len();
        if size > MAX_EVENT_BYTES {
            let what = format!("event `{}`", cut(&self.log.redact(&name), 200));
            return Err(LimitExceeded(over_limit(&what, size, MAX_EVENT_BYTES)).into());
        }
        // A payload that is not JSON is kept as a string rather than lost.
        let payload = serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload));
        self.log.event(&name, &resource, payload, size);
        Ok(())
    }

    fn progress(&mut self, fraction: f32, message: String) {
        let fraction = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
        let message = self.log.redact(&message);
        self.log.emit(ReportBody::Progress { fraction, message });
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
        grants.secrets.insert("token".into(), Some("hunter22".into()));
        let log = RunLog::new(collector.clone(), &grants);
        log.log(LogLevel::Info, "token is hunter22!");
        let reports = collector.reports();
        let ReportBody::Log { message, .. } = &reports[0].body else { panic!("not a log") };
        assert_eq!(message, "token is ***!");
        assert_eq!(reports[0].seq, 1);
    }
}
