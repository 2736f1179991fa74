//! What an event is about (`run/ID`, `deployment/FLOW/NAME`, `pool/NAME`),
//! shown as a link to the page that shows it, where there is one.

use baton_proto::v1::run_names::run_name;
use yew::prelude::*;
use yew_router::prelude::*;

use super::route::Route;

/// The page of a resource, and the words its link shows.
fn page_of(resource: &str) -> Option<(Route, String)> {
    let (kind, rest) = resource.split_once('/')?;
    let route = match kind {
        "run" => {
            return Some((Route::Run { id: rest.to_owned() }, format!("run {}", run_name(rest))));
        }
        "deployment" => {
            let (flow, name) = rest.split_once('/')?;
            Route::Deployment { flow: flow.to_owned(), name: name.to_owned() }
        }
        "artifact" => {
            let digest = rest.trim_start_matches("sha256:");
            let short = digest.get(..12).unwrap_or(digest);
            return Some((Route::Flows, format!("artifact {short}")));
        }
        "flow" => Route::Flows,
        "pool" => Route::Pools,
        "automation" => Route::Automations,
        "webhook" => Route::Webhooks,
        _ => return None,
    };
    Some((route, resource.to_owned()))
}

#[derive(Properties, PartialEq)]
pub struct ResourceProps {
    pub resource: AttrValue,
}

/// A resource as a link to its page, or as text when it has none.
#[function_component(ResourceLink)]
pub fn resource_link(props: &ResourceProps) -> Html {
    match page_of(&props.resource) {
        Some((route, words)) => html! {
            <Link<Route> to={route} classes="resource">
                <span title={props.resource.clone()}>{ words }</span>
            </Link<Route>>
        },
        None => html! { <span class="resource">{ props.resource.clone() }</span> },
    }
}
