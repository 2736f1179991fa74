//! The Run form, generated from a flow's parameter schema: a field per
//! parameter by its type, prefilled with the deployment's defaults, and
//! checked in the browser by the same validator the core runs, so a bad
//! value is named before anything is sent.

use std::collections::BTreeMap;

use baton_proto::v1::schema_view::{choices, resolved};
use baton_proto::v1::{FieldError, ParamErrors, Timestamp, validate_params};
use serde_json::{Map, Value};
use yew::prelude::*;

use super::view::{changed_value, input_value, now};

/// How a parameter is edited.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Text,
    Integer,
    Number,
    Boolean,
    Choice(Vec<Value>),
    /// Objects, arrays and anything else: JSON in a text area.
    Json,
}

#[derive(Debug, Clone, PartialEq)]
struct Field {
    name: String,
    kind: Kind,
    required: bool,
    help: Option<String>,
}

fn fields(schema: &Value) -> Vec<Field> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, declared)| {
            // Descriptions sit beside a reference; the type behind it.
            let property = resolved(schema, declared);
            let kind = if let Some(choices) = choices(property) {
                Kind::Choice(choices)
            } else {
                match property.get("type").and_then(Value::as_str) {
                    Some("string") => Kind::Text,
                    Some("integer") => Kind::Integer,
                    Some("number") => Kind::Number,
                    Some("boolean") => Kind::Boolean,
                    _ => Kind::Json,
                }
            };
            let help = declared
                .get("description")
                .or_else(|| property.get("description"))
                .or_else(|| declared.get("title"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            Field { name: name.clone(), kind, required: required.contains(&name.as_str()), help }
        })
        .collect()
}

/// The text a field starts with for `value`.
fn text_of(kind: &Kind, value: Option<&Value>) -> String {
    match (kind, value) {
        (_, None | Some(Value::Null)) => String::new(),
        (Kind::Text, Some(Value::String(text))) => text.clone(),
        (Kind::Json, Some(value)) => serde_json::to_string_pretty(value).unwrap_or_default(),
        (_, Some(value)) => value.to_string(),
    }
}

/// The value a field's text stands for; `None` when left empty.
fn value_of(kind: &Kind, text: &str) -> Result<Option<Value>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() && !matches!(kind, Kind::Boolean) {
        return Ok(None);
    }
    let value = match kind {
        Kind::Text => Value::String(text.to_owned()),
        Kind::Integer => trimmed
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("`{trimmed}` is not a whole number"))?,
        Kind::Number => trimmed
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("`{trimmed}` is not a number"))?,
        Kind::Boolean => Value::Bool(trimmed == "true"),
        Kind::Choice(_) | Kind::Json => {
            serde_json::from_str(trimmed).map_err(|e| format!("not valid JSON: {e}"))?
        }
    };
    Ok(Some(value))
}

/// The parameters the texts stand for, and each field's problem.
fn check(
    schema: &Value,
    fields: &[Field],
    texts: &BTreeMap<String, String>,
) -> (Map<String, Value>, BTreeMap<String, String>) {
    let mut parameters = Map::new();
    let mut problems = BTreeMap::new();
    for field in fields {
        let text = texts.get(&field.name).map(String::as_str).unwrap_or_default();
        match value_of(&field.kind, text) {
            Ok(Some(value)) => {
                parameters.insert(field.name.clone(), value);
            }
            Ok(None) if field.required => {
                problems.insert(field.name.clone(), "required".to_owned());
            }
            Ok(None) => {}
            Err(problem) => {
                problems.insert(field.name.clone(), problem);
            }
        }
    }
    if problems.is_empty()
        && let Err(errors) = validate_params(schema, &Value::Object(parameters.clone()))
    {
        match errors {
            ParamErrors::Invalid(errors) => {
                for error in errors {
                    let field = error.field.split('.').next().unwrap_or_default().to_owned();
                    problems.entry(field).or_insert(error.message);
                }
            }
            ParamErrors::BadSchema(why) => {
                problems.insert(String::new(), why);
            }
        }
    }
    (parameters, problems)
}

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
    let fields = use_memo(props.schema.clone(), fields);
    let texts = {
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
                    (f.name.clone(), text_of(&f.kind, default))
                })
                .collect::<BTreeMap<_, _>>()
        })
    };
    let shown = use_state(|| false);
    let when = use_state(String::new);
    let job_vars = use_state(String::new);
    let (parameters, mut problems) = check(&props.schema, &fields, &texts);
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
        let id = format!("param-{}", field.name);
        let text = texts.get(&field.name).cloned().unwrap_or_default();
        let set = {
            let texts = texts.clone();
            let name = field.name.clone();
            move |value: String| {
                let mut next = (*texts).clone();
                next.insert(name.clone(), value);
                texts.set(next);
            }
        };
        let error = problem(&field.name);
        let error_id = format!("{id}-error");
        let described = error.as_ref().map(|_| error_id.clone());
        let control = match &field.kind {
            Kind::Boolean => {
                let set = set.clone();
                let checked = text == "true";
                html! {
                    <input id={id.clone()} type="checkbox" {checked}
                        onchange={Callback::from(move |_| set(if checked { "false" } else { "true" }.into()))} />
                }
            }
            Kind::Choice(choices) => {
                let set = set.clone();
                html! {
                    <select id={id.clone()} aria-describedby={described.clone()}
                        onchange={Callback::from(move |e: Event| set(changed_value(&e)))}>
                        if !field.required { <option value="" selected={text.is_empty()}>{ "(default)" }</option> }
                        { for choices.iter().map(|choice| {
                            let value = choice.to_string();
                            let label = super::view::json_text(choice);
                            html! { <option selected={value == text} value={value.clone()}>{ label }</option> }
                        }) }
                    </select>
                }
            }
            Kind::Json => {
                let set = set.clone();
                html! {
                    <textarea id={id.clone()} rows="4" spellcheck="false" aria-describedby={described.clone()}
                        aria-invalid={error.is_some().to_string()}
                        value={text.clone()}
                        oninput={Callback::from(move |e: InputEvent| set(e.target_unchecked_into::<web_sys::HtmlTextAreaElement>().value()))} />
                }
            }
            kind => {
                let set = set.clone();
                let mode = match kind {
                    Kind::Integer => "numeric",
                    Kind::Number => "decimal",
                    _ => "text",
                };
                html! {
                    <input id={id.clone()} type="text" inputmode={mode} value={text.clone()}
                        aria-describedby={described.clone()} aria-invalid={error.is_some().to_string()}
                        oninput={Callback::from(move |e: InputEvent| set(input_value(&e)))} />
                }
            }
        };
        let kind = match &field.kind {
            Kind::Text => "text",
            Kind::Integer => "whole number",
            Kind::Number => "number",
            Kind::Boolean => "yes / no",
            Kind::Choice(_) => "one of",
            Kind::Json => "JSON",
        };
        html! {
            <div class={classes!("field", error.is_some().then_some("invalid"))}>
                <label for={id.clone()}>
                    { &field.name }
                    if field.required { <span class="required" title="required">{ " *" }</span> }
                    <span class="hint">{ format!(" {kind}") }</span>
                </label>
                { control }
                if let Some(help) = &field.help { <small>{ help }</small> }
                if let Some(error) = error {
                    <p class="field-error" id={error_id} role="alert">{ error }</p>
                }
            </div>
        }
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
