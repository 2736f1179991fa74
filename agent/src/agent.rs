//! The [`Agent`]: its identity, its sandbox, and the loop that keeps it
//! connected to the core, reconnecting with backoff while its runs go on.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use baton_proto::v1::link::io::{IoError, read_frame, write_frame};
use baton_proto::v1::link::{AgentToken, CoreMessage, Hello, MAX_FRAME_BYTES, SERVER_NAME};
use baton_sandbox::{CancellationToken, Sandbox, SandboxConfig, SandboxError};
use baton_telemetry::RunTracer;
use quinn::{Endpoint, EndpointConfig, TokioRuntime, VarInt};
use socket2::{Domain, Protocol, Socket, Type};

use crate::backend::Backend;
use crate::backend::container::Container;
use crate::backend::kubernetes::Kubernetes;
use crate::backend::process::Process;
use crate::backend::wasm::Wasm;
use crate::cores::{Core, CoreAddresses};
use crate::fetch::LoadTurns;
use crate::metrics::{self, AgentMetrics};
use crate::outbox::Outbox;
use crate::runner::Staging;
use crate::runs::Runs;
use crate::session;
use crate::tls::{self, FingerprintMismatch, PinnedCaVerifier, TlsError};

/// UDP socket buffers: with the defaults a burst of a few MiB loses
/// hundreds of packets on loopback (TOOLCHAIN.md).
const UDP_BUFFER_BYTES: usize = 4 << 20;
/// How long the core may take to answer the agent's `Hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one core may take to accept a connection before the next one
/// is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// First wait before reconnecting; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a stopping agent waits for its cancelled runs to end and their
/// last events to be acknowledged.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(2);
/// The file in the data directory that keeps the agent's id.
const AGENT_ID_FILE: &str = "agent-id";
/// The directory in the data directory of compiled components.
const CACHE_DIR: &str = "cache";
/// The directory in the data directory of components staged for runners.
const COMPONENTS_DIR: &str = "components";
/// The directory in the data directory of in-process runs' scratch
/// directories.
const SCRATCH_DIR: &str = "scratch";

/// Disk kept for compiled components unless configured otherwise.
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 2 << 30;

/// How an agent is set up.
#[derive(Clone)]
pub struct AgentConfig {
    /// The cores' QUIC addresses: the agent connects to one, and to the
    /// next when it is lost.
    pub cores: CoreAddresses,
    /// From `baton agent token create`: how the agent trusts the core and
    /// the core trusts the agent.
    pub token: AgentToken,
    /// The work pool it takes runs from.
    pub pool: String,
    /// Queues of the pool; empty means all.
    pub queues: Vec<String>,
    /// Runs it runs at once.
    pub slots: u32,
    /// Where it keeps its id and its compiled components.
    pub data_dir: PathBuf,
    /// Bytes of compiled components kept in `data_dir`; past it the least
    /// recently used are evicted (and fetched again when next needed).
    pub cache_max_bytes: u64,
    /// A name for people.
    pub name: String,
    /// What the backends other than the sandbox need.
    pub backends: BackendConfig,
    /// Where to serve `GET /metrics` (Prometheus text), if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Where runs' spans go (OTLP over HTTP), if anywhere.
    pub otlp_endpoint: Option<String>,
}

/// What the backends other than the sandbox need; without it their pools'
/// runs end `CRASHED`, saying what is missing.
#[derive(Debug, Clone, Default)]
pub struct BackendConfig {
    /// The `baton` binary whose hidden `flow exec` runs a process pool's
    /// run in a child process.
    pub runner: Option<PathBuf>,
    /// The container engine's Docker API address (`unix:///PATH`,
    /// `tcp://HOST:PORT`); `None`: `DOCKER_HOST`, else the usual sockets.
    pub docker_host: Option<String>,
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the token's secret.
        f.debug_struct("AgentConfig")
            .field("cores", &self.cores.to_string())
            .field("token_id", &self.token.id)
            .field("pool", &self.pool)
            .field("queues", &self.queues)
            .field("slots", &self.slots)
            .field("data_dir", &self.data_dir)
            .field("name", &self.name)
            .field("backends", &self.backends)
            .field("metrics", &self.metrics)
            .field("otlp_endpoint", &self.otlp_endpoint)
            .finish()
    }
}

/// Why an agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("reading or writing the agent id at {path}: {source}")]
    AgentId { path: PathBuf, source: std::io::Error },
    #[error("the agent id at {path} is not a UUID ({reason}): delete the file to get a new id")]
    BadAgentId { path: PathBuf, reason: String },
    #[error("setting up the sandbox: {0}")]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("opening a UDP socket to reach the cores: {0}")]
    Socket(std::io::Error),
    #[error("connecting to the core at {cores}: {mismatch}")]
    Fingerprint { cores: CoreAddresses, mismatch: FingerprintMismatch },
    #[error("connecting to the core at {cores}: {source}")]
    Connect { cores: CoreAddresses, source: LinkError },
    #[error("the core refused this agent: {0}")]
    Refused(String),
    #[error("serving the metrics on {address}: {source}")]
    Metrics { address: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Traces(#[from] baton_telemetry::TraceSetupError),
}

/// Why a connection to the core failed or ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Dial(#[from] quinn::ConnectError),
    #[error(transparent)]
    Connection(#[from] quinn::ConnectionError),
    #[error("on the control stream: {0}")]
    Frame(#[from] IoError),
    #[error("the core did not answer within {0:?}")]
    NoAnswer(Duration),
    #[error("the core closed the control stream without answering")]
    NoWelcome,
    #[error("the core answered the hello with a `{0}` message")]
    Unexpected(&'static str),
    #[error("no address of {0} resolves")]
    Unresolved(CoreAddresses),
}

/// A running agent. Dropping it stops it, as [`Agent::stop`] does.
#[derive(Debug)]
pub struct Agent {
    id: String,
    stop: CancellationToken,
    done: CancellationToken,
}

impl Agent {
    /// Sets the agent up and connects to the core; returns once the core
    /// has welcomed it. Fails if the first connection fails (wrong address,
    /// a certificate that does not match the token, a refused token); later
    /// ones are retried for as long as the agent runs.
    pub async fn start(config: AgentConfig) -> Result<Agent, AgentError> {
        let id = load_or_create_id(&config.data_dir)?;
        let metrics_listener = match config.metrics {
            Some(address) => Some(
                tokio::net::TcpListener::bind(address)
                    .await
                    .map_err(|source| AgentError::Metrics { address, source })?,
            ),
            None => None,
        };
        let tracer = match &config.otlp_endpoint {
            Some(endpoint) => RunTracer::otlp(endpoint, "baton-agent")?,
            None => RunTracer::default(),
        };
        let cache = config.data_dir.join(CACHE_DIR);
        let sandbox = Sandbox::new(&SandboxConfig {
            cache_dir: Some(cache.clone()),
            cache_max_bytes: config.cache_max_bytes,
            max_instances: config.slots.max(1),
            scratch_dir: Some(config.data_dir.join(SCRATCH_DIR)),
            ..SandboxConfig::default()
        })?;
        let verifier = Arc::new(PinnedCaVerifier::new(&config.token.fingerprint));
        let client = tls::quic_client_config(Arc::clone(&verifier))?;
        let cores = config.cores.clone();
        let endpoint = client_endpoint().map_err(AgentError::Socket)?;
        let sandbox = Arc::new(sandbox);
        let staging = Arc::new(Staging {
            sandbox: Arc::clone(&sandbox),
            components: config.data_dir.join(COMPONENTS_DIR),
            cache,
        });
        let shared = Arc::new(Shared {
            agent_id: id.clone(),
            runs: Runs::new(config.slots),
            wasm: Wasm::new(Arc::clone(&sandbox)),
            process: Process::new(Arc::clone(&staging), config.backends.runner.clone()),
            container: Container::new(staging, id.clone(), config.backends.docker_host.as_deref()),
            kubernetes: Kubernetes::new(id.clone()),
            config,
            sandbox,
            outbox: Arc::new(Outbox::default()),
            load_turns: LoadTurns::default(),
            prepared: Mutex::default(),
            connection: Mutex::new(None),
            stop: CancellationToken::new(),
            welcomed: AtomicBool::new(false),
            lease: Mutex::new((Instant::now(), Duration::ZERO)),
            metrics: AgentMetrics::default(),
            tracer,
        });
        let dialer = Dialer { endpoint, client, verifier, next: AtomicUsize::new(0) };
        let link = match dialer.connect(&shared).await {
            Ok(Answer::Welcome(link)) => link,
            Ok(Answer::Refused(reason)) => return Err(AgentError::Refused(reason)),
            Err(source) => {
                return Err(match dialer.verifier.take_mismatch() {
                    Some(mismatch) => AgentError::Fingerprint { cores, mismatch },
                    None => AgentError::Connect { cores, source },
                });
            }
        };
        tracing::info!(agent_id = %id, core = %link.core, "connected to the core");
        let done = CancellationToken::new();
        let stop = shared.stop.clone();
        tokio::spawn(watch_lease(Arc::clone(&shared)));
        tokio::spawn(reap(Arc::clone(&shared)));
        if let Some(listener) = metrics_listener {
            tokio::spawn(metrics::serve(listener, Arc::clone(&shared), stop.clone()));
        }
        tokio::spawn(keep_connected(shared, dialer, link, done.clone()));
        Ok(Agent { id, stop, done })
    }

    /// The agent's id, kept in its data directory across restarts.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stops the agent: cancels its runs, tells the core how they ended if
    /// it can within a grace period, and closes the connection. Returns at
    /// once; [`Agent::wait`] waits for the end.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Waits until the agent has stopped.
    pub async fn wait(&self) {
        self.done.cancelled().await;
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What the agent's tasks share.
pub(crate) struct Shared {
    pub(crate) agent_id: String,
    pub(crate) config: AgentConfig,
    pub(crate) sandbox: Arc<Sandbox>,
    /// The backends: in the sandbox, in a child process, in a container,
    /// in a Kubernetes Job.
    pub(crate) wasm: Wasm,
    pub(crate) process: Process,
    pub(crate) container: Container,
    pub(crate) kubernetes: Kubernetes,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) runs: Runs,
    pub(crate) load_turns: LoadTurns,
    /// Components compiled at the core's word, for the next heartbeat.
    prepared: Mutex<Vec<String>>,
    /// The connection to the core while there is one (component fetches
    /// use it).
    connection: Mutex<Option<quinn::Connection>>,
    /// Cancelled when the agent stops; every run's token is a child of it.
    pub(crate) stop: CancellationToken,
    /// Whether a core has welcomed this process yet (a hello before that
    /// tells the core the runs it remembers for this agent id are lost).
    welcomed: AtomicBool,
    /// When the core was last heard from, and for how long after that the
    /// agent's runs are still its to report (the core's crash window).
    pub(crate) lease: Mutex<(Instant, Duration)>,
    pub(crate) metrics: AgentMetrics,
    /// Where runs' spans go.
    pub(crate) tracer: RunTracer,
}

impl Shared {
    /// Every backend, for what concerns them all.
    fn backends(&self) -> [&dyn Backend; 4] {
        [&self.wasm, &self.process, &self.container, &self.kubernetes]
    }

    /// `artifact` is compiled: the next heartbeat tells the core.
    pub(crate) fn add_prepared(&self, artifact: String) {
        self.prepared.lock().unwrap_or_else(PoisonError::into_inner).push(artifact);
    }

    /// What was compiled since the last heartbeat.
    pub(crate) fn take_prepared(&self) -> Vec<String> {
        std::mem::take(&mut *self.prepared.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn connection(&self) -> Option<quinn::Connection> {
        self.connection.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn set_connection(&self, connection: Option<quinn::Connection>) {
        *self.connection.lock().unwrap_or_else(PoisonError::into_inner) = connection;
    }

    /// The core said something: the agent's lease runs from now.
    pub(crate) fn heard_core(&self) {
        self.lease.lock().unwrap_or_else(PoisonError::into_inner).0 = Instant::now();
    }

    /// How long since the core last said anything; `None` for a core that
    /// gave no lease (it need not answer heartbeats).
    pub(crate) fn core_silent_for(&self) -> Option<Duration> {
        let (heard, lease) = *self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        (!lease.is_zero()).then(|| heard.elapsed())
    }

    /// Whether the core has been silent longer than the lease (none: never).
    fn lease_lost(&self) -> Option<Duration> {
        let (heard, lease) = *self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        (!lease.is_zero() && heard.elapsed() > lease).then_some(lease)
    }

    fn hello(&self, core: &Core) -> Hello {
        Hello {
            core_address: core.name.clone(),
            token: self.config.token.to_string(),
            agent_id: self.agent_id.clone(),
            name: self.config.name.clone(),
            pool: self.config.pool.clone(),
            queues: self.config.queues.clone(),
            slots: self.config.slots,
            cached: self.sandbox.cached_digests().iter().map(|d| format!("sha256:{d}")).collect(),
            running: self.runs.running(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            new_process: !self.welcomed.load(Ordering::SeqCst),
        }
    }
}

/// How often backends remove what dead executions left behind.
const REAP_EVERY: Duration = Duration::from_secs(60);

/// Has each backend remove what executions not running here left behind:
/// at once (an agent killed mid-run left them), then every [`REAP_EVERY`].
async fn reap(shared: Arc<Shared>) {
    loop {
        let running = shared.runs.running();
        for backend in shared.backends() {
            backend.reap(&running).await;
        }
        tokio::select! {
            () = tokio::time::sleep(REAP_EVERY) => {}
            () = shared.stop.cancelled() => return,
        }
    }
}

/// How often the agent looks at its lease.
const LEASE_CHECK: Duration = Duration::from_millis(250);

/// Stops the agent's runs whenever the core has been silent longer than the
/// lease: by then the core counts them lost and may have given them to
/// other agents, so a copy running on here could only run them twice.
async fn watch_lease(shared: Arc<Shared>) {
    let mut ticker = tokio::time::interval(LEASE_CHECK);
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Some(lease) = shared.lease_lost() {
            let lost = shared.runs.lose_all();
            if lost > 0 {
                tracing::warn!(
                    lost,
                    "no word from the core for over {lease:?}: stopping the runs it no longer counts as ours"
                );
            }
        }
    }
}

/// A connection the core has welcomed the agent on.
pub(crate) struct Link {
    /// The core's address, for people.
    pub(crate) core: String,
    pub(crate) connection: quinn::Connection,
    pub(crate) send: quinn::SendStream,
    pub(crate) recv: quinn::RecvStream,
    /// Events up to this one were applied by the core.
    pub(crate) acked_seq: u64,
    /// How often the core expects a heartbeat.
    pub(crate) heartbeat: Duration,
}

enum Answer {
    Welcome(Link),
    Refused(String),
}

/// Dials the cores.
struct Dialer {
    endpoint: Endpoint,
    client: quinn::ClientConfig,
    verifier: Arc<PinnedCaVerifier>,
    /// Where in the list of the cores' addresses the next dial begins.
    next: AtomicUsize,
}

impl Dialer {
    /// Connects to the first of the cores that answers, beginning with the
    /// one after the last lost; says hello and reads its answer.
    async fn connect(&self, shared: &Shared) -> Result<Answer, LinkError> {
        let cores = shared.config.cores.resolve().await;
        let count = cores.len();
        let start = self.next.load(Ordering::SeqCst);
        let mut failed = LinkError::Unresolved(shared.config.cores.clone());
        for offset in 0..count {
            let index = (start + offset) % count;
            let Some(core) = cores.get(index) else { continue };
            let answered = tokio::time::timeout(CONNECT_TIMEOUT, self.connect_to(shared, core))
                .await
                .unwrap_or(Err(LinkError::NoAnswer(CONNECT_TIMEOUT)));
            match answered {
                Ok(answer) => {
                    self.next.store(index, Ordering::SeqCst);
                    return Ok(answer);
                }
                Err(error) => {
                    if count > 1 {
                        tracing::warn!(core = %core.name, "could not connect: {error}; trying the next core");
                    }
                    failed = error;
                }
            }
        }
        Err(failed)
    }

    /// The connection to the current core is lost: the next dial begins
    /// with the core after it.
    fn lost(&self) {
        self.next.fetch_add(1, Ordering::SeqCst);
    }

    async fn connect_to(&self, shared: &Shared, core: &Core) -> Result<Answer, LinkError> {
        let connection =
            self.endpoint.connect_with(self.client.clone(), core.address, SERVER_NAME)?.await?;
        let (mut send, mut recv) = connection.open_bi().await?;
        write_frame(&mut send, &shared.hello(core)).await?;
        let answer = tokio::time::timeout(
            HELLO_TIMEOUT,
            read_frame::<CoreMessage, _>(&mut recv, MAX_FRAME_BYTES),
        )
        .await
        .map_err(|_| LinkError::NoAnswer(HELLO_TIMEOUT))??;
        match answer {
            Some(CoreMessage::Welcome { acked_seq, heartbeat_ms, lease_ms }) => {
                shared.welcomed.store(true, Ordering::SeqCst);
                *shared.lease.lock().unwrap_or_else(PoisonError::into_inner) =
                    (Instant::now(), Duration::from_millis(lease_ms));
                Ok(Answer::Welcome(Link {
                    core: core.name.clone(),
                    connection,
                    send,
                    recv,
                    acked_seq,
                    heartbeat: Duration::from_millis(heartbeat_ms.clamp(100, 60_000)),
                }))
            }
            Some(CoreMessage::Refused { reason }) => {
                connection.close(VarInt::from_u32(0), b"refused");
                Ok(Answer::Refused(reason))
            }
            Some(other) => {
                connection.close(VarInt::from_u32(1), b"expected welcome or refused");
                Err(LinkError::Unexpected(session::kind(&other)))
            }
            None => Err(LinkError::NoWelcome),
        }
    }
}

/// Runs the connection `first` until it drops, then reconnects with
/// backoff, until the agent stops.
async fn keep_connected(shared: Arc<Shared>, dialer: Dialer, first: Link, done: CancellationToken) {
    let mut next = Some(first);
    let mut backoff = MIN_BACKOFF;
    loop {
        let link = match next.take() {
            Some(link) => link,
            None => {
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shared.stop.cancelled() => break,
                }
                backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
                let answer = tokio::select! {
                    answer = dialer.connect(&shared) => answer,
                    () = shared.stop.cancelled() => break,
                };
                match answer {
                    Ok(Answer::Welcome(link)) => {
                        tracing::info!(core = %link.core, "reconnected to a core");
                        link
                    }
                    Ok(Answer::Refused(reason)) => {
                        tracing::warn!(cores = %shared.config.cores, %reason, "the core refused this agent; retrying");
                        continue;
                    }
                    Err(error) => {
                        match dialer.verifier.take_mismatch() {
                            Some(mismatch) => {
                                tracing::warn!(cores = %shared.config.cores, "reconnecting: {mismatch}")
                            }
                            None => {
                                tracing::warn!(cores = %shared.config.cores, "reconnecting: {error}")
                            }
                        }
                        continue;
                    }
                }
            }
        };
        backoff = MIN_BACKOFF;
        session::run(&shared, link).await;
        if shared.stop.is_cancelled() {
            break;
        }
        dialer.lost();
    }
    // The runs were cancelled with the agent; give them a moment to end.
    let _ = tokio::time::timeout(STOP_GRACE, shared.runs.all_ended()).await;
    dialer.endpoint.close(VarInt::from_u32(0), b"agent stopped");
    let _ = tokio::time::timeout(Duration::from_secs(1), dialer.endpoint.wait_idle()).await;
    tracing::info!(agent_id = %shared.agent_id, "agent stopped");
    done.cancel();
}

/// A UDP endpoint with large socket buffers that reaches cores of either
/// address family (IPv6 with IPv4 mapped; IPv4 alone where there is no
/// IPv6).
fn client_endpoint() -> std::io::Result<Endpoint> {
    let bound = |domain: Domain, bind: SocketAddr| -> std::io::Result<Socket> {
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        if domain == Domain::IPV6 {
            socket.set_only_v6(false)?;
        }
        if let Err(error) = socket.set_recv_buffer_size(UDP_BUFFER_BYTES) {
            tracing::warn!("could not enlarge the UDP receive buffer: {error}");
        }
        if let Err(error) = socket.set_send_buffer_size(UDP_BUFFER_BYTES) {
            tracing::warn!("could not enlarge the UDP send buffer: {error}");
        }
        socket.bind(&bind.into())?;
        socket.set_nonblocking(true)?;
        Ok(socket)
    };
    let socket = bound(Domain::IPV6, (Ipv6Addr::UNSPECIFIED, 0).into())
        .or_else(|_| bound(Domain::IPV4, (Ipv4Addr::UNSPECIFIED, 0).into()))?;
    Endpoint::new(EndpointConfig::default(), None, socket.into(), Arc::new(TokioRuntime))
}

/// Reads the agent's id from the data directory, or creates one (a UUID v7)
/// and keeps it there.
fn load_or_create_id(data_dir: &Path) -> Result<String, AgentError> {
    let path = data_dir.join(AGENT_ID_FILE);
    let io_error = |source| AgentError::AgentId { path: path.clone(), source };
    match std::fs::read_to_string(&path) {
        Ok(text) => uuid::Uuid::parse_str(text.trim())
            .map(|id| id.to_string())
            .map_err(|e| AgentError::BadAgentId { path: path.clone(), reason: e.to_string() }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(io_error)?;
            let id = uuid::Uuid::now_v7().to_string();
            // Written whole or not at all, so a crash cannot leave half an id.
            let partial = data_dir.join(format!("{AGENT_ID_FILE}.partial"));
            std::fs::write(&partial, format!("{id}\n")).map_err(io_error)?;
            std::fs::rename(&partial, &path).map_err(io_error)?;
            Ok(id)
        }
        Err(error) => Err(io_error(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_id_is_created_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("baton-agent-id-{}", uuid::Uuid::now_v7()));
        let id = load_or_create_id(&dir).unwrap();
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
        assert_eq!(load_or_create_id(&dir).unwrap(), id);
        std::fs::write(dir.join(AGENT_ID_FILE), "not a uuid").unwrap();
        let error = load_or_create_id(&dir).unwrap_err().to_string();
        assert!(error.contains("is not a UUID"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
