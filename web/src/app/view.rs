//! Pieces every page uses: states, times, loading, empty and error views.

use baton_proto::v1::{Health, StateName, Timestamp};
use wasm_bindgen::JsValue;
use yew::prelude::*;

use super::api::{self, Failure, Load};
use super::live::use_ticks;

pub fn now() -> Timestamp {
    Timestamp(js_sys::Date::now() as i64)
}

/// Local date and time, to the second.
pub fn local_time(at: Timestamp) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(at.0 as f64));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        date.get_full_year(),
        date.get_month() + 1,
        date.get_date(),
        date.get_hours(),
        date.get_minutes(),
        date.get_seconds()
    )
}

/// Date and time in the IANA time zone `zone`, labelled with it
/// (`2025-03-01 03:00:00 Europe/Berlin`); in local time, labelled so, when
/// the browser does not know the zone.
pub fn zoned_time(at: Timestamp, zone: &str) -> String {
    use wasm_bindgen::JsCast;
    let date = js_sys::Date::new(&JsValue::from_f64(at.0 as f64));
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"timeZone".into(), &zone.into());
    let _ = js_sys::Reflect::set(&options, &"hourCycle".into(), &"h23".into());
    // `toLocaleString` throws on a zone it does not know: called through
    // `Function::call2` that is an error here, not a trap.
    let formatted = js_sys::Reflect::get(&date, &"toLocaleString".into())
        .ok()
        .and_then(|function| function.dyn_into::<js_sys::Function>().ok())
        .and_then(|function| function.call2(&date, &"sv-SE".into(), &options).ok())
        .and_then(|text| text.as_string());
    match formatted {
        Some(text) => format!("{text} {zone}"),
        None => format!("{} local time", local_time(at)),
    }
}

/// Local time of day, to the second.
pub fn clock(at: Timestamp) -> String {
    local_time(at).split_off(11)
}

/// `1.2 s`, `4 min 3 s`, `2 h 5 min`.
pub fn duration(millis: i64) -> String {
    let millis = millis.max(0);
    match millis {
        0..1_000 => format!("{millis} ms"),
        1_000..60_000 => format!("{:.1} s", millis as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", millis / 60_000, millis % 60_000 / 1000),
        _ => format!("{} h {} min", millis / 3_600_000, millis % 3_600_000 / 60_000),
    }
}

/// `1 run`, `2 runs`.
pub fn plural(count: u64, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

/// `5 s ago`, `in 3 min`.
pub fn relative(at: Timestamp) -> String {
    let delta = at.0 - now().0;
    if delta.abs() < 1000 {
        return "now".into();
    }
    let span = duration(delta.abs());
    let span = span.split(' ').take(2).collect::<Vec<_>>().join(" ");
    if delta < 0 { format!("{span} ago") } else { format!("in {span}") }
}

#[derive(Properties, PartialEq)]
pub struct WhenProps {
    pub at: Timestamp,
}

/// A time shown relative, with the exact local time on hover.
#[function_component(When)]
pub fn when(props: &WhenProps) -> Html {
    html! { <time title={local_time(props.at)}>{ relative(props.at) }</time> }
}

pub fn state_class(state: StateName) -> String {
    format!("state state-{}", state.as_str().to_ascii_lowercase().replace('_', "-"))
}

#[derive(Properties, PartialEq)]
pub struct StateProps {
    pub state: StateName,
}

#[function_component(StateBadge)]
pub fn state_badge(props: &StateProps) -> Html {
    html! { <span class={state_class(props.state)}>{ props.state.as_str() }</span> }
}

/// Text whose `code` spans (between backticks) are shown as code rather
/// than as backticks.
pub fn prose(text: &str) -> Html {
    let parts = text.split('`').enumerate().map(|(index, part)| {
        if index % 2 == 1 {
            html! { <code>{ part }</code> }
        } else {
            html! { <>{ part }</> }
        }
    });
    html! { <>{ for parts }</> }
}

#[function_component(Loading)]
pub fn loading() -> Html {
    html! { <p class="loading" role="status" aria-live="polite">{ "Loading…" }</p> }
}

#[derive(Properties, PartialEq)]
pub struct EmptyProps {
    pub children: Html,
}

#[function_component(Empty)]
pub fn empty(props: &EmptyProps) -> Html {
    html! { <div class="empty">{ props.children.clone() }</div> }
}

#[derive(Properties, PartialEq)]
pub struct FailureProps {
    pub failure: Failure,
}

/// A failed read: what went wrong, and a way to give the API token when
/// that was the trouble.
#[function_component(FailureView)]
pub fn failure_view(props: &FailureProps) -> Html {
    let token = use_state(String::new);
    let save = {
        let token = token.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            api::set_token(&token);
            if let Some(window) = web_sys::window() {
                let _ = window.location().reload();
            }
        })
    };
    let input = {
        let token = token.clone();
        Callback::from(move |event: InputEvent| token.set(input_value(&event)))
    };
    html! {
        <div class="failure" role="alert">
            <p>{ &props.failure.message }</p>
            if props.failure.needs_token() {
                <form onsubmit={save} class="inline">
                    <label>{ "API token " }
                        <input type="password" autocomplete="off" value={(*token).clone()} oninput={input} />
                    </label>
                    <button type="submit">{ "Use token" }</button>
                </form>
            }
        </div>
    }
}

/// Shows a read's value with `view`, or its loading or failure.
pub fn loaded<T>(load: &Load<T>, view: impl FnOnce(&T) -> Html) -> Html {
    match load {
        Load::Loading => html! { <Loading /> },
        Load::Failed(failure) => html! { <FailureView failure={failure.clone()} /> },
        Load::Ready(value) => view(value),
    }
}

#[derive(Properties, PartialEq)]
pub struct FilterInputProps {
    /// The filter's value as the page has it (from its URL, say).
    pub value: String,
    #[prop_or_default]
    pub placeholder: AttrValue,
    /// Called with the text when it is committed (Enter, or leaving the
    /// field).
    pub on_commit: Callback<String>,
}

/// A text filter that keeps what is being typed: the page around it may
/// re-render many times a second (live updates), and an input bound to
/// the committed value would be reset to it mid-word.
#[function_component(FilterInput)]
pub fn filter_input(props: &FilterInputProps) -> Html {
    let draft = use_state(|| props.value.clone());
    {
        // A new committed value (the URL changed) replaces the draft.
        let draft = draft.clone();
        use_effect_with(props.value.clone(), move |value| draft.set(value.clone()));
    }
    let oninput = {
        let draft = draft.clone();
        Callback::from(move |e: InputEvent| draft.set(input_value(&e)))
    };
    let on_commit = props.on_commit.clone();
    let onchange = Callback::from(move |e: Event| on_commit.emit(changed_value(&e)));
    html! {
        <input type="search" value={(*draft).clone()} placeholder={props.placeholder.clone()} {oninput} {onchange} />
    }
}

/// The value of the input an event came from.
pub fn input_value(event: &InputEvent) -> String {
    event.target_unchecked_into::<web_sys::HtmlInputElement>().value()
}

/// The value of the select or text area a change came from.
pub fn changed_value(event: &Event) -> String {
    use wasm_bindgen::JsCast;
    let target = event.target();
    if let Some(select) = target.as_ref().and_then(|t| t.dyn_ref::<web_sys::HtmlSelectElement>()) {
        return select.value();
    }
    if let Some(area) = target.as_ref().and_then(|t| t.dyn_ref::<web_sys::HtmlTextAreaElement>()) {
        return area.value();
    }
    target
        .as_ref()
        .and_then(|t| t.dyn_ref::<web_sys::HtmlInputElement>())
        .map(web_sys::HtmlInputElement::value)
        .unwrap_or_default()
}

/// Sets the window's title for a page.
#[hook]
pub fn use_title(title: String) {
    use_effect_with(title, |title| {
        if let Some(document) = web_sys::window().and_then(|w| w.document()) {
            document.set_title(&format!("{title} · Baton"));
        }
    });
}

/// The core this UI talks to, at the foot of the navigation.
#[function_component(Connection)]
pub fn connection() -> Html {
    let ticks = use_ticks(10_000, true);
    let health = api::use_get::<Health>("/api/health".into(), ticks);
    match health {
        Load::Loading => html! {},
        Load::Ready(health) => html! {
            <p class="connection ok" title="The core this page talks to">
                { format!("core {} · {}", health.version, health.database) }
            </p>
        },
        Load::Failed(_) => {
            html! { <p class="connection down" role="status">{ "core unreachable" }</p> }
        }
    }
}

/// The text of a JSON value for a table cell.
pub fn json_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
