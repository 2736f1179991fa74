//! One module per page (or pair of list and detail pages).

mod automations;
mod dashboard;
mod deployments;
mod pools;
mod runs;
mod settings;

use yew::prelude::*;
use yew_router::prelude::*;

use super::route::Route;
use super::view::use_title;

pub fn page(route: Route) -> Html {
    match route {
        Route::Dashboard => html! { <dashboard::Dashboard /> },
        Route::Deployments => html! { <deployments::Deployments /> },
        Route::Deployment { flow, name } => html! { <deployments::DeploymentPage {flow} {name} /> },
        Route::Runs => html! { <runs::Runs /> },
        Route::Run { id } => html! { <runs::RunPage {id} /> },
        Route::Pools => html! { <pools::Pools /> },
        Route::Automations => html! { <automations::Automations /> },
        Route::Events => html! { <automations::Events /> },
        Route::Webhooks => html! { <automations::Webhooks /> },
        Route::Variables => html! { <settings::Variables /> },
        Route::Secrets => html! { <settings::Secrets /> },
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

/// Runs `action` (a call to the core) and then `done`, keeping any failure
/// to show: the shared shape of every button that changes something.
pub fn act<F>(failure: UseStateHandle<Option<String>>, done: Callback<()>, action: F)
where
    F: std::future::Future<Output = Result<(), super::api::Failure>> + 'static,
{
    wasm_bindgen_futures::spawn_local(async move {
        match action.await {
            Ok(()) => {
                failure.set(None);
                done.emit(());
            }
            Err(error) => failure.set(Some(error.message)),
        }
    });
}
