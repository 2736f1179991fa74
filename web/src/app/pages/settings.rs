//! Variables and secrets: one page each, the same list and form (a secret's
//! value is never read back).

use baton_proto::v1::{SecretInfo, SetValue, Timestamp, Variable};
use serde::de::DeserializeOwned;
use yew::prelude::*;

use super::{ActionButton, Changes, use_changes};
use crate::app::api::{escape, send, use_get};
use crate::app::view::{Empty, When, input_value, loaded, use_title};

/// What the page needs of a listed value.
pub trait Named: DeserializeOwned + Clone + PartialEq + 'static {
    /// The API's collection: `variables`, `secrets`.
    const KIND: &'static str;
    const TITLE: &'static str;
    const NOTE: &'static str;
    const SECRET: bool;
    fn name(&self) -> &str;
    /// The value as shown.
    fn shown(&self) -> Html;
    fn updated_at(&self) -> Timestamp;
}

impl Named for Variable {
    const KIND: &'static str = "variables";
    const TITLE: &'static str = "Variables";
    const NOTE: &'static str = "Plain values that deployments grant to their flows.";
    const SECRET: bool = false;
    fn name(&self) -> &str {
        &self.name
    }
    fn shown(&self) -> Html {
        html! { <td class="mono">{ &self.value }</td> }
    }
    fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
}

impl Named for SecretInfo {
    const KIND: &'static str = "secrets";
    const TITLE: &'static str = "Secrets";
    const NOTE: &'static str =
        "Sealed at rest; flows granted a secret read it. Values are never shown here.";
    const SECRET: bool = true;
    fn name(&self) -> &str {
        &self.name
    }
    fn shown(&self) -> Html {
        html! { <td class="mono masked" aria-label="hidden">{ "••••••••" }</td> }
    }
    fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
}

#[function_component(NamedValues)]
pub fn named_values<T: Named>() -> Html {
    use_title(T::TITLE.into());
    let changes = use_changes();
    let list = use_get::<Vec<T>>(format!("/api/{}", T::KIND), changes.count());
    html! {
        <section>
            <h1>{ T::TITLE }</h1>
            <p class="muted">{ T::NOTE }</p>
            { changes.failure() }
            { loaded(&list, |list| if list.is_empty() {
                html! { <Empty>{ format!("No {}.", T::KIND) }</Empty> }
            } else {
                html! {
                    <table class="table">
                        <thead><tr><th>{ "Name" }</th><th>{ "Value" }</th><th>{ "Updated" }</th><th></th></tr></thead>
                        <tbody>
                        { for list.iter().map(|item| html! {
                            <tr>
                                <td class="mono">{ item.name() }</td>
                                { item.shown() }
                                <td><When at={item.updated_at()} /></td>
                                <td><ActionButton method="DELETE" label="Delete" class="small"
                                    path={format!("/api/{}/{}", T::KIND, escape(item.name()))}
                                    describe={format!("Delete {}", item.name())} changes={changes.clone()} /></td>
                            </tr>
                        }) }
                        </tbody>
                    </table>
                }
            }) }
            <ValueForm kind={T::KIND} secret={T::SECRET} changes={changes.clone()} />
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct ValueFormProps {
    kind: &'static str,
    secret: bool,
    changes: Changes,
}

/// Sets a value by name (new or replacing).
#[function_component(ValueForm)]
fn value_form(props: &ValueFormProps) -> Html {
    let name = use_state(String::new);
    let value = use_state(String::new);
    let onsubmit = {
        let (name, value, kind, changes) =
            (name.clone(), value.clone(), props.kind, props.changes.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let path = format!("/api/{kind}/{}", escape(&name));
            let body = SetValue { value: (*value).clone() };
            let (name, value) = (name.clone(), value.clone());
            changes.run(async move {
                send::<serde_json::Value>("PUT", &path, Some(&body)).await?;
                name.set(String::new());
                value.set(String::new());
                Ok(())
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
