//! `baton server start`: the store, the API and the background loops
//! (the scheduler, the dispatcher, the event feed and the automations,
//! sweeping late and overdue runs, pruning by retention) in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use baton_sandbox::{Sandbox, SandboxConfig};
use baton_telemetry::RunTracer;
use tokio::net::TcpListener;

use crate::api::{self, AppState, Auth, LinkInfo};
use crate::automations::Automations;
use crate::dispatch::{DispatchConfig, Dispatcher};
use crate::feed::Feed;
use crate::link::{CoreIdentity, Link, LinkServices};
use crate::prepare::Preparer;
use crate::scheduler::{Scheduler, SchedulerConfig};
use crate::secrets::SecretCipher;
use crate::store::{Retention, Store, SweepConfig, redact_url};
use crate::subflows::Subflows;

/// How a core is set up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    /// `None`: SQLite in `data_dir`.
    pub database_url: Option<String>,
    pub http: SocketAddr,
    /// Where agents connect (QUIC); `None`: no agents.
    pub quic: Option<SocketAddr>,
    pub dispatch: DispatchConfig,
    pub scheduler: SchedulerConfig,
    pub api_token: Option<String>,
    /// Hex key sealing secrets; `None`: a key file in `data_dir`.
    pub secret_key: Option<String>,
    pub retention: Retention,
    /// A run not dispatched this long after its time becomes `LATE`.
    pub late_after: Duration,
    pub max_artifact_bytes: usize,
    /// Where runs' traces go (OTLP over HTTP), if anywhere.
    pub otlp_endpoint: Option<String>,
}

impl ServerConfig {
    pub fn new(data_dir: PathBuf, http: SocketAddr) -> Self {
        Self {
            data_dir,
            database_url: None,
            http,
            quic: None,
            dispatch: DispatchConfig::default(),
            scheduler: SchedulerConfig::default(),
            api_token: None,
            secret_key: None,
            retention: Retention::default(),
            late_after: Duration::from_secs(15),
            max_artifact_bytes: 64 << 20,
            otlp_endpoint: None,
        }
    }
}

/// A running core.
pub struct Server {
    pub address: SocketAddr,
    /// Where agents connect, and the fingerprint their tokens pin.
    pub link: Option<LinkInfo>,
    pub store: Store,
    pub dispatcher: Dispatcher,
    pub scheduler: Scheduler,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Server {
    /// Opens the store (running migrations), binds the API and starts the
    /// background loops.
    pub async fn start(config: ServerConfig) -> anyhow::Result<Self> {
        // An empty token would be matched by an empty `Bearer` header.
        if config.api_token.as_deref().is_some_and(|token| token.trim().is_empty()) {
            bail!(
                "the API token is empty: give --api-token (or BATON_API_TOKEN) a secret, e.g. from `openssl rand -hex 32`"
            );
        }
        if !config.http.ip().is_loopback() && config.api_token.is_none() {
            bail!(
                "refusing to listen on {} without an API token: set --api-token (or BATON_API_TOKEN), or listen on 127.0.0.1",
                config.http
            );
        }
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("creating the data directory {}", config.data_dir.display())
        })?;
        let cipher = match &config.secret_key {
            Some(key) => SecretCipher::from_hex(key)?,
            None => SecretCipher::load_or_create(&config.data_dir.join("secret.key"))?,
        };
        let url =
            config.database_url.clone().unwrap_or_else(|| Store::sqlite_url(&config.data_dir));
        let store = Store::connect(&url, cipher)
            .await
            .with_context(|| format!("opening the database {}", redact_url(&url)))?;
        if let Some(endpoint) = &config.otlp_endpoint {
            store.trace_to(RunTracer::otlp(endpoint, "baton-core")?);
        }
        let sandbox = Sandbox::new(&SandboxConfig {
            cache_dir: Some(config.data_dir.join("cache").join("components")),
            max_instances: 8,
            max_component_bytes: config.max_artifact_bytes,
            ..SandboxConfig::default()
        })
        .context("setting up the sandbox that checks uploaded components")?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        // Times missed while no core ran are decided before anything is
        // dispatched.
        let scheduler = Scheduler::new(store.clone(), config.scheduler);
        let caught_up = scheduler
            .catch_up(crate::store::now())
            .await
            .context("catching up on missed schedule times")?;
        if caught_up != Default::default() {
            tracing::info!(
                skipped = caught_up.skipped,
                created = caught_up.created,
                "caught up on schedule times missed while no core ran"
            );
        }
        tokio::spawn(scheduler.clone().run(shutdown.clone()));
        let feed = Feed::new();
        tokio::spawn(feed.clone().run(store.clone(), shutdown.clone()));
        let dispatcher = Dispatcher::new(store.clone(), config.dispatch);
        let subflows =
            Subflows { store: store.clone(), dispatcher: dispatcher.clone(), feed: feed.clone() };
        let link = match config.quic {
            None => None,
            Some(quic) => {
                let identity = CoreIdentity::load_shared(&config.data_dir, &store)
                    .await
                    .context("making or loading the core's TLS identity")?;
                let preparer = Preparer::new(store.clone(), dispatcher.clone());
                tokio::spawn(preparer.clone().run(feed.clone(), shutdown.clone()));
                let services = LinkServices {
                    store: store.clone(),
                    dispatcher: dispatcher.clone(),
                    subflows: subflows.clone(),
                    preparer,
                };
                let link = Link::start(quic, &identity, services, shutdown.clone())?;
                tokio::spawn(dispatcher.clone().run(shutdown.clone()));
                Some(LinkInfo { address: link.address, fingerprint: identity.fingerprint() })
            }
        };
        let automations = Automations::new(store.clone(), feed.clone(), dispatcher.clone());
        tokio::spawn(automations.clone().run(shutdown.clone()));
        let state = AppState {
            store: store.clone(),
            sandbox: Arc::new(sandbox),
            auth: Auth::new(config.api_token.clone()),
            max_artifact_bytes: config.max_artifact_bytes,
            dispatcher: dispatcher.clone(),
            scheduler: scheduler.clone(),
            feed: feed.clone(),
            subflows,
            automations,
            link: link.clone(),
        };
        let listener = TcpListener::bind(config.http)
            .await
            .with_context(|| format!("listening on {}", config.http))?;
        let address = listener.local_addr()?;
        spawn_background(store.clone(), &config, shutdown.clone());
        let stopping = shutdown.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, api::router(state))
                .with_graceful_shutdown(async move { stopping.cancelled().await })
                .await
                .context("serving the API")
        });
        tracing::info!(%address, database = %redact_url(&url), "core started");
        Ok(Self { address, link, store, dispatcher, scheduler, task, shutdown })
    }

    /// Runs until the API stops (on error, or after [`Server::stop`]).
    pub async fn wait(self) -> anyhow::Result<()> {
        let result = self.task.await.context("the API task panicked")?;
        self.store.close().await;
        result
    }

    /// Stops accepting requests and finishes those in flight.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }

    /// A handle that stops the server when cancelled (for a signal handler).
    pub fn stopper(&self) -> tokio_util::sync::CancellationToken {
        self.shutdown.clone()
    }
}

/// Runs `job` every `period` until `stop` is cancelled.
fn every<F, Fut>(period: Duration, stop: tokio_util::sync::CancellationToken, mut job: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = tick.tick() => job().await,
                () = stop.cancelled() => return,
            }
        }
    });
}

fn spawn_background(
    store: Store,
    config: &ServerConfig,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let sweep = SweepConfig {
        late_after_ms: millis(config.late_after),
        // An agent times a run out itself; a dead one's runs end when its
        // lease lapses. Two crash windows on, the sweep is only a backstop.
        timeout_grace_ms: millis(config.dispatch.crash_after.saturating_mul(2)),
    };
    let sweeper = store.clone();
    every(Duration::from_secs(1), shutdown.clone(), move || {
        let store = sweeper.clone();
        async move {
            if let Err(error) = store.sweep(sweep).await {
                tracing::warn!("sweeping late and overdue runs failed: {error}");
            }
        }
    });
    let retention = config.retention;
    every(Duration::from_secs(60), shutdown, move || {
        let store = store.clone();
        async move {
            match store.prune(&retention).await {
                Ok(pruned) if pruned != Default::default() => {
                    tracing::info!(?pruned, "retention pruned old data");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!("pruning by retention failed: {error}"),
            }
        }
    });
}
