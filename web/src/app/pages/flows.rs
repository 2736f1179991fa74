//! Flows: each flow's uploaded versions and the deployments that run them.

use baton_proto::v1::FlowSummary;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::app::api::use_get;
use crate::app::route::Route;
use crate::app::view::{Empty, When, loaded, prose, use_title};

#[function_component(Flows)]
pub fn flows() -> Html {
    use_title("Flows".into());
    let flows = use_get::<Vec<FlowSummary>>("/api/flows".into(), 0);
    html! {
        <section>
            <h1>{ "Flows" }</h1>
            { loaded(&flows, |flows| {
                if flows.is_empty() {
                    return html! { <Empty>{ prose("No flow has been uploaded. `baton deploy` builds a project's flow and deploys it.") }</Empty> };
                }
                html! {
                    <div class="cards">
                    { for flows.iter().map(flow_card) }
                    </div>
                }
            }) }
        </section>
    }
}

fn flow_card(flow: &FlowSummary) -> Html {
    let latest = flow.versions.first();
    html! {
        <article class="panel flow" aria-label={format!("Flow {}", flow.name)}>
            <h2>{ &flow.name }</h2>
            if let Some(latest) = latest.filter(|v| !v.description.is_empty()) {
                <p class="muted">{ &latest.description }</p>
            }
            <h3>{ "Deployments" }</h3>
            if flow.deployments.is_empty() {
                <p class="muted">{ "None yet." }</p>
            } else {
                <ul class="deployments">
                { for flow.deployments.iter().map(|d| {
                    let (flow_name, name) = d.deployment.split_once('/').unwrap_or_default();
                    let version = flow.versions.iter().find(|v| v.digest == d.digest).map(|v| v.version.clone()).unwrap_or_default();
                    html! {
                        <li>
                            <Link<Route> to={Route::Deployment { flow: flow_name.to_owned(), name: name.to_owned() }}>{ &d.deployment }</Link<Route>>
                            <span class="muted">{ format!(" · version {version}") }</span>
                            if d.paused { <span class="tag paused">{ "paused" }</span> }
                        </li>
                    }
                }) }
                </ul>
            }
            <h3>{ "Versions" }</h3>
            <table class="table">
                <thead><tr><th>{ "Version" }</th><th>{ "Digest" }</th><th>{ "Uploaded" }</th></tr></thead>
                <tbody>
                { for flow.versions.iter().map(|v| html! {
                    <tr>
                        <td>{ &v.version }</td>
                        <td class="mono small">{ v.digest.trim_start_matches("sha256:").get(..12).unwrap_or(&v.digest) }</td>
                        <td><When at={v.created_at} /></td>
                    </tr>
                }) }
                </tbody>
            </table>
        </article>
    }
}
