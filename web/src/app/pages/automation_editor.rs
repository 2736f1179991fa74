//! The automation editor: a form for every part of an automation, beside
//! its YAML (as `baton automation apply -f` reads it), both editable. The
//! form is held to [`AutomationSpec::check`], the rules the core and the
//! CLI apply, as it is typed.

mod draft;

use std::rc::Rc;

use baton_proto::v1::{Automation, AutomationSpec, StateName, WEBHOOK_METHODS};
use serde_json::Value;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::app::api::{escape, send, use_get};
use crate::app::form::{Entry, Field, Kind, field_view};
use crate::app::route::Route;
use crate::app::view::{input_value, loaded, prose, use_title};
use draft::{ACTION_KINDS, ActionDraft, Condition, Draft, Problem, TRIGGER_KINDS};

#[function_component(NewAutomation)]
pub fn new_automation() -> Html {
    use_title("New automation".into());
    html! { <AutomationEditor start={Draft::blank()} original={None::<Automation>} /> }
}

#[derive(Properties, PartialEq)]
pub struct EditProps {
    /// The automation's name or id, from the page's path.
    pub name: String,
}

#[function_component(EditAutomation)]
pub fn edit_automation(props: &EditProps) -> Html {
    use_title(format!("Edit {}", props.name));
    let found = use_get::<Automation>(format!("/api/automations/{}", escape(&props.name)), 0);
    loaded(&found, |automation| {
        html! { <AutomationEditor start={Draft::of(&automation.spec)} original={automation.clone()} /> }
    })
}

/// A change to the draft. Applied to the draft as it is when the change
/// comes (a reducer), so quick keys never edit an older copy.
pub struct Edit(Box<dyn Fn(&mut Draft)>);

impl Reducible for Draft {
    type Action = Edit;

    fn reduce(self: Rc<Self>, edit: Edit) -> Rc<Self> {
        let mut next = (*self).clone();
        (edit.0)(&mut next);
        Rc::new(next)
    }
}

/// What the core said to the last save or check.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Accepted,
    Refused(String),
}

#[derive(Properties, PartialEq)]
struct EditorProps {
    start: Draft,
    /// The automation edited; `None` for a new one.
    original: Option<Automation>,
}

#[function_component(AutomationEditor)]
fn automation_editor(props: &EditorProps) -> Html {
    let draft = use_reducer(|| props.start.clone());
    // The YAML as typed, until the form takes it; `None`: the form's.
    let yaml_typed = use_state_eq(|| None::<String>);
    let yaml_problem = use_state_eq(|| None::<String>);
    let answer = use_state_eq(|| None::<Answer>);
    let busy = use_state_eq(|| false);
    // The form's YAML as of the last time the form read as an automation,
    // kept while a field holds text that does not read (`{"a":` in JSON).
    let form_yaml = use_mut_ref(String::new);
    let navigator = use_navigator();

    let spec = draft.spec();
    if let Ok(spec) = &spec {
        *form_yaml.borrow_mut() = spec.to_yaml();
    }
    let problem: Option<Problem> = match &spec {
        Err(problem) => Some(problem.clone()),
        Ok(spec) => spec.check().err().map(|message| Problem { at: String::new(), message }),
    };
    let yaml_pending = yaml_typed.is_some();
    let ready = problem.is_none() && !yaml_pending && !*busy;

    let edit = {
        let (draft, answer) = (draft.dispatcher(), answer.clone());
        move |change: fn(&mut Draft, String)| {
            let (draft, answer) = (draft.clone(), answer.clone());
            Callback::from(move |entry: Entry| {
                let text = match entry {
                    Entry::Text(text) => text,
                    Entry::Object(_) | Entry::Rows { .. } => String::new(),
                };
                answer.set(None);
                draft
                    .dispatch(Edit(Box::new(move |draft: &mut Draft| change(draft, text.clone()))));
            })
        }
    };
    let change_draft = {
        let (draft, answer) = (draft.dispatcher(), answer.clone());
        Callback::from(move |edit: Edit| {
            answer.set(None);
            draft.dispatch(edit);
        })
    };
    let error_at = |id: &str| problem.as_ref().filter(|p| p.at == id).map(|p| p.message.clone());
    let text_field = |name: &str,
                      id: &str,
                      help: &str,
                      value: &str,
                      change: fn(&mut Draft, String)| {
        let field = Field {
            name: name.to_owned(),
            kind: Kind::Text,
            required: false,
            help: Some(help.to_owned()),
        };
        field_view(&field, id.to_owned(), Entry::Text(value.to_owned()), edit(change), error_at(id))
    };

    // The path saved to: the automation's id, or for a check of a new one
    // the name it would take.
    let target = props.original.as_ref().map(|a| a.id.clone());
    let save = {
        let (spec, busy, answer, navigator) =
            (spec.clone(), busy.clone(), answer.clone(), navigator.clone());
        let target = target.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let Ok(spec) = spec.clone() else { return };
            if !ready {
                return;
            }
            let (busy, answer, navigator, target) =
                (busy.clone(), answer.clone(), navigator.clone(), target.clone());
            busy.set(true);
            wasm_bindgen_futures::spawn_local(async move {
                // A new one is created (refused when the name is taken),
                // never put over an automation that has its name.
                let saved = match &target {
                    None => send::<Automation>("POST", "/api/automations", Some(&spec)).await,
                    Some(id) => {
                        let path = format!("/api/automations/{}", escape(id));
                        send::<Automation>("PUT", &path, Some(&spec)).await
                    }
                };
                busy.set(false);
                match saved {
                    Ok(_) => {
                        if let Some(navigator) = navigator {
                            navigator.push(&Route::Automations);
                        }
                    }
                    Err(failure) => answer.set(Some(Answer::Refused(failure.message))),
                }
            });
        })
    };
    let dry_run = {
        let (spec, busy, answer) = (spec.clone(), busy.clone(), answer.clone());
        Callback::from(move |_: MouseEvent| {
            let Ok(spec) = spec.clone() else { return };
            let id = target.clone().unwrap_or_else(|| spec.name.clone());
            let (busy, answer) = (busy.clone(), answer.clone());
            busy.set(true);
            wasm_bindgen_futures::spawn_local(async move {
                let path = format!("/api/automations/{}?dry_run=true", escape(&id));
                let checked = send::<()>("PUT", &path, Some(&spec)).await;
                busy.set(false);
                answer.set(Some(match checked {
                    Ok(()) => Answer::Accepted,
                    Err(failure) => Answer::Refused(failure.message),
                }));
            });
        })
    };

    let yaml_shown = yaml_typed.as_ref().cloned().unwrap_or_else(|| form_yaml.borrow().clone());
    let take_yaml = {
        let (change_draft, yaml_typed, yaml_problem) =
            (change_draft.clone(), yaml_typed.clone(), yaml_problem.clone());
        Callback::from(move |text: String| match AutomationSpec::from_yaml(&text) {
            Ok(spec) => {
                let taken = Draft::of(&spec);
                change_draft.emit(Edit(Box::new(move |draft: &mut Draft| *draft = taken.clone())));
                yaml_typed.set(None);
                yaml_problem.set(None);
            }
            Err(problem) => {
                yaml_typed.set(Some(text));
                yaml_problem.set(Some(problem));
            }
        })
    };
    let yaml_input = {
        let yaml_typed = yaml_typed.clone();
        Callback::from(move |event: InputEvent| {
            let text = event.target_unchecked_into::<web_sys::HtmlTextAreaElement>().value();
            yaml_typed.set(Some(text));
        })
    };
    // Leaving the text area takes what was typed (a change event comes
    // only when it was edited).
    let yaml_left = {
        let take_yaml = take_yaml.clone();
        Callback::from(move |event: Event| {
            take_yaml.emit(event.target_unchecked_into::<web_sys::HtmlTextAreaElement>().value())
        })
    };
    let use_yaml = {
        let (take_yaml, text) = (take_yaml.clone(), yaml_shown.clone());
        Callback::from(move |_: MouseEvent| take_yaml.emit(text.clone()))
    };
    let form_yaml_back = {
        let (yaml_typed, yaml_problem) = (yaml_typed.clone(), yaml_problem.clone());
        Callback::from(move |_: MouseEvent| {
            yaml_typed.set(None);
            yaml_problem.set(None);
        })
    };

    let title = match &props.original {
        Some(original) => format!("Edit automation {}", original.spec.name),
        None => "New automation".to_owned(),
    };
    let trigger_kind = Field {
        name: "trigger".into(),
        kind: choices(&TRIGGER_KINDS),
        required: true,
        help: Some("Reactive: when the events happen. Proactive: when fewer than `threshold` of them come within the window.".into()),
    };
    html! {
        <section>
            <p class="crumbs"><Link<Route> to={Route::Automations}>{ "Automations" }</Link<Route>></p>
            <h1>{ title }</h1>
            <div class="editor-columns">
                <form class="automation-form" onsubmit={save} novalidate=true aria-label="Automation">
                    <div class="panel">
                        { text_field("name", "automation-name", "Letters, digits, `-`, `_` and `.`.", &draft.name, |d, t| d.name = t) }
                        { text_field("description", "automation-description", "What it is for (optional).", &draft.description, |d, t| d.description = t) }
                    </div>
                    <fieldset class="panel">
                        <legend>{ "Trigger" }</legend>
                        { field_view(&trigger_kind, "automation-trigger".into(),
                            Entry::Text(choice_text(&draft.trigger)), edit(|d, t| d.trigger = chosen(&t)), None) }
                        { text_field("event", "automation-event", "Event name; `*` matches any characters (`run.*`).", &draft.event, |d, t| d.event = t) }
                        { text_field("resource", "automation-resource", "The event's resource matches this (`run/*`); optional.", &draft.resource, |d, t| d.resource = t) }
                        { text_field("related", "automation-related", "One related resource matches this (`deployment/etl/a`); optional.", &draft.related, |d, t| d.related = t) }
                        { conditions_view(&draft.payload, &change_draft, &error_at) }
                        { field_view(
                            &Field { name: "threshold".into(), kind: Kind::Integer, required: false,
                                help: Some("How many matching events (1 when empty).".into()) },
                            "automation-threshold".into(), Entry::Text(draft.threshold.clone()),
                            edit(|d, t| d.threshold = t), error_at("automation-threshold")) }
                        { text_field("within", "automation-within", "A window such as `90s`, `10m`, `25h`, `2d`; empty: any time apart (a proactive trigger needs one).", &draft.within, |d, t| d.within = t) }
                    </fieldset>
                    <fieldset class="panel">
                        <legend>{ "Actions" }</legend>
                        if draft.actions.is_empty() { <p class="muted">{ "No actions yet." }</p> }
                        { for draft.actions.iter().enumerate().map(|(index, action)| {
                            action_view(index, draft.actions.len(), action, &change_draft, &error_at)
                        }) }
                        <button type="button" class="small add-action" onclick={{
                            let change_draft = change_draft.clone();
                            Callback::from(move |_: MouseEvent| change_draft.emit(Edit(Box::new(|d: &mut Draft| {
                                d.actions.push(ActionDraft::blank("run-deployment"));
                            }))))
                        }}>{ "Add action" }</button>
                    </fieldset>
                    if let Some(problem) = problem.as_ref().filter(|p| p.at.is_empty()) {
                        <p class="field-error" id="automation-problem" role="alert">{ prose(&problem.message) }</p>
                    }
                    if yaml_pending {
                        <p class="muted" role="status">{ "The YAML has changes the form has not taken: use them, or go back to the form's YAML." }</p>
                    }
                    if let Some(answer) = &*answer {
                        { match answer {
                            Answer::Accepted => html! { <p class="saved" role="status">{ "The core accepts this automation." }</p> },
                            Answer::Refused(message) => html! { <p class="failure" role="alert">{ prose(message) }</p> },
                        } }
                    }
                    <div class="actions">
                        <button type="submit" class="primary" disabled={!ready}>{ "Save" }</button>
                        <button type="button" class="check" onclick={dry_run} disabled={!ready}
                            title="Ask the core whether it would save this (nothing is saved)">{ "Check with the core" }</button>
                        <Link<Route> to={Route::Automations} classes="button">{ "Cancel" }</Link<Route>>
                    </div>
                </form>
                <div class="yaml-pane panel">
                    <label for="automation-yaml">{ "YAML" }</label>
                    <p class="muted small">{ prose("As `baton automation apply -f` reads it. Edit or paste here; leaving the box fills the form.") }</p>
                    <textarea id="automation-yaml" rows="24" spellcheck="false" value={yaml_shown}
                        aria-invalid={yaml_problem.is_some().to_string()}
                        aria-describedby={yaml_problem.as_ref().map(|_| "automation-yaml-error")}
                        oninput={yaml_input} onchange={yaml_left} />
                    if let Some(problem) = &*yaml_problem {
                        <p class="field-error" id="automation-yaml-error" role="alert">{ prose(problem) }</p>
                    }
                    <div class="actions">
                        <button type="button" class="small use-yaml" onclick={use_yaml}>{ "Use this YAML" }</button>
                        if yaml_pending {
                            <button type="button" class="small" onclick={form_yaml_back}>{ "Back to the form's YAML" }</button>
                        }
                    </div>
                </div>
            </div>
        </section>
    }
}

/// A dropdown of these words (the form's choices are JSON values).
fn choices(words: &[&str]) -> Kind {
    Kind::Choice(words.iter().map(|word| Value::from(*word)).collect())
}

/// The text of a dropdown of words showing `word`.
fn choice_text(word: &str) -> String {
    if word.is_empty() { String::new() } else { Value::from(word).to_string() }
}

/// The word a dropdown's text stands for.
fn chosen(text: &str) -> String {
    serde_json::from_str::<String>(text).unwrap_or_default()
}

/// The payload conditions: a dotted path and the value there, each row.
fn conditions_view(
    conditions: &[Condition],
    change_draft: &Callback<Edit>,
    error_at: &dyn Fn(&str) -> Option<String>,
) -> Html {
    let change = |edit: Box<dyn Fn(&mut Draft)>| {
        let change_draft = change_draft.clone();
        let edit = Rc::new(edit);
        Callback::from(move |_: MouseEvent| {
            let edit = edit.clone();
            change_draft.emit(Edit(Box::new(move |d: &mut Draft| edit(d))));
        })
    };
    let typed = |index: usize, set: fn(&mut Condition, String)| {
        let change_draft = change_draft.clone();
        Callback::from(move |event: InputEvent| {
            let text = input_value(&event);
            change_draft.emit(Edit(Box::new(move |d: &mut Draft| {
                if let Some(condition) = d.payload.get_mut(index) {
                    set(condition, text.clone());
                }
            })));
        })
    };
    let problem =
        conditions.iter().enumerate().find_map(|(i, _)| error_at(&format!("payload-{i}-path")));
    html! {
        <div class={classes!("field", problem.is_some().then_some("invalid"))}>
            <span class="label" id="payload-label">{ "payload" }<span class="hint">{ " conditions" }</span></span>
            if !conditions.is_empty() {
                <table class="rows-table conditions" aria-labelledby="payload-label">
                    <thead><tr><th>{ "path" }</th><th></th><th>{ "value" }</th><th></th></tr></thead>
                    <tbody>
                    { for conditions.iter().enumerate().map(|(index, condition)| html! {
                        <tr>
                            <td><input type="text" id={format!("payload-{index}-path")} placeholder="to"
                                aria-label={format!("Path of condition {}", index + 1)}
                                value={condition.path.clone()} oninput={typed(index, |c, t| c.path = t)} /></td>
                            <td>{ "=" }</td>
                            <td><input type="text" id={format!("payload-{index}-value")} placeholder="FAILED"
                                aria-label={format!("Value of condition {}", index + 1)}
                                value={condition.value.clone()} oninput={typed(index, |c, t| c.value = t)} /></td>
                            <td><button type="button" class="small" aria-label={format!("Remove condition {}", index + 1)}
                                onclick={change(Box::new(move |d: &mut Draft| {
                                    if index < d.payload.len() {
                                        d.payload.remove(index);
                                    }
                                }))}>{ "Remove" }</button></td>
                        </tr>
                    }) }
                    </tbody>
                </table>
            }
            <button type="button" class="small add-condition"
                onclick={change(Box::new(|d: &mut Draft| d.payload.push(Condition::default())))}>{ "Add condition" }</button>
            <small>{ prose("A payload field (a dotted path such as `to` or `run.state`) must equal the value: JSON (`3`, `true`, `\"3\"`), or else text as it stands.") }</small>
            if let Some(problem) = problem { <p class="field-error" role="alert">{ prose(&problem) }</p> }
        </div>
    }
}

/// Where an action goes: to another place in the list, or away.
#[derive(Clone, Copy)]
enum Place {
    At(usize),
    Gone,
}

/// One action: its kind, its kind's fields, and buttons to move or
/// remove it.
fn action_view(
    index: usize,
    count: usize,
    action: &ActionDraft,
    change_draft: &Callback<Edit>,
    error_at: &dyn Fn(&str) -> Option<String>,
) -> Html {
    let id = |field: &str| format!("action-{index}-{field}");
    let typed = |set: fn(&mut ActionDraft, String)| {
        let change_draft = change_draft.clone();
        Callback::from(move |entry: Entry| {
            let text = match entry {
                Entry::Text(text) => text,
                Entry::Object(_) | Entry::Rows { .. } => String::new(),
            };
            change_draft.emit(Edit(Box::new(move |d: &mut Draft| {
                if let Some(action) = d.actions.get_mut(index) {
                    set(action, text.clone());
                }
            })));
        })
    };
    let field = |name: &str,
                 kind: Kind,
                 required: bool,
                 help: &str,
                 value: String,
                 set: fn(&mut ActionDraft, String)| {
        let id = id(name);
        let error = error_at(&id);
        let help = (!help.is_empty()).then(|| help.to_owned());
        let field = Field { name: name.to_owned(), kind, required, help };
        field_view(&field, id, Entry::Text(value), typed(set), error)
    };
    let moved = |to: Place| {
        let change_draft = change_draft.clone();
        Callback::from(move |_: MouseEvent| {
            change_draft.emit(Edit(Box::new(move |d: &mut Draft| {
                let count = d.actions.len();
                match to {
                    Place::At(to) if index < count && to < count => d.actions.swap(index, to),
                    Place::Gone if index < count => {
                        d.actions.remove(index);
                    }
                    Place::At(_) | Place::Gone => {}
                }
            })));
        })
    };
    let deployment = || {
        field(
            "deployment",
            Kind::Text,
            true,
            "`FLOW/NAME`, or a placeholder such as `{{ event.related }}`.",
            action.deployment.clone(),
            |a, t| a.deployment = t,
        )
    };
    let run = || {
        field(
            "run",
            Kind::Text,
            false,
            "A run id; empty: the event's run.",
            action.run.clone(),
            |a, t| a.run = t,
        )
    };
    let states: Vec<&str> = StateName::ALL.iter().map(|s| s.as_str()).collect();
    let fields = match action.kind.as_str() {
        "run-deployment" => html! {
            <>
                { deployment() }
                { field("parameters", Kind::Json, false, "A JSON object; strings may hold placeholders (`{{ event.resource_id }}`).", action.parameters.clone(), |a, t| a.parameters = t) }
            </>
        },
        "pause-deployment" | "resume-deployment" => deployment(),
        "pause-pool" | "resume-pool" => {
            field("pool", Kind::Text, true, "A work pool's name.", action.pool.clone(), |a, t| {
                a.pool = t
            })
        }
        "cancel-run" => run(),
        "change-run-state" => html! {
            <>
                { run() }
                { field("state", choices(&states), true, "The state proposed for the run.", choice_text(&action.state), |a, t| a.state = chosen(&t)) }
                { field("message", Kind::Text, false, "Why, in its state history (optional).", action.message.clone(), |a, t| a.message = t) }
            </>
        },
        "call-webhook" => html! {
            <>
                { field("url", Kind::Text, true, "`http://` or `https://`.", action.url.clone(), |a, t| a.url = t) }
                { field("method", choices(&WEBHOOK_METHODS), false, "POST when left at the default.", choice_text(&action.method), |a, t| a.method = chosen(&t)) }
                { field("headers", Kind::Json, false, "A JSON object of header names and values.", action.headers.clone(), |a, t| a.headers = t) }
                { field("body", Kind::Json, false, "JSON, or else text as it stands; empty: the event as JSON.", action.body.clone(), |a, t| a.body = t) }
            </>
        },
        _ => html! {},
    };
    let number = index + 1;
    html! {
        <fieldset class="action" aria-label={format!("Action {number}")}>
            <div class="action-head">
                <strong>{ format!("{number}.") }</strong>
                { field("kind", choices(&ACTION_KINDS), true, "", choice_text(&action.kind), |a, t| a.kind = chosen(&t)) }
                <span class="actions">
                    <button type="button" class="small" aria-label={format!("Move action {number} up")}
                        disabled={index == 0} onclick={moved(Place::At(index.saturating_sub(1)))}>{ "↑" }</button>
                    <button type="button" class="small" aria-label={format!("Move action {number} down")}
                        disabled={number >= count} onclick={moved(Place::At(number))}>{ "↓" }</button>
                    <button type="button" class="small" aria-label={format!("Remove action {number}")}
                        onclick={moved(Place::Gone)}>{ "Remove" }</button>
                </span>
            </div>
            { fields }
        </fieldset>
    }
}
