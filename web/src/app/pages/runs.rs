//! Runs: the filterable list that updates live, and a run's page.

use std::collections::HashMap;

use baton_proto::v1::run_names::run_name;
use baton_proto::v1::{FlowRun, FlowRunDetail, LogLevel, LogLine, Page, StateName, TaskRun};
use serde::{Deserialize, Serialize};
use yew::prelude::*;
use yew_router::prelude::*;

use super::deployments::took;
use super::{ActionButton, use_changes};
use crate::app::api::{Load, escape, get, send, use_get};
use crate::app::artifacts::Artifacts;
use crate::app::charts::Gantt;
use crate::app::live::{use_batch, use_events, use_live_refresh, use_run_log, use_ticks};
use crate::app::route::{Route, use_query};
use crate::app::view::{
    Empty, FailureView, FilterInput, Loading, StateBadge, When, changed_value, clock, duration,
    loaded, local_time, now, use_title,
};

/// The list's filters, kept in the URL so a filtered list can be shared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunFilters {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub state: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub deployment: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tag: String,
    /// `1h`, `24h`, `7d` or empty for any time.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub window: String,
    /// Empty: runs that started or are due; `upcoming`: runs planned for
    /// later (which would otherwise bury the rest); `all`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub show: String,
}

impl RunFilters {
    /// The API's path for the list as of `at` (the window ends there).
    fn api_path(&self, at: i64, cursor: Option<&str>) -> String {
        let mut path = String::from("/api/runs?limit=50");
        for (key, value) in
            [("state", &self.state), ("deployment", &self.deployment), ("tag", &self.tag)]
        {
            if !value.is_empty() {
                path.push_str(&format!("&{key}={}", escape(value)));
            }
        }
        let window = match self.window.as_str() {
            "1h" => Some(3_600_000),
            "24h" => Some(86_400_000),
            "7d" => Some(7 * 86_400_000),
            _ => None,
        };
        if let Some(window) = window {
            path.push_str(&format!("&since={}", at - window));
        }
        match self.show.as_str() {
            "all" => {}
            "upcoming" => path.push_str("&upcoming=true"),
            _ => path.push_str("&upcoming=false"),
        }
        if let Some(cursor) = cursor {
            path.push_str(&format!("&cursor={}", escape(cursor)));
        }
        path
    }

    fn admits(&self, state: StateName) -> bool {
        self.state.is_empty()
            || self.state.split(',').any(|s| s.eq_ignore_ascii_case(state.as_str()))
    }
}

const STATES: [&str; 12] = [
    "SCHEDULED",
    "LATE",
    "PENDING",
    "RUNNING",
    "PAUSED",
    "AWAITING_RETRY",
    "CANCELLING",
    "COMPLETED",
    "FAILED",
    "CRASHED",
    "CANCELLED",
    "LATE,FAILED,CRASHED",
];

#[function_component(Runs)]
pub fn runs() -> Html {
    use_title("Runs".into());
    let (filters, push_filters) = use_query::<RunFilters>(Route::Runs);
    let set_filter = {
        let filters = filters.clone();
        move |apply: fn(&mut RunFilters, String)| {
            let (filters, push_filters) = (filters.clone(), push_filters.clone());
            Callback::from(move |value: String| {
                let mut next = filters.clone();
                apply(&mut next, value);
                push_filters.emit(next);
            })
        }
    };
    let on_state = set_filter(|f, v| f.state = v);
    let on_window = set_filter(|f, v| f.window = v);
    let on_deployment = set_filter(|f, v| f.deployment = v);
    let on_tag = set_filter(|f, v| f.tag = v);
    let on_show = set_filter(|f, v| f.show = v);

    // The first page, re-read when a run the page does not show changes
    // (a new run); runs it shows are updated in place from their events.
    let reload = use_state(|| 0u64);
    // Fixed between reloads: a path that changed on every render would be
    // read again on every render.
    let at = *use_memo(*reload, |_| now().0);
    let page = use_get::<Page<FlowRun>>(filters.api_path(at, None), *reload);
    let rows = use_state(Vec::<FlowRun>::new);
    let older = use_state(|| None::<Option<String>>);
    {
        let (rows, older) = (rows.clone(), older.clone());
        use_effect_with(page.clone(), move |page| {
            if let Load::Ready(page) = page {
                rows.set(page.items.clone());
                older.set(Some(page.next_cursor.clone()));
            }
        });
    }
    let (batch, push) = use_batch();
    use_events("run.*".into(), None, push);
    let ticks = use_ticks(250, true);
    {
        let (rows, reload, filters) = (rows.clone(), reload.clone(), filters.clone());
        use_effect_with(ticks, move |_| {
            let events = batch.take();
            if events.is_empty() {
                return;
            }
            let mut next = (*rows).clone();
            let index: HashMap<String, usize> =
                next.iter().enumerate().map(|(i, r)| (format!("run/{}", r.id), i)).collect();
            let mut unknown = false;
            for event in events {
                let state = event
                    .payload
                    .get("state")
                    .and_then(|s| s.as_str())
                    .and_then(|s| s.parse::<StateName>().ok());
                match (index.get(&event.resource), state) {
                    (Some(i), Some(state)) => {
                        if let Some(run) = next.get_mut(*i) {
                            run.state = state;
                            run.state_changed_at = event.occurred;
                            if state == StateName::Running && run.started_at.is_none() {
                                run.started_at = Some(event.occurred);
                            }
                            if state.is_terminal() {
                                run.ended_at = Some(event.occurred);
                            }
                        }
                    }
                    (None, Some(state)) if filters.admits(state) => unknown = true,
                    _ => {}
                }
            }
            rows.set(next);
            if unknown {
                reload.set(*reload + 1);
            }
        });
    }
    let more = {
        let (rows, older, filters) = (rows.clone(), older.clone(), filters.clone());
        Callback::from(move |_| {
            let Some(Some(cursor)) = (*older).clone() else { return };
            let (rows, older, path) =
                (rows.clone(), older.clone(), filters.api_path(at, Some(&cursor)));
            wasm_bindgen_futures::spawn_local(async move {
                if let Ok(page) = get::<Page<FlowRun>>(&path).await {
                    let mut next = (*rows).clone();
                    next.extend(page.items);
                    rows.set(next);
                    older.set(Some(page.next_cursor));
                }
            });
        })
    };

    html! {
        <section>
            <h1>{ "Runs" }</h1>
            <form class="filters" onsubmit={Callback::from(|e: SubmitEvent| e.prevent_default())}>
                <label>{ "State " }
                    <select onchange={Callback::from(move |e: Event| on_state.emit(changed_value(&e)))}>
                        <option value="" selected={filters.state.is_empty()}>{ "any" }</option>
                        { for STATES.iter().map(|s| html! {
                            <option value={*s} selected={filters.state == *s}>
                                { if s.contains(',') { "needs attention".to_owned() } else { s.to_lowercase().replace('_', " ") } }
                            </option>
                        }) }
                    </select>
                </label>
                <label>{ "Deployment " }
                    <FilterInput placeholder="flow/name" value={filters.deployment.clone()} on_commit={on_deployment} />
                </label>
                <label>{ "Tag " }
                    <FilterInput value={filters.tag.clone()} on_commit={on_tag} />
                </label>
                <label>{ "Show " }
                    <select onchange={Callback::from(move |e: Event| on_show.emit(changed_value(&e)))}>
                        { for [("", "started or due"), ("upcoming", "upcoming (planned)"), ("all", "all")].iter().map(|(v, label)| html! {
                            <option value={*v} selected={filters.show == *v}>{ *label }</option>
                        }) }
                    </select>
                </label>
                <label>{ "Created " }
                    <select onchange={Callback::from(move |e: Event| on_window.emit(changed_value(&e)))}>
                        { for [("", "any time"), ("1h", "last hour"), ("24h", "last 24 hours"), ("7d", "last 7 days")].iter().map(|(v, label)| html! {
                            <option value={*v} selected={filters.window == *v}>{ *label }</option>
                        }) }
                    </select>
                </label>
            </form>
            { match &page {
                Load::Loading => html! { <Loading /> },
                Load::Failed(failure) => html! { <FailureView failure={failure.clone()} /> },
                Load::Ready(_) if rows.is_empty() => html! { <Empty>{ "No runs match." }</Empty> },
                Load::Ready(_) => html! {
                    <table class="table runs" aria-live="off">
                        <thead><tr><th>{ "Run" }</th><th>{ "Deployment" }</th><th>{ "State" }</th><th>{ "Scheduled" }</th><th>{ "Took" }</th><th>{ "Tags" }</th></tr></thead>
                        <tbody>
                        { for rows.iter().map(|run| html! {
                            <tr key={run.id.clone()}>
                                <td><Link<Route> to={Route::Run { id: run.id.clone() }} classes="run-name">{ run_name(&run.id) }</Link<Route>></td>
                                <td>{ &run.deployment }</td>
                                <td><StateBadge state={run.state} /></td>
                                <td><When at={run.scheduled_at} /></td>
                                <td>{ took(run) }</td>
                                <td>{ for run.tags.iter().map(|t| html! { <span class="tag">{ t }</span> }) }</td>
                            </tr>
                        }) }
                        </tbody>
                    </table>
                },
            } }
            if matches!(&*older, Some(Some(_))) {
                <button onclick={more}>{ "Older runs" }</button>
            }
        </section>
    }
}

#[derive(Properties, PartialEq)]
pub struct RunProps {
    pub id: String,
}

#[function_component(RunPage)]
pub fn run_page(props: &RunProps) -> Html {
    use_title(format!("Run {}", run_name(&props.id)));
    let navigator = use_navigator();
    let changes = use_changes();
    // Events of the run re-read it at once; between them, a going run is
    // re-read every second (its tasks and progress make no events), an
    // ended one rarely.
    let ended = use_state(|| false);
    let live = use_live_refresh(
        "*".into(),
        Some(format!("run/{}", props.id)),
        500,
        if *ended { 20 } else { 2 },
    );
    let detail = use_get::<FlowRunDetail>(
        format!("/api/runs/{}", escape(&props.id)),
        live + changes.count(),
    );
    {
        let is_over = matches!(&detail, Load::Ready(d) if d.run.state.is_terminal());
        let ended = ended.clone();
        use_effect_with(is_over, move |is_over| ended.set(*is_over));
    }
    let Load::Ready(detail) = detail else {
        return html! { <section>{ loaded(&detail, |_| html! {}) }</section> };
    };
    let run = &detail.run;
    let retry = {
        let path = format!("/api/runs/{}/retry", escape(&run.id));
        let changes = changes.clone();
        Callback::from(move |_| {
            let (path, navigator) = (path.clone(), navigator.clone());
            changes.run(async move {
                let run = send::<FlowRun>("POST", &path, None::<&()>).await?;
                if let Some(navigator) = navigator {
                    navigator.push(&Route::Run { id: run.id });
                }
                Ok(())
            });
        })
    };
    let (flow, name) = run.deployment.split_once('/').unwrap_or_default();
    // An ended run's clock stopped when it ended, whatever `ended_at` says.
    let end = match run.state.is_terminal() {
        true => run.ended_at.unwrap_or(run.state_changed_at),
        false => now(),
    };
    // The current attempt's tasks: an earlier execution's are its own.
    let tasks: Vec<TaskRun> =
        detail.task_runs.iter().filter(|t| t.run_attempt == run.attempt).cloned().collect();
    html! {
        <section>
            <p class="crumbs"><Link<Route> to={Route::Runs}>{ "Runs" }</Link<Route>>{ " /" }</p>
            <header class="page-head">
                <h1>{ format!("Run {}", run.name) }{ " " }<StateBadge state={run.state} /></h1>
                <div class="actions">
                    if !run.state.is_terminal() && run.state != StateName::Cancelling {
                        <ActionButton method="POST" class="danger" label="Cancel"
                            path={format!("/api/runs/{}/cancel", escape(&run.id))} changes={changes.clone()} />
                    }
                    if run.state.is_terminal() {
                        <button onclick={retry}>{ "Retry" }</button>
                    }
                </div>
            </header>
            { changes.failure() }
            if let Some(message) = &run.state_message { <p class="state-message">{ message }</p> }
            if let Some(progress) = run.progress.as_ref().filter(|_| !run.state.is_terminal()) {
                <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100"
                    aria-valuenow={format!("{:.0}", progress.fraction.clamp(0.0, 1.0) * 100.0)}>
                    <progress max="1" value={progress.fraction.clamp(0.0, 1.0).to_string()}></progress>
                    <span>{ format!(" {:.0}% {}", progress.fraction.clamp(0.0, 1.0) * 100.0, progress.message) }</span>
                </div>
            }
            <dl class="facts">
                <dt>{ "Deployment" }</dt>
                <dd><Link<Route> to={Route::Deployment { flow: flow.to_owned(), name: name.to_owned() }}>{ &run.deployment }</Link<Route>></dd>
                <dt>{ "Id" }</dt><dd class="mono">{ &run.id }</dd>
                if let Some(retried) = &run.retry_of {
                    <dt>{ "Retry of" }</dt>
                    <dd><Link<Route> to={Route::Run { id: retried.clone() }} classes="run-name">{ run_name(retried) }</Link<Route>></dd>
                }
                if let Some(parent) = &run.parent_id {
                    <dt>{ "Parent" }</dt>
                    <dd><Link<Route> to={Route::Run { id: parent.clone() }} classes="run-name">{ run_name(parent) }</Link<Route>>{ " (its flow started this run)" }</dd>
                }
                // A retry's due time comes after the first start.
                if run.started_at.is_none_or(|started| run.scheduled_at <= started) {
                    <dt>{ "Scheduled" }</dt><dd>{ local_time(run.scheduled_at) }</dd>
                }
                if let Some(started) = run.started_at { <dt>{ "Started" }</dt><dd>{ local_time(started) }</dd> }
                if !run.state.is_terminal() && run.started_at.is_some_and(|started| run.scheduled_at > started) {
                    <dt>{ "Retry due" }</dt><dd>{ local_time(run.scheduled_at) }</dd>
                }
                if let Some(started) = run.started_at { <dt>{ "Duration" }</dt><dd>{ duration(end.0 - started.0) }</dd> }
                <dt>{ "Attempt" }</dt><dd>{ attempt_text(run) }</dd>
                <dt>{ "Pool" }</dt><dd>{ format!("{} / {}", run.work_pool, run.work_queue) }</dd>
                if let Some(agent) = &run.agent_id { <dt>{ "Agent" }</dt><dd class="mono">{ agent }</dd> }
                if let Some(infrastructure) = &run.infrastructure { <dt>{ "Runs on" }</dt><dd class="mono">{ infrastructure.to_string() }</dd> }
                if !run.job_variables.is_empty() {
                    <dt>{ "Job variables" }</dt>
                    <dd class="mono">{ serde_json::Value::Object(run.job_variables.clone()).to_string() }</dd>
                }
                if !run.tags.is_empty() { <dt>{ "Tags" }</dt><dd>{ for run.tags.iter().map(|t| html! { <span class="tag">{ t }</span> }) }</dd> }
            </dl>
            <div class="columns">
                <div class="panel">
                    <h2>{ "States" }</h2>
                    <ol class="states">
                        { for detail.states.iter().enumerate().map(|(i, change)| {
                            let next = detail.states.get(i + 1).map_or(end, |n| n.at);
                            html! {
                                <li>
                                    <StateBadge state={change.state} />
                                    <span class="muted">{ format!(" {} · {}", clock(change.at), duration(next.0 - change.at.0)) }</span>
                                    if let Some(message) = &change.message { <div class="small">{ message }</div> }
                                </li>
                            }
                        }) }
                    </ol>
                </div>
                <div class="panel">
                    <h2>{ "Parameters" }</h2>
                    <pre class="json">{ serde_json::to_string_pretty(&run.parameters).unwrap_or_default() }</pre>
                    if let Some(output) = &run.output {
                        <h2>{ "Output" }</h2>
                        <pre class="json">{ serde_json::to_string_pretty(output).unwrap_or_default() }</pre>
                    }
                </div>
            </div>
            if detail.attempts.len() > 1 {
                <div class="panel">
                    <h2>{ "Attempts" }</h2>
                    <ol class="states" aria-label="Attempts">
                        { for detail.attempts.iter().map(|attempt| html! {
                            <li>
                                <strong>{ format!("#{} ", attempt.number) }</strong>
                                <StateBadge state={attempt.state} />
                                <span class="muted mono">{ format!(" {} · agent {}", clock(attempt.dispatched_at), attempt.agent_id) }</span>
                                if let Some(message) = &attempt.message { <div class="small">{ message }</div> }
                                if let Some(stale) = &attempt.stale_outcome {
                                    <div class="small">{ format!("Reported after losing the run (ignored): {stale}") }</div>
                                }
                            </li>
                        }) }
                    </ol>
                </div>
            }
            <div class="panel">
                <h2>{ if detail.attempts.len() > 1 { format!("Task runs (attempt {})", run.attempt) } else { "Task runs".to_owned() } }</h2>
                if tasks.is_empty() {
                    <Empty>{ "No task runs reported." }</Empty>
                } else {
                    <Gantt {tasks} start={run.started_at.unwrap_or(run.scheduled_at)} {end} />
                }
                if detail.task_runs_next_cursor.is_some() {
                    <p class="muted">{ format!("The first {} task runs; the API pages through the rest.", detail.task_runs.len()) }</p>
                }
            </div>
            if !detail.children.is_empty() {
                <div class="panel">
                    <h2>{ "Subflows" }</h2>
                    <table aria-label="Subflows">
                        <thead><tr><th>{ "Run" }</th><th>{ "Deployment" }</th><th>{ "State" }</th><th>{ "Created" }</th><th>{ "Message" }</th></tr></thead>
                        <tbody>
                            { for detail.children.iter().map(|child| html! {
                                <tr>
                                    <td><Link<Route> to={Route::Run { id: child.id.clone() }} classes="run-name">{ run_name(&child.id) }</Link<Route>></td>
                                    <td>{ &child.deployment }</td>
                                    <td><StateBadge state={child.state} /></td>
                                    <td>{ local_time(child.created_at) }</td>
                                    <td class="small">{ child.state_message.clone().unwrap_or_default() }</td>
                                </tr>
                            }) }
                        </tbody>
                    </table>
                </div>
            }
            if !detail.artifacts.is_empty() {
                <div class="panel">
                    <h2>{ "Artifacts" }</h2>
                    <Artifacts artifacts={detail.artifacts.clone()} />
                </div>
            }
            <div class="panel">
                <h2>{ "Logs" }</h2>
                <Logs id={run.id.clone()} tasks={detail.task_runs.iter().map(|t| (t.run_attempt, t.task_id, t.name.clone())).collect::<Vec<_>>()} />
            </div>
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct LogsProps {
    id: String,
    /// The run's tasks, `(attempt, task id, name)`, to pick lines by task.
    tasks: Vec<(u32, u64, String)>,
}

/// What the log's controls keep.
#[derive(Clone, Default, PartialEq)]
struct LogView {
    /// Lowest level shown; all when none.
    level: Option<LogLevel>,
    /// A task's name; empty for all lines.
    task: String,
    /// Text a line must contain (any case).
    search: String,
}

impl LogView {
    fn admits(&self, line: &LogLine, tasks: &[(u32, u64, String)]) -> bool {
        let level_ok = self.level.is_none_or(|least| line.level >= least);
        let task_ok = self.task.is_empty()
            || line.task_id.is_some_and(|id| {
                tasks.iter().any(|(attempt, task, name)| {
                    *attempt == line.attempt && *task == id && *name == self.task
                })
            });
        let search_ok = self.search.is_empty()
            || line.message.to_lowercase().contains(&self.search.to_lowercase());
        level_ok && task_ok && search_ok
    }
}

/// The run's log lines, streamed by the core as they are written, with
/// filters by level, task and text, and a download of what is shown.
#[function_component(Logs)]
fn logs(props: &LogsProps) -> Html {
    let log = use_run_log(props.id.clone());
    let view = use_state(LogView::default);
    if log.lines.is_empty() {
        return html! {
            <Empty>{ if log.ended { "This run wrote no log lines." } else { "No log lines yet." } }</Empty>
        };
    }
    let shown: Vec<&LogLine> =
        log.lines.iter().filter(|line| view.admits(line, &props.tasks)).collect();
    let set = |apply: fn(&mut LogView, String)| {
        let view = view.clone();
        Callback::from(move |value: String| {
            let mut next = (*view).clone();
            apply(&mut next, value);
            view.set(next);
        })
    };
    // The select's values are the levels' wire names ("" for all).
    let on_level = set(|v, value| v.level = serde_json::from_value(value.into()).ok());
    let level_name = view.level.map(|l| l.as_str().to_lowercase()).unwrap_or_default();
    let on_task = set(|v, value| v.task = value);
    let on_search = set(|v, value| v.search = value);
    let mut names: Vec<&str> = props.tasks.iter().map(|(_, _, name)| name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let text: String = shown
        .iter()
        .map(|line| {
            format!(
                "{} attempt {} {:<5} {}\n",
                local_time(line.at),
                line.attempt,
                line.level.as_str(),
                line.message
            )
        })
        .collect();
    let download = format!("data:text/plain;charset=utf-8,{}", escape(&text));
    html! {
        <>
        <form class="filters log-filters" onsubmit={Callback::from(|e: SubmitEvent| e.prevent_default())}>
            <label>{ "Level " }
                <select onchange={Callback::from(move |e: Event| on_level.emit(changed_value(&e)))}>
                    { for [("", "all"), ("info", "info and above"), ("warn", "warnings and errors"), ("error", "errors")].iter().map(|(value, label)| html! {
                        <option value={*value} selected={level_name == *value}>{ *label }</option>
                    }) }
                </select>
            </label>
            if !names.is_empty() {
                <label>{ "Task " }
                    <select onchange={Callback::from(move |e: Event| on_task.emit(changed_value(&e)))}>
                        <option value="" selected={view.task.is_empty()}>{ "all lines" }</option>
                        { for names.iter().map(|name| html! {
                            <option value={name.to_string()} selected={view.task == *name}>{ *name }</option>
                        }) }
                    </select>
                </label>
            }
            <label>{ "Search " }<FilterInput value={view.search.clone()} on_commit={on_search} /></label>
            <a class="button" href={download} download={format!("run-{}.log", props.id)}>{ "Download" }</a>
            <span class="muted">{ format!("{} of {} lines", shown.len(), log.lines.len()) }</span>
        </form>
        <ol class="logs" aria-label="Log lines" aria-live="polite">
            { for shown.iter().enumerate().map(|(i, line)| {
                // Where the run's next attempt begins, say so.
                let new_attempt = i > 0 && shown.get(i - 1).is_some_and(|p| p.attempt != line.attempt);
                html! {
                    <>
                    if new_attempt {
                        <li class="log attempt">{ format!("Attempt {}", line.attempt) }</li>
                    }
                    <li class={format!("log {}", line.level.as_str().to_lowercase())}>
                        <time>{ clock(line.at) }</time>
                        <span class="level">{ line.level.as_str() }</span>
                        <span class="message">{ &line.message }</span>
                    </li>
                    </>
                }
            }) }
        </ol>
        </>
    }
}

/// "2 of 3" (attempts allowed by its retries), or with more attempts than
/// those (a lost execution run again) the count alone.
fn attempt_text(run: &FlowRun) -> String {
    let attempt = run.attempt.max(1);
    let allowed = run.max_retries + 1;
    if attempt <= allowed {
        format!("{attempt} of {allowed}")
    } else {
        format!("{attempt} ({} retries allowed)", run.max_retries)
    }
}
