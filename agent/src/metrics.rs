//! The agent's metrics, served as `GET /metrics` in the Prometheus text
//! format where it is told to (`baton agent start --metrics ADDR`): run
//! durations and outcomes as they happen, the rest read when scraped.

use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use tokio_util::sync::CancellationToken;

use crate::agent::Shared;

/// The content type of the metrics' text.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabels {
    pub(crate) outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

/// Registers `metric` as `name` and gives it back, to be kept.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// The agent's metrics.
pub(crate) struct AgentMetrics {
    registry: Registry,
    pub(crate) run_duration: Histogram,
    pub(crate) runs_finished: Family<OutcomeLabels, Counter>,
    slots: Gauge,
    slots_in_use: Gauge,
    live_instances: Gauge,
    component_loads: Family<SourceLabels, Counter>,
    cache_bytes: Gauge,
    connected: Gauge,
    /// One scrape at a time brings the counters read from the sandbox up
    /// to date.
    scraping: Mutex<()>,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("baton_agent");
        let run_duration = registered(
            &mut registry,
            "run_duration_seconds",
            "From a run's start on this agent to its end",
            Histogram::new(exponential_buckets(0.001, 2.0, 25)),
        );
        let runs_finished = registered(
            &mut registry,
            "runs_finished",
            "Runs this agent ran to an end, by outcome",
            Family::<OutcomeLabels, Counter>::default(),
        );
        let slots =
            registered(&mut registry, "slots", "Runs this agent takes at once", Gauge::default());
        let slots_in_use =
            registered(&mut registry, "slots_in_use", "Runs on this agent now", Gauge::default());
        let live_instances = registered(
            &mut registry,
            "sandbox_instances",
            "Flow instances alive in the sandbox now",
            Gauge::default(),
        );
        let component_loads = registered(
            &mut registry,
            "component_loads",
            "Components loaded, by source: memory and disk are cache hits, compiled a miss",
            Family::<SourceLabels, Counter>::default(),
        );
        let cache_bytes = registered(
            &mut registry,
            "component_cache_bytes",
            "Bytes of precompiled components in the on-disk cache",
            Gauge::default(),
        );
        let connected =
            registered(&mut registry, "connected", "1 while connected to a core", Gauge::default());
        Self {
            registry,
            run_duration,
            runs_finished,
            slots,
            slots_in_use,
            live_instances,
            component_loads,
            cache_bytes,
            connected,
            scraping: Mutex::new(()),
        }
    }
}

impl AgentMetrics {
    /// The metrics in the text format, what is read on demand read now.
    fn encode(&self, shared: &Shared) -> String {
        let _scraping = self.scraping.lock().unwrap_or_else(PoisonError::into_inner);
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.slots.set(i64::from(shared.config.slots));
        self.slots_in_use.set(gauge(shared.runs.running().len() as u64));
        self.connected.set(i64::from(shared.connection().is_some()));
        let stats = shared.sandbox.stats();
        self.live_instances.set(gauge(stats.live_instances));
        self.cache_bytes.set(gauge(stats.cache_bytes));
        for (source, total) in [
            ("memory", stats.loaded_in_memory),
            ("disk", stats.loaded_from_disk),
            ("compiled", stats.compiled),
        ] {
            let counter = self.component_loads.get_or_create(&SourceLabels { source });
            counter.inc_by(total.saturating_sub(counter.get()));
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Serves `GET /metrics` on `listener` until `stop`.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let shared = Arc::clone(&shared);
            async move {
                let text = shared.metrics.encode(&shared);
                ([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], text)
            }
        }),
    );
    let served =
        axum::serve(listener, router).with_graceful_shutdown(async move { stop.cancelled().await });
    if let Err(error) = served.await {
        tracing::warn!("the metrics endpoint stopped: {error}");
    }
}
