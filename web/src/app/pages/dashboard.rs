//! The dashboard: the last 24 hours at a glance.

use baton_proto::v1::{AgentInfo, FlowRun, Page, RunStats, StateName, Timestamp};
use yew::prelude::*;
use yew_router::prelude::*;

use super::GONE_AGENTS;
use crate::app::api::{Load, use_get};
use crate::app::charts::{StateBars, Timeline};
use crate::app::live::use_live_refresh;
use crate::app::route::Route;
use crate::app::view::{Empty, StateBadge, When, loaded, now, plural, prose, use_title};

const DAY: i64 = 24 * 3600 * 1000;
const HOUR: i64 = 3600 * 1000;

#[function_component(Dashboard)]
pub fn dashboard() -> Html {
    use_title("Dashboard".into());
    // Runs change: re-read at most once a second while their events come,
    // and every 15 s anyway (runs become late without an event).
    let refresh = use_live_refresh("run.*".into(), None, 1000, 15);
    // The windows are bounded, and fixed between refreshes: a path that
    // changed on every render would be read again on every render.
    let at = *use_memo(refresh, |_| now().0);
    let day_ago = Timestamp((at - DAY) / HOUR * HOUR + HOUR);
    let hour_ago = Timestamp(at - HOUR);
    let stats = use_get::<RunStats>(
        format!("/api/runs/stats?since={}&bucket_seconds=3600", day_ago.0),
        refresh,
    );
    let attention = use_get::<Page<FlowRun>>(
        format!("/api/runs?state=LATE,FAILED,CRASHED&since={}&limit=10", at - DAY),
        refresh,
    );
    let recent =
        use_get::<Page<FlowRun>>(format!("/api/runs?since={}&limit=200", hour_ago.0), refresh);
    let agents = use_get::<Vec<AgentInfo>>("/api/agents".into(), refresh);
    // When the charts first show data (after the render): a user timing
    // mark, which the UI benchmark reads as the dashboard's first
    // meaningful paint.
    let charted = matches!((&stats, &recent), (Load::Ready(_), Load::Ready(_)));
    use_effect_with(charted, |charted| {
        if *charted
            && let Some(performance) = web_sys::window().and_then(|w| w.performance())
            && performance.get_entries_by_name("baton:dashboard").length() == 0
        {
            let _ = performance.mark("baton:dashboard");
        }
    });

    html! {
        <section class="dashboard">
            <h1>{ "Dashboard" }</h1>
            <div class="panel">
                <h2>{ "Runs in the last 24 hours" }</h2>
                { loaded(&stats, |stats| {
                    if stats.buckets.iter().all(|b| b.counts.is_empty()) {
                        return html! { <Empty>{ "No runs in the last 24 hours." }</Empty> };
                    }
                    html! {
                        <>
                            <Totals stats={stats.clone()} />
                            <StateBars stats={stats.clone()} />
                        </>
                    }
                }) }
            </div>
            <div class="columns">
                <div class="panel">
                    <h2>{ "Needs attention" }</h2>
                    { loaded(&attention, |page| attention_list(&page.items)) }
                </div>
                <div class="panel">
                    <h2>{ "Agents" }</h2>
                    { loaded(&agents, |agents| agent_list(agents)) }
                </div>
            </div>
            <div class="panel">
                <h2>{ "Timeline: the last hour" }</h2>
                { match &recent {
                    Load::Ready(page) if page.items.is_empty() => html! { <Empty>{ "No runs in the last hour." }</Empty> },
                    other => loaded(other, |page| html! { <Timeline runs={page.items.clone()} since={hour_ago} /> }),
                } }
            </div>
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct TotalsProps {
    stats: RunStats,
}

#[function_component(Totals)]
fn totals(props: &TotalsProps) -> Html {
    let mut totals: Vec<(StateName, u64)> = Vec::new();
    for count in props.stats.buckets.iter().flat_map(|b| &b.counts) {
        match totals.iter_mut().find(|(s, _)| *s == count.state) {
            Some((_, n)) => *n += count.count,
            None => totals.push((count.state, count.count)),
        }
    }
    totals.sort_by_key(|(state, _)| state.as_str());
    let all: u64 = totals.iter().map(|(_, n)| n).sum();
    html! {
        <ul class="totals">
            <li>{ plural(all, "run") }</li>
            { for totals.iter().map(|(state, n)| html! {
                <li><StateBadge state={*state} />{ " " }<strong>{ n }</strong></li>
            }) }
        </ul>
    }
}

fn attention_list(runs: &[FlowRun]) -> Html {
    if runs.is_empty() {
        return html! { <Empty>{ "Nothing late or failed in the last 24 hours." }</Empty> };
    }
    html! {
        <ul class="list">
            { for runs.iter().map(|run| html! {
                <li>
                    <StateBadge state={run.state} />
                    <Link<Route> to={Route::Run { id: run.id.clone() }}>{ &run.deployment }</Link<Route>>
                    <span class="muted">{ " " }<When at={run.state_changed_at} /></span>
                    if let Some(message) = &run.state_message { <div class="muted small">{ message }</div> }
                </li>
            }) }
        </ul>
    }
}

fn agent_list(agents: &[AgentInfo]) -> Html {
    if agents.is_empty() {
        return html! { <Empty>{ prose("No agent has connected. Start one with `baton agent start`.") }</Empty> };
    }
    html! {
        <>
        <ul class="list">
            { for agents.iter().map(|agent| {
                let load = if agent.slots == 0 { 0.0 } else { f64::from(agent.running) / f64::from(agent.slots) };
                html! {
                    <li>
                        <span class={if agent.connected { "dot up" } else { "dot down" }}
                            title={if agent.connected { "connected" } else { "disconnected" }} />
                        <strong>{ &agent.name }</strong>
                        <span class="muted">{ format!(" pool {} · {}/{} slots", agent.pool, agent.running, agent.slots) }</span>
                        if let Some(core) = &agent.core_address {
                            <span class="muted small">{ format!(" · on core {core}") }</span>
                        }
                        <meter min="0" max="1" value={load.to_string()} title="slots in use" />
                    </li>
                }
            }) }
        </ul>
        if agents.iter().any(|agent| !agent.connected) {
            <p class="muted small">{ prose(GONE_AGENTS) }</p>
        }
        </>
    }
}
