//! The states of a flow run (DESIGN.md, "Run states").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a flow run is in its life. The core owns the transitions between
/// them; names are upper case on the wire, as people see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StateName {
    /// Waiting for its scheduled time.
    Scheduled,
    /// Its scheduled time has passed and it has not been dispatched.
    Late,
    /// Assigned to an agent, not yet started.
    Pending,
    Running,
    /// Paused by the flow or a person; resumes to `RUNNING`.
    Paused,
    /// Failed or crashed with retries left; waits for its retry time.
    AwaitingRetry,
    /// Cancellation requested; the agent is stopping it.
    Cancelling,
    Completed,
    Failed,
    /// Its agent vanished or the sandbox crashed.
    Crashed,
    Cancelled,
}

impl StateName {
    pub const ALL: [StateName; 11] = [
        StateName::Scheduled,
        StateName::Late,
        StateName::Pending,
        StateName::Running,
        StateName::Paused,
        StateName::AwaitingRetry,
        StateName::Cancelling,
        StateName::Completed,
        StateName::Failed,
        StateName::Crashed,
        StateName::Cancelled,
    ];

    /// The name on the wire and in the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            StateName::Scheduled => "SCHEDULED",
            StateName::Late => "LATE",
            StateName::Pending => "PENDING",
            StateName::Running => "RUNNING",
            StateName::Paused => "PAUSED",
            StateName::AwaitingRetry => "AWAITING_RETRY",
            StateName::Cancelling => "CANCELLING",
            StateName::Completed => "COMPLETED",
            StateName::Failed => "FAILED",
            StateName::Crashed => "CRASHED",
            StateName::Cancelled => "CANCELLED",
        }
    }

    /// A run in a terminal state never changes again (except by an
    /// explicit retry, which schedules it anew).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            StateName::Completed | StateName::Failed | StateName::Crashed | StateName::Cancelled
        )
    }

    /// A run in one of these states occupies a concurrency slot of its
    /// deployment, queue and pool. Slots are derived from states, never
    /// counted separately, so none can leak.
    pub fn holds_slot(self) -> bool {
        matches!(self, StateName::Pending | StateName::Running | StateName::Cancelling)
    }

    /// Waiting to be dispatched.
    pub fn is_waiting(self) -> bool {
        matches!(self, StateName::Scheduled | StateName::Late | StateName::AwaitingRetry)
    }
}

impl fmt::Display for StateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of [`StateName::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownState(pub String);

impl fmt::Display for UnknownState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = StateName::ALL.iter().map(|s| s.as_str()).collect();
        write!(f, "unknown state `{}` (one of {})", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownState {}

impl FromStr for StateName {
    type Err = UnknownState;

    /// Accepts any case, and `-` for `_`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_uppercase().replace('-', "_");
        StateName::ALL
            .into_iter()
            .find(|state| state.as_str() == wanted)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for state in StateName::ALL {
            assert_eq!(state.as_str().parse::<StateName>(), Ok(state));
            assert_eq!(serde_json::to_string(&state).unwrap(), format!("\"{state}\""));
        }
        assert_eq!("awaiting-retry".parse::<StateName>(), Ok(StateName::AwaitingRetry));
        assert!("DONE".parse::<StateName>().is_err());
    }

    #[test]
    fn only_active_states_hold_slots_and_none_is_both_terminal_and_holding() {
        for state in StateName::ALL {
            assert!(!(state.is_terminal() && state.holds_slot()), "{state}");
        }
        let holding: Vec<_> = StateName::ALL.into_iter().filter(|s| s.holds_slot()).collect();
        assert_eq!(holding, [StateName::Pending, StateName::Running, StateName::Cancelling]);
    }
}
