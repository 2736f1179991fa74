//! Components compiled on agents before their runs need them. A Python
//! component takes seconds to compile, so no run should pay for it: when a
//! deployment is created or changed (through any core, since the feed tails
//! the shared events table) the agents of its pool connected here are asked
//! to fetch and compile its component, and an agent that connects is asked
//! for the components of its pool's deployments it lacks.

use baton_proto::v1::{DEFAULT_WORK_POOL, Deployment, Event, PoolKind};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::dispatch::Dispatcher;
use crate::feed::Feed;
use crate::store::{DeploymentFilter, Store};

/// An agent that connects is asked for the components of at most this many
/// of its pool's deployments (the most recently changed): each may take
/// seconds of its cores.
const ON_CONNECT: usize = 32;

/// Asks agents to prepare components; clones share the store and dispatcher.
#[derive(Clone)]
pub struct Preparer {
    store: Store,
    dispatcher: Dispatcher,
}

impl Preparer {
    pub fn new(store: Store, dispatcher: Dispatcher) -> Self {
        Self { store, dispatcher }
    }

    /// Follows the feed until `stop`: each deployment created or changed
    /// is prepared on the agents of its pool.
    pub async fn run(self, feed: Feed, stop: CancellationToken) {
        let mut events = feed.subscribe();
        loop {
            let received = tokio::select! {
                () = stop.cancelled() => return,
                received = events.recv() => received,
            };
            match received {
                Ok(event) => self.on_event(&event).await,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "preparing components fell behind the event feed");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    async fn on_event(&self, event: &Event) {
        if !matches!(event.name.as_str(), "deployment.created" | "deployment.updated") {
            return;
        }
        let Some((flow, name)) =
            event.resource.strip_prefix("deployment/").and_then(|rest| rest.split_once('/'))
        else {
            return;
        };
        match self.store.deployment(flow, name).await {
            Ok(deployment) => self.prepare(&deployment).await,
            // Deleted since, most likely: nothing to prepare.
            Err(error) => tracing::debug!(%flow, %name, %error, "not preparing a deployment"),
        }
    }

    /// An agent of `pool` connected: it is asked for what it lacks.
    pub async fn connected(&self, pool: &str) {
        let filter = DeploymentFilter { paused: Some(false), ..DeploymentFilter::default() };
        let mut deployments = match self.store.deployments(&filter).await {
            Ok(deployments) => deployments,
            Err(error) => {
                return tracing::warn!(%pool, %error, "could not list the deployments to prepare");
            }
        };
        deployments.retain(|d| pool_of(d) == pool);
        deployments.sort_by_key(|d| std::cmp::Reverse(d.updated_at.0));
        for deployment in deployments.iter().take(ON_CONNECT) {
            self.prepare(deployment).await;
        }
    }

    async fn prepare(&self, deployment: &Deployment) {
        let pool = pool_of(deployment);
        let kind = match self.store.job_template(Some(pool)).await {
            Ok((kind, _)) => kind,
            Err(error) => return tracing::warn!(%pool, %error, "could not read the pool's type"),
        };
        // A pod fetches and compiles its component itself.
        if kind == PoolKind::Kubernetes {
            return;
        }
        let artifact = &deployment.spec.artifact;
        let asked = self.dispatcher.prepare(pool, artifact, kind);
        if asked > 0 {
            tracing::info!(deployment = %deployment.full_name(), %artifact, asked, "asked agents to prepare a component");
        }
    }
}

fn pool_of(deployment: &Deployment) -> &str {
    deployment.spec.work_pool.as_deref().unwrap_or(DEFAULT_WORK_POOL)
}
