//! One module per page (or pair of list and detail pages).

mod automation_editor;
mod automations;
mod dashboard;
mod deployments;
mod flows;
mod pools;
mod runs;
mod settings;

use std::future::Future;

use baton_proto::v1::{SecretInfo, Variable};
use yew::prelude::*;
use yew_router::prelude::*;

use super::api::{Failure, send};
use super::route::Route;
use super::view::use_title;

/// What becomes of agents that went away, said where agents are listed.
const GONE_AGENTS: &str = "An agent out of contact for a day and holding no run (one of a stopped `baton serve`, say) is no longer listed; it is again when it comes back (`baton server start --retain-agents`).";

pub fn page(route: Route) -> Html {
    match route {
        Route::Dashboard => html! { <dashboard::Dashboard /> },
        Route::Flows => html! { <flows::Flows /> },
        Route::Deployments => html! { <deployments::Deployments /> },
        // Keyed: another deployment's or run's page starts afresh (its form,
        // log and filters), not with the last one's.
        Route::Deployment { flow, name } => {
            let key = format!("{flow}/{name}");
            html! { <deployments::DeploymentPage {key} {flow} {name} /> }
        }
        Route::Runs => html! { <runs::Runs /> },
        Route::Run { id } => {
            let key = id.clone();
            html! { <runs::RunPage {key} {id} /> }
        }
        Route::Pools => html! { <pools::Pools /> },
        Route::Automations => html! { <automations::Automations /> },
        Route::NewAutomation => html! { <automation_editor::NewAutomation /> },
        Route::EditAutomation { name } => {
            let key = name.clone();
            html! { <automation_editor::EditAutomation {key} {name} /> }
        }
        Route::Events => html! { <automations::Events /> },
        Route::Webhooks => html! { <automations::Webhooks /> },
        Route::Variables => html! { <settings::NamedValues<Variable> /> },
        Route::Secrets => html! { <settings::NamedValues<SecretInfo> /> },
        Route::NotFound => html! { <NotFound /> },
    }
}

#[function_component(NotFound)]
fn not_found() -> Html {
    use_title("Not found".into());
    html! {
        <section>
            <h1>{ "Not found" }</h1>
            <p>{ "No page here. " }<Link<Route> to={Route::Dashboard}>{ "Go to the dashboard" }</Link<Route>></p>
        </section>
    }
}

/// What a page that changes things keeps: how many changes it made (a
/// refresh for its reads) and why the last one failed.
#[derive(Clone, PartialEq)]
pub struct Changes {
    count: UseStateHandle<u64>,
    failure: UseStateHandle<Option<String>>,
}

#[hook]
pub fn use_changes() -> Changes {
    Changes { count: use_state(|| 0), failure: use_state(|| None) }
}

impl Changes {
    /// Grows after every change that succeeded.
    pub fn count(&self) -> u64 {
        *self.count
    }

    /// Runs `action` (a call to the core); counts it done or keeps why it
    /// failed.
    pub fn run<F>(&self, action: F)
    where
        F: Future<Output = Result<(), Failure>> + 'static,
    {
        let changes = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            match action.await {
                Ok(()) => changes.done(),
                Err(error) => changes.failure.set(Some(error.message)),
            }
        });
    }

    /// Counts a change made elsewhere (a form that saved).
    pub fn done(&self) {
        self.failure.set(None);
        self.count.set(*self.count + 1);
    }

    /// The last failure, if any, as an alert.
    pub fn failure(&self) -> Html {
        match &*self.failure {
            Some(message) => html! { <p class="failure" role="alert">{ message }</p> },
            None => html! {},
        }
    }
}

#[derive(Properties, PartialEq)]
pub struct ActionProps {
    /// `POST` or `DELETE`, without a body.
    pub method: &'static str,
    pub path: String,
    pub label: AttrValue,
    /// What it acts on, for screen readers (`Pause pool edge`).
    #[prop_or_default]
    pub describe: Option<AttrValue>,
    #[prop_or_default]
    pub class: Classes,
    pub changes: Changes,
}

/// A button that makes one call to the core.
#[function_component(ActionButton)]
pub fn action_button(props: &ActionProps) -> Html {
    let onclick = {
        let (method, path, changes) = (props.method, props.path.clone(), props.changes.clone());
        Callback::from(move |_| {
            let path = path.clone();
            changes.run(async move {
                send::<serde_json::Value>(method, &path, None::<&()>).await.map(|_| ())
            });
        })
    };
    html! {
        <button class={props.class.clone()} {onclick} aria-label={props.describe.clone()}>
            { props.label.clone() }
        </button>
    }
}
