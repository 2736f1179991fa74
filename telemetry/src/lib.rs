//! Traces of runs, exported over OTLP (HTTP, JSON bodies) where the core and
//! the agents are told to (`--otlp-endpoint URL`): one trace per run.
//!
//! A run's trace id and its spans' ids are derived from the run's id (and
//! attempt, and task number), so the core that creates a run, the one that
//! dispatches it, the agent that executes it and the ones that end it each
//! add their spans to the same trace, with the right parents, without any
//! context passed between them:
//!
//! ```text
//! run                      root: creation -> end (the core that ends it)
//! ├── create               the run's INSERT, submission -> commit
//! ├── dispatch (attempt)   due -> pushed to an agent
//! └── execute (attempt)    the agent: assigned -> ended
//!     └── task NAME        each task run, start -> end
//! ```

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SpanData, SpanEvents, SpanExporter as _, SpanLinks,
    SpanProcessor as _,
};
use sha2::{Digest as _, Sha256};

/// How long spans wait to be sent together.
const BATCH_DELAY: Duration = Duration::from_millis(500);

/// Why the exporter could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("the OTLP endpoint `{endpoint}`: {reason}")]
pub struct TraceSetupError {
    endpoint: String,
    reason: String,
}

/// Which span of a run's trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunSpanKind {
    /// The root: from the run's creation to its end.
    Run,
    /// Its creation (the write).
    Create,
    /// An attempt waiting to be pushed to an agent.
    Dispatch { attempt: u32 },
    /// An attempt on an agent.
    Execute { attempt: u32 },
    /// A task run of an attempt.
    Task { attempt: u32, task_id: u64 },
}

impl RunSpanKind {
    /// The name the span is shown by (a task's is its own).
    fn name(&self) -> &'static str {
        match self {
            RunSpanKind::Run => "run",
            RunSpanKind::Create => "create",
            RunSpanKind::Dispatch { .. } => "dispatch",
            RunSpanKind::Execute { .. } => "execute",
            RunSpanKind::Task { .. } => "task",
        }
    }

    /// The span it hangs under.
    fn parent(&self) -> Option<RunSpanKind> {
        match self {
            RunSpanKind::Run => None,
            RunSpanKind::Create | RunSpanKind::Dispatch { .. } | RunSpanKind::Execute { .. } => {
                Some(RunSpanKind::Run)
            }
            RunSpanKind::Task { attempt, .. } => Some(RunSpanKind::Execute { attempt: *attempt }),
        }
    }

    /// Its id within the run's trace.
    fn span_id(&self, run_id: &str) -> SpanId {
        let key = match self {
            RunSpanKind::Run => format!("run {run_id}"),
            RunSpanKind::Create => format!("create {run_id}"),
            RunSpanKind::Dispatch { attempt } => format!("dispatch {run_id} {attempt}"),
            RunSpanKind::Execute { attempt } => format!("execute {run_id} {attempt}"),
            RunSpanKind::Task { attempt, task_id } => format!("task {run_id} {attempt} {task_id}"),
        };
        let digest = Sha256::digest(key.as_bytes());
        let mut id = [0_u8; 8];
        id.copy_from_slice(digest.get(..8).unwrap_or(&[1; 8]));
        SpanId::from_bytes(id)
    }
}

/// The trace id of run `run_id`: the same in every process.
pub fn trace_id(run_id: &str) -> TraceId {
    let digest = Sha256::digest(format!("baton trace {run_id}").as_bytes());
    let mut id = [0_u8; 16];
    id.copy_from_slice(digest.get(..16).unwrap_or(&[1; 16]));
    TraceId::from_bytes(id)
}

/// One span of a run's trace, as a process records it once it has ended.
#[derive(Debug, Clone)]
pub struct RunSpan {
    pub run_id: String,
    pub kind: RunSpanKind,
    /// A task's name; other spans are named by their kind.
    pub name: Option<String>,
    pub start: SystemTime,
    pub end: SystemTime,
    /// More attributes beside `baton.run_id`.
    pub attributes: Vec<(&'static str, String)>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Sends runs' spans to an OTLP endpoint; does nothing when there is none.
/// Cheap to clone.
#[derive(Clone, Default)]
pub struct RunTracer {
    processor: Option<Arc<BatchSpanProcessor>>,
}

impl std::fmt::Debug for RunTracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunTracer").field("exporting", &self.processor.is_some()).finish()
    }
}

impl RunTracer {
    /// A tracer sending to `endpoint` (`http://HOST:4318`: spans go to its
    /// `/v1/traces`) as `service` (`baton-core`, `baton-agent`).
    pub fn otlp(endpoint: &str, service: &'static str) -> Result<Self, TraceSetupError> {
        let failed = |reason: String| TraceSetupError { endpoint: endpoint.to_owned(), reason };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(failed("give an http:// or https:// URL (OTLP over HTTP)".to_owned()));
        }
        let traces = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_endpoint(traces)
            .build()
            .map_err(|e| failed(e.to_string()))?;
        exporter.set_resource(&Resource::builder_empty().with_service_name(service).build());
        let config = BatchConfigBuilder::default().with_scheduled_delay(BATCH_DELAY).build();
        let processor = BatchSpanProcessor::builder(exporter).with_batch_config(config).build();
        Ok(Self { processor: Some(Arc::new(processor)) })
    }

    /// Whether spans go anywhere (so that callers skip building them).
    pub fn enabled(&self) -> bool {
        self.processor.is_some()
    }

    /// Queues `span` for export (dropped if the queue is full).
    pub fn record(&self, span: RunSpan) {
        let Some(processor) = &self.processor else { return };
        let trace = trace_id(&span.run_id);
        let context = |kind: &RunSpanKind| {
            SpanContext::new(
                trace,
                kind.span_id(&span.run_id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            )
        };
        let mut attributes = vec![KeyValue::new("baton.run_id", span.run_id.clone())];
        attributes
            .extend(span.attributes.into_iter().map(|(key, value)| KeyValue::new(key, value)));
        let name = match span.name {
            Some(name) => Cow::Owned(name),
            None => Cow::Borrowed(span.kind.name()),
        };
        processor.on_end(SpanData {
            span_context: context(&span.kind),
            parent_span_id: span.kind.parent().map_or(SpanId::INVALID, |p| p.span_id(&span.run_id)),
            parent_span_is_remote: span.kind.parent().is_some(),
            span_kind: SpanKind::Internal,
            name,
            start_time: span.start,
            end_time: span.end.max(span.start),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: span.error.map_or(Status::Unset, Status::error),
            instrumentation_scope: InstrumentationScope::builder("baton").build(),
        });
    }

    /// Sends what is queued (at shutdown).
    pub fn flush(&self) {
        if let Some(processor) = &self.processor
            && let Err(error) = processor.force_flush()
        {
            tracing::debug!("could not send the last spans: {error}");
        }
    }
}

/// A time in milliseconds since the Unix epoch (as runs are stamped).
pub fn at_ms(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_same_in_every_process_and_differ_between_spans() {
        assert_eq!(trace_id("r1"), trace_id("r1"));
        assert_ne!(trace_id("r1"), trace_id("r2"));
        let kinds = [
            RunSpanKind::Run,
            RunSpanKind::Create,
            RunSpanKind::Dispatch { attempt: 1 },
            RunSpanKind::Execute { attempt: 1 },
            RunSpanKind::Execute { attempt: 2 },
            RunSpanKind::Task { attempt: 1, task_id: 1 },
            RunSpanKind::Task { attempt: 2, task_id: 1 },
        ];
        let ids: std::collections::HashSet<SpanId> =
            kinds.iter().map(|k| k.span_id("r1")).collect();
        assert_eq!(ids.len(), kinds.len());
        let task = RunSpanKind::Task { attempt: 2, task_id: 1 };
        assert_eq!(task.parent(), Some(RunSpanKind::Execute { attempt: 2 }));
        assert_eq!(RunSpanKind::Run.parent(), None);
    }

    #[test]
    fn an_endpoint_that_is_not_http_is_refused_by_name() {
        let error = RunTracer::otlp("collector:4317", "baton-core").unwrap_err();
        assert!(error.to_string().contains("collector:4317"), "{error}");
        assert!(!RunTracer::default().enabled());
    }
}
