//! Push dispatch: the agents connected to this core, the loop that hands
//! them due runs, the leases that tell other cores this one holds them, and
//! the watchdog that ends the runs of agents no core has heard from.
//!
//! The store decides (a run is pushed only once its `PENDING` is accepted,
//! under the deployment's limit, as the run's next attempt); this module
//! only chooses agents, and keeps pool and queue limits and pauses.
//!
//! Several cores may share one database. Each renews, in one write every
//! heartbeat, the lease of every agent session it holds (until the agent's
//! last heartbeat plus the crash window). A core judges a run lost only if
//! its agent is connected here and lacks it, or if no core holds a lease on
//! its agent; and only once its own writes have gone through for a whole
//! crash window, so a database stall never looks like dead agents.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use baton_proto::v1::limits::over_limit;
use baton_proto::v1::link::{CoreMessage, Execution, MAX_FRAME_BYTES, body_size};
use baton_proto::v1::{PoolKind, ProposeState, StateName, Timestamp, Transition, Verdict};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::store::{AgentLease, DueRun, HeldRun, Signal, Store, StoreError, now};

/// How dispatch and crash detection behave.
#[derive(Debug, Clone, Copy)]
pub struct DispatchConfig {
    /// How often agents send heartbeats.
    pub heartbeat: Duration,
    /// An agent not heard from this long is gone: its runs are `CRASHED`.
    pub crash_after: Duration,
    /// Due runs are looked for at least this often (and at once whenever
    /// a run is created or a slot frees).
    pub tick: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(2),
            crash_after: Duration::from_secs(10),
            tick: Duration::from_millis(500),
        }
    }
}

/// A connected agent as the dispatcher sees it.
struct Connected {
    /// Tells sessions of one agent apart after a reconnect.
    session: u64,
    /// The session's name in the agent's lease.
    lease_session: String,
    pool: String,
    queues: Vec<String>,
    slots: u32,
    /// Its runs and their attempts (0: chosen, not yet pushed).
    running: HashMap<String, u32>,
    cached: HashSet<String>,
    last_heard: Instant,
    /// `last_heard` on the wall clock, which leases are written in.
    last_heard_at: Timestamp,
    /// The last of its events applied.
    acked_seq: u64,
    sender: mpsc::UnboundedSender<CoreMessage>,
    /// Ends the session (and closes its connection).
    close: CancellationToken,
    /// Cancellations sent, and when: sent again after a while, never in a
    /// storm.
    cancels_sent: HashMap<Execution, Instant>,
}

impl Connected {
    fn free(&self) -> u32 {
        self.slots.saturating_sub(u32::try_from(self.running.len()).unwrap_or(u32::MAX))
    }

    fn takes(&self, queue: &str) -> bool {
        self.queues.is_empty() || self.queues.iter().any(|q| q == queue)
    }
}

/// What a session tells the dispatcher when its agent says hello.
pub struct AgentSession {
    pub agent_id: String,
    /// The session's name in the agent's lease.
    pub lease_session: String,
    pub pool: String,
    pub queues: Vec<String>,
    pub slots: u32,
    pub cached: Vec<String>,
    pub running: Vec<Execution>,
    pub acked_seq: u64,
    pub sender: mpsc::UnboundedSender<CoreMessage>,
    pub close: CancellationToken,
}

#[derive(Default)]
struct Agents {
    connected: HashMap<String, Connected>,
    next_session: u64,
}

struct Inner {
    store: Store,
    config: DispatchConfig,
    /// This core's name in the leases it holds.
    core_id: String,
    agents: Mutex<Agents>,
    wake: Notify,
    /// Since when every lease renewal of this core has gone through
    /// promptly (`None` while the store fails or stalls): judging agents
    /// by their leases waits a crash window after that, so that every core
    /// has had time to renew.
    store_ok_since: Mutex<Option<Instant>>,
}

/// How often the dispatcher reads when the next waiting run falls due.
const NEXT_DUE_EVERY: Duration = Duration::from_millis(100);
/// How often cancellations taken by any core are looked for, besides when
/// a signal says so (a fallback for signals lost while reconnecting).
const COMMANDS_EVERY: Duration = Duration::from_millis(500);
/// A cancellation not yet confirmed is sent again after this long.
const CANCEL_AGAIN_AFTER: Duration = Duration::from_secs(2);

/// The dispatcher's handle; clones share it.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

impl Dispatcher {
    pub fn new(store: Store, config: DispatchConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                config,
                core_id: crate::store::new_id(),
                agents: Mutex::new(Agents::default()),
                wake: Notify::new(),
                store_ok_since: Mutex::new(Some(Instant::now())),
            }),
        }
    }

    pub fn config(&self) -> DispatchConfig {
        self.inner.config
    }

    /// This core's name in the agent leases it holds.
    pub fn core_id(&self) -> &str {
        &self.inner.core_id
    }

    fn agents(&self) -> std::sync::MutexGuard<'_, Agents> {
        self.inner.agents.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Looks for due runs now.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// The lease a new session of an agent starts with.
    pub fn new_lease(&self, agent_id: &str, acked_seq: u64) -> AgentLease {
        AgentLease {
            agent_id: agent_id.to_owned(),
            session: crate::store::new_id(),
            until: self.lease_end(now()),
            acked_seq,
        }
    }

    /// Where a lease ends for an agent last heard at `heard_at`: the crash
    /// window, plus one renewal interval so that a lease renewed on time
    /// never lapses between renewals.
    fn lease_end(&self, heard_at: Timestamp) -> Timestamp {
        let config = self.inner.config;
        let window = config.crash_after.saturating_add(config.heartbeat);
        let window = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        Timestamp(heard_at.0.saturating_add(window))
    }

    /// Adds an agent that said hello; returns its session number. A
    /// previous session of the same agent is replaced and closed.
    pub fn connect(&self, hello: AgentSession) -> u64 {
        let mut agents = self.agents();
        agents.next_session += 1;
        let session = agents.next_session;
        let replaced = agents.connected.insert(
            hello.agent_id,
            Connected {
                session,
                lease_session: hello.lease_session,
                pool: hello.pool,
                queues: hello.queues,
                slots: hello.slots,
                running: hello.running.into_iter().map(|e| (e.run_id, e.attempt)).collect(),
                cached: hello.cached.into_iter().collect(),
                last_heard: Instant::now(),
                last_heard_at: now(),
                acked_seq: hello.acked_seq,
                sender: hello.sender,
                close: hello.close,
                cancels_sent: HashMap::new(),
            },
        );
        drop(agents);
        if let Some(old) = replaced {
            old.close.cancel();
        }
        self.wake();
        session
    }

    /// Removes a session's agent (unless a newer session replaced it);
    /// returns the lease to write as the session's last.
    pub fn disconnect(&self, agent_id: &str, session: u64) -> Option<AgentLease> {
        let mut agents = self.agents();
        if agents.connected.get(agent_id).is_none_or(|a| a.session != session) {
            return None;
        }
        let agent = agents.connected.remove(agent_id)?;
        drop(agents);
        Some(self.last_lease(agent_id, agent))
    }

    /// The lease to write as a removed session's last.
    fn last_lease(&self, agent_id: &str, agent: Connected) -> AgentLease {
        AgentLease {
            agent_id: agent_id.to_owned(),
            session: agent.lease_session,
            until: self.lease_end(agent.last_heard_at),
            acked_seq: agent.acked_seq,
        }
    }

    /// Something arrived from the agent: it is alive. Kept off the
    /// database path, so a slow store never makes a live agent look dead.
    pub fn heard(&self, agent_id: &str) {
        if let Some(agent) = self.agents().connected.get_mut(agent_id) {
            agent.last_heard = Instant::now();
            agent.last_heard_at = now();
        }
    }

    /// A heartbeat whose earlier events are all applied: `running` is what
    /// the agent runs now.
    pub fn heartbeat(&self, agent_id: &str, running: Vec<Execution>) {
        if let Some(agent) = self.agents().connected.get_mut(agent_id) {
            agent.running = running.into_iter().map(|e| (e.run_id, e.attempt)).collect();
        }
    }

    /// The agent's events up to `seq` are applied.
    pub fn acked(&self, agent_id: &str, seq: u64) {
        if let Some(agent) = self.agents().connected.get_mut(agent_id) {
            agent.acked_seq = agent.acked_seq.max(seq);
        }
    }

    /// Attempt `attempt` of `run_id` on `agent_id` ended (or was handed
    /// back): its slot is free.
    pub fn finished(&self, agent_id: &str, run_id: &str, attempt: u32) {
        if let Some(agent) = self.agents().connected.get_mut(agent_id)
            && agent.running.get(run_id).is_some_and(|a| *a == attempt || *a == 0)
        {
            agent.running.remove(run_id);
        }
        self.wake();
    }

    /// How many agents are connected here, by pool.
    pub fn connected_per_pool(&self) -> HashMap<String, i64> {
        let mut pools = HashMap::new();
        for agent in self.agents().connected.values() {
            *pools.entry(agent.pool.clone()).or_default() += 1;
        }
        pools
    }

    /// Sends `message` to a connected agent; `false` if it is not here.
    fn send(&self, agent_id: &str, message: CoreMessage) -> bool {
        self.agents()
            .connected
            .get(agent_id)
            .is_some_and(|agent| agent.sender.send(message).is_ok())
    }

    /// Tells the agent running `execution` to stop it: it no longer holds
    /// its run.
    pub fn stop(&self, agent_id: &str, execution: Execution, reason: String) -> bool {
        tracing::info!(agent = %agent_id, run = %execution.run_id, attempt = execution.attempt, %reason, "stopping a stale execution");
        let Execution { run_id, attempt } = execution;
        self.send(agent_id, CoreMessage::Stop { run_id, attempt, reason })
    }

    /// Tells the agent running `execution` to cancel it (once in a while
    /// until it confirms); `false` if that agent is not connected here.
    fn cancel(&self, agent_id: &str, execution: &Execution) -> bool {
        let mut agents = self.agents();
        let Some(agent) = agents.connected.get_mut(agent_id) else { return false };
        agent.cancels_sent.retain(|_, at| at.elapsed() < CANCEL_AGAIN_AFTER);
        if agent.cancels_sent.contains_key(execution) {
            return true;
        }
        agent.cancels_sent.insert(execution.clone(), Instant::now());
        let message =
            CoreMessage::Cancel { run_id: execution.run_id.clone(), attempt: execution.attempt };
        agent.sender.send(message).is_ok()
    }

    /// Asks the connected agents of `pool` that lack `artifact` to compile
    /// it now (for a backend of `kind`); returns how many were asked.
    pub fn prepare(&self, pool: &str, artifact: &str, kind: PoolKind) -> usize {
        let agents = self.agents();
        let mut asked = 0;
        for (agent_id, agent) in &agents.connected {
            if agent.pool != pool || agent.cached.contains(artifact) {
                continue;
            }
            tracing::debug!(agent = %agent_id, %artifact, "asking to prepare a component");
            let message = CoreMessage::Prepare { artifact: artifact.to_owned(), pool_kind: kind };
            if agent.sender.send(message).is_ok() {
                asked += 1;
            }
        }
        asked
    }

    /// The agent compiled these components (see [`Dispatcher::prepare`]).
    pub fn prepared(&self, agent_id: &str, artifacts: Vec<String>) {
        if artifacts.is_empty() {
            return;
        }
        if let Some(agent) = self.agents().connected.get_mut(agent_id) {
            agent.cached.extend(artifacts);
        }
    }

    /// The components a connected agent holds compiled, sorted.
    pub fn cached(&self, agent_id: &str) -> Vec<String> {
        let mut cached: Vec<String> = self
            .agents()
            .connected
            .get(agent_id)
            .map(|agent| agent.cached.iter().cloned().collect())
            .unwrap_or_default();
        cached.sort();
        cached
    }

    /// Cancels a run, and the children it waits for with it (theirs too);
    /// a running one is stopped by its agent (through whichever core holds
    /// that agent: see `send_cancellations`).
    pub async fn cancel_run(&self, id: &str) -> Result<Transition, StoreError> {
        let transition = self.cancel_one(id).await?;
        if transition.verdict == Verdict::Accepted {
            // A chain of parents is at most MAX_SUBFLOW_DEPTH deep.
            let mut parents = vec![id.to_owned()];
            while let Some(parent) = parents.pop() {
                for child in self.inner.store.waited_children(&parent).await? {
                    let cancelled = self.cancel_one(&child).await;
                    match cancelled {
                        Ok(t) if t.verdict == Verdict::Accepted => parents.push(child),
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(run = %child, parent = %parent, %error, "could not cancel a subflow with its parent");
                        }
                    }
                }
            }
        }
        Ok(transition)
    }

    async fn cancel_one(&self, id: &str) -> Result<Transition, StoreError> {
        let transition = self.inner.store.cancel_run(id).await?;
        if transition.run.state == StateName::Cancelling
            && let Some(agent) = &transition.run.agent_id
        {
            let execution = Execution { run_id: id.to_owned(), attempt: transition.run.attempt };
            self.cancel(agent, &execution);
        }
        Ok(transition)
    }

    /// Sends the agents connected here the cancellations of their runs,
    /// whichever core took them.
    async fn send_cancellations(&self) -> Result<(), StoreError> {
        let ids: Vec<String> = self.agents().connected.keys().cloned().collect();
        for run in self.inner.store.cancelling_runs(&ids).await? {
            let execution = Execution { run_id: run.id, attempt: run.attempt };
            self.cancel(&run.agent_id, &execution);
        }
        Ok(())
    }

    /// Renews the leases of the sessions held here (agents heard from
    /// within the crash window); sessions the store says were replaced
    /// (the agent is connected elsewhere now) are closed.
    async fn renew_leases(&self) {
        let window = self.inner.config.crash_after;
        let leases: Vec<AgentLease> = self
            .agents()
            .connected
            .iter()
            .filter(|(_, agent)| agent.last_heard.elapsed() <= window)
            .map(|(id, agent)| AgentLease {
                agent_id: id.clone(),
                session: agent.lease_session.clone(),
                until: self.lease_end(agent.last_heard_at),
                acked_seq: agent.acked_seq,
            })
            .collect();
        let began = Instant::now();
        let renewed = self.inner.store.renew_leases(leases).await;
        // A renewal that took longer than a heartbeat means the store
        // stalled: other cores' renewals may have stalled too.
        let stalled = began.elapsed() > self.inner.config.heartbeat;
        let mut ok_since = self.inner.store_ok_since.lock().unwrap_or_else(PoisonError::into_inner);
        match renewed {
            Ok(replaced) => {
                if stalled {
                    tracing::warn!("the store stalled; judging no agent for a crash window");
                    *ok_since = Some(Instant::now());
                } else {
                    ok_since.get_or_insert_with(Instant::now);
                }
                drop(ok_since);
                let agents = self.agents();
                for id in replaced {
                    if let Some(agent) = agents.connected.get(&id) {
                        tracing::warn!(agent = %id, "the agent's session moved on; closing this one");
                        agent.close.cancel();
                    }
                }
            }
            Err(e) => {
                if ok_since.take().is_some() {
                    tracing::warn!(error = %e, "could not renew agent leases; judging no agent until the store answers again");
                }
            }
        }
    }

    /// Whether this core may judge agents by their leases: its own
    /// renewals have gone through for a whole crash window.
    fn may_judge(&self) -> bool {
        let ok_since = self.inner.store_ok_since.lock().unwrap_or_else(PoisonError::into_inner);
        ok_since.is_some_and(|since| since.elapsed() >= self.inner.config.crash_after)
    }

    /// Dispatches and watches until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        tokio::spawn(self.clone().listen(stop.clone()));
        let mut watchdog = tokio::time::interval(Duration::from_secs(1));
        let mut renewals = tokio::time::interval(self.inner.config.heartbeat);
        let mut commands = tokio::time::interval(COMMANDS_EVERY);
        // When to look again: a deadline, so that the other timers firing
        // meanwhile do not put it off.
        let mut wake_at = tokio::time::Instant::now() + self.inner.config.tick;
        // When the next waiting run falls due, as last read (read again at
        // most every `NEXT_DUE_EVERY`, not on every pass of a burst).
        let mut next_due: Option<(Instant, Option<Timestamp>)> = None;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep_until(wake_at) => {}
                _ = watchdog.tick() => {
                    if let Err(e) = self.watch_agents().await {
                        tracing::warn!(error = %e, "the crash watchdog failed; retrying");
                    }
                }
                _ = renewals.tick() => {
                    self.renew_leases().await;
                    continue;
                }
                _ = commands.tick() => {
                    if let Err(e) = self.send_cancellations().await {
                        tracing::debug!(error = %e, "could not look for cancellations; retrying");
                    }
                    continue;
                }
            }
            let began = Instant::now();
            let dispatched = self.dispatch_due().await;
            self.inner.store.metrics().dispatch_pass.observe(began.elapsed().as_secs_f64());
            if let Err(e) = dispatched {
                tracing::warn!(error = %e, "dispatch failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            // Wake when the next waiting run falls due (a scheduled one
            // fires on time), or after a tick at the latest.
            if next_due.is_none_or(|(read, _)| read.elapsed() >= NEXT_DUE_EVERY) {
                let next = self.inner.store.next_due_after(now()).await.ok().flatten();
                next_due = Some((Instant::now(), next));
            }
            let pause = match next_due.and_then(|(_, next)| next) {
                Some(next) => Duration::from_millis(u64::try_from(next.0 - now().0).unwrap_or(0))
                    .min(self.inner.config.tick),
                None => self.inner.config.tick,
            };
            wake_at = tokio::time::Instant::now() + pause;
        }
    }

    /// Acts on the signals of the cores sharing the database (PostgreSQL):
    /// a run due in a pool with an agent here wakes this dispatcher, a
    /// cancellation of a run on an agent here is sent to it at once.
    async fn listen(self, stop: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut signals = match self.inner.store.signals().await {
                Ok(Some(signals)) => signals,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "could not listen for other cores' signals; polling until it can");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            loop {
                let signal = tokio::select! {
                    () = stop.cancelled() => return,
                    signal = signals.next() => signal,
                };
                match signal {
                    Ok(Signal::Due { pool }) => {
                        if self.agents().connected.values().any(|agent| agent.pool == pool) {
                            self.wake();
                        }
                    }
                    Ok(Signal::Cancel { agent_id }) => {
                        if self.agents().connected.contains_key(&agent_id)
                            && let Err(e) = self.send_cancellations().await
                        {
                            tracing::debug!(error = %e, "could not look for cancellations; the poll will");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the other cores' signals; listening again");
                        break;
                    }
                }
            }
        }
    }

    /// One pass: for each pool with free slots, pushes its due runs.
    async fn dispatch_due(&self) -> Result<(), StoreError> {
        let free_by_pool: HashMap<String, u32> = {
            let agents = self.agents();
            let mut free = HashMap::new();
            for agent in agents.connected.values() {
                *free.entry(agent.pool.clone()).or_insert(0) += agent.free();
            }
            free
        };
        for (pool, free) in free_by_pool {
            if free > 0 {
                self.dispatch_pool(&pool, free).await?;
            }
        }
        Ok(())
    }

    async fn dispatch_pool(&self, pool: &str, free: u32) -> Result<(), StoreError> {
        let store = &self.inner.store;
        let mut room = free;
        let settings = match store.pool(pool).await {
            Ok(settings) => Some(settings),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        if let Some(settings) = &settings {
            if settings.paused {
                return Ok(());
            }
            if let Some(limit) = settings.spec.concurrency_limit {
                room = room.min(limit.saturating_sub(store.active_in_pool(pool, None).await?));
            }
        }
        if room == 0 {
            return Ok(());
        }
        // Room left in each limited queue during this pass; queues that are
        // paused or full are left out of the query.
        let mut queue_room: HashMap<String, u32> = HashMap::new();
        let (mut active, mut closed) = (Vec::new(), Vec::new());
        for queue in settings.iter().flat_map(|s| &s.queues) {
            if let Some(limit) = queue.concurrency_limit {
                let active = store.active_in_pool(pool, Some(&queue.name)).await?;
                queue_room.insert(queue.name.clone(), limit.saturating_sub(active));
            }
            if queue.paused || queue_room.get(&queue.name) == Some(&0) {
                closed.push(queue.name.clone());
            } else {
                active.push(queue.name.clone());
            }
        }
        // More than the room: some may suit no free agent's queues.
        let due = store.due_runs(pool, &active, &closed, room.saturating_mul(2)).await?;
        let mut pushes = Vec::new();
        for run in due {
            if room == 0 {
                break;
            }
            if queue_room.get(&run.queue) == Some(&0) {
                continue;
            }
            let Some(agent_id) = self.reserve(pool, &run) else { continue };
            if let Some(left) = queue_room.get_mut(&run.queue) {
                *left -= 1;
            }
            room -= 1;
            pushes.push(self.push(run, agent_id));
        }
        // The proposals share the store's group commits.
        let mut set = tokio::task::JoinSet::new();
        for push in pushes {
            set.spawn(push);
        }
        while let Some(done) = set.join_next().await {
            if let Ok(Err(e)) = done {
                tracing::warn!(error = %e, "a dispatch failed");
            }
        }
        Ok(())
    }

    /// Chooses an agent of `pool` with a free slot for `run` (one that has
    /// its component cached first, then the least busy) and takes the slot.
    fn reserve(&self, pool: &str, run: &DueRun) -> Option<String> {
        let mut agents = self.agents();
        let (agent_id, agent) = agents
            .connected
            .iter_mut()
            .filter(|(_, a)| a.pool == pool && a.free() > 0 && a.takes(&run.queue))
            .max_by_key(|(_, a)| (a.cached.contains(&run.artifact), a.free()))?;
        agent.running.insert(run.id.clone(), 0);
        Some(agent_id.clone())
    }

    /// Proposes `PENDING` for `run` on `agent_id` and, if accepted, pushes
    /// it; otherwise gives the slot back.
    fn push(
        &self,
        run: DueRun,
        agent_id: String,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let this = self.clone();
        async move {
            let outcome = this.try_push(&run, &agent_id).await;
            if !matches!(outcome, Ok(true)) {
                this.finished(&agent_id, &run.id, 0);
            }
            outcome.map(|_| ())
        }
    }

    async fn try_push(&self, run: &DueRun, agent_id: &str) -> Result<bool, StoreError> {
        let store = &self.inner.store;
        let transition = store.dispatch_run(&run.id, agent_id).await?;
        if transition.verdict != Verdict::Accepted || transition.run.state != StateName::Pending {
            return Ok(false);
        }
        let attempt = transition.run.attempt;
        let fence = crate::store::Fence { agent_id: agent_id.to_owned(), attempt, event_seq: None };
        // The push did not happen: this attempt ends as `state` says.
        let not_pushed = async |state: StateName, message: String| {
            let proposal = ProposeState { state, message: Some(message), output: None };
            store.propose_fenced(&run.id, &fence, proposal).await.map(|_| false)
        };
        let assignment = match store.assignment(&transition.run).await {
            Ok(assignment) => assignment,
            Err(e) => {
                // A database that failed may answer next time: the run goes
                // back to wait (or, if even that fails, the watchdog hands
                // it back: its agent never gets it). Anything else means
                // it cannot be described to an agent: it fails here rather
                // than waiting in PENDING.
                return if matches!(e, StoreError::Database(_)) {
                    not_pushed(
                        StateName::Scheduled,
                        format!("not pushed: {e}; dispatching it again"),
                    )
                    .await
                } else {
                    not_pushed(StateName::Crashed, format!("could not be pushed to an agent: {e}"))
                        .await
                };
            }
        };
        let message = CoreMessage::Assign(Box::new(assignment));
        let size = body_size(&message);
        if size > MAX_FRAME_BYTES as usize {
            // No agent could ever be sent it: it fails once, never retried.
            let why = format!(
                "could not be sent to an agent: {} (its parameters, variables and secrets)",
                over_limit("its assignment", size, MAX_FRAME_BYTES as usize)
            );
            return not_pushed(StateName::Failed, why).await;
        }
        let sent = {
            let mut agents = self.agents();
            match agents.connected.get_mut(agent_id) {
                Some(agent) => {
                    agent.cached.insert(run.artifact.clone());
                    agent.running.insert(run.id.clone(), attempt);
                    agent.sender.send(message).is_ok()
                }
                None => false,
            }
        };
        if !sent {
            // The agent left between choosing and pushing: hand the run back.
            let why = format!("agent {agent_id} left before the run reached it");
            return not_pushed(StateName::Scheduled, why).await;
        }
        Ok(true)
    }

    /// Ends the runs agents no longer have, and stops executions that no
    /// longer hold their runs. Agents connected here but silent for the
    /// crash window are dropped (their connection closed); a run whose
    /// agent no core holds a lease on becomes `CRASHED`; a run a connected
    /// agent's heartbeats leave out (its push was lost, say, when the core
    /// restarted) is handed back if it never started, and `CRASHED` if it
    /// did; an execution an agent here reports that is not its run's
    /// current attempt there is told to stop.
    async fn watch_agents(&self) -> Result<(), StoreError> {
        let window = self.inner.config.crash_after;
        // A heartbeat sent before a push reached the agent lacks the run:
        // only runs older than two heartbeats are judged by them.
        let settled = self.inner.config.heartbeat.saturating_mul(2) + Duration::from_secs(1);
        // What agents run is read before the store, so an execution pushed
        // after this read cannot look stale.
        let mut dropped = Vec::new();
        let reported: Vec<(String, Execution)> = {
            let mut agents = self.agents();
            let silent: Vec<String> = agents
                .connected
                .iter()
                .filter(|(_, a)| a.last_heard.elapsed() > window)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &silent {
                if let Some(agent) = agents.connected.remove(id) {
                    tracing::warn!(agent = %id, "agent missed its heartbeats; dropping its session");
                    agent.close.cancel();
                    // Removed here, the session's own end finds nothing to
                    // record: the disconnect is written below.
                    dropped.push(self.last_lease(id, agent));
                }
            }
            agents
                .connected
                .iter()
                .flat_map(|(id, agent)| {
                    agent.running.iter().filter(|(_, attempt)| **attempt > 0).map(
                        |(run, attempt)| {
                            (id.clone(), Execution { run_id: run.clone(), attempt: *attempt })
                        },
                    )
                })
                .collect()
        };
        for lease in dropped {
            let store = &self.inner.store;
            if let Err(e) =
                store.agent_disconnected(&lease.agent_id, &lease.session, lease.acked_seq).await
            {
                tracing::warn!(agent = %lease.agent_id, error = %e, "could not record the disconnect");
            }
        }
        let held = self.inner.store.held_runs().await?;
        for (agent_id, execution) in reported {
            self.stop_stale(&held, &agent_id, execution);
        }
        let may_judge = self.may_judge();
        let now = now();
        for run in &held {
            let verdict = {
                let agents = self.agents();
                match agents.connected.get(&run.agent_id) {
                    Some(agent) => {
                        let age = u64::try_from(now.0.saturating_sub(run.state_changed_at.0))
                            .unwrap_or(0);
                        let missing = agent.running.get(&run.id) != Some(&run.attempt)
                            && Duration::from_millis(age) > settled;
                        missing.then_some(Lost::Dropped)
                    }
                    // No core holds the agent: nothing runs this attempt
                    // that can report it.
                    None if may_judge && run.lease_until < now => Some(Lost::Silent),
                    None => None,
                }
            };
            let Some(lost) = verdict else { continue };
            self.end_lost_run(run, lost).await?;
        }
        self.wake();
        Ok(())
    }

    /// Ends the runs a new process of `agent_id` cannot have: its earlier
    /// process died with them.
    pub async fn agent_restarted(&self, agent_id: &str) -> Result<(), StoreError> {
        for run in self.inner.store.held_runs().await? {
            if run.agent_id == agent_id {
                self.end_lost_run(&run, Lost::Restarted).await?;
            }
        }
        self.wake();
        Ok(())
    }

    /// Tells a connecting agent which of the executions it still runs
    /// lost their runs while it was away (stop them) and which it must
    /// cancel.
    pub async fn reconcile(&self, agent_id: &str, running: &[Execution]) -> Result<(), StoreError> {
        let held = self.inner.store.held_runs().await?;
        for execution in running {
            self.stop_stale(&held, agent_id, execution.clone());
        }
        for run in held.into_iter().filter(|r| r.agent_id == agent_id) {
            if run.state == StateName::Cancelling {
                self.cancel(agent_id, &Execution { run_id: run.id, attempt: run.attempt });
            }
        }
        Ok(())
    }

    /// Tells `agent_id` to stop `execution` unless, by `held`, it is its
    /// run's current attempt on that agent.
    fn stop_stale(&self, held: &[HeldRun], agent_id: &str, execution: Execution) {
        let reason = match held.iter().find(|r| r.id == execution.run_id) {
            Some(run) if run.agent_id == agent_id && run.attempt == execution.attempt => return,
            Some(run) => {
                format!("attempt {} holds this run now (on agent {})", run.attempt, run.agent_id)
            }
            None => "the run ended or moved on".to_owned(),
        };
        self.stop(agent_id, execution, reason);
    }

    /// Moves a run its agent lost to where it can go on: handed back if it
    /// never started, `CANCELLED` if that was asked for, else `CRASHED`
    /// (whose retry policy then applies).
    async fn end_lost_run(&self, run: &HeldRun, lost: Lost) -> Result<(), StoreError> {
        let agent = &run.agent_id;
        let (state, message) = match (lost, run.state) {
            // Its cancellation was asked for: nothing runs it now.
            (_, StateName::Cancelling) => {
                (StateName::Cancelled, format!("agent {agent} no longer runs it"))
            }
            (Lost::Dropped, StateName::Pending) => (
                StateName::Scheduled,
                format!("agent {agent} never received it; dispatching it again"),
            ),
            (Lost::Restarted, StateName::Pending) => (
                StateName::Scheduled,
                format!("agent {agent} restarted before it received it; dispatching it again"),
            ),
            (Lost::Dropped, _) => (StateName::Crashed, format!("agent {agent} no longer runs it")),
            (Lost::Restarted, _) => {
                (StateName::Crashed, format!("agent {agent} restarted while running it"))
            }
            (Lost::Silent, _) => (
                StateName::Crashed,
                format!(
                    "agent {agent} stopped answering (no heartbeat for {} s)",
                    self.inner.config.crash_after.as_secs()
                ),
            ),
        };
        let proposal = ProposeState { state, message: Some(message), output: None };
        // Only the attempt judged lost is ended: if the run moved on
        // meanwhile, the verdict is stale.
        let fence =
            crate::store::Fence { agent_id: agent.clone(), attempt: run.attempt, event_seq: None };
        match self.inner.store.propose_fenced(&run.id, &fence, proposal).await {
            Ok(t) if t.verdict == Verdict::Accepted => {
                tracing::warn!(run = %run.id, agent = %agent, state = %t.run.state, "run lost by its agent");
                Ok(())
            }
            Ok(_) | Err(StoreError::NotFound { .. } | StoreError::Stale { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// How an agent lost a run.
#[derive(Debug, Clone, Copy)]
enum Lost {
    /// No core has heard from the agent within its lease.
    Silent,
    /// The agent is here but does not have the run.
    Dropped,
    /// A new process of the agent said hello: the old one died with it.
    Restarted,
}
