//! Automations: a trigger on the event feed and the actions it takes
//! (`baton automation create -f FILE.yaml`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{StateName, Timestamp};

/// When an automation acts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// When `threshold` matching events happen within `within` seconds (any
    /// time apart when `within` is 0).
    Reactive(EventTrigger),
    /// When fewer than `threshold` matching events happen within `within`
    /// seconds, counted from the automation's creation, its resumption or
    /// its last firing.
    Proactive(EventTrigger),
}

/// A trigger's events and how many of them, within how long.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EventTrigger {
    /// Event name; `*` stands for any run of characters (`run.*`).
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub event: String,
    /// The event's resource must match this (`*` likewise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// One of the event's related resources must match this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related: Option<String>,
    /// Payload fields (dotted paths) and the values they must have.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub payload: Map<String, Value>,
    #[serde(default = "one")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub threshold: u32,
    /// Seconds, or a duration such as `90s`, `10m`, `25h`, `2d`.
    #[serde(default, deserialize_with = "seconds")]
    pub within: u64,
}

/// Seconds from a number or a duration such as `90s`, `10m`, `25h`, `2d`.
fn seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Seconds(u64),
        Text(String),
    }
    match Written::deserialize(deserializer)? {
        Written::Seconds(seconds) => Ok(seconds),
        Written::Text(text) => parse_seconds(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration such as 90s, 10m, 25h or 2d"
            ))
        }),
    }
}

/// `90s`, `10m`, `25h`, `2d` or a plain number of seconds.
pub fn parse_seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return None,
    };
    number.checked_mul(factor)
}

fn one() -> u32 {
    1
}

/// What an automation does. Strings may hold `{{ event.name }}`,
/// `{{ event.resource }}`, `{{ event.resource_id }}` (the part after the
/// last `/`), `{{ event.id }}`, `{{ event.occurred }}`, `{{ event.related }}`
/// and `{{ event.payload.PATH }}`; a string that is one such placeholder
/// becomes the value itself (a number stays a number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action {
    /// Create a run of `FLOW/DEPLOYMENT`.
    RunDeployment {
        #[cfg_attr(feature = "schema", schemars(pattern(r"/|\{\{")))]
        deployment: String,
        #[serde(default)]
        parameters: Map<String, Value>,
    },
    PauseDeployment {
        #[cfg_attr(feature = "schema", schemars(pattern(r"/|\{\{")))]
        deployment: String,
    },
    ResumeDeployment {
        #[cfg_attr(feature = "schema", schemars(pattern(r"/|\{\{")))]
        deployment: String,
    },
    PausePool {
        pool: String,
    },
    ResumePool {
        pool: String,
    },
    /// Cancel a run (default: the event's run).
    CancelRun {
        #[serde(default)]
        run: Option<String>,
    },
    /// Propose a state for a run (default: the event's run).
    ChangeRunState {
        #[serde(default)]
        run: Option<String>,
        state: StateName,
        #[serde(default)]
        message: Option<String>,
    },
    /// Call an outgoing webhook: `body` (default: the event as JSON) sent
    /// with `method` (default POST).
    CallWebhook {
        #[cfg_attr(feature = "schema", schemars(pattern("^https?://")))]
        url: String,
        #[serde(default)]
        method: Option<String>,
        #[serde(default)]
        headers: Map<String, Value>,
        #[serde(default)]
        body: Option<Value>,
    },
}

/// An automation as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AutomationSpec {
    #[cfg_attr(feature = "schema", schemars(pattern(super::limits::name_pattern())))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub trigger: Trigger,
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub actions: Vec<Action>,
}

/// An automation as the core keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Automation {
    pub id: String,
    #[serde(flatten)]
    pub spec: AutomationSpec,
    pub paused: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When a proactive trigger's window started.
    pub armed_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_seconds() {
        assert_eq!(parse_seconds("90s"), Some(90));
        assert_eq!(parse_seconds("25h"), Some(90_000));
        assert_eq!(parse_seconds("2d"), Some(172_800));
        assert_eq!(parse_seconds("15"), Some(15));
        assert_eq!(parse_seconds("soon"), None);
        assert_eq!(parse_seconds("5w"), None);
        let trigger: Trigger = serde_json::from_value(serde_json::json!(
            {"proactive": {"event": "run.completed", "within": "25h"}}
        ))
        .unwrap();
        assert_eq!(
            trigger,
            Trigger::Proactive(EventTrigger {
                event: "run.completed".into(),
                threshold: 1,
                within: 90_000,
                ..EventTrigger::default()
            })
        );
    }
}
