//! Work pools with their queues, and the agents serving them.

use baton_proto::v1::{AgentInfo, PoolKind, PoolSpec, QueueSpec, WorkPool, variables_schema};
use serde_json::Value;
use yew::prelude::*;

use super::{ActionButton, Changes, GONE_AGENTS, use_changes};
use crate::app::api::{escape, send, use_get};
use crate::app::live::use_live_refresh;
use crate::app::view::{Empty, When, changed_value, input_value, loaded, prose, use_title};

#[function_component(Pools)]
pub fn pools() -> Html {
    use_title("Work pools".into());
    let changes = use_changes();
    let live = use_live_refresh("agent.*".into(), None, 2000, 5);
    let refresh = live + changes.count();
    let pools = use_get::<Vec<WorkPool>>("/api/pools".into(), refresh);
    let agents = use_get::<Vec<AgentInfo>>("/api/agents".into(), refresh);
    html! {
        <section>
            <h1>{ "Work pools" }</h1>
            { changes.failure() }
            <NewPool changes={changes.clone()} />
            { loaded(&pools, |pools| {
                if pools.is_empty() {
                    return html! { <Empty>{ "No work pools." }</Empty> };
                }
                html! {
                    <div class="cards">
                    { for pools.iter().map(|pool| {
                        let verb = if pool.paused { "resume" } else { "pause" };
                        let label = if pool.paused { "Resume" } else { "Pause" };
                        html! {
                            <article class="panel">
                                <header class="page-head">
                                    <h2>{ &pool.spec.name }
                                        if pool.paused { <span class="tag paused">{ "paused" }</span> }
                                    </h2>
                                    <ActionButton method="POST" class="small" label={label}
                                        path={format!("/api/pools/{}/{verb}", escape(&pool.spec.name))}
                                        describe={format!("{label} pool {}", pool.spec.name)}
                                        changes={changes.clone()} />
                                </header>
                                <p class="muted">{ pool.spec.kind.as_str() }
                                    { pool.spec.concurrency_limit.map(|l| format!(" · at most {l} runs at once")).unwrap_or_default() }
                                    { pool.spec.escalate_to.as_ref().map(|to| format!(" · escalates to {to} when a run runs out of sandbox memory")).unwrap_or_default() }
                                </p>
                                { job_variables(pool) }
                                <table class="table">
                                    <thead><tr><th>{ "Queue" }</th><th>{ "Priority" }</th><th>{ "Limit" }</th><th>{ "Status" }</th></tr></thead>
                                    <tbody>
                                    { for pool.queues.iter().map(|q| html! {
                                        <tr>
                                            <td>{ &q.name }</td>
                                            <td>{ q.priority }</td>
                                            <td>{ q.concurrency_limit.map_or("none".to_owned(), |l| l.to_string()) }</td>
                                            <td>{ if q.paused { "paused" } else { "active" } }</td>
                                        </tr>
                                    }) }
                                    </tbody>
                                </table>
                                <NewQueue pool={pool.spec.name.clone()} changes={changes.clone()} />
                            </article>
                        }
                    }) }
                    </div>
                }
            }) }
            <h2>{ "Agents" }</h2>
            { loaded(&agents, |agents| {
                if agents.is_empty() {
                    return html! { <Empty>{ prose("No agent has connected. `baton agent token create` makes a token; `baton agent start --token …` connects one.") }</Empty> };
                }
                html! {
                    <>
                    <table class="table">
                        <thead><tr><th>{ "Agent" }</th><th>{ "Pool" }</th><th>{ "Status" }</th><th>{ "Core" }</th><th>{ "Slots in use" }</th><th>{ "Last heartbeat" }</th><th>{ "Cached components" }</th><th>{ "Version" }</th></tr></thead>
                        <tbody>
                        { for agents.iter().map(|agent| html! {
                            <tr>
                                <td>{ &agent.name }</td>
                                <td>{ &agent.pool }{ if agent.queues.is_empty() { String::new() } else { format!(" ({})", agent.queues.join(", ")) } }</td>
                                <td><span class={if agent.connected { "dot up" } else { "dot down" }} />{ if agent.connected { " connected" } else { " disconnected" } }</td>
                                <td class="mono small">{ agent.core_address.as_deref().unwrap_or("-") }</td>
                                <td>{ format!("{} / {}", agent.running, agent.slots) }</td>
                                <td><When at={agent.last_seen} /></td>
                                <td class="mono small">{ agent.cached.iter().map(|d| d.trim_start_matches("sha256:").get(..12).unwrap_or(d)).collect::<Vec<_>>().join(" ") }</td>
                                <td>{ &agent.version }</td>
                            </tr>
                        }) }
                        </tbody>
                    </table>
                    <p class="muted">{ prose(GONE_AGENTS) }</p>
                    </>
                }
            }) }
        </section>
    }
}

/// The job variables a pool's runs take (its base job template): name,
/// type and default.
fn job_variables(pool: &WorkPool) -> Html {
    let properties = variables_schema(&pool.spec.base_job_template)
        .and_then(|schema| schema.get("properties"))
        .and_then(Value::as_object);
    let Some(properties) = properties.filter(|p| !p.is_empty()) else {
        return Html::default();
    };
    let kind = |property: &Value| match property.get("type") {
        Some(Value::String(one)) => one.clone(),
        Some(Value::Array(many)) => {
            many.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" | ")
        }
        _ => String::new(),
    };
    html! {
        <details class="job-variables">
            <summary>{ format!("Job variables ({})", properties.len()) }</summary>
            <table class="table">
                <thead><tr><th>{ "Variable" }</th><th>{ "Type" }</th><th>{ "Default" }</th></tr></thead>
                <tbody>
                { for properties.iter().map(|(name, property)| html! {
                    <tr title={property.get("description").and_then(Value::as_str).unwrap_or_default().to_owned()}>
                        <td class="mono">{ name }</td>
                        <td>{ kind(property) }</td>
                        <td class="mono">{ property.get("default").map(Value::to_string).unwrap_or_default() }</td>
                    </tr>
                }) }
                </tbody>
            </table>
        </details>
    }
}

#[derive(Properties, PartialEq)]
struct NewPoolProps {
    changes: Changes,
}

/// Creates a work pool: a name, its infrastructure and what it is for.
#[function_component(NewPool)]
fn new_pool(props: &NewPoolProps) -> Html {
    let name = use_state(String::new);
    let kind = use_state(|| PoolKind::Wasm);
    let description = use_state(String::new);
    let onsubmit = {
        let (name, kind, description, changes) =
            (name.clone(), kind.clone(), description.clone(), props.changes.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let spec = PoolSpec {
                name: name.trim().to_owned(),
                kind: *kind,
                description: Some(description.trim().to_owned()).filter(|d| !d.is_empty()),
                ..PoolSpec::default()
            };
            let name = name.clone();
            changes.run(async move {
                send::<WorkPool>("POST", "/api/pools", Some(&spec)).await?;
                name.set(String::new());
                Ok(())
            });
        })
    };
    let on_kind = {
        let kind = kind.clone();
        Callback::from(move |e: Event| {
            kind.set(match changed_value(&e).as_str() {
                "process" => PoolKind::Process,
                "container" => PoolKind::Container,
                "kubernetes" => PoolKind::Kubernetes,
                _ => PoolKind::Wasm,
            });
        })
    };
    let text = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |e: InputEvent| state.set(input_value(&e)))
    };
    html! {
        <details class="panel new-pool">
            <summary>{ "New work pool" }</summary>
            <form class="filters" {onsubmit}>
                <label>{ "Name " }<input required=true value={(*name).clone()} oninput={text(&name)} placeholder="edge" /></label>
                <label>{ "Type " }
                    <select onchange={on_kind}>
                        { for [PoolKind::Wasm, PoolKind::Process, PoolKind::Container, PoolKind::Kubernetes].iter().map(|k| html! {
                            <option value={k.as_str()} selected={*kind == *k}>{ k.as_str() }</option>
                        }) }
                    </select>
                </label>
                <label>{ "Description " }<input value={(*description).clone()} oninput={text(&description)} /></label>
                <button type="submit">{ "Create pool" }</button>
            </form>
        </details>
    }
}

#[derive(Properties, PartialEq)]
struct NewQueueProps {
    pool: String,
    changes: Changes,
}

/// Adds a queue to a pool (or changes one of that name).
#[function_component(NewQueue)]
fn new_queue(props: &NewQueueProps) -> Html {
    let name = use_state(String::new);
    let priority = use_state(|| "1".to_owned());
    let limit = use_state(String::new);
    let onsubmit = {
        let (name, priority, limit, changes, pool) = (
            name.clone(),
            priority.clone(),
            limit.clone(),
            props.changes.clone(),
            props.pool.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let spec = QueueSpec {
                priority: priority.trim().parse().unwrap_or(1),
                concurrency_limit: limit.trim().parse().ok(),
                paused: false,
            };
            let path = format!("/api/pools/{}/queues/{}", escape(&pool), escape(name.trim()));
            let name = name.clone();
            changes.run(async move {
                send::<WorkPool>("PUT", &path, Some(&spec)).await?;
                name.set(String::new());
                Ok(())
            });
        })
    };
    let text = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |e: InputEvent| state.set(input_value(&e)))
    };
    html! {
        <form class="filters new-queue" {onsubmit} aria-label={format!("New queue in {}", props.pool)}>
            <label>{ "Queue " }<input required=true value={(*name).clone()} oninput={text(&name)} placeholder="urgent" /></label>
            <label>{ "Priority " }<input inputmode="numeric" size="3" value={(*priority).clone()} oninput={text(&priority)} /></label>
            <label>{ "Limit " }<input inputmode="numeric" size="3" value={(*limit).clone()} oninput={text(&limit)} placeholder="none" /></label>
            <button type="submit">{ "Add queue" }</button>
        </form>
    }
}
