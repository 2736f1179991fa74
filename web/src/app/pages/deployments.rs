//! Deployments: the searchable list, and a deployment's page with its
//! schedules, recent runs, Run form and default parameters.

use baton_proto::v1::run_names::run_name;
use baton_proto::v1::{
    CatchUp, CreateRun, Deployment, DeploymentUpserted, FlowRun, Page, Schedule,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use yew::prelude::*;
use yew_router::prelude::*;

use super::{ActionButton, Changes, use_changes};
use crate::app::api::{Failure, Load, escape, send, use_get};
use crate::app::form::{RunForm, RunRequest};
use crate::app::live::use_live_refresh;
use crate::app::route::{Route, use_query};
use crate::app::view::{
    Empty, FailureView, StateBadge, When, changed_value, input_value, loaded, local_time, prose,
    use_title, zoned_time,
};

/// Rows shown at most; the search narrows the rest.
const SHOWN: usize = 200;

/// The list's status filter, kept in the URL: what the select shows is
/// what the list holds (also after a reload), and it can be linked to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct DeploymentsQuery {
    /// One of [`STATUSES`]' values; empty for any.
    #[serde(skip_serializing_if = "String::is_empty")]
    status: String,
}

/// The status filter's values and what the select says for each.
const STATUSES: [(&str, &str); 4] =
    [("", "any"), ("active", "active"), ("paused", "paused"), ("scheduled", "has schedules")];

#[function_component(Deployments)]
pub fn deployments() -> Html {
    use_title("Deployments".into());
    let search = use_state(String::new);
    let (query, set_query) = use_query::<DeploymentsQuery>(Route::Deployments);
    let refresh = use_live_refresh("deployment.*".into(), None, 2000, 30);
    let list = use_get::<Vec<Deployment>>("/api/deployments".into(), refresh);
    let on_search = {
        let search = search.clone();
        Callback::from(move |e: InputEvent| search.set(input_value(&e)))
    };
    let on_status = set_query.reform(|e: Event| DeploymentsQuery { status: changed_value(&e) });
    let needle = search.to_lowercase();
    html! {
        <section>
            <h1>{ "Deployments" }</h1>
            <div class="filters">
                <label>{ "Search " }
                    <input type="search" placeholder="name, flow or tag" value={(*search).clone()} oninput={on_search} />
                </label>
                <label>{ "Status " }
                    <select onchange={on_status} autocomplete="off">
                        { for STATUSES.iter().map(|(value, label)| html! {
                            <option value={*value} selected={query.status == *value}>{ *label }</option>
                        }) }
                    </select>
                </label>
            </div>
            { loaded(&list, |all| {
                let matching: Vec<&Deployment> = all.iter().filter(|d| {
                    let text = needle.is_empty()
                        || d.full_name().to_lowercase().contains(&needle)
                        || d.spec.tags.iter().any(|t| t.to_lowercase().contains(&needle));
                    let state = match query.status.as_str() {
                        "active" => !d.spec.paused,
                        "paused" => d.spec.paused,
                        "scheduled" => !d.spec.schedules.is_empty(),
                        _ => true,
                    };
                    text && state
                }).collect();
                if all.is_empty() {
                    return html! { <Empty>{ prose("No deployments yet. `baton deploy` puts the deployments of a baton.yaml here.") }</Empty> };
                }
                if matching.is_empty() {
                    return html! { <Empty>{ "No deployment matches." }</Empty> };
                }
                html! {
                    <>
                    <table class="table">
                        <thead><tr><th>{ "Deployment" }</th><th>{ "Flow version" }</th><th>{ "Schedules" }</th><th>{ "Pool" }</th><th>{ "Tags" }</th><th>{ "Updated" }</th></tr></thead>
                        <tbody>
                        { for matching.iter().take(SHOWN).map(|d| html! {
                            <tr>
                                <td>
                                    <Link<Route> to={Route::Deployment { flow: d.flow.clone(), name: d.name.clone() }}>{ d.full_name() }</Link<Route>>
                                    if d.spec.paused { <span class="tag paused">{ "paused" }</span> }
                                </td>
                                <td class="flow-version">{ &d.flow_version }</td>
                                <td>{ d.spec.schedules.len() }</td>
                                <td>{ d.spec.work_pool.clone().unwrap_or_else(|| "default".into()) }</td>
                                <td>{ for d.spec.tags.iter().map(|t| html! { <span class="tag">{ t }</span> }) }</td>
                                <td><When at={d.updated_at} /></td>
                            </tr>
                        }) }
                        </tbody>
                    </table>
                    if matching.len() > SHOWN {
                        <p class="muted">{ format!("Showing {SHOWN} of {}: narrow the search.", matching.len()) }</p>
                    }
                    </>
                }
            }) }
        </section>
    }
}

#[derive(Properties, PartialEq)]
pub struct DeploymentProps {
    pub flow: String,
    pub name: String,
}

#[function_component(DeploymentPage)]
pub fn deployment_page(props: &DeploymentProps) -> Html {
    let full = format!("{}/{}", props.flow, props.name);
    use_title(full.clone());
    let base = format!("/api/deployments/{}/{}", escape(&props.flow), escape(&props.name));
    let changes = use_changes();
    let live = use_live_refresh("*".into(), Some(format!("deployment/{full}")), 1000, 30);
    let runs_live = use_live_refresh("run.*".into(), None, 1000, 30);
    let refresh = changes.count() + live;
    let deployment = use_get::<Deployment>(base.clone(), refresh);
    let schedules = use_get::<Vec<Schedule>>(format!("{base}/schedules"), refresh);
    let runs = use_get::<Page<FlowRun>>(
        format!("/api/runs?deployment={}&limit=15", escape(&full)),
        refresh + runs_live,
    );
    let saved = {
        let changes = changes.clone();
        Callback::from(move |()| changes.done())
    };
    let crumbs = html! {
        <p class="crumbs"><Link<Route> to={Route::Deployments}>{ "Deployments" }</Link<Route>>{ " /" }</p>
    };
    // Without the deployment the rest of the page has nothing to show: why
    // it cannot be read, once.
    if let Load::Failed(failure) = &deployment {
        return html! { <section>{ crumbs }<FailureView failure={failure.clone()} /></section> };
    }

    html! {
        <section>
            { crumbs }
            { loaded(&deployment, |d| {
                let (verb, label) =
                    if d.spec.paused { ("resume", "Resume deployment") } else { ("pause", "Pause deployment") };
                html! {
                    <>
                    <header class="page-head">
                        <h1>{ d.full_name() }
                            if d.spec.paused { <span class="tag paused">{ "paused" }</span> }
                        </h1>
                        <ActionButton method="POST" path={format!("{base}/{verb}")} {label} changes={changes.clone()} />
                    </header>
                    if let Some(description) = &d.spec.description { <p>{ description }</p> }
                    <dl class="facts">
                        <dt>{ "Flow" }</dt><dd><Link<Route> to={Route::Flows}>{ &d.flow }</Link<Route>></dd>
                        <dt>{ "Flow version" }</dt><dd class="flow-version">{ &d.flow_version }</dd>
                        <dt>{ "Work pool" }</dt><dd>{ format!("{} / {}", d.spec.work_pool.as_deref().unwrap_or("default"), d.spec.work_queue.as_deref().unwrap_or("default")) }</dd>
                        if !d.spec.job_variables.is_empty() {
                            <dt>{ "Job variables" }</dt>
                            <dd class="mono">{ serde_json::Value::Object(d.spec.job_variables.clone()).to_string() }</dd>
                        }
                        <dt>{ "Artifact" }</dt><dd class="mono">{ &d.spec.artifact }</dd>
                        <dt>{ "Retries" }</dt><dd>{ d.spec.retries }</dd>
                        <dt>{ "Updated" }</dt><dd>{ local_time(d.updated_at) }</dd>
                    </dl>
                    </>
                }
            }) }
            { changes.failure() }
            <div class="columns">
                <div class="panel">
                    <h2>{ "Run" }</h2>
                    { loaded(&deployment, |d| html! { <RunPanel deployment={d.clone()} /> }) }
                </div>
                <div class="panel">
                    <h2>{ "Schedules" }</h2>
                    { loaded(&schedules, |list| schedule_list(list, &base, &changes)) }
                </div>
            </div>
            <div class="panel">
                <h2>{ "Recent runs" }</h2>
                { loaded(&runs, |page| run_table(&page.items)) }
            </div>
            <div class="panel">
                <h2>{ "Default parameters" }</h2>
                { loaded(&deployment, |d| html! { <ParametersEditor deployment={d.clone()} saved={saved.clone()} /> }) }
            </div>
        </section>
    }
}

fn schedule_list(schedules: &[Schedule], base: &str, changes: &Changes) -> Html {
    if schedules.is_empty() {
        return html! { <Empty>{ "No schedules: runs start only when asked." }</Empty> };
    }
    html! {
        <ul class="list">
            { for schedules.iter().map(|schedule| {
                let what = if let Some(cron) = &schedule.spec.cron {
                    format!("cron {cron}")
                } else if let Some(seconds) = schedule.spec.interval_seconds {
                    format!("every {}", crate::app::view::duration(seconds as i64 * 1000))
                } else {
                    format!("rrule {}", schedule.spec.rrule.clone().unwrap_or_default())
                };
                let (verb, label) =
                    if schedule.spec.active { ("pause", "Pause") } else { ("resume", "Resume") };
                html! {
                    <li class="schedule">
                        <div>
                            <strong>{ what }</strong>
                            <span class="muted">{ format!(" ({}, catch-up {})", schedule.spec.timezone, catch_up_name(schedule.spec.catch_up)) }</span>
                            if !schedule.spec.active { <span class="tag paused">{ "paused" }</span> }
                        </div>
                        if schedule.spec.active {
                            <div class="muted small">{ "Next: " }
                                { for schedule.next.iter().map(|t| html! {
                                    <span class="next" title={format!("{} here", local_time(*t))}>{ zoned_time(*t, &schedule.spec.timezone) }</span>
                                }) }
                            </div>
                        }
                        <ActionButton method="POST" class="small" {label}
                            path={format!("{base}/schedules/{}/{verb}", escape(&schedule.id))}
                            describe={format!("{label} schedule {}", schedule.id)} changes={changes.clone()} />
                    </li>
                }
            }) }
        </ul>
    }
}

fn catch_up_name(catch_up: CatchUp) -> &'static str {
    match catch_up {
        CatchUp::Skip => "skip",
        CatchUp::Latest => "latest",
        CatchUp::All => "all",
    }
}

pub fn run_table(runs: &[FlowRun]) -> Html {
    if runs.is_empty() {
        return html! { <Empty>{ "No runs yet." }</Empty> };
    }
    html! {
        <table class="table">
            <thead><tr><th>{ "Run" }</th><th>{ "State" }</th><th>{ "Scheduled" }</th><th>{ "Took" }</th></tr></thead>
            <tbody>
            { for runs.iter().map(|run| html! {
                <tr>
                    <td><Link<Route> to={Route::Run { id: run.id.clone() }} classes="run-name">{ run_name(&run.id) }</Link<Route>></td>
                    <td><StateBadge state={run.state} /></td>
                    <td><When at={run.scheduled_at} /></td>
                    <td>{ took(run) }</td>
                </tr>
            }) }
            </tbody>
        </table>
    }
}

pub fn took(run: &FlowRun) -> String {
    match (run.started_at, run.ended_at) {
        (Some(start), Some(end)) => crate::app::view::duration(end.0 - start.0),
        (Some(_), None) => "running".into(),
        _ => String::new(),
    }
}

#[derive(Properties, PartialEq)]
struct RunPanelProps {
    deployment: Deployment,
}

/// The Run form, and what happened to the last submission.
#[function_component(RunPanel)]
fn run_panel(props: &RunPanelProps) -> Html {
    let navigator = use_navigator();
    let busy = use_state(|| false);
    let refused = use_state(|| None::<Failure>);
    let path = format!(
        "/api/deployments/{}/{}/runs",
        escape(&props.deployment.flow),
        escape(&props.deployment.name)
    );
    let on_submit = {
        let (busy, refused) = (busy.clone(), refused.clone());
        Callback::from(move |request: RunRequest| {
            let body = CreateRun {
                parameters: request.parameters,
                scheduled_at: request.at,
                job_variables: request.job_variables,
                ..CreateRun::default()
            };
            let (busy, refused, navigator, path) =
                (busy.clone(), refused.clone(), navigator.clone(), path.clone());
            busy.set(true);
            wasm_bindgen_futures::spawn_local(async move {
                match send::<FlowRun>("POST", &path, Some(&body)).await {
                    Ok(run) => {
                        refused.set(None);
                        if let Some(navigator) = navigator {
                            navigator.push(&Route::Run { id: run.id });
                        }
                    }
                    Err(failure) => refused.set(Some(failure)),
                }
                busy.set(false);
            });
        })
    };
    let fields = refused.as_ref().map(|f| f.fields.clone()).unwrap_or_default();
    html! {
        <>
            <RunForm schema={props.deployment.parameter_schema.clone()}
                defaults={props.deployment.spec.parameters.clone()}
                {on_submit} busy={*busy} refused={fields} />
            if let Some(failure) = &*refused {
                <p class="failure" role="alert">{ &failure.message }</p>
            }
        </>
    }
}

#[derive(Properties, PartialEq)]
struct EditorProps {
    deployment: Deployment,
    saved: Callback<()>,
}

/// The deployment's default parameters as JSON, checked before saving.
#[function_component(ParametersEditor)]
fn parameters_editor(props: &EditorProps) -> Html {
    let pretty =
        serde_json::to_string_pretty(&props.deployment.spec.parameters).unwrap_or_default();
    let text = use_state(|| pretty.clone());
    let message = use_state(|| None::<(bool, String)>);
    let parsed: Result<Map<String, Value>, String> =
        serde_json::from_str(&text).map_err(|e| format!("not a JSON object: {e}"));
    let oninput = {
        let text = text.clone();
        Callback::from(move |e: InputEvent| {
            text.set(e.target_unchecked_into::<web_sys::HtmlTextAreaElement>().value())
        })
    };
    let onsubmit = {
        let (message, saved) = (message.clone(), props.saved.clone());
        let deployment = props.deployment.clone();
        let parsed = parsed.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let parameters = match &parsed {
                Ok(parameters) => parameters.clone(),
                Err(why) => return message.set(Some((false, why.clone()))),
            };
            if let Err(errors) = baton_proto::v1::validate_params(
                &deployment.parameter_schema,
                &Value::Object(parameters.clone()),
            ) {
                return message.set(Some((false, errors.to_string())));
            }
            let mut spec = deployment.spec.clone();
            spec.parameters = parameters;
            let path = format!(
                "/api/deployments/{}/{}",
                escape(&deployment.flow),
                escape(&deployment.name)
            );
            let (message, saved) = (message.clone(), saved.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match send::<DeploymentUpserted>("PUT", &path, Some(&spec)).await {
                    Ok(_) => {
                        message.set(Some((true, "Saved.".into())));
                        saved.emit(());
                    }
                    Err(failure) => message.set(Some((false, failure.message))),
                }
            });
        })
    };
    html! {
        <form class="editor" {onsubmit}>
            <label for="defaults">{ "Every run gets these unless it sets its own" }</label>
            <textarea id="defaults" rows="6" spellcheck="false" value={(*text).clone()} {oninput}
                aria-invalid={parsed.is_err().to_string()} />
            if let Err(why) = &parsed { <p class="field-error">{ why }</p> }
            if let Some((ok, text)) = &*message {
                <p class={if *ok { "saved" } else { "field-error" }} role="status">{ text }</p>
            }
            <button type="submit" disabled={parsed.is_err()}>{ "Save defaults" }</button>
        </form>
    }
}
