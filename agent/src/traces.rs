//! The agent's spans of a run's trace (see `baton_telemetry`): each
//! execution, and each of its task runs, recorded as their reports pass on
//! their way to the outbox.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use baton_proto::v1::link::Execution;
use baton_proto::v1::{ReportBody, RunReport, TaskOutcome};
use baton_telemetry::{RunSpan, RunSpanKind, RunTracer, at_ms};

/// One execution's trace.
pub(crate) struct ExecutionTrace {
    tracer: RunTracer,
    execution: Execution,
    began: SystemTime,
    /// Tasks started and not yet ended: their names and starts.
    open: Mutex<HashMap<u64, (String, SystemTime)>>,
}

impl ExecutionTrace {
    pub(crate) fn new(tracer: RunTracer, execution: Execution) -> Self {
        Self { tracer, execution, began: SystemTime::now(), open: Mutex::default() }
    }

    fn span(&self, kind: RunSpanKind, name: Option<String>, start: SystemTime) -> RunSpan {
        RunSpan {
            run_id: self.execution.run_id.clone(),
            kind,
            name,
            start,
            end: SystemTime::now(),
            attributes: Vec::new(),
            error: None,
        }
    }

    /// A report of the execution: a task's start, end or cache answer.
    pub(crate) fn report(&self, report: &RunReport) {
        if !self.tracer.enabled() {
            return;
        }
        let attempt = self.execution.attempt;
        let at = at_ms(report.at.0);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        match &report.body {
            ReportBody::TaskStarted { task_id, name, .. } => {
                open.insert(*task_id, (name.clone(), at));
            }
            ReportBody::TaskFinished { task_id, outcome } => {
                let Some((name, start)) = open.remove(task_id) else { return };
                let mut span =
                    self.span(RunSpanKind::Task { attempt, task_id: *task_id }, Some(name), start);
                span.end = at.max(start);
                if let TaskOutcome::Failed { message } = outcome {
                    span.error = Some(message.clone());
                }
                self.tracer.record(span);
            }
            ReportBody::TaskCached { name, task_id: Some(task_id), .. } => {
                let mut span = self.span(
                    RunSpanKind::Task { attempt, task_id: *task_id },
                    Some(name.clone()),
                    at,
                );
                span.end = at;
                span.attributes.push(("baton.cached", "true".to_owned()));
                self.tracer.record(span);
            }
            _ => {}
        }
    }

    /// The execution ended with `outcome` (`completed`, `failed`, ...).
    pub(crate) fn ended(&self, agent_id: &str, outcome: &str, error: Option<String>) {
        if !self.tracer.enabled() {
            return;
        }
        let attempt = self.execution.attempt;
        let mut span = self.span(RunSpanKind::Execute { attempt }, None, self.began);
        span.attributes = vec![
            ("baton.attempt", attempt.to_string()),
            ("baton.agent_id", agent_id.to_owned()),
            ("baton.outcome", outcome.to_owned()),
        ];
        span.error = error;
        self.tracer.record(span);
    }
}
