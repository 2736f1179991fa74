//! What `GET /metrics` reports, in the Prometheus text format: counters and
//! histograms moved where things happen (each core counts what it did;
//! Prometheus sums over cores), gauges read when scraped. The README lists
//! every metric.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

/// The content type of [`CoreMetrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeploymentLabels {
    pub deployment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FinishedLabels {
    pub deployment: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub pool: String,
    pub queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AutomationLabels {
    pub automation: String,
}

/// Buckets from 1 ms to about 9 hours, doubling.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 25))
}

/// Registers `metric` as `name` and gives it back, to be kept.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// The core's metrics.
pub struct CoreMetrics {
    registry: Registry,
    pub runs_created: Family<DeploymentLabels, Counter>,
    pub runs_finished: Family<FinishedLabels, Counter>,
    pub run_start_delay: Histogram,
    pub run_duration: Histogram,
    pub runs_waiting: Family<QueueLabels, Gauge>,
    pub agents_connected: Family<PoolLabels, Gauge>,
    pub scheduler_pass: Histogram,
    pub dispatch_pass: Histogram,
    pub automation_firings: Family<AutomationLabels, Counter>,
    pub store_write: Histogram,
    pub group_commit_batch: Histogram,
}

impl Default for CoreMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("baton");
        let runs_created = registered(
            &mut registry,
            "runs_created",
            "Runs created through this core",
            Family::<DeploymentLabels, Counter>::default(),
        );
        let runs_finished = registered(
            &mut registry,
            "runs_finished",
            "Runs this core moved to a terminal state, by state and deployment",
            Family::<FinishedLabels, Counter>::default(),
        );
        let run_start_delay = registered(
            &mut registry,
            "run_start_delay_seconds",
            "From a run's scheduled time (its creation, if due at once) to its start",
            seconds(),
        );
        let run_duration = registered(
            &mut registry,
            "run_duration_seconds",
            "From a run's start to its end",
            seconds(),
        );
        let runs_waiting = registered(
            &mut registry,
            "runs_waiting",
            "Runs due and not yet pushed to an agent, by work pool and queue (all cores)",
            Family::<QueueLabels, Gauge>::default(),
        );
        let agents_connected = registered(
            &mut registry,
            "agents_connected",
            "Agents connected to this core, by work pool",
            Family::<PoolLabels, Gauge>::default(),
        );
        let scheduler_pass = registered(
            &mut registry,
            "scheduler_pass_seconds",
            "How long one pass of the schedules planner takes",
            seconds(),
        );
        let dispatch_pass = registered(
            &mut registry,
            "dispatch_pass_seconds",
            "How long one pass of the dispatcher over the due runs takes",
            seconds(),
        );
        let automation_firings = registered(
            &mut registry,
            "automation_firings",
            "Automations fired by this core",
            Family::<AutomationLabels, Counter>::default(),
        );
        let store_write = registered(
            &mut registry,
            "store_write_seconds",
            "From a write's submission to its commit (group commit included)",
            seconds(),
        );
        let group_commit_batch = registered(
            &mut registry,
            "store_group_commit_writes",
            "Writes committed together in one transaction (SQLite's group commit)",
            Histogram::new(exponential_buckets(1.0, 2.0, 10)),
        );
        Self {
            registry,
            runs_created,
            runs_finished,
            run_start_delay,
            run_duration,
            runs_waiting,
            agents_connected,
            scheduler_pass,
            dispatch_pass,
            automation_firings,
            store_write,
            group_commit_batch,
        }
    }
}

impl CoreMetrics {
    /// The metrics in the text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_are_written_with_their_labels() {
        let metrics = CoreMetrics::default();
        let finished =
            FinishedLabels { deployment: "hello/default".into(), state: "COMPLETED".into() };
        metrics.runs_finished.get_or_create(&finished).inc_by(3);
        metrics.run_duration.observe(0.004);
        let queue = QueueLabels { pool: "edge".into(), queue: "default".into() };
        metrics.runs_waiting.get_or_create(&queue).set(2);
        let text = metrics.encode();
        assert!(
            text.contains(
                "baton_runs_finished_total{deployment=\"hello/default\",state=\"COMPLETED\"} 3"
            ),
            "{text}"
        );
        assert!(text.contains("baton_run_duration_seconds_count 1"), "{text}");
        assert!(text.contains("baton_runs_waiting{pool=\"edge\",queue=\"default\"} 2"), "{text}");
    }
}
