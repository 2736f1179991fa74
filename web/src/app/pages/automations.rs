//! Automations, the live event feed, and incoming webhooks.

use baton_proto::v1::{Action, Automation, Event as CoreEvent, Trigger, Webhook, WebhookSpec};
use yew::prelude::*;
use yew_router::prelude::*;

use super::{ActionButton, use_changes};
use crate::app::api::{Load, escape, send, use_get};
use crate::app::live::{use_batch, use_events, use_ticks};
use crate::app::resource::ResourceLink;
use crate::app::route::{Route, use_query};
use crate::app::view::{
    Empty, FilterInput, When, input_value, loaded, local_time, prose, use_title,
};

/// A trigger in words, its patterns and payload conditions as code.
fn trigger_view(trigger: &Trigger) -> Html {
    let (kind, t) = match trigger {
        Trigger::Reactive(t) => ("when ", t),
        Trigger::Proactive(t) => ("when fewer than threshold of ", t),
    };
    let mut tail = String::new();
    if t.threshold > 1 || matches!(trigger, Trigger::Proactive(_)) {
        tail.push_str(&format!(" ×{}", t.threshold));
    }
    if t.within > 0 {
        tail.push_str(&format!(" within {}", crate::app::view::duration(t.within as i64 * 1000)));
    }
    html! {
        <>
            { kind }<code>{ &t.event }</code>
            if let Some(resource) = &t.resource { { " on " }<code>{ resource }</code> }
            if let Some(related) = &t.related { { " about " }<code>{ related }</code> }
            { for t.payload.iter().map(|(path, value)| html! {
                <>{ " where " }<code>{ format!("{path} = {value}") }</code></>
            }) }
            { tail }
        </>
    }
}

fn action_text(action: &Action) -> String {
    match action {
        Action::RunDeployment { deployment, .. } => format!("run {deployment}"),
        Action::PauseDeployment { deployment } => format!("pause {deployment}"),
        Action::ResumeDeployment { deployment } => format!("resume {deployment}"),
        Action::PausePool { pool } => format!("pause pool {pool}"),
        Action::ResumePool { pool } => format!("resume pool {pool}"),
        Action::CancelRun { run } => {
            format!("cancel {}", run.as_deref().unwrap_or("the event's run"))
        }
        Action::ChangeRunState { run, state, .. } => {
            format!("set {} to {}", run.as_deref().unwrap_or("the event's run"), state.as_str())
        }
        Action::CallWebhook { url, .. } => format!("call {url}"),
    }
}

#[function_component(Automations)]
pub fn automations() -> Html {
    use_title("Automations".into());
    let changes = use_changes();
    let list = use_get::<Vec<Automation>>("/api/automations".into(), changes.count());
    let button = |automation: &Automation, verb: &'static str, label: &'static str| {
        let (method, path) = match verb {
            "" => ("DELETE", format!("/api/automations/{}", escape(&automation.id))),
            verb => ("POST", format!("/api/automations/{}/{verb}", escape(&automation.id))),
        };
        html! {
            <ActionButton {method} {path} {label} class="small"
                describe={format!("{label} {}", automation.spec.name)} changes={changes.clone()} />
        }
    };
    html! {
        <section>
            <div class="page-head">
                <h1>{ "Automations" }</h1>
                <Link<Route> to={Route::NewAutomation} classes="button primary">{ "New automation" }</Link<Route>>
            </div>
            <p class="muted">{ prose("Or from YAML with `baton automation apply -f FILE`.") }</p>
            { changes.failure() }
            { loaded(&list, |list| {
                if list.is_empty() {
                    return html! { <Empty>{ "No automations." }</Empty> };
                }
                html! {
                    <table class="table">
                        <thead><tr><th>{ "Name" }</th><th>{ "Trigger" }</th><th>{ "Actions" }</th><th>{ "Status" }</th><th></th></tr></thead>
                        <tbody>
                        { for list.iter().map(|a| html! {
                            <tr>
                                <td><strong>{ &a.spec.name }</strong>
                                    if let Some(d) = &a.spec.description { <div class="muted small">{ d }</div> }</td>
                                <td>{ trigger_view(&a.spec.trigger) }</td>
                                <td>{ a.spec.actions.iter().map(action_text).collect::<Vec<_>>().join("; ") }</td>
                                <td>{ if a.paused { "paused" } else { "active" } }</td>
                                <td class="actions">
                                    <Link<Route> to={Route::EditAutomation { name: a.spec.name.clone() }}
                                        classes="button small">
                                        { "Edit" }<span class="sr-only">{ format!(" {}", a.spec.name) }</span>
                                    </Link<Route>>
                                    { if a.paused { button(a, "resume", "Resume") } else { button(a, "pause", "Pause") } }
                                    { button(a, "", "Delete") }
                                </td>
                            </tr>
                        }) }
                        </tbody>
                    </table>
                }
            }) }
        </section>
    }
}

/// Events kept on the page at most.
const KEPT: usize = 300;

/// The Events page's URL query.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct EventsQuery {
    /// A name pattern (`run.*`); empty for every event.
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
}

#[function_component(Events)]
pub fn events() -> Html {
    use_title("Events".into());
    // The name filter lives in the URL (`/events?name=run.*`), so a
    // filtered feed can be linked to.
    let (query, set_query) = use_query::<EventsQuery>(Route::Events);
    let pattern = if query.name.is_empty() { "*".to_owned() } else { query.name.clone() };
    let first =
        use_get::<Vec<CoreEvent>>(format!("/api/events?limit=100&name={}", escape(&pattern)), 0);
    let shown = use_state(Vec::<CoreEvent>::new);
    {
        let shown = shown.clone();
        use_effect_with(first.clone(), move |first| {
            if let Load::Ready(events) = first {
                shown.set(events.clone());
            }
        });
    }
    let (batch, push) = use_batch();
    use_events(pattern.clone(), None, push);
    let ticks = use_ticks(300, true);
    {
        let shown = shown.clone();
        use_effect_with(ticks, move |_| {
            let new = batch.take();
            if !new.is_empty() {
                let mut next: Vec<CoreEvent> = new.into_iter().rev().collect();
                next.extend(shown.iter().cloned());
                next.truncate(KEPT);
                shown.set(next);
            }
        });
    }
    let on_pattern = set_query.reform(|name: String| EventsQuery { name });
    html! {
        <section>
            <h1>{ "Events" }</h1>
            <div class="filters">
                <label>{ "Name " }<FilterInput value={query.name.clone()} on_commit={on_pattern}
                    placeholder="run.* or webhook.*" /></label>
                <span class="live" role="status">{ "live" }</span>
            </div>
            { loaded(&first, |_| {
                if shown.is_empty() {
                    return html! { <Empty>{ "No events yet." }</Empty> };
                }
                html! {
                    <table class="table events">
                        <thead><tr><th>{ "When" }</th><th>{ "Event" }</th><th>{ "Resource" }</th><th>{ "Related" }</th><th>{ "Payload" }</th></tr></thead>
                        <tbody>
                        { for shown.iter().map(|e| html! {
                            <tr key={e.id.clone()}>
                                <td class="when" title={local_time(e.occurred)}><When at={e.occurred} /></td>
                                <td class="mono">{ &e.name }</td>
                                <td class="mono"><ResourceLink resource={e.resource.clone()} /></td>
                                <td class="mono related">
                                    { for e.related.iter().map(|r| html! { <ResourceLink resource={r.clone()} /> }) }
                                </td>
                                <td class="mono small payload">{ if e.payload.is_null() { String::new() } else { e.payload.to_string() } }</td>
                            </tr>
                        }) }
                        </tbody>
                    </table>
                }
            }) }
        </section>
    }
}

#[function_component(Webhooks)]
pub fn webhooks() -> Html {
    use_title("Webhooks".into());
    let changes = use_changes();
    let list = use_get::<Vec<Webhook>>("/api/webhooks".into(), changes.count());
    let slug = use_state(String::new);
    let secret = use_state(String::new);
    let create = {
        let (slug, secret, changes) = (slug.clone(), secret.clone(), changes.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let spec = WebhookSpec {
                slug: (*slug).clone(),
                secret: (!secret.is_empty()).then(|| (*secret).clone()),
                event: None,
            };
            changes.run(async move {
                send::<Webhook>("POST", "/api/webhooks", Some(&spec)).await.map(|_| ())
            });
        })
    };
    let text = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |e: InputEvent| state.set(input_value(&e)))
    };
    html! {
        <section>
            <h1>{ "Webhooks" }</h1>
            <p class="muted">{ "A call to a webhook's path becomes an event that automations can act on." }</p>
            { changes.failure() }
            { loaded(&list, |list| {
                if list.is_empty() {
                    return html! { <Empty>{ "No webhooks." }</Empty> };
                }
                html! {
                    <table class="table">
                        <thead><tr><th>{ "Path" }</th><th>{ "Event" }</th><th>{ "Signed" }</th><th>{ "Created" }</th><th></th></tr></thead>
                        <tbody>
                        { for list.iter().map(|w| {
                            html! {
                                <tr>
                                    <td class="mono">{ format!("POST {}", w.path) }</td>
                                    <td class="mono">{ &w.event }</td>
                                    <td>{ if w.signed { "HMAC-SHA256" } else { "no" } }</td>
                                    <td><When at={w.created_at} /></td>
                                    <td><ActionButton method="DELETE" path={format!("/api/webhooks/{}", escape(&w.slug))}
                                        label="Delete" class="small" describe={format!("Delete webhook {}", w.slug)}
                                        changes={changes.clone()} /></td>
                                </tr>
                            }
                        }) }
                        </tbody>
                    </table>
                }
            }) }
            <form class="inline panel" onsubmit={create}>
                <h2>{ "New webhook" }</h2>
                <label>{ "Slug " }<input required=true value={(*slug).clone()} oninput={text(&slug)} /></label>
                <label>{ "Secret (optional) " }<input type="password" autocomplete="off" value={(*secret).clone()} oninput={text(&secret)} /></label>
                <button type="submit">{ "Create" }</button>
            </form>
        </section>
    }
}
