//! The Run form, generated from a flow's parameter schema: a field per
//! parameter by its type, prefilled with the deployment's defaults, and
//! checked in the browser by the same validator the core runs, so a bad
//! value is named before anything is sent.

mod controls;
mod fields;

pub use controls::field_view;
pub use fields::{Entry, Field, Kind};

use baton_proto::v1::{FieldError, Timestamp};
use serde_json::{Map, Value};
use yew::prelude::*;

use super::view::{input_value, now};
use fields::{Entries, check, entry_of, parameter_fields};

/// What the form asks for: these parameters, now or at a time, with
/// these job variables of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    pub parameters: Map<String, Value>,
    pub at: Option<Timestamp>,
    pub job_variables: Map<String, Value>,
}

#[derive(Properties, PartialEq)]
pub struct RunFormProps {
    pub schema: Value,
    /// The deployment's parameters: the form starts with them.
    pub defaults: Map<String, Value>,
    pub on_submit: Callback<RunRequest>,
    pub busy: bool,
    /// What the core refused, by field.
    #[prop_or_default]
    pub refused: Vec<FieldError>,
}

#[function_component(RunForm)]
pub fn run_form(props: &RunFormProps) -> Html {
    let fields = use_memo(props.schema.clone(), parameter_fields);
    let entries = {
        let fields = fields.clone();
        let schema = props.schema.clone();
        let defaults = props.defaults.clone();
        use_state(move || {
            fields
                .iter()
                .map(|f| {
                    let default = defaults
                        .get(&f.name)
                        .or_else(|| schema.pointer(&format!("/properties/{}/default", f.name)));
                    (f.name.clone(), entry_of(&f.kind, default))
                })
                .collect::<Entries>()
        })
    };
    let shown = use_state(|| false);
    let when = use_state(String::new);
    let job_vars = use_state(String::new);
    let (parameters, mut problems) = check(&props.schema, &fields, &entries);
    let at = parse_local(&when);
    if !when.is_empty() {
        match at {
            Some(at) if at.0 <= now().0 => {
                problems.insert("when".into(), "choose a time in the future".into());
            }
            None => {
                problems.insert("when".into(), "not a date and time".into());
            }
            Some(_) => {}
        }
    }
    let job_variables = match job_vars.trim() {
        "" => Map::new(),
        text => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(variables)) => variables,
            _ => {
                problems.insert(
                    "job_variables".into(),
                    "a JSON object, like {\"memory_mib\": 512}".into(),
                );
                Map::new()
            }
        },
    };
    for refused in &props.refused {
        let field =
            refused.field.trim_start_matches('/').split(['.', '/']).next().unwrap_or_default();
        problems.entry(field.to_owned()).or_insert_with(|| refused.message.clone());
    }
    let onsubmit = {
        let shown = shown.clone();
        let on_submit = props.on_submit.clone();
        let ok = problems.is_empty();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            shown.set(true);
            if ok {
                on_submit.emit(RunRequest {
                    parameters: parameters.clone(),
                    at,
                    job_variables: job_variables.clone(),
                });
            }
        })
    };
    let problem = |name: &str| {
        (*shown || !props.refused.is_empty()).then(|| problems.get(name).cloned()).flatten()
    };
    let inputs = fields.iter().map(|field| {
        let set = {
            let (entries, name) = (entries.clone(), field.name.clone());
            Callback::from(move |entry: Entry| {
                let mut next = (*entries).clone();
                next.insert(name.clone(), entry);
                entries.set(next);
            })
        };
        let entry =
            entries.get(&field.name).cloned().unwrap_or_else(|| entry_of(&field.kind, None));
        field_view(field, format!("param-{}", field.name), entry, set, problem(&field.name))
    });
    let when_input = {
        let when = when.clone();
        Callback::from(move |e: InputEvent| when.set(input_value(&e)))
    };
    let when_error = problem("when");
    let job_vars_error = problem("job_variables");
    let job_vars_input = {
        let job_vars = job_vars.clone();
        Callback::from(move |e: InputEvent| {
            job_vars.set(e.target_unchecked_into::<web_sys::HtmlTextAreaElement>().value())
        })
    };
    let general = problem("");
    html! {
        <form class="run-form" {onsubmit} novalidate=true>
            if fields.is_empty() { <p class="muted">{ "This flow takes no parameters." }</p> }
            { for inputs }
            <div class={classes!("field", when_error.is_some().then_some("invalid"))}>
                <label for="run-when">{ "Start" }<span class="hint">{ " now when empty" }</span></label>
                <input id="run-when" type="datetime-local" step="1" value={(*when).clone()} oninput={when_input} />
                if let Some(error) = when_error { <p class="field-error" role="alert">{ error }</p> }
            </div>
            <div class={classes!("field", job_vars_error.is_some().then_some("invalid"))}>
                <label for="run-job-variables">{ "Job variables" }<span class="hint">{ " JSON, over the deployment's; its pool's when empty" }</span></label>
                <textarea id="run-job-variables" rows="2" spellcheck="false" placeholder="{\"memory_mib\": 512}"
                    aria-invalid={job_vars_error.is_some().to_string()}
                    value={(*job_vars).clone()} oninput={job_vars_input} />
                if let Some(error) = job_vars_error { <p class="field-error" role="alert">{ error }</p> }
            </div>
            if let Some(error) = general { <p class="field-error" role="alert">{ error }</p> }
            <button type="submit" class="primary" disabled={props.busy}>
                { if when.is_empty() { "Run now" } else { "Schedule run" } }
            </button>
        </form>
    }
}

/// A `datetime-local` value read in the browser's time zone.
fn parse_local(text: &str) -> Option<Timestamp> {
    if text.is_empty() {
        return None;
    }
    let millis = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(text)).get_time();
    (!millis.is_nan()).then_some(Timestamp(millis as i64))
}
