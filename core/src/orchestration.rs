//! The run state machine: which transitions are legal, and the rules that
//! accept, reject, delay or redirect a proposed one. Pure: the store feeds
//! it facts read inside the transaction that applies its decision.

use baton_proto::v1::{ConcurrencyPolicy, StateName};

/// What the rules need to know about a run and its deployment.
#[derive(Debug, Clone, Copy)]
pub struct RunFacts {
    pub current: StateName,
    /// Times the run has started `RUNNING`.
    pub run_count: u32,
    pub max_retries: u32,
    pub retry_delay_ms: i64,
    pub deployment_paused: bool,
    pub concurrency_limit: Option<u32>,
    pub concurrency_policy: ConcurrencyPolicy,
    /// Runs of the deployment holding a slot now (this one excluded).
    pub slots_in_use: u32,
}

/// The verdict on a proposed transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Move to `state` (which may differ from the proposal); `reason` says
    /// why when it does. `retry_in_ms` is set when a retry is scheduled.
    Accept { state: StateName, reason: Option<String>, retry_in_ms: Option<i64> },
    /// Not allowed; nothing changes.
    Reject { reason: String },
    /// Not now; nothing changes.
    Delay { reason: String },
}

impl Decision {
    fn accept(state: StateName) -> Self {
        Decision::Accept { state, reason: None, retry_in_ms: None }
    }
}

/// Whether `from -> to` is a transition the state machine allows at all.
pub fn is_legal(from: StateName, to: StateName) -> bool {
    use StateName::*;
    match from {
        Scheduled => matches!(to, Late | Pending | Cancelled),
        Late => matches!(to, Pending | Cancelled),
        AwaitingRetry => matches!(to, Late | Pending | Cancelled),
        // An agent may hand a pending run back (`SCHEDULED`).
        Pending => matches!(to, Scheduled | Running | Cancelled | Crashed | Failed),
        Running => matches!(to, Completed | Failed | Crashed | Cancelling | Cancelled | Paused),
        Paused => matches!(to, Running | Cancelled | Crashed),
        Cancelling => matches!(to, Cancelled | Completed | Failed | Crashed),
        // A finished run can only be retried by hand, which schedules it anew.
        Completed | Failed | Crashed | Cancelled => matches!(to, Scheduled),
    }
}

/// Decides a proposed transition.
pub fn decide(facts: &RunFacts, proposed: StateName) -> Decision {
    if proposed == StateName::AwaitingRetry {
        return Decision::Reject {
            reason: "AWAITING_RETRY is chosen by the core: propose FAILED or CRASHED".to_owned(),
        };
    }
    if !is_legal(facts.current, proposed) {
        return Decision::Reject {
            reason: format!("a run cannot go from {} to {proposed}", facts.current),
        };
    }
    match proposed {
        StateName::Pending => decide_dispatch(facts),
        StateName::Failed | StateName::Crashed => decide_failure(facts, proposed),
        _ => Decision::accept(proposed),
    }
}

fn decide_dispatch(facts: &RunFacts) -> Decision {
    if facts.deployment_paused {
        return Decision::Delay { reason: "the deployment is paused".to_owned() };
    }
    match facts.concurrency_limit {
        Some(limit) if facts.slots_in_use >= limit => match facts.concurrency_policy {
            ConcurrencyPolicy::Enqueue => Decision::Delay {
                reason: format!("the deployment's concurrency limit ({limit}) is reached"),
            },
            ConcurrencyPolicy::CancelNew => Decision::Accept {
                state: StateName::Cancelled,
                reason: Some(format!(
                    "cancelled: the deployment's concurrency limit ({limit}) is reached and its policy is cancel-new"
                )),
                retry_in_ms: None,
            },
        },
        _ => Decision::accept(StateName::Pending),
    }
}

fn decide_failure(facts: &RunFacts, proposed: StateName) -> Decision {
    // `run_count` attempts were made; the first is not a retry.
    let retries_used = facts.run_count.saturating_sub(1);
    if retries_used < facts.max_retries {
        let retry = retries_used + 1;
        return Decision::Accept {
            state: StateName::AwaitingRetry,
            reason: Some(format!(
                "{proposed}; retry {retry} of {} in {} ms",
                facts.max_retries, facts.retry_delay_ms
            )),
            retry_in_ms: Some(facts.retry_delay_ms),
        };
    }
    Decision::accept(proposed)
}

/// What a cancel request does to a run in `current`.
pub fn cancel_target(current: StateName) -> Result<StateName, String> {
    match current {
        StateName::Running => Ok(StateName::Cancelling),
        StateName::Cancelling => Err("the run is already being cancelled".to_owned()),
        state if state.is_terminal() => Err(format!("the run already ended ({state})")),
        // Waiting, pending or paused: nothing runs, so it ends at once.
        _ => Ok(StateName::Cancelled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StateName::*;

    fn facts(current: StateName) -> RunFacts {
        RunFacts {
            current,
            run_count: 1,
            max_retries: 0,
            retry_delay_ms: 0,
            deployment_paused: false,
            concurrency_limit: None,
            concurrency_policy: ConcurrencyPolicy::Enqueue,
            slots_in_use: 0,
        }
    }

    #[test]
    fn the_happy_path_is_legal_and_shortcuts_are_not() {
        for (from, to) in [(Scheduled, Pending), (Pending, Running), (Running, Completed)] {
            assert_eq!(decide(&facts(from), to), Decision::accept(to), "{from} -> {to}");
        }
        for (from, to) in [
            (Scheduled, Running),
            (Scheduled, Completed),
            (Completed, Running),
            (Cancelled, Pending),
        ] {
            assert!(matches!(decide(&facts(from), to), Decision::Reject { .. }), "{from} -> {to}");
        }
    }

    #[test]
    fn terminal_states_lead_nowhere_but_a_manual_retry() {
        for from in StateName::ALL.into_iter().filter(|s| s.is_terminal()) {
            let next: Vec<_> =
                StateName::ALL.into_iter().filter(|to| is_legal(from, *to)).collect();
            assert_eq!(next, [Scheduled], "{from}");
        }
    }

    #[test]
    fn a_full_deployment_delays_or_cancels_by_policy() {
        let mut full = facts(Scheduled);
        full.concurrency_limit = Some(1);
        full.slots_in_use = 1;
        assert!(matches!(decide(&full, Pending), Decision::Delay { .. }));
        full.concurrency_policy = ConcurrencyPolicy::CancelNew;
        assert!(matches!(decide(&full, Pending), Decision::Accept { state: Cancelled, .. }));
        full.slots_in_use = 0;
        assert_eq!(decide(&full, Pending), Decision::accept(Pending));
    }

    #[test]
    fn a_paused_deployment_dispatches_nothing() {
        let mut paused = facts(Late);
        paused.deployment_paused = true;
        assert!(matches!(decide(&paused, Pending), Decision::Delay { .. }));
    }

    #[test]
    fn failures_with_retries_left_await_a_retry() {
        let mut run = facts(Running);
        run.max_retries = 2;
        run.retry_delay_ms = 500;
        for (run_count, expected) in [(1, AwaitingRetry), (2, AwaitingRetry), (3, Failed)] {
            run.run_count = run_count;
            match decide(&run, Failed) {
                Decision::Accept { state, retry_in_ms, .. } => {
                    assert_eq!(state, expected, "attempt {run_count}");
                    assert_eq!(retry_in_ms.is_some(), expected == AwaitingRetry);
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(decide(&run, AwaitingRetry), Decision::Reject { .. }));
    }

    #[test]
    fn cancelling_depends_on_whether_anything_runs() {
        assert_eq!(cancel_target(Scheduled), Ok(Cancelled));
        assert_eq!(cancel_target(Pending), Ok(Cancelled));
        assert_eq!(cancel_target(Running), Ok(Cancelling));
        assert!(cancel_target(Completed).is_err());
        assert!(cancel_target(Cancelling).is_err());
    }
}
