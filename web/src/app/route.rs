//! Every page has its own path, so any page can be linked to.

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
            other => other.clone(),
        }
    }
}
