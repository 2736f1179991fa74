//! Charts drawn as SVG (crisp at any size and zoom): runs by state over
//! time, a timeline of recent runs, and a run's task runs as a Gantt chart.

use baton_proto::v1::{FlowRun, RunStats, StateName, TaskRun, Timestamp};
use yew::prelude::*;
use yew_router::prelude::*;

use super::route::Route;
use super::view::{clock, duration, now, plural};

const WIDTH: f64 = 720.0;

/// States in the order they are stacked, bottom up.
const STACK: [StateName; 11] = [
    StateName::Completed,
    StateName::Running,
    StateName::Pending,
    StateName::Scheduled,
    StateName::AwaitingRetry,
    StateName::Paused,
    StateName::Late,
    StateName::Cancelling,
    StateName::Cancelled,
    StateName::Failed,
    StateName::Crashed,
];

fn fill(state: StateName) -> String {
    format!("fill-{}", state.as_str().to_ascii_lowercase().replace('_', "-"))
}

#[derive(Properties, PartialEq)]
pub struct StatsProps {
    pub stats: RunStats,
}

/// Stacked bars: each bucket's runs by state.
#[function_component(StateBars)]
pub fn state_bars(props: &StatsProps) -> Html {
    let stats = &props.stats;
    let height = 160.0;
    let top = 14.0;
    let bottom = 20.0;
    let plot = height - top - bottom;
    let max = stats
        .buckets
        .iter()
        .map(|b| b.counts.iter().map(|c| c.count).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let slots = stats.buckets.len().max(1) as f64;
    let step = WIDTH / slots;
    let bars = stats.buckets.iter().enumerate().map(|(i, bucket)| {
        let x = i as f64 * step + 1.0;
        let mut y = top + plot;
        let segments = STACK.iter().filter_map(|state| {
            let count = bucket.counts.iter().find(|c| c.state == *state)?.count;
            let h = plot * count as f64 / max as f64;
            y -= h;
            let hour = clock(bucket.start);
            let label =
                format!("{}: {count} {}", hour.get(..5).unwrap_or_default(), state.as_str());
            Some(html! {
                <rect class={fill(*state)} x={format!("{x:.1}")} y={format!("{y:.1}")}
                    width={format!("{:.1}", (step - 2.0).max(1.0))} height={format!("{h:.1}")}>
                    <title>{ label }</title>
                </rect>
            })
        });
        let label = (i % 6 == 0).then(|| {
            html! {
                <text class="axis" x={format!("{x:.1}")} y={format!("{}", height - 4.0)}>
                    { clock(bucket.start).get(..5).unwrap_or_default().to_owned() }
                </text>
            }
        });
        html! { <g>{ for segments }{ for label }</g> }
    });
    html! {
        <svg class="chart" viewBox={format!("0 0 {WIDTH} {height}")} role="img"
            aria-label="Runs by state per hour">
            <text class="axis" x="0" y="10">{ plural(max, "run") }</text>
            <line class="grid" x1="0" x2={WIDTH.to_string()} y1={top.to_string()} y2={top.to_string()} />
            <line class="grid" x1="0" x2={WIDTH.to_string()} y1={(top + plot).to_string()} y2={(top + plot).to_string()} />
            { for bars }
        </svg>
    }
}

#[derive(Properties, PartialEq)]
pub struct TimelineProps {
    pub runs: Vec<FlowRun>,
    /// The window shown: `[since, now]`.
    pub since: Timestamp,
}

/// Recent runs as bars from start to end, packed into lanes.
#[function_component(Timeline)]
pub fn timeline(props: &TimelineProps) -> Html {
    let navigator = use_navigator();
    let until = now().0;
    let since = props.since.0;
    let span = (until - since).max(1) as f64;
    let x_of = |t: i64| ((t - since) as f64 / span * WIDTH).clamp(0.0, WIDTH);
    let lane_height = 14.0;
    let mut lanes: Vec<f64> = Vec::new();
    let mut runs: Vec<&FlowRun> = props.runs.iter().collect();
    runs.sort_by_key(|r| r.started_at.unwrap_or(r.scheduled_at).0);
    let bars: Vec<Html> = runs
        .into_iter()
        .filter_map(|run| {
            let start = run.started_at.unwrap_or(run.scheduled_at).0;
            let end = run.ended_at.map_or(until.max(start), |e| e.0);
            if end < since || start > until {
                return None;
            }
            // At least 2 units wide, and inside the chart even at "now".
            let x0 = x_of(start).min(WIDTH - 2.0);
            let x1 = x_of(end).max(x0 + 2.0);
            let lane = match lanes.iter().position(|free| *free <= x0) {
                Some(lane) => lane,
                None if lanes.len() < 8 => {
                    lanes.push(0.0);
                    lanes.len() - 1
                }
                None => return None,
            };
            if let Some(free) = lanes.get_mut(lane) {
                *free = x1 + 1.0;
            }
            let title =
                format!("{} · {} · {}", run.deployment, run.state.as_str(), duration(end - start));
            let open = {
                let navigator = navigator.clone();
                let id = run.id.clone();
                move || {
                    if let Some(navigator) = &navigator {
                        navigator.push(&Route::Run { id: id.clone() });
                    }
                }
            };
            let onclick = {
                let open = open.clone();
                Callback::from(move |_: MouseEvent| open())
            };
            // Reachable by keyboard too: Tab to a bar, Enter opens its run.
            let onkeydown = Callback::from(move |event: KeyboardEvent| {
                if event.key() == "Enter" || event.key() == " " {
                    event.prevent_default();
                    open();
                }
            });
            Some(html! {
                <rect class={classes!(fill(run.state), "clickable")} x={format!("{x0:.1}")}
                    y={format!("{:.1}", 4.0 + lane as f64 * lane_height)}
                    width={format!("{:.1}", x1 - x0)} height={format!("{:.1}", lane_height - 3.0)}
                    rx="2" tabindex="0" role="link" aria-label={title.clone()} {onclick} {onkeydown}>
                    <title>{ title }</title>
                </rect>
            })
        })
        .collect();
    let height = 4.0 + lanes.len().max(1) as f64 * lane_height + 18.0;
    html! {
        <svg class="chart" viewBox={format!("0 0 {WIDTH} {height}")} role="img"
            aria-label="Timeline of recent runs">
            { for bars }
            <text class="axis" x="0" y={format!("{}", height - 4.0)}>{ clock(props.since) }</text>
            <text class="axis" x={WIDTH.to_string()} y={format!("{}", height - 4.0)}
                text-anchor="end">{ "now" }</text>
        </svg>
    }
}

#[derive(Properties, PartialEq)]
pub struct GanttProps {
    pub tasks: Vec<TaskRun>,
    /// The run's start (the chart's zero).
    pub start: Timestamp,
    /// The run's end, or now while it runs.
    pub end: Timestamp,
}

/// A run's task runs, one row per attempt, on the run's time axis.
#[function_component(Gantt)]
pub fn gantt(props: &GanttProps) -> Html {
    let label_width = 220.0;
    let row = 20.0;
    let start = props.start.0;
    let end = props
        .tasks
        .iter()
        .filter_map(|t| t.ended_at.map(|e| e.0))
        .chain([props.end.0])
        .max()
        .unwrap_or(start);
    let span = (end - start).max(1) as f64;
    let plot = WIDTH - label_width - 70.0;
    let rows = props.tasks.iter().enumerate().map(|(i, task)| {
        let y = i as f64 * row;
        let task_end = task.ended_at.map_or(props.end.0, |e| e.0);
        let x0 = label_width + (task.started_at.0 - start) as f64 / span * plot;
        let w = ((task_end - task.started_at.0) as f64 / span * plot).max(2.0);
        let attempt = if task.max_attempts > 1 {
            format!(" (attempt {}/{})", task.attempt, task.max_attempts)
        } else {
            String::new()
        };
        let took = duration(task_end - task.started_at.0);
        // A cached task did not run: marked, with the run it reused.
        let (class, title, note) = match (&task.cached_from, &task.message) {
            (Some(from), _) => (
                "fill-cached".to_owned(),
                format!("{}: CACHED, the result of run {from}", task.name),
                "cached".to_owned(),
            ),
            (None, Some(message)) => (
                fill(task.state),
                format!("{}{attempt}: {} in {took}: {message}", task.name, task.state.as_str()),
                took,
            ),
            (None, None) => (
                fill(task.state),
                format!("{}{attempt}: {} in {took}", task.name, task.state.as_str()),
                took,
            ),
        };
        html! {
            <g class={classes!("task", task.cached_from.is_some().then_some("cached"))}>
                <text class="label" x="0" y={format!("{:.1}", y + 14.0)}>
                    { format!("{}{attempt}", task.name) }
                </text>
                <rect class={class} x={format!("{x0:.1}")} y={format!("{:.1}", y + 4.0)}
                    width={format!("{w:.1}")} height={format!("{:.1}", row - 7.0)} rx="2">
                    <title>{ title }</title>
                </rect>
                <text class="axis" x={format!("{:.1}", x0 + w + 4.0)} y={format!("{:.1}", y + 14.0)}>
                    { note }
                </text>
            </g>
        }
    });
    let height = props.tasks.len() as f64 * row + 6.0;
    html! {
        <svg class="chart gantt" viewBox={format!("0 0 {WIDTH} {height}")} role="img"
            aria-label="Task runs over time">
            { for rows }
        </svg>
    }
}
