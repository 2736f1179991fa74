//! What happens during a run: the reports a running flow produces and the
//! single outcome it ends with.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct Timestamp(pub i64);

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    /// The level's name as shown to people, upper case.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }
}

/// One thing that happened during a run, numbered so that a receiver can
/// drop duplicates after a reconnect: `seq` starts at 1 and has no gaps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RunReport {
    pub seq: u64,
    pub at: Timestamp,
    #[serde(flatten)]
    pub body: ReportBody,
}

/// What a [`RunReport`] says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReportBody {
    /// A log line written by the flow (or its stdout/stderr).
    Log {
        level: LogLevel,
        message: String,
        /// The task attempt that was running when the line was written.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<u64>,
    },
    /// A task attempt started.
    TaskStarted {
        task_id: u64,
        name: String,
        attempt: u32,
        max_attempts: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_key: Option<String>,
    },
    /// A task attempt ended.
    TaskFinished { task_id: u64, outcome: TaskOutcome },
    /// A task was answered from the cache instead of running.
    TaskCached {
        name: String,
        cache_key: String,
        /// Numbered like a started task (none from older agents: not kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<u64>,
        /// The run whose result it reused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_run: Option<String>,
    },
    /// The flow reported progress.
    Progress { fraction: f32, message: String },
    /// The flow emitted an event.
    Event { name: String, resource: String, payload: serde_json::Value },
    /// The flow created an artifact (checked by the sandbox).
    Artifact {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        artifact_kind: super::RunArtifactKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        content: serde_json::Value,
    },
}

/// How a task attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TaskOutcome {
    Completed,
    Failed { message: String },
}

/// How a run in the sandbox ended: exactly one of these per run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RunOutcome {
    /// The flow returned output.
    Completed { output: serde_json::Value },
    /// The flow returned an error.
    Failed {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        details: Option<serde_json::Value>,
    },
    /// The flow trapped (a panic, an invalid operation) or broke the
    /// contract; `message` says how.
    Crashed { message: String },
    /// The flow ran past its wall-clock limit and was stopped.
    TimedOut { limit_ms: u64 },
    /// The flow tried to grow its memory past its cap and was stopped.
    OutOfMemory { limit_bytes: u64 },
    /// The run was cancelled and the flow was stopped.
    Cancelled,
}

impl RunOutcome {
    /// The outcome's name, as used in messages and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            RunOutcome::Completed { .. } => "completed",
            RunOutcome::Failed { .. } => "failed",
            RunOutcome::Crashed { .. } => "crashed",
            RunOutcome::TimedOut { .. } => "timed_out",
            RunOutcome::OutOfMemory { .. } => "out_of_memory",
            RunOutcome::Cancelled => "cancelled",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_serializes_flat_with_a_kind_tag() {
        let report = RunReport {
            seq: 3,
            at: Timestamp(1_700_000_000_000),
            body: ReportBody::Log { level: LogLevel::Info, message: "hi".into(), task_id: None },
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"seq": 3, "at": 1_700_000_000_000_i64, "kind": "log", "level": "info", "message": "hi"})
        );
        let back: RunReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn outcome_round_trips() {
        for outcome in [
            RunOutcome::Completed { output: serde_json::json!(5) },
            RunOutcome::Failed { message: "no".into(), details: None },
            RunOutcome::Crashed { message: "trap".into() },
            RunOutcome::TimedOut { limit_ms: 100 },
            RunOutcome::OutOfMemory { limit_bytes: 1 << 20 },
            RunOutcome::Cancelled,
        ] {
            let text = serde_json::to_string(&outcome).unwrap();
            assert!(text.contains(outcome.name()), "{text}");
            assert_eq!(serde_json::from_str::<RunOutcome>(&text).unwrap(), outcome);
        }
    }
}
