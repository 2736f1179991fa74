//! Every page has its own path, so any page can be linked to.

use serde::Serialize;
use serde::de::DeserializeOwned;
use yew::prelude::*;
use yew_router::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Routable)]
pub enum Route {
    #[at("/")]
    Dashboard,
    #[at("/flows")]
    Flows,
    #[at("/deployments")]
    Deployments,
    #[at("/deployments/:flow/:name")]
    Deployment { flow: String, name: String },
    #[at("/runs")]
    Runs,
    #[at("/runs/:id")]
    Run { id: String },
    #[at("/work-pools")]
    Pools,
    #[at("/automations")]
    Automations,
    #[at("/automations/new")]
    NewAutomation,
    /// By name or id.
    #[at("/automations/:name/edit")]
    EditAutomation { name: String },
    #[at("/events")]
    Events,
    #[at("/webhooks")]
    Webhooks,
    #[at("/variables")]
    Variables,
    #[at("/secrets")]
    Secrets,
    #[not_found]
    #[at("/not-found")]
    NotFound,
}

impl Route {
    /// The navigation entry a page belongs to.
    pub fn section(&self) -> Route {
        match self {
            Route::Deployment { .. } => Route::Deployments,
            Route::Run { .. } => Route::Runs,
            Route::NewAutomation | Route::EditAutomation { .. } => Route::Automations,
            other => other.clone(),
        }
    }
}

/// A page's filters kept in its URL's query, so a filtered page can be
/// linked to and reloaded as it was: what the URL says, and a callback
/// that puts new filters there.
#[hook]
pub fn use_query<Query>(route: Route) -> (Query, Callback<Query>)
where
    Query: Serialize + DeserializeOwned + Default + 'static,
{
    let navigator = use_navigator();
    let location = use_location();
    let query = location.as_ref().and_then(|l| l.query::<Query>().ok()).unwrap_or_default();
    let set = Callback::from(move |next: Query| {
        if let Some(navigator) = &navigator {
            let _ = navigator.push_with_query(&route, &next);
        }
    });
    (query, set)
}
