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
        #[serde(default, skip_serializing_if = "Map::is_empty")]
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
        #[serde(default, skip_serializing_if = "Map::is_empty")]
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

impl AutomationSpec {
    /// What the engine could not act on, in words. Every way of writing an
    /// automation (YAML, the API, the UI's form) is held to these rules.
    pub fn check(&self) -> Result<(), String> {
        super::limits::check_name("automation", &self.name)?;
        if let Some(description) = &self.description
            && description.len() > super::limits::MAX_DESCRIPTION_BYTES
        {
            return Err(super::limits::over_limit(
                "the description",
                description.len(),
                super::limits::MAX_DESCRIPTION_BYTES,
            ));
        }
        let trigger = match &self.trigger {
            Trigger::Reactive(t) => t,
            Trigger::Proactive(t) if t.within == 0 => {
                return Err("a proactive trigger needs `within`: how long to wait for its events"
                    .to_owned());
            }
            Trigger::Proactive(t) => t,
        };
        if trigger.event.trim().is_empty() {
            return Err("a trigger needs an `event` name or pattern".to_owned());
        }
        if trigger.threshold == 0 {
            return Err("a trigger's `threshold` must be at least 1".to_owned());
        }
        if let Some(path) = trigger.payload.keys().find(|path| path.trim().is_empty()) {
            return Err(format!("a payload condition needs a field path, not `{path}`"));
        }
        if self.actions.is_empty() {
            return Err("an automation needs at least one action".to_owned());
        }
        for (i, action) in self.actions.iter().enumerate() {
            action.check().map_err(|problem| format!("actions[{i}]: {problem}"))?;
        }
        Ok(())
    }
}

/// The methods a webhook action may call with.
pub const WEBHOOK_METHODS: [&str; 5] = ["POST", "PUT", "PATCH", "GET", "DELETE"];

/// Every action's name as written, in the order the README lists them
/// (see [`Action::kind`]).
pub const ACTION_KINDS: [&str; 8] = [
    "run-deployment",
    "pause-deployment",
    "resume-deployment",
    "pause-pool",
    "resume-pool",
    "cancel-run",
    "change-run-state",
    "call-webhook",
];

impl Action {
    /// The action's name as written (one of [`ACTION_KINDS`]).
    pub fn kind(&self) -> &'static str {
        match self {
            Action::RunDeployment { .. } => "run-deployment",
            Action::PauseDeployment { .. } => "pause-deployment",
            Action::ResumeDeployment { .. } => "resume-deployment",
            Action::PausePool { .. } => "pause-pool",
            Action::ResumePool { .. } => "resume-pool",
            Action::CancelRun { .. } => "cancel-run",
            Action::ChangeRunState { .. } => "change-run-state",
            Action::CallWebhook { .. } => "call-webhook",
        }
    }

    fn check(&self) -> Result<(), String> {
        match self {
            Action::RunDeployment { deployment, .. }
            | Action::PauseDeployment { deployment }
            | Action::ResumeDeployment { deployment }
                if !deployment.contains("{{") && deployment.split_once('/').is_none() =>
            {
                Err(format!("deployment `{deployment}` is not FLOW/DEPLOYMENT"))
            }
            Action::PausePool { pool } | Action::ResumePool { pool } if !pool.contains("{{") => {
                super::limits::check_name("work pool", pool)
            }
            Action::CallWebhook { url, .. }
                if !(url.starts_with("http://") || url.starts_with("https://")) =>
            {
                Err(format!("url `{url}` is not http(s)"))
            }
            Action::CallWebhook { method: Some(method), .. }
                if !WEBHOOK_METHODS.contains(&method.as_str()) =>
            {
                Err(format!("method `{method}` is not one of {}", WEBHOOK_METHODS.join(", ")))
            }
            _ => Ok(()),
        }
    }
}

/// `90s`, `10m`, `25h`, `2d`: `seconds` in the largest unit that divides
/// it, as [`parse_seconds`] reads it back.
pub fn seconds_text(seconds: u64) -> String {
    [(86_400, "d"), (3_600, "h"), (60, "m")]
        .iter()
        .find(|(unit, _)| seconds > 0 && seconds.is_multiple_of(*unit))
        .map_or_else(|| format!("{seconds}s"), |(unit, name)| format!("{}{name}", seconds / unit))
}

/// An automation's JSON as people write it: no `null` fields, and a
/// window in the largest unit that divides it (`within: 10m`).
pub fn as_written(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, field| !field.is_null());
            for (key, field) in map.iter_mut() {
                match (key.as_str(), field.as_u64()) {
                    ("within", Some(seconds)) => *field = seconds_text(seconds).into(),
                    _ => as_written(field),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(as_written),
        _ => {}
    }
}

#[cfg(feature = "yaml")]
impl AutomationSpec {
    /// An automation written in YAML. Read through JSON's data model, so
    /// enums are written `{reactive: ...}` (serde_yaml wants `!reactive`
    /// tags); not checked (see [`AutomationSpec::check`]).
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        let value: Value = serde_yaml::from_str(text).map_err(|e| format!("not YAML: {e}"))?;
        serde_json::from_value(value).map_err(|e| format!("not an automation: {e}"))
    }

    /// The automation as [`AutomationSpec::from_yaml`] reads it back, written
    /// as people write it (see [`as_written`]).
    pub fn to_yaml(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        as_written(&mut value);
        // In the order people read an automation, not the alphabet's.
        let mut ordered = serde_yaml::Mapping::new();
        if let Value::Object(mut fields) = value {
            for key in ["name", "description", "trigger", "actions"] {
                if let Some(field) = fields.remove(key) {
                    ordered.insert(key.into(), serde_yaml::to_value(field).unwrap_or_default());
                }
            }
        }
        serde_yaml::to_string(&ordered).unwrap_or_else(|e| format!("# not writable as YAML: {e}\n"))
    }
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
    fn each_action_s_kind_is_the_name_it_is_written_under_and_listed_once() {
        let deployment = || "flow/name".to_owned();
        let every = [
            Action::RunDeployment { deployment: deployment(), parameters: Map::new() },
            Action::PauseDeployment { deployment: deployment() },
            Action::ResumeDeployment { deployment: deployment() },
            Action::PausePool { pool: "edge".into() },
            Action::ResumePool { pool: "edge".into() },
            Action::CancelRun { run: None },
            Action::ChangeRunState { run: None, state: StateName::Cancelled, message: None },
            Action::CallWebhook {
                url: "https://example.com".into(),
                method: None,
                headers: Map::new(),
                body: None,
            },
        ];
        let written: Vec<String> = every
            .iter()
            .map(|action| {
                let value = serde_json::to_value(action).unwrap();
                let name = value.as_object().unwrap().keys().next().unwrap().clone();
                assert_eq!(action.kind(), name);
                name
            })
            .collect();
        assert_eq!(written, ACTION_KINDS);
    }

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

    fn spec(actions: Value) -> AutomationSpec {
        serde_json::from_value(serde_json::json!({
            "name": "nightly",
            "trigger": {"reactive": {"event": "run.failed"}},
            "actions": actions,
        }))
        .unwrap()
    }

    #[test]
    fn the_rules_name_what_the_engine_could_not_act_on() {
        assert_eq!(spec(serde_json::json!([{"cancel-run": {}}])).check(), Ok(()));
        let refused = |actions: Value, words: &str| {
            let problem = spec(actions).check().unwrap_err();
            assert!(problem.contains(words), "{problem}");
        };
        refused(serde_json::json!([]), "at least one action");
        refused(
            serde_json::json!([{"cancel-run": {}}, {"run-deployment": {"deployment": "hello"}}]),
            "actions[1]: deployment `hello` is not FLOW/DEPLOYMENT",
        );
        refused(serde_json::json!([{"pause-pool": {"pool": "../x"}}]), "work pool name");
        refused(serde_json::json!([{"call-webhook": {"url": "ftp://x"}}]), "not http(s)");
        refused(
            serde_json::json!([{"call-webhook": {"url": "http://x", "method": "post"}}]),
            "one of POST",
        );
        let mut proactive = spec(serde_json::json!([{"cancel-run": {}}]));
        proactive.trigger = Trigger::Proactive(EventTrigger {
            event: "run.completed".into(),
            threshold: 1,
            ..EventTrigger::default()
        });
        assert!(proactive.check().unwrap_err().contains("needs `within`"));
        let mut unnamed = spec(serde_json::json!([{"cancel-run": {}}]));
        unnamed.name = "a b".into();
        assert!(unnamed.check().unwrap_err().contains("automation name"));
    }

    #[test]
    fn an_automation_is_shown_as_it_would_be_written() {
        let mut value = serde_json::json!({
            "trigger": {"reactive": {"event": "run.failed", "within": 600, "threshold": 1}},
            "actions": [{"call_webhook": {"url": "http://x", "method": null}}],
            "description": null,
        });
        as_written(&mut value);
        assert_eq!(
            value,
            serde_json::json!({
                "trigger": {"reactive": {"event": "run.failed", "within": "10m", "threshold": 1}},
                "actions": [{"call_webhook": {"url": "http://x"}}],
            })
        );
        for (seconds, text) in [(90, "90s"), (3_600, "1h"), (90_000, "25h"), (172_800, "2d")] {
            assert_eq!(seconds_text(seconds), text);
            assert_eq!(parse_seconds(&seconds_text(seconds)), Some(seconds));
        }
    }

    #[cfg(feature = "yaml")]
    #[test]
    fn yaml_written_reads_back_the_same() {
        let mut written = spec(serde_json::json!([
            {"run-deployment": {"deployment": "hello/default", "parameters": {"n": 3}}},
            {"call-webhook": {"url": "http://x", "headers": {"a": "b"}}},
        ]));
        written.trigger = Trigger::Reactive(EventTrigger {
            event: "run.*".into(),
            related: Some("deployment/*".into()),
            threshold: 3,
            within: 600,
            ..EventTrigger::default()
        });
        let yaml = written.to_yaml();
        assert!(yaml.contains("within: 10m"), "{yaml}");
        assert!(yaml.starts_with("name: nightly\ntrigger:"), "{yaml}");
        assert!(!yaml.contains("null"), "{yaml}");
        assert_eq!(AutomationSpec::from_yaml(&yaml), Ok(written));
        assert!(AutomationSpec::from_yaml("name: [").unwrap_err().starts_with("not YAML"));
        assert!(
            AutomationSpec::from_yaml("name: x\ntrigger: {sometimes: {}}\nactions: []\n")
                .unwrap_err()
                .starts_with("not an automation")
        );
    }
}
