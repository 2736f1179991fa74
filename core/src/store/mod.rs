//! The store: everything the core remembers, on SQLite (embedded default)
//! or PostgreSQL (shared by several cores), through one set of queries.
//!
//! This layer knows SQL and the wire types it returns; it knows nothing of
//! HTTP. Writes that must be atomic (a state transition with its history
//! row and its event) happen in one transaction. On SQLite, writes go
//! through a single connection so they never contend for the file lock.

/// The states that hold a concurrency slot (`StateName::holds_slot`), as an
/// SQL list literal for `concat!`; a test keeps the two the same.
macro_rules! holding_states {
    () => {
        "('PENDING', 'RUNNING', 'CANCELLING')"
    };
}

mod agents;
mod api_tokens;
mod artifacts;
mod attempts;
mod automations;
mod batch;
mod deployments;
mod events;
mod identity;
mod logs;
mod pools;
mod reports;
mod retention;
mod run_artifacts;
mod runs;
mod schedules;
mod signals;
mod subflows;
mod task_cache;
mod transitions;
mod values;
mod webhooks;

pub use agents::{AgentLease, AgentRecord, DueRun, HeldRun};
pub use automations::AutomationPut;
pub use deployments::DeploymentFilter;
pub use events::EventFilter;
pub use identity::SharedCa;
pub use pools::{DEFAULT_QUEUE, ESCALATED};
pub use retention::Pruned;

use std::path::Path;
use std::str::FromStr;

use baton_proto::v1::limits::{
    MAX_JOB_TEMPLATE_BYTES, MAX_JOB_VARIABLES_BYTES, MAX_PARAMETERS_BYTES, over_limit,
};
use baton_proto::v1::{ParamErrors, StateName, Timestamp, Transition, Verdict};
use baton_telemetry::RunTracer;
use sha2::Digest as _;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

pub use retention::Retention;
pub use runs::{DEFAULT_POOL, Fence, RunFilter, Sweep, SweepConfig};
pub use schedules::{DueSchedule, ScheduleUpdate, schedule_id};
pub use signals::{Signal, Signals};
pub use subflows::child_run;

use crate::metrics::{CoreMetrics, FinishedLabels};
use crate::secrets::SecretCipher;
use crate::traces::{dispatch_span, run_span};

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// What went wrong in the store, in terms a caller can branch on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} not found{hint}")]
    NotFound {
        what: String,
        /// `; did you mean ...?`, or nothing.
        hint: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("invalid parameters: {0}")]
    InvalidParameters(ParamErrors),
    #[error("the database failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrating the database failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error(
        "attempt {attempt} of run {run} no longer holds it (the run is {state} on attempt {current})"
    )]
    Stale { run: String, attempt: u32, current: u32, state: baton_proto::v1::StateName },
    #[error("the database is out of space: {0}")]
    StorageFull(String),
    /// Something over one of the sizes Baton accepts; the message names it
    /// and the limit.
    #[error("{0}")]
    TooLarge(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("secret storage failed: {0}")]
    Secret(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// Why an execution's question (about its children, of its task
    /// cache) is refused; `None` when the database failed or is full: no
    /// answer, and the execution asks again.
    pub fn refusal(self, run_id: &str) -> Option<String> {
        match self {
            StoreError::Database(error) => {
                tracing::warn!(%error, run = %run_id, "could not answer an execution's question; it asks again");
                None
            }
            StoreError::StorageFull(_) => None,
            error => Some(error.to_string()),
        }
    }

    /// Whether the database refused a write for want of space (SQLite's
    /// `SQLITE_FULL`, PostgreSQL's `disk_full`): the write may be retried
    /// once space is freed; nothing was half-written.
    pub fn is_storage_full(&self) -> bool {
        match self {
            StoreError::StorageFull(_) => true,
            StoreError::Database(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("13" | "53100"))
                    || e.message().contains("database or disk is full")
            }
            StoreError::Database(sqlx::Error::Io(e)) => e.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        StoreError::NotFound { what: what.into(), hint: String::new() }
    }
}

/// The hex SHA-256 of a token's secret: what is kept of it.
fn sha256_hex(text: &str) -> String {
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Whether `secret` hashes to `stored`; hashes of equal length are compared
/// whole, with no early exit to time.
fn secret_matches(stored: &str, secret: &str) -> bool {
    stored
        .bytes()
        .zip(sha256_hex(secret).bytes())
        .fold(stored.len() == 64, |same, (a, b)| same & (a == b))
}

/// `bytes` random bytes in hex: a token's secret.
fn random_hex(bytes: usize) -> StoreResult<String> {
    let mut buffer = vec![0_u8; bytes];
    getrandom::fill(&mut buffer)
        .map_err(|e| StoreError::Invalid(format!("no randomness for a token: {e}")))?;
    Ok(hex::encode(buffer))
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    read: AnyPool,
    write: AnyPool,
    dialect: Dialect,
    cipher: SecretCipher,
    /// SQLite only: group commit of run-state transitions.
    batcher: Option<batch::Batcher>,
    /// Counts committed writes; every subscriber (the live feed, log
    /// streams) sees each change.
    written: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    /// The ids of runs this process moved to a terminal state, as they
    /// commit (waiting parents hear of their children here first; ends
    /// written by other cores reach them through the event feed).
    ended: tokio::sync::broadcast::Sender<std::sync::Arc<str>>,
    /// The last write failed for want of space (cleared by the next write
    /// that lands), for `/api/health`.
    full: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// PostgreSQL only: where to listen for other cores' signals.
    url: Option<std::sync::Arc<str>>,
    /// What `/metrics` reports; moved by the writes as they commit.
    metrics: std::sync::Arc<CoreMetrics>,
    /// Where runs' spans go, once the core is told (`--otlp-endpoint`).
    tracer: std::sync::Arc<std::sync::OnceLock<RunTracer>>,
}

impl Store {
    /// Connects to `url` (`sqlite://PATH` or `postgres://...`), creating an
    /// SQLite file if needed, and applies migrations.
    pub async fn connect(url: &str, cipher: SecretCipher) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            return Err(StoreError::Invalid(format!(
                "unsupported database URL `{}`: use sqlite://PATH or postgres://...",
                redact_url(url)
            )));
        };
        let (read, write) = match dialect {
            Dialect::Sqlite => {
                let url =
                    if url.contains('?') { url.to_owned() } else { format!("{url}?mode=rwc") };
                let options = || {
                    // A file's connections do not go stale: no ping
                    // before each use.
                    AnyPoolOptions::new().test_before_acquire(false).after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the writer; NORMAL
                            // sync is durable across crashes of the process.
                            // Statement journals in memory: spilled to disk,
                            // each statement of a group commit would create
                            // and delete a temporary file. Pages read through
                            // a memory map: readers re-read whatever the
                            // writer changed, without a syscall a page.
                            sqlx::query(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                                 PRAGMA temp_store = MEMORY; PRAGMA mmap_size = 268435456;",
                            )
                            .execute(conn)
                            .await?;
                            Ok(())
                        })
                    })
                };
                let write = options().max_connections(1).connect(&url).await?;
                let read = options().max_connections(8).connect(&url).await?;
                (read, write)
            }
            Dialect::Postgres => {
                let pool = AnyPoolOptions::new().max_connections(16).connect(url).await?;
                (pool.clone(), pool)
            }
        };
        let mut store = Self {
            read,
            write,
            dialect,
            cipher,
            batcher: None,
            written: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
            ended: tokio::sync::broadcast::channel(1_024).0,
            full: std::sync::Arc::default(),
            url: (dialect == Dialect::Postgres).then(|| url.into()),
            metrics: std::sync::Arc::default(),
            tracer: std::sync::Arc::default(),
        };
        store.migrate().await?;
        if dialect == Dialect::Sqlite {
            store.batcher = Some(batch::Batcher::start(store.write.clone(), store.clone()));
        }
        Ok(store)
    }

    /// The default database: SQLite in `data_dir`.
    pub fn sqlite_url(data_dir: &Path) -> String {
        format!("sqlite://{}", data_dir.join("baton.db").display())
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut migrator = match self.dialect {
            Dialect::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Dialect::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        // Several cores may start at once against one PostgreSQL database;
        // sqlx takes an advisory lock there.
        migrator.set_locking(self.dialect == Dialect::Postgres);
        migrator.run(&self.write).await?;
        Ok(())
    }

    /// Runs `work` in a write transaction: on SQLite in the next group
    /// commit, on PostgreSQL in a transaction of its own.
    pub(crate) async fn write_transaction<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(
                Store,
                &'c mut sqlx::AnyConnection,
            ) -> batch::BoxFuture<'c, StoreResult<T>>
            + Send
            + 'static,
    {
        let began = std::time::Instant::now();
        let result = match &self.batcher {
            Some(batcher) => batcher.submit(work).await,
            None => {
                async {
                    let mut tx = self.write.begin().await?;
                    let result = work(self.clone(), &mut tx).await?;
                    tx.commit().await?;
                    Ok(result)
                }
                .await
            }
        };
        self.metrics.store_write.observe(began.elapsed().as_secs_f64());
        let result = self.note_write(result)?;
        self.written.send_modify(|count| *count = count.wrapping_add(1));
        Ok(result)
    }

    /// Remembers whether a write failed for want of space.
    pub(crate) fn note_write<T>(&self, result: StoreResult<T>) -> StoreResult<T> {
        use std::sync::atomic::Ordering;
        match &result {
            Ok(_) => self.full.store(false, Ordering::Relaxed),
            Err(e) if e.is_storage_full() => self.full.store(true, Ordering::Relaxed),
            Err(_) => {}
        }
        result
    }

    /// Whether the last write failed because the database is out of space.
    pub fn is_full(&self) -> bool {
        self.full.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The ids of runs this process ends from now on; a receiver that
    /// falls behind is told it lagged.
    pub fn run_ends(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<str>> {
        self.ended.subscribe()
    }

    /// Tells `run_ends` listeners that `transition` ended its run.
    /// Also says a line per run that starts or ends, as a worker would.
    pub(crate) fn note_transition(&self, transition: &Transition) {
        if transition.verdict != Verdict::Accepted {
            return;
        }
        let run = &transition.run;
        let seconds = |from: Timestamp, to: Timestamp| (to.0 - from.0).max(0) as f64 / 1000.0;
        if run.state == StateName::Pending
            && let Some(tracer) = self.tracer()
        {
            tracer.record(dispatch_span(run));
        }
        if run.state == StateName::Running {
            tracing::info!(run = %run.id, deployment = %run.deployment, attempt = run.attempt, "run started");
            let due = run.scheduled_at.max(run.created_at);
            self.metrics.run_start_delay.observe(seconds(due, run.state_changed_at));
        }
        if run.state.is_terminal() {
            let took = run.started_at.zip(run.ended_at);
            let took_ms = took.map(|(from, to)| to.0 - from.0);
            if let Some((from, to)) = took {
                self.metrics.run_duration.observe(seconds(from, to));
            }
            let labels = FinishedLabels {
                deployment: run.deployment.clone(),
                state: run.state.as_str().to_owned(),
            };
            self.metrics.runs_finished.get_or_create(&labels).inc();
            if let Some(tracer) = self.tracer() {
                tracer.record(run_span(run));
            }
            let message = run.state_message.as_deref().unwrap_or_default();
            tracing::info!(run = %run.id, deployment = %run.deployment, state = %run.state, took_ms, message, "run ended");
            // Nobody listening is fine.
            let _ = self.ended.send(run.id.as_str().into());
        }
    }

    /// What `/metrics` reports.
    pub fn metrics(&self) -> &CoreMetrics {
        &self.metrics
    }

    /// Sends runs' spans to `tracer` from now on (once per store).
    pub fn trace_to(&self, tracer: RunTracer) {
        if self.tracer.set(tracer).is_err() {
            tracing::warn!("the store's run tracer was set already");
        }
    }

    /// Where runs' spans go, if anywhere.
    pub(crate) fn tracer(&self) -> Option<&RunTracer> {
        self.tracer.get()
    }

    /// Changes after each committed write (new events or log lines may be
    /// waiting); each receiver sees it.
    pub fn writes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.written.subscribe()
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// Hides the password of a database URL in messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = url.get(scheme + 3..at).unwrap_or_default();
            let user = credentials.split(':').next().unwrap_or_default();
            format!(
                "{}{user}:***{}",
                url.get(..scheme + 3).unwrap_or_default(),
                url.get(at..).unwrap_or_default()
            )
        }
        _ => url.to_owned(),
    }
}

/// Who asks on behalf of a running execution (about its children, of
/// its task cache).
#[derive(Debug, Clone, Copy)]
pub enum Asker<'a> {
    /// The agent holding the execution, over its link.
    Agent(&'a str),
    /// The execution itself, proven by its key (a runner in a pod).
    Execution,
}

/// What an execution's questions need of the run it holds.
pub(crate) struct HeldExecution {
    pub(crate) deployment_id: String,
    pub(crate) subflow_depth: u32,
}

impl Store {
    /// Whether `presented` is the key of attempt `attempt` of run `run_id`
    /// (see [`crate::secrets::SecretCipher::execution_key`]).
    pub fn is_execution_key(&self, run_id: &str, attempt: u32, presented: &str) -> bool {
        self.cipher.is_execution_key(run_id, attempt, presented)
    }

    /// Run `run_id`, if `asker` holds attempt `attempt` of it: `PENDING` or
    /// `RUNNING` on that attempt (and that agent's). `PENDING` too, because
    /// the agent's start travels in its outbox, a question on a stream of
    /// its own, and either may arrive first. Else [`StoreError::Stale`].
    pub(crate) async fn held_execution(
        &self,
        asker: Asker<'_>,
        run_id: &str,
        attempt: u32,
    ) -> StoreResult<HeldExecution> {
        let row = sqlx::query(
            "SELECT state, attempt, agent_id, deployment_id, subflow_depth FROM flow_runs WHERE id = $1",
        )
        .bind(run_id)
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("run {run_id}")))?;
        let state: StateName = parsed_column(&row, "state")?;
        let current = as_u32(row.try_get("attempt")?);
        let holder: Option<String> = row.try_get("agent_id")?;
        let held = matches!(state, StateName::Pending | StateName::Running)
            && current == attempt
            && match asker {
                Asker::Agent(agent_id) => holder.as_deref() == Some(agent_id),
                Asker::Execution => true,
            };
        if !held {
            return Err(StoreError::Stale { run: run_id.to_owned(), attempt, current, state });
        }
        Ok(HeldExecution {
            deployment_id: row.try_get("deployment_id")?,
            subflow_depth: as_u32(row.try_get("subflow_depth")?),
        })
    }
}

/// The current time, as the store records it (exposed for tests).
#[doc(hidden)]
pub fn now_for_tests() -> Timestamp {
    now()
}

pub(crate) fn now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    Timestamp(i64::try_from(millis).unwrap_or(i64::MAX))
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Reads a JSON column.
pub(crate) fn json_column<T: serde::de::DeserializeOwned>(
    row: &AnyRow,
    column: &str,
) -> StoreResult<T> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
}

/// Reads a text column that holds a value with a `FromStr`.
pub(crate) fn parsed_column<T>(row: &AnyRow, column: &str) -> StoreResult<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let text: String = row.try_get(column)?;
    text.parse().map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
}

/// Refuses parameters an agent could not be sent (see
/// [`MAX_PARAMETERS_BYTES`]).
pub(crate) fn check_parameters_size(
    parameters: &serde_json::Map<String, serde_json::Value>,
) -> StoreResult<()> {
    check_size("parameters", parameters, MAX_PARAMETERS_BYTES)
}

/// Refuses job variables over [`MAX_JOB_VARIABLES_BYTES`].
pub(crate) fn check_job_variables_size(
    job_variables: &serde_json::Map<String, serde_json::Value>,
) -> StoreResult<()> {
    check_size("job variables", job_variables, MAX_JOB_VARIABLES_BYTES)
}

/// Refuses a base job template over [`MAX_JOB_TEMPLATE_BYTES`].
pub(crate) fn check_job_template_size(
    template: &serde_json::Map<String, serde_json::Value>,
) -> StoreResult<()> {
    check_size("the base job template", template, MAX_JOB_TEMPLATE_BYTES)
}

fn check_size(
    what: &str,
    value: &serde_json::Map<String, serde_json::Value>,
    limit: usize,
) -> StoreResult<()> {
    let size = to_json(value)?.len();
    if size > limit {
        return Err(StoreError::TooLarge(over_limit(what, size, limit)));
    }
    Ok(())
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Fails with `NotFound` when a statement touched no row.
pub(crate) fn found(rows_affected: u64, what: impl FnOnce() -> String) -> StoreResult<()> {
    if rows_affected == 0 { Err(StoreError::not_found(what())) } else { Ok(()) }
}

/// A count or limit stored as BIGINT.
pub(crate) fn as_u32(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_holding_states_in_sql_are_those_of_the_state_machine() {
        let holding: Vec<String> = baton_proto::v1::StateName::ALL
            .into_iter()
            .filter(|s| s.holds_slot())
            .map(|s| format!("'{s}'"))
            .collect();
        assert_eq!(holding_states!(), format!("({})", holding.join(", ")));
    }

    #[test]
    fn passwords_are_hidden_from_messages() {
        assert_eq!(
            redact_url("postgres://baton:hunter2@db:5432/baton"),
            "postgres://baton:***@db:5432/baton"
        );
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
