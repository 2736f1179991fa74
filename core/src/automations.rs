//! The automation engine: listens to the event feed, counts each
//! automation's matching events, and when a trigger fires, claims the
//! firing (once across cores) and carries out the actions in order. An
//! action that fails is recorded as an `automation.action-failed` event and
//! the others still run.
//!
//! Loops are cut by one rule: an automation never reacts to an event about
//! itself, nor to events of a run that its own actions led to, directly or
//! through other automations (a run remembers the chain of automations that
//! caused it); and a chain stops after `MAX_CHAIN` automations.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use baton_proto::v1::{
    Action, Automation, AutomationSpec, CreateRun, Event, EventTrigger, ProposeState, Timestamp,
    Trigger, Verdict,
};
use serde_json::Value;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use crate::dispatch::Dispatcher;
use crate::feed::{Feed, name_matches};
use crate::metrics::AutomationLabels;
use crate::store::{AutomationPut, EventFilter, Store, StoreResult, now};

/// Automations a chain of causes may pass through.
pub const MAX_CHAIN: usize = 5;

/// The engine's handle; clones share it.
#[derive(Clone)]
pub struct Automations {
    store: Store,
    feed: Feed,
    dispatcher: Dispatcher,
    reload: Arc<Notify>,
    http: reqwest::Client,
}

/// An automation and its recent matching events.
struct Watched {
    automation: Automation,
    /// Times of matching events still inside the trigger's window.
    seen: VecDeque<i64>,
}

fn trigger(automation: &Automation) -> &EventTrigger {
    match &automation.spec.trigger {
        Trigger::Reactive(t) | Trigger::Proactive(t) => t,
    }
}

/// The value at a dotted path of `value`.
fn at_path<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |v, key| match v {
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => v.get(key),
    })
}

/// Whether `event` is one the trigger counts.
pub fn matches(trigger: &EventTrigger, event: &Event) -> bool {
    name_matches(&trigger.event, &event.name)
        && trigger.resource.as_deref().is_none_or(|p| name_matches(p, &event.resource))
        && trigger
            .related
            .as_deref()
            .is_none_or(|p| event.related.iter().any(|r| name_matches(p, r)))
        && trigger.payload.iter().all(|(path, want)| at_path(&event.payload, path) == Some(want))
}

/// What a placeholder `{{ ... }}` stands for.
fn placeholder(expression: &str, event: &Event) -> Value {
    let expression = expression.trim();
    match expression {
        "event.id" => Value::String(event.id.clone()),
        "event.name" => Value::String(event.name.clone()),
        "event.resource" => Value::String(event.resource.clone()),
        "event.resource_id" => {
            Value::String(event.resource.rsplit('/').next().unwrap_or_default().to_owned())
        }
        // RFC 3339 (UTC, milliseconds), as people and most APIs read times.
        "event.occurred" => chrono::DateTime::from_timestamp_millis(event.occurred.0)
            .map_or(Value::Null, |at| {
                Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            }),
        "event.related" => Value::from(event.related.clone()),
        "event.payload" => event.payload.clone(),
        other => other
            .strip_prefix("event.payload.")
            .and_then(|path| at_path(&event.payload, path))
            .cloned()
            .unwrap_or(Value::Null),
    }
}

/// A string with its placeholders filled in; one that is a single
/// placeholder becomes that value (a number stays a number).
fn render_text(text: &str, event: &Event) -> Value {
    let trimmed = text.trim();
    if let Some(inner) = trimmed.strip_prefix("{{").and_then(|t| t.strip_suffix("}}"))
        && !inner.contains("{{")
    {
        return placeholder(inner, event);
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else { break };
        out.push_str(&rest[..start]);
        match placeholder(&rest[start + 2..start + end], event) {
            Value::String(s) => out.push_str(&s),
            Value::Null => {}
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Value::String(out)
}

/// `value` with every string's placeholders filled in from `event`.
pub fn render(value: &Value, event: &Event) -> Value {
    match value {
        Value::String(text) => render_text(text, event),
        Value::Array(items) => Value::Array(items.iter().map(|v| render(v, event)).collect()),
        Value::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), render(v, event))).collect())
        }
        other => other.clone(),
    }
}

/// The run an event is about, if any.
fn run_of(event: &Event) -> Option<&str> {
    event.resource.strip_prefix("run/")
}

fn split_deployment(full: &str) -> Result<(&str, &str), String> {
    full.split_once('/').ok_or_else(|| format!("deployment `{full}` is not FLOW/DEPLOYMENT"))
}

impl Automations {
    pub fn new(store: Store, feed: Feed, dispatcher: Dispatcher) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { store, feed, dispatcher, reload: Arc::new(Notify::new()), http }
    }

    /// Reads the automations again (one was created, changed or deleted).
    fn reload(&self) {
        self.reload.notify_one();
    }

    // Every change to an automation (API, CLI, UI) goes through these, so
    // the engine watches what was stored.

    pub async fn create(&self, spec: AutomationSpec) -> StoreResult<Automation> {
        let automation = self.store.create_automation(spec).await?;
        self.reload();
        Ok(automation)
    }

    /// See [`Store::put_automation`].
    pub async fn put(
        &self,
        id_or_name: &str,
        spec: AutomationSpec,
        dry_run: bool,
    ) -> StoreResult<Option<AutomationPut>> {
        let put = self.store.put_automation(id_or_name, spec, dry_run).await?;
        if put.is_some() {
            self.reload();
        }
        Ok(put)
    }

    pub async fn set_paused(&self, id_or_name: &str, paused: bool) -> StoreResult<Automation> {
        let automation = self.store.set_automation_paused(id_or_name, paused).await?;
        self.reload();
        Ok(automation)
    }

    pub async fn delete(&self, id_or_name: &str) -> StoreResult<()> {
        self.store.delete_automation(id_or_name).await?;
        self.reload();
        Ok(())
    }

    /// The automations to watch, with the matching events already inside
    /// their windows (so a restart does not forget them).
    async fn load(&self) -> HashMap<String, Watched> {
        let automations = match self.store.automations().await {
            Ok(all) => all,
            Err(error) => {
                tracing::warn!(%error, "reading automations failed");
                return HashMap::new();
            }
        };
        let mut watched = HashMap::new();
        for automation in automations.into_iter().filter(|a| !a.paused) {
            let t = trigger(&automation);
            let mut seen = VecDeque::new();
            if t.within > 0 {
                let since = Timestamp(
                    now().0 - i64::try_from(t.within.saturating_mul(1000)).unwrap_or(i64::MAX),
                );
                let filter = EventFilter {
                    name: Some(t.event.clone()),
                    since: Some(since),
                    limit: 1000,
                    ..EventFilter::default()
                };
                if let Ok(events) = self.store.events(&filter).await {
                    seen = events
                        .iter()
                        .rev()
                        .filter(|e| matches(t, e))
                        .map(|e| e.occurred.0)
                        .collect();
                }
            }
            watched.insert(automation.id.clone(), Watched { automation, seen });
        }
        watched
    }

    /// Watches the feed until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let mut events = self.feed.subscribe();
        let mut watched = self.load().await;
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        let mut ticks = 0_u32;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.reload.notified() => watched = self.load().await,
                received = events.recv() => match received {
                    Ok(event) => self.on_event(&event, &mut watched).await,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "automations fell behind the event feed");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick() => {
                    self.check_proactive(&mut watched).await;
                    // Changes made through another core.
                    ticks += 1;
                    if ticks.is_multiple_of(10) {
                        watched = self.load().await;
                    }
                }
            }
        }
    }

    async fn on_event(&self, event: &Event, watched: &mut HashMap<String, Watched>) {
        let mut fired = Vec::new();
        for entry in watched.values_mut() {
            let automation = &entry.automation;
            let own = format!("automation/{}", automation.id);
            if event.resource == own || event.related.contains(&own) {
                continue;
            }
            let t = trigger(automation);
            if !matches(t, event) {
                continue;
            }
            entry.seen.push_back(event.occurred.0);
            if t.within > 0 {
                let oldest = event.occurred.0
                    - i64::try_from(t.within.saturating_mul(1000)).unwrap_or(i64::MAX);
                while entry.seen.front().is_some_and(|at| *at < oldest) {
                    entry.seen.pop_front();
                }
            }
            // Keep no more than the threshold needs.
            while entry.seen.len() > t.threshold as usize {
                entry.seen.pop_front();
            }
            if matches!(automation.spec.trigger, Trigger::Reactive(_))
                && entry.seen.len() >= t.threshold as usize
            {
                entry.seen.clear();
                fired.push(automation.clone());
            }
        }
        for automation in fired {
            let chain = match run_of(event) {
                Some(run) => self.store.run_caused_by(run).await.unwrap_or_default(),
                None => Vec::new(),
            };
            if chain.contains(&automation.id) || chain.len() >= MAX_CHAIN {
                tracing::info!(automation = %automation.spec.name, "loop cut: the event came of this automation's own actions");
                continue;
            }
            let cause = serde_json::json!({"event": event.id, "name": event.name, "resource": event.resource});
            self.fire(&automation, event, event.id.clone(), cause, false, chain).await;
        }
    }

    /// Fires proactive automations whose window passed without enough of
    /// their events.
    async fn check_proactive(&self, watched: &mut HashMap<String, Watched>) {
        let at = now();
        let mut fired = Vec::new();
        for entry in watched.values_mut() {
            let Trigger::Proactive(t) = &entry.automation.spec.trigger else { continue };
            let within = i64::try_from(t.within.saturating_mul(1000)).unwrap_or(i64::MAX);
            let window_start = at.0 - within;
            if entry.automation.armed_at.0 > window_start {
                continue;
            }
            while entry.seen.front().is_some_and(|seen| *seen < window_start) {
                entry.seen.pop_front();
            }
            if entry.seen.len() < t.threshold as usize {
                // Keyed by the window's start: every core that saw this
                // window empty claims the same firing.
                fired.push(entry.automation.clone());
                // Its next window starts now.
                entry.automation.armed_at = at;
            }
        }
        for automation in fired {
            let t = trigger(&automation);
            let missing = Event {
                id: format!("window:{}", automation.armed_at.0),
                occurred: at,
                name: "automation.expected-event-missing".to_owned(),
                resource: format!("automation/{}", automation.id),
                related: Vec::new(),
                payload: serde_json::json!({"expected": t.event, "threshold": t.threshold, "within": t.within}),
            };
            let key = format!("window:{}", automation.armed_at.0);
            self.fire(&automation, &missing, key, missing.payload.clone(), true, Vec::new()).await;
        }
    }

    /// Claims a firing and carries out the actions.
    async fn fire(
        &self,
        automation: &Automation,
        event: &Event,
        key: String,
        cause: Value,
        rearm: bool,
        mut chain: Vec<String>,
    ) {
        match self.store.claim_firing(automation, key, now(), cause, rearm).await {
            Ok(true) => {
                let labels = AutomationLabels { automation: automation.spec.name.clone() };
                self.store.metrics().automation_firings.get_or_create(&labels).inc();
            }
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(%error, automation = %automation.spec.name, "could not record a firing");
                return;
            }
        }
        chain.push(automation.id.clone());
        for (index, action) in automation.spec.actions.iter().enumerate() {
            if let Err(why) = self.act(action, event, &chain).await {
                let kind = serde_json::to_value(action)
                    .ok()
                    .and_then(|v| v.as_object().and_then(|o| o.keys().next().cloned()))
                    .unwrap_or_default();
                let recorded = self
                    .store
                    .record_event(
                        "automation.action-failed",
                        format!("automation/{}", automation.id),
                        vec![event.resource.clone()],
                        serde_json::json!({
                            "automation": automation.spec.name,
                            "action": index,
                            "kind": kind,
                            "error": why,
                            "event": event.id,
                        }),
                    )
                    .await;
                if let Err(error) = recorded {
                    tracing::warn!(%error, "could not record a failed action");
                }
            }
        }
    }

    /// Carries out one action for `event`; says why it could not.
    async fn act(&self, action: &Action, event: &Event, chain: &[String]) -> Result<(), String> {
        let rendered = serde_json::to_value(action).map_err(|e| e.to_string())?;
        let action: Action = serde_json::from_value(render(&rendered, event))
            .map_err(|e| format!("the action does not read after filling in the event: {e}"))?;
        let event_run = || {
            run_of(event)
                .map(str::to_owned)
                .ok_or_else(|| format!("no run given, and the event is about {}", event.resource))
        };
        match &action {
            Action::RunDeployment { deployment, parameters } => {
                let (flow, name) = split_deployment(deployment)?;
                let request = CreateRun { parameters: parameters.clone(), ..CreateRun::default() };
                self.store
                    .create_run_caused_by(flow, name, request, chain)
                    .await
                    .map_err(|e| e.to_string())?;
                self.dispatcher.wake();
            }
            Action::PauseDeployment { deployment } | Action::ResumeDeployment { deployment } => {
                let pause = matches!(action, Action::PauseDeployment { .. });
                let (flow, name) = split_deployment(deployment)?;
                self.store
                    .set_deployment_paused(flow, name, pause)
                    .await
                    .map_err(|e| e.to_string())?;
                self.dispatcher.wake();
            }
            Action::PausePool { pool } | Action::ResumePool { pool } => {
                let pause = matches!(action, Action::PausePool { .. });
                self.store.set_pool_paused(pool, pause).await.map_err(|e| e.to_string())?;
                self.dispatcher.wake();
            }
            Action::CancelRun { run } => {
                let run = run.clone().map_or_else(event_run, Ok)?;
                let transition =
                    self.dispatcher.cancel_run(&run).await.map_err(|e| e.to_string())?;
                if transition.verdict != Verdict::Accepted {
                    return Err(transition.reason.unwrap_or_else(|| "refused".to_owned()));
                }
            }
            Action::ChangeRunState { run, state, message } => {
                let run = run.clone().map_or_else(event_run, Ok)?;
                let proposal =
                    ProposeState { state: *state, message: message.clone(), output: None };
                let transition =
                    self.store.propose_state(&run, proposal).await.map_err(|e| e.to_string())?;
                if transition.verdict != Verdict::Accepted {
                    return Err(transition.reason.unwrap_or_else(|| "refused".to_owned()));
                }
            }
            Action::CallWebhook { url, method, headers, body } => {
                let method = method.as_deref().unwrap_or("POST");
                let method = reqwest::Method::from_bytes(method.as_bytes())
                    .map_err(|_| format!("`{method}` is not an HTTP method"))?;
                let mut request = self.http.request(method, url);
                for (name, value) in headers {
                    let value = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    request = request.header(name.as_str(), value);
                }
                request = match body {
                    None => request.json(event),
                    Some(Value::String(text)) => request.body(text.clone()),
                    Some(other) => request.json(other),
                };
                let response = request.send().await.map_err(|e| format!("calling {url}: {e}"))?;
                if !response.status().is_success() {
                    return Err(format!("{url} answered {}", response.status()));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event {
            id: "e1".into(),
            occurred: Timestamp(5),
            name: "run.failed".into(),
            resource: "run/r1".into(),
            related: vec!["deployment/etl/a".into()],
            payload: serde_json::json!({"state": "FAILED", "count": 3, "nested": {"k": "v"}}),
        }
    }

    #[test]
    fn triggers_match_names_resources_related_and_payload() {
        let mut t = EventTrigger { event: "run.*".into(), threshold: 1, ..EventTrigger::default() };
        assert!(matches(&t, &event()));
        t.related = Some("deployment/etl/a".into());
        assert!(matches(&t, &event()));
        t.related = Some("deployment/etl/b".into());
        assert!(!matches(&t, &event()));
        t.related = None;
        t.payload.insert("nested.k".into(), "v".into());
        assert!(matches(&t, &event()));
        t.payload.insert("count".into(), 4.into());
        assert!(!matches(&t, &event()));
    }

    #[test]
    fn placeholders_fill_in_from_the_event() {
        let template = serde_json::json!({
            "n": "{{ event.payload.count }}",
            "text": "run {{ event.resource_id }} of {{event.related}} is {{ event.payload.state }}",
            "missing": "{{ event.payload.nope }}",
            "list": ["{{ event.name }}"],
        });
        assert_eq!(
            render(&template, &event()),
            serde_json::json!({
                "n": 3,
                "text": "run r1 of [\"deployment/etl/a\"] is FAILED",
                "missing": null,
                "list": ["run.failed"],
            })
        );
    }
}
