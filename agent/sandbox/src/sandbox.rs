//! The [`Sandbox`]: one wasmtime engine, its pooled instance slots, the
//! component caches, and the epoch ticker that interrupts runaway guests.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use baton_proto::v1::FlowInfo;
use baton_proto::v1::limits::{
    MAX_DESCRIPTION_BYTES, MAX_SCHEMA_BYTES, MAX_VERSION_BYTES, check_name, over_limit,
};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::WasiHttpCtx;
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use crate::bindings::{FlowComponent, FlowComponentPre};
use crate::cache::{ArtifactCache, Digest};
use crate::host::FlowHost;
use crate::http::HttpHooks;
use crate::limits::MemoryCap;
use crate::scratch::{Scratch, ScratchFilesystem, ScratchPool, ScratchView};

/// Core instances one run may hold: room for a Python component (14)
/// with some to spare. A slot's share of the pool is virtual memory until
/// used, so this costs little where runs are smaller.
const CORE_INSTANCES_PER_SLOT: u32 = 24;

/// How a [`Sandbox`] is set up.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where precompiled components are kept; `None` keeps them in memory
    /// only (each process compiles each component once).
    pub cache_dir: Option<PathBuf>,
    /// Bytes of precompiled components kept in `cache_dir`; past it the
    /// least recently used are evicted (from memory too).
    pub cache_max_bytes: u64,
    /// Instances that may be live at once; further runs wait for a slot.
    pub max_instances: u32,
    /// The largest memory cap any run may be given.
    pub max_memory_bytes: u64,
    /// The largest component accepted.
    pub max_component_bytes: usize,
    /// How often running guests are interrupted to check their deadline and
    /// cancellation; bounds how late a stop can be.
    pub epoch_tick: Duration,
    /// Where runs' scratch directories are made (`baton-scratch` in the
    /// system's temporary directory if `None`); those left by processes
    /// that are gone are removed when the sandbox starts.
    pub scratch_dir: Option<PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            cache_max_bytes: 2 << 30,
            max_instances: 1000,
            max_memory_bytes: baton_proto::v1::MAX_SANDBOX_MEMORY_MIB << 20,
            max_component_bytes: 64 << 20,
            epoch_tick: Duration::from_millis(5),
            scratch_dir: None,
        }
    }
}

/// The sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("configuring wasmtime: {0}")]
    Engine(String),
    #[error("opening the component cache at {path}: {source}")]
    Cache { path: PathBuf, source: std::io::Error },
}

/// Why bytes could not be loaded as a flow.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the component is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("not a WebAssembly file (it does not start with the `\\0asm` magic bytes)")]
    NotWasm,
    #[error(
        "a core WebAssembly module, not a component: build the flow with `baton flow build` (target wasm32-wasip2)"
    )]
    CoreModule,
    #[error("a truncated or corrupt WebAssembly component: {0}")]
    Corrupt(String),
    #[error("not a Baton flow: {0}")]
    NotAFlow(String),
}

/// A component compiled, checked to be a `baton:flow` flow, and linked:
/// instantiating it costs microseconds.
pub struct LoadedFlow {
    digest: Digest,
    pub(crate) pre: FlowComponentPre<RunState>,
}

impl LoadedFlow {
    /// The sha256 of the component's bytes.
    pub fn digest(&self) -> Digest {
        self.digest
    }
}

/// What a store holds during one call into a flow.
pub(crate) struct RunState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) cap: MemoryCap,
    pub(crate) host: FlowHost,
    pub(crate) http: WasiHttpCtx,
    pub(crate) http_hooks: HttpHooks,
    /// The run's scratch directory, given back when the store is dropped.
    pub(crate) scratch: Option<Scratch>,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for RunState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.http_hooks }
    }
}

/// Runs flows. One per process; cheap to share behind an `Arc`.
pub struct Sandbox {
    pub(crate) engine: Engine,
    linker: Linker<RunState>,
    artifacts: Option<ArtifactCache>,
    loaded: Mutex<HashMap<Digest, Arc<LoadedFlow>>>,
    /// Held while a component not yet loaded is read or compiled, so that
    /// concurrent loads of one component compile and cache it once
    /// (compiling already uses every core).
    cold_load: Mutex<()>,
    pub(crate) slots: Semaphore,
    pub(crate) max_memory_bytes: u64,
    pub(crate) scratch: Arc<ScratchPool>,
    max_component_bytes: usize,
    /// Instances the pool holds at most (its `slots` when none is taken).
    max_instances: usize,
    loads: LoadCounts,
    _ticker: EpochTicker,
}

/// How components were loaded, since the sandbox was made.
#[derive(Default)]
struct LoadCounts {
    in_memory: AtomicU64,
    from_disk: AtomicU64,
    compiled: AtomicU64,
}

/// What a sandbox holds and has done, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxStats {
    /// Flow instances alive now (runs and `describe` calls).
    pub live_instances: u64,
    /// Loads answered by a component already loaded...
    pub loaded_in_memory: u64,
    /// ...by a precompiled artifact on disk...
    pub loaded_from_disk: u64,
    /// ...and by compiling it.
    pub compiled: u64,
    /// Bytes of precompiled artifacts on disk.
    pub cache_bytes: u64,
}

impl Sandbox {
    /// Sets up the engine, its instance pool and the caches.
    pub fn new(config: &SandboxConfig) -> Result<Self, SandboxError> {
        let instances = config.max_instances.max(1);
        // `describe` runs under its own cap, whatever runs are allowed.
        let max_memory_bytes =
            config.max_memory_bytes.max(crate::run::DESCRIBE_LIMITS.memory_bytes);
        let mut pool = PoolingAllocationConfig::new();
        // A Rust component holds 3 core instances (the program, the WASI
        // adapter, shims), a Python one 14 (CPython, its libraries, the
        // adapters); each one memory and two tables. A slot holds either.
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(CORE_INSTANCES_PER_SLOT))
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(8))
            .total_stacks(instances)
            .max_core_instances_per_component(CORE_INSTANCES_PER_SLOT)
            .max_memories_per_component(4)
            .max_tables_per_component(16)
            .max_memory_size(usize::try_from(max_memory_bytes).unwrap_or(usize::MAX));
        let mut wasm = Config::new();
        wasm.epoch_interruption(true)
            .wasm_component_model(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(|e| SandboxError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        // The filesystem again, in front of the run's scratch quota.
        linker.allow_shadowing(true);
        wasmtime_wasi::p2::bindings::filesystem::types::add_to_linker::<_, ScratchFilesystem>(
            &mut linker,
            |state: &mut RunState| ScratchView {
                inner: WasiFilesystemCtxView {
                    ctx: state.wasi.filesystem(),
                    table: &mut state.table,
                },
                quota: state.scratch.as_ref().map(Scratch::quota),
            },
        )
        .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        linker.allow_shadowing(false);
        // Outgoing HTTP only (no incoming handler): each request passes
        // the run's grants (`http.rs`).
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        FlowComponent::add_to_linker::<_, HasSelf<FlowHost>>(
            &mut linker,
            |state: &mut RunState| &mut state.host,
        )
        .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;

        let artifacts = match &config.cache_dir {
            Some(dir) => Some(
                ArtifactCache::open(dir, &engine, config.cache_max_bytes)
                    .map_err(|source| SandboxError::Cache { path: dir.clone(), source })?,
            ),
            None => None,
        };
        let scratch_root = config
            .scratch_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("baton-scratch"));
        let scratch =
            Arc::new(ScratchPool::new(scratch_root, usize::try_from(instances).unwrap_or(1)));
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick)
            .map_err(|e| SandboxError::Engine(format!("starting the epoch thread: {e}")))?;
        Ok(Self {
            engine,
            linker,
            artifacts,
            loaded: Mutex::new(HashMap::new()),
            cold_load: Mutex::new(()),
            slots: Semaphore::new(usize::try_from(instances).unwrap_or(usize::MAX)),
            max_memory_bytes,
            scratch,
            max_component_bytes: config.max_component_bytes,
            max_instances: usize::try_from(instances).unwrap_or(usize::MAX),
            loads: LoadCounts::default(),
            _ticker: ticker,
        })
    }

    /// Loads a component: from memory if already loaded, else from the
    /// on-disk artifact cache, else by compiling it (and caching the result).
    pub fn load(&self, wasm: &[u8]) -> Result<Arc<LoadedFlow>, LoadError> {
        if wasm.len() > self.max_component_bytes {
            return Err(LoadError::TooLarge { size: wasm.len(), limit: self.max_component_bytes });
        }
        match wasm.get(..8) {
            Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => return Err(LoadError::CoreModule),
            Some([0, b'a', b's', b'm', ..]) => {}
            _ => return Err(LoadError::NotWasm),
        }
        let digest = Digest::of(wasm);
        if let Some(flow) = self.loaded_flow(&digest) {
            return Ok(flow);
        }
        let _cold = self.cold_load.lock().unwrap_or_else(PoisonError::into_inner);
        // Another load may have finished while this one waited.
        if let Some(flow) = self.loaded_flow(&digest) {
            return Ok(flow);
        }
        if let Some(component) = self.artifacts.as_ref().and_then(|a| a.load(&self.engine, &digest))
        {
            self.loads.from_disk.fetch_add(1, Ordering::Relaxed);
            return self.link(digest, &component);
        }
        self.loads.compiled.fetch_add(1, Ordering::Relaxed);
        let component =
            Component::new(&self.engine, wasm).map_err(|e| LoadError::Corrupt(one_line(&e)))?;
        // Linked before it is cached: what is not a flow leaves nothing on disk.
        let flow = self.link(digest, &component)?;
        if let Some(artifacts) = &self.artifacts {
            match artifacts.store(&digest, &component) {
                Ok(evicted) => {
                    let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
                    for digest in evicted {
                        loaded.remove(&digest);
                    }
                }
                // Not fatal: the next load compiles again.
                Err(error) => {
                    tracing::warn!(%digest, "could not cache the precompiled component: {error:#}");
                }
            }
        }
        Ok(flow)
    }

    /// Loads a component by digest from the on-disk cache alone.
    pub fn load_cached(&self, digest: &Digest) -> Option<Arc<LoadedFlow>> {
        if let Some(flow) = self.loaded_flow(digest) {
            return Some(flow);
        }
        let component = self.artifacts.as_ref()?.load(&self.engine, digest)?;
        self.loads.from_disk.fetch_add(1, Ordering::Relaxed);
        self.link(*digest, &component).ok()
    }

    /// What it holds and has done so far.
    pub fn stats(&self) -> SandboxStats {
        let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let free = self.slots.available_permits();
        SandboxStats {
            live_instances: u64::try_from(self.max_instances.saturating_sub(free)).unwrap_or(0),
            loaded_in_memory: count(&self.loads.in_memory),
            loaded_from_disk: count(&self.loads.from_disk),
            compiled: count(&self.loads.compiled),
            cache_bytes: self.artifacts.as_ref().map_or(0, ArtifactCache::bytes),
        }
    }

    /// Forgets the loaded form of a component (its on-disk artifact stays),
    /// for a component that is no longer deployed.
    pub fn evict(&self, digest: &Digest) {
        self.loaded.lock().unwrap_or_else(PoisonError::into_inner).remove(digest);
    }

    /// Forgets a component entirely, its on-disk artifact too: for one
    /// that was refused (say, its `describe` failed its checks).
    pub fn forget(&self, digest: &Digest) {
        self.evict(digest);
        if let Some(artifacts) = &self.artifacts {
            artifacts.remove(digest);
        }
    }

    /// Digests of every component this sandbox can load without its bytes.
    pub fn cached_digests(&self) -> Vec<Digest> {
        let mut digests = self.artifacts.as_ref().map(ArtifactCache::digests).unwrap_or_default();
        digests.extend(self.loaded.lock().unwrap_or_else(PoisonError::into_inner).keys().copied());
        digests.sort_unstable();
        digests.dedup();
        digests
    }

    fn loaded_flow(&self, digest: &Digest) -> Option<Arc<LoadedFlow>> {
        let flow = self.loaded.lock().unwrap_or_else(PoisonError::into_inner).get(digest).cloned();
        if flow.is_some() {
            self.loads.in_memory.fetch_add(1, Ordering::Relaxed);
        }
        flow
    }

    fn link(&self, digest: Digest, component: &Component) -> Result<Arc<LoadedFlow>, LoadError> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| LoadError::NotAFlow(one_line(&e)))?;
        let pre = FlowComponentPre::new(pre).map_err(|e| {
            LoadError::NotAFlow(format!(
                "it does not export `baton:flow/flow@0.1` ({})",
                one_line(&e)
            ))
        })?;
        let flow = Arc::new(LoadedFlow { digest, pre });
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(digest, Arc::clone(&flow));
        Ok(flow)
    }

    /// Calls the flow's `describe` under tight limits and checks what it
    /// says: a component whose `describe` fails or lies is not a flow.
    pub async fn describe(&self, flow: &LoadedFlow) -> Result<FlowInfo, LoadError> {
        let info = self.call_describe(flow).await?;
        check_name("its flow", &info.name).map_err(LoadError::NotAFlow)?;
        for (what, size, limit) in [
            ("its parameter schema", info.parameters.len(), MAX_SCHEMA_BYTES),
            ("its description", info.description.len(), MAX_DESCRIPTION_BYTES),
            ("its version", info.version.len(), MAX_VERSION_BYTES),
        ] {
            if size > limit {
                return Err(LoadError::NotAFlow(over_limit(what, size, limit)));
            }
        }
        let parameters: serde_json::Value = serde_json::from_str(&info.parameters)
            .map_err(|e| LoadError::NotAFlow(format!("its parameter schema is not JSON: {e}")))?;
        if !(parameters.is_object() || parameters.is_boolean()) {
            return Err(LoadError::NotAFlow(
                "its parameter schema is not a JSON schema (an object)".to_owned(),
            ));
        }
        Ok(FlowInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            parameters,
        })
    }
}

/// The first line of an error chain, joined: for messages a person reads.
pub(crate) fn one_line(error: &wasmtime::Error) -> String {
    let text = format!("{error:#}");
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Increments the engine's epoch every tick until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread =
            std::thread::Builder::new().name("baton-epoch".to_owned()).spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })?;
        Ok(Self { stop, thread: Some(thread) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
