//! Variables and secrets (whose values the UI never reads back).

use baton_proto::v1::{SecretInfo, SetValue, Variable};
use yew::prelude::*;

use super::act;
use crate::app::api::{escape, send, use_get};
use crate::app::view::{Empty, When, input_value, loaded, use_title};

#[derive(Properties, PartialEq)]
struct ValueFormProps {
    /// `variables` or `secrets`.
    kind: &'static str,
    secret: bool,
    done: Callback<()>,
    failure: UseStateHandle<Option<String>>,
}

/// Sets a value by name (new or replacing).
#[function_component(ValueForm)]
fn value_form(props: &ValueFormProps) -> Html {
    let name = use_state(String::new);
    let value = use_state(String::new);
    let onsubmit = {
        let (name, value, kind) = (name.clone(), value.clone(), props.kind);
        let (failure, done) = (props.failure.clone(), props.done.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let path = format!("/api/{kind}/{}", escape(&name));
            let body = SetValue { value: (*value).clone() };
            let (name, value) = (name.clone(), value.clone());
            let done = Callback::from({
                let done = done.clone();
                move |()| {
                    name.set(String::new());
                    value.set(String::new());
                    done.emit(());
                }
            });
            act(failure.clone(), done, async move {
                send::<serde_json::Value>("PUT", &path, Some(&body)).await.map(|_| ())
            });
        })
    };
    let text = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |e: InputEvent| state.set(input_value(&e)))
    };
    html! {
        <form class="inline panel" {onsubmit}>
            <h2>{ if props.secret { "Set a secret" } else { "Set a variable" } }</h2>
            <label>{ "Name " }<input required=true value={(*name).clone()} oninput={text(&name)} /></label>
            <label>{ "Value " }<input type={if props.secret { "password" } else { "text" }} autocomplete="off"
                value={(*value).clone()} oninput={text(&value)} /></label>
            <button type="submit">{ "Save" }</button>
        </form>
    }
}

fn delete_button(
    kind: &'static str,
    name: &str,
    failure: &UseStateHandle<Option<String>>,
    done: &Callback<()>,
) -> Html {
    let path = format!("/api/{kind}/{}", escape(name));
    let (failure, done) = (failure.clone(), done.clone());
    let onclick = Callback::from(move |_| {
        let path = path.clone();
        act(failure.clone(), done.clone(), async move {
            send::<serde_json::Value>("DELETE", &path, None::<&()>).await.map(|_| ())
        });
    });
    html! { <button class="small" {onclick} aria-label={format!("Delete {name}")}>{ "Delete" }</button> }
}

#[function_component(Variables)]
pub fn variables() -> Html {
    use_title("Variables".into());
    let changed = use_state(|| 0u64);
    let list = use_get::<Vec<Variable>>("/api/variables".into(), *changed);
    let failure = use_state(|| None::<String>);
    let done = {
        let changed = changed.clone();
        Callback::from(move |()| changed.set(*changed + 1))
    };
    html! {
        <section>
            <h1>{ "Variables" }</h1>
            if let Some(message) = &*failure { <p class="failure" role="alert">{ message }</p> }
            { loaded(&list, |list| if list.is_empty() {
                html! { <Empty>{ "No variables." }</Empty> }
            } else {
                html! {
                    <table class="table">
                        <thead><tr><th>{ "Name" }</th><th>{ "Value" }</th><th>{ "Updated" }</th><th></th></tr></thead>
                        <tbody>
                        { for list.iter().map(|v| html! {
                            <tr>
                                <td class="mono">{ &v.name }</td>
                                <td class="mono">{ &v.value }</td>
                                <td><When at={v.updated_at} /></td>
                                <td>{ delete_button("variables", &v.name, &failure, &done) }</td>
                            </tr>
                        }) }
                        </tbody>
                    </table>
                }
            }) }
            <ValueForm kind="variables" secret=false done={done.clone()} failure={failure.clone()} />
        </section>
    }
}

#[function_component(Secrets)]
pub fn secrets() -> Html {
    use_title("Secrets".into());
    let changed = use_state(|| 0u64);
    let list = use_get::<Vec<SecretInfo>>("/api/secrets".into(), *changed);
    let failure = use_state(|| None::<String>);
    let done = {
        let changed = changed.clone();
        Callback::from(move |()| changed.set(*changed + 1))
    };
    html! {
        <section>
            <h1>{ "Secrets" }</h1>
            <p class="muted">{ "Sealed at rest; flows granted a secret read it. Values are never shown here." }</p>
            if let Some(message) = &*failure { <p class="failure" role="alert">{ message }</p> }
            { loaded(&list, |list| if list.is_empty() {
                html! { <Empty>{ "No secrets." }</Empty> }
            } else {
                html! {
                    <table class="table">
                        <thead><tr><th>{ "Name" }</th><th>{ "Value" }</th><th>{ "Updated" }</th><th></th></tr></thead>
                        <tbody>
                        { for list.iter().map(|s| html! {
                            <tr>
                                <td class="mono">{ &s.name }</td>
                                <td class="mono masked" aria-label="hidden">{ "••••••••" }</td>
                                <td><When at={s.updated_at} /></td>
                                <td>{ delete_button("secrets", &s.name, &failure, &done) }</td>
                            </tr>
                        }) }
                        </tbody>
                    </table>
                }
            }) }
            <ValueForm kind="secrets" secret=true done={done.clone()} failure={failure.clone()} />
        </section>
    }
}
