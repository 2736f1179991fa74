//! The core's spans of a run's trace (see `baton_telemetry`): the root,
//! recorded when the run ends, and each attempt's wait for dispatch,
//! recorded when it is pushed. The run's creation is traced where its
//! INSERT commits.

use baton_proto::v1::{FlowRun, StateName};
use baton_telemetry::{RunSpan, RunSpanKind, at_ms};

/// The root span of a run that has just ended: from its creation to its
/// end.
pub(crate) fn run_span(run: &FlowRun) -> RunSpan {
    let ended = run.ended_at.unwrap_or(run.state_changed_at);
    let failed = matches!(run.state, StateName::Failed | StateName::Crashed);
    RunSpan {
        run_id: run.id.clone(),
        kind: RunSpanKind::Run,
        name: None,
        start: at_ms(run.created_at.0),
        end: at_ms(ended.0),
        attributes: vec![
            ("baton.deployment", run.deployment.clone()),
            ("baton.flow", run.flow.clone()),
            ("baton.state", run.state.as_str().to_owned()),
            ("baton.attempts", run.attempt.to_string()),
        ],
        error: failed.then(|| run.state_message.clone().unwrap_or_default()),
    }
}

/// The span of an attempt that has just been pushed to an agent: from when
/// it was due (its creation, if due at once) until then.
pub(crate) fn dispatch_span(run: &FlowRun) -> RunSpan {
    let due = run.scheduled_at.max(run.created_at);
    RunSpan {
        run_id: run.id.clone(),
        kind: RunSpanKind::Dispatch { attempt: run.attempt },
        name: None,
        start: at_ms(due.0.min(run.state_changed_at.0)),
        end: at_ms(run.state_changed_at.0),
        attributes: vec![
            ("baton.attempt", run.attempt.to_string()),
            ("baton.agent_id", run.agent_id.clone().unwrap_or_default()),
            ("baton.work_pool", run.work_pool.clone()),
        ],
        error: None,
    }
}
