//! The automation editor's model: an automation as its form holds it
//! while it is edited (each field's text as typed, so a half-written
//! value is kept), read from a spec and read back into one.

use baton_proto::v1::{
    Action, AutomationSpec, EventTrigger, StateName, Trigger, parse_seconds, seconds_text,
};
use serde_json::{Map, Value};

/// The trigger kinds, as written.
pub const TRIGGER_KINDS: [&str; 2] = ["reactive", "proactive"];

/// The action kinds, as written.
pub use baton_proto::v1::ACTION_KINDS;

/// An automation being edited.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub name: String,
    pub description: String,
    /// One of [`TRIGGER_KINDS`].
    pub trigger: String,
    pub event: String,
    pub resource: String,
    pub related: String,
    pub payload: Vec<Condition>,
    pub threshold: String,
    /// A duration as [`parse_seconds`] reads it (`10m`).
    pub within: String,
    pub actions: Vec<ActionDraft>,
}

/// A payload condition: the field at a dotted path, and its value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Condition {
    pub path: String,
    /// JSON (`3`, `"x"`, `true`), or else a string as it stands.
    pub value: String,
}

/// An action being edited: every kind's fields, so what was typed stays
/// when the kind is changed (a deployment from running it to pausing it).
#[derive(Debug, Clone, PartialEq)]
pub struct ActionDraft {
    /// One of [`ACTION_KINDS`].
    pub kind: String,
    pub deployment: String,
    /// A JSON object.
    pub parameters: String,
    pub pool: String,
    pub run: String,
    /// A [`StateName`], or empty before one is chosen.
    pub state: String,
    pub message: String,
    pub url: String,
    /// One of `WEBHOOK_METHODS`, or empty for the default.
    pub method: String,
    /// A JSON object.
    pub headers: String,
    /// JSON, or else a string as it stands; empty for the event.
    pub body: String,
}

impl ActionDraft {
    /// A new action of `kind`, its fields empty.
    pub fn blank(kind: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            deployment: String::new(),
            parameters: String::new(),
            pool: String::new(),
            run: String::new(),
            state: String::new(),
            message: String::new(),
            url: String::new(),
            method: String::new(),
            headers: String::new(),
            body: String::new(),
        }
    }

    fn of(action: &Action) -> Self {
        let mut draft = Self::blank(action.kind());
        match action {
            Action::RunDeployment { deployment, parameters } => {
                draft.deployment = deployment.clone();
                draft.parameters = object_text(parameters);
            }
            Action::PauseDeployment { deployment } | Action::ResumeDeployment { deployment } => {
                draft.deployment = deployment.clone();
            }
            Action::PausePool { pool } | Action::ResumePool { pool } => draft.pool = pool.clone(),
            Action::CancelRun { run } => draft.run = run.clone().unwrap_or_default(),
            Action::ChangeRunState { run, state, message } => {
                draft.run = run.clone().unwrap_or_default();
                draft.state = state.as_str().to_owned();
                draft.message = message.clone().unwrap_or_default();
            }
            Action::CallWebhook { url, method, headers, body } => {
                draft.url = url.clone();
                draft.method = method.clone().unwrap_or_default();
                draft.headers = object_text(headers);
                draft.body = body.as_ref().map(value_text).unwrap_or_default();
            }
        }
        draft
    }

    /// The action this stands for; a problem names the field (by the
    /// suffix of its control's id) and what is wrong with it.
    fn action(&self) -> Result<Action, (&'static str, String)> {
        let optional = |text: &str| (!text.trim().is_empty()).then(|| text.to_owned());
        Ok(match self.kind.as_str() {
            "run-deployment" => Action::RunDeployment {
                deployment: self.deployment.clone(),
                parameters: object_of(&self.parameters).map_err(|e| ("parameters", e))?,
            },
            "pause-deployment" => Action::PauseDeployment { deployment: self.deployment.clone() },
            "resume-deployment" => Action::ResumeDeployment { deployment: self.deployment.clone() },
            "pause-pool" => Action::PausePool { pool: self.pool.clone() },
            "resume-pool" => Action::ResumePool { pool: self.pool.clone() },
            "cancel-run" => Action::CancelRun { run: optional(&self.run) },
            "change-run-state" => Action::ChangeRunState {
                run: optional(&self.run),
                state: self
                    .state
                    .parse::<StateName>()
                    .map_err(|_| ("state", "choose the state to propose".to_owned()))?,
                message: optional(&self.message),
            },
            "call-webhook" => Action::CallWebhook {
                url: self.url.clone(),
                method: optional(&self.method),
                headers: object_of(&self.headers).map_err(|e| ("headers", e))?,
                body: optional(&self.body).map(|body| value_of(&body)),
            },
            other => return Err(("kind", format!("`{other}` is not an action"))),
        })
    }
}

/// What is wrong with a draft: the id of the control to look at (empty
/// when the rules name it in words), and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub at: String,
    pub message: String,
}

impl Draft {
    pub fn of(spec: &AutomationSpec) -> Self {
        let (kind, trigger) = match &spec.trigger {
            Trigger::Reactive(trigger) => ("reactive", trigger),
            Trigger::Proactive(trigger) => ("proactive", trigger),
        };
        Self {
            name: spec.name.clone(),
            description: spec.description.clone().unwrap_or_default(),
            trigger: kind.to_owned(),
            event: trigger.event.clone(),
            resource: trigger.resource.clone().unwrap_or_default(),
            related: trigger.related.clone().unwrap_or_default(),
            payload: trigger
                .payload
                .iter()
                .map(|(path, value)| Condition { path: path.clone(), value: value_text(value) })
                .collect(),
            threshold: trigger.threshold.to_string(),
            within: match trigger.within {
                0 => String::new(),
                seconds => seconds_text(seconds),
            },
            actions: spec.actions.iter().map(ActionDraft::of).collect(),
        }
    }

    /// A new automation: a reactive trigger, no actions yet.
    pub fn blank() -> Self {
        Self {
            name: String::new(),
            description: String::new(),
            trigger: "reactive".to_owned(),
            event: String::new(),
            resource: String::new(),
            related: String::new(),
            payload: Vec::new(),
            threshold: "1".to_owned(),
            within: String::new(),
            actions: Vec::new(),
        }
    }

    /// The automation the form stands for, as typed (not checked: see
    /// [`AutomationSpec::check`]).
    pub fn spec(&self) -> Result<AutomationSpec, Problem> {
        let problem = |at: &str, message: String| Problem { at: at.to_owned(), message };
        let optional = |text: &str| (!text.trim().is_empty()).then(|| text.to_owned());
        let threshold = match self.threshold.trim() {
            "" => 1,
            text => text.parse::<u32>().map_err(|_| {
                problem(
                    "automation-threshold",
                    format!("threshold: `{text}` is not a whole number"),
                )
            })?,
        };
        let within = match self.within.trim() {
            "" => 0,
            text => parse_seconds(text).ok_or_else(|| {
                problem(
                    "automation-within",
                    format!("within: `{text}` is not a duration such as 90s, 10m, 25h or 2d"),
                )
            })?,
        };
        let mut payload = Map::new();
        for (index, condition) in self.payload.iter().enumerate() {
            let path = condition.path.trim().to_owned();
            if payload.contains_key(&path) && !path.is_empty() {
                let message = format!("payload: `{path}` has two conditions");
                return Err(problem(&format!("payload-{index}-path"), message));
            }
            payload.insert(path, value_of(&condition.value));
        }
        let trigger = EventTrigger {
            event: self.event.clone(),
            resource: optional(&self.resource),
            related: optional(&self.related),
            payload,
            threshold,
            within,
        };
        let trigger = match self.trigger.as_str() {
            "proactive" => Trigger::Proactive(trigger),
            _ => Trigger::Reactive(trigger),
        };
        let actions = self
            .actions
            .iter()
            .enumerate()
            .map(|(index, action)| {
                action.action().map_err(|(field, message)| {
                    problem(
                        &format!("action-{index}-{field}"),
                        format!("actions[{index}]: {message}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AutomationSpec {
            name: self.name.trim().to_owned(),
            description: optional(&self.description),
            trigger,
            actions,
        })
    }
}

/// A JSON object as typed; empty for none.
fn object_of(text: &str) -> Result<Map<String, Value>, String> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err("a JSON object, like {\"key\": \"value\"}".to_owned()),
        Err(error) => Err(format!("not a JSON object: {error}")),
    }
}

fn object_text(object: &Map<String, Value>) -> String {
    if object.is_empty() {
        return String::new();
    }
    serde_json::to_string(object).unwrap_or_default()
}

/// JSON as typed, or else the text as a string: `FAILED` needs no quotes.
fn value_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// What [`value_of`] reads back as `value`: a string without quotes
/// unless it would read as something else.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) if serde_json::from_str::<Value>(text).is_err() => text.clone(),
        other => other.to_string(),
    }
}
