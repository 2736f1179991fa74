//! Push dispatch: the agents connected now, the loop that hands them due
//! runs, and the watchdog that marks the runs of silent agents `CRASHED`.
//!
//! The store decides (a run is pushed only once its `PENDING` is accepted,
//! under the deployment's limit); this module only chooses agents, and
//! keeps pool and queue limits and pauses.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use baton_proto::v1::link::CoreMessage;
use baton_proto::v1::{ProposeState, StateName, Timestamp, Transition, Verdict};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::store::{DueRun, HeldRun, Store, StoreError, now};

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
    pool: String,
    queues: Vec<String>,
    slots: u32,
    running: HashSet<String>,
    cached: HashSet<String>,
    last_heard: Instant,
    sender: mpsc::UnboundedSender<CoreMessage>,
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
    pub pool: String,
    pub queues: Vec<String>,
    pub slots: u32,
    pub cached: Vec<String>,
    pub running: Vec<String>,
    pub sender: mpsc::UnboundedSender<CoreMessage>,
}

#[derive(Default)]
struct Agents {
    connected: HashMap<String, Connected>,
    /// When each agent that left was last heard from.
    gone: HashMap<String, Instant>,
    next_session: u64,
}

struct Inner {
    store: Store,
    config: DispatchConfig,
    agents: Mutex<Agents>,
    wake: Notify,
    /// Agents not seen since the core started count from here.
    started: Instant,
}

/// How often the dispatcher reads when the next waiting run falls due.
const NEXT_DUE_EVERY: Duration = Duration::from_millis(100);

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
                agents: Mutex::new(Agents::default()),
                wake: Notify::new(),
                started: Instant::now(),
            }),
        }
    }

    pub fn config(&self) -> DispatchConfig {
        self.inner.config
    }

    fn agents(&self) -> std::sync::MutexGuard<'_, Agents> {
        self.inner.agents.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Looks for due runs now.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Adds an agent that said hello; returns its session number. A
    /// previous session of the same agent is replaced.
    pub fn connect(&self, hello: AgentSession) -> u64 {
        let mut agents = self.agents();
        agents.next_session += 1;
        let session = agents.next_session;
        agents.gone.remove(&hello.agent_id);
        agents.connected.insert(
            hello.agent_id,
            Connected {
                session,
                pool: hello.pool,
                queues: hello.queues,
                slots: hello.slots,
                running: hello.running.into_iter().collect(),
                cached: hello.cached.into_iter().collect(),
                last_heard: Instant::now(),
                sender: hello.sender,
            },
        );
        drop(agents);
        self.wake();
        session
    }

    /// Removes a session's agent (unless a newer session replaced it).
    pub fn disconnect(&self, agent_id: &str, session: u64) {
        let mut agents = self.agents();
        if agents.connected.get(agent_id).is_some_and(|a| a.session == session)
            && let Some(agent) = agents.connected.remove(agent_id)
        {
            agents.gone.insert(agent_id.to_owned(), agent.last_heard);
        }
    }

    /// The agent was heard from; with a heartbeat, `running` is what it
    /// runs now.
    pub fn heard(&self, agent_id: &str, running: Option<Vec<String>>) {
        let mut agents = self.agents();
        if let Some(agent) = agents.connected.get_mut(agent_id) {
            agent.last_heard = Instant::now();
            if let Some(running) = running {
                agent.running = running.into_iter().collect();
            }
        }
    }

    /// A run on `agent_id` ended (or was handed back): its slot is free.
    pub fn finished(&self, agent_id: &str, run_id: &str) {
        if let Some(agent) = self.agents().connected.get_mut(agent_id) {
            agent.running.remove(run_id);
        }
        self.wake();
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

    /// Tells the agent running `run_id` to stop it; `false` if that agent
    /// is not connected.
    pub fn cancel(&self, agent_id: &str, run_id: &str) -> bool {
        self.agents().connected.get(agent_id).is_some_and(|agent| {
            agent.sender.send(CoreMessage::Cancel { run_id: run_id.to_owned() }).is_ok()
        })
    }

    /// Cancels a run; a running one is stopped by its agent.
    pub async fn cancel_run(&self, id: &str) -> Result<Transition, StoreError> {
        let transition = self.inner.store.cancel_run(id).await?;
        if transition.run.state == StateName::Cancelling
            && let Some(agent) = &transition.run.agent_id
        {
            self.cancel(agent, id);
        }
        Ok(transition)
    }

    /// Dispatches and watches until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let mut watchdog = tokio::time::interval(Duration::from_secs(1));
        let mut pause = self.inner.config.tick;
        // When the next waiting run falls due, as last read (read again at
        // most every `NEXT_DUE_EVERY`, not on every pass of a burst).
        let mut next_due: Option<(Instant, Option<Timestamp>)> = None;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                _ = watchdog.tick() => {
                    if let Err(e) = self.watch_agents().await {
                        tracing::warn!(error = %e, "the crash watchdog failed; retrying");
                    }
                }
            }
            if let Err(e) = self.dispatch_due().await {
                tracing::warn!(error = %e, "dispatch failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            // Wake when the next waiting run falls due (a scheduled one
            // fires on time), or after a tick at the latest.
            if next_due.is_none_or(|(read, _)| read.elapsed() >= NEXT_DUE_EVERY) {
                let next = self.inner.store.next_due_after(now()).await.ok().flatten();
                next_due = Some((Instant::now(), next));
            }
            pause = match next_due.and_then(|(_, next)| next) {
                Some(next) => Duration::from_millis(u64::try_from(next.0 - now().0).unwrap_or(0))
                    .min(self.inner.config.tick),
                None => self.inner.config.tick,
            };
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
        agent.running.insert(run.id.clone());
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
                this.finished(&agent_id, &run.id);
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
        let assignment = match store.assignment(&transition.run).await {
            Ok(assignment) => assignment,
            Err(e) => {
                // The run cannot be described to an agent: it fails here
                // rather than waiting in PENDING.
                let proposal = ProposeState {
                    state: StateName::Crashed,
                    message: Some(format!("could not be pushed to an agent: {e}")),
                    output: None,
                };
                store.propose_state(&run.id, proposal).await?;
                return Ok(false);
            }
        };
        let sent = {
            let mut agents = self.agents();
            match agents.connected.get_mut(agent_id) {
                Some(agent) => {
                    agent.cached.insert(run.artifact.clone());
                    agent.sender.send(CoreMessage::Assign(Box::new(assignment))).is_ok()
                }
                None => false,
            }
        };
        if !sent {
            // The agent left between choosing and pushing: hand the run back.
            let proposal = ProposeState {
                state: StateName::Scheduled,
                message: Some(format!("agent {agent_id} left before the run reached it")),
                output: None,
            };
            store.propose_state(&run.id, proposal).await?;
        }
        Ok(sent)
    }

    /// Ends the runs agents no longer have: those of agents not heard from
    /// within `crash_after` (connected but silent, or gone and not back)
    /// become `CRASHED`; a run a connected agent's heartbeats leave out
    /// (its push was lost, say, when the core restarted) is handed back if
    /// it never started, and `CRASHED` if it did.
    async fn watch_agents(&self) -> Result<(), StoreError> {
        let window = self.inner.config.crash_after;
        // A heartbeat sent before a push reached the agent lacks the run:
        // only runs older than two heartbeats are judged by them.
        let settled = self.inner.config.heartbeat.saturating_mul(2) + Duration::from_secs(1);
        let silent: HashSet<String> = {
            let mut agents = self.agents();
            let stale: Vec<String> = agents
                .connected
                .iter()
                .filter(|(_, a)| a.last_heard.elapsed() > window)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &stale {
                // Dropping the sender ends the session's writer.
                if let Some(agent) = agents.connected.remove(id) {
                    tracing::warn!(agent = %id, "agent missed its heartbeats; its runs crash");
                    agents.gone.insert(id.clone(), agent.last_heard);
                }
            }
            agents
                .gone
                .iter()
                .filter(|(_, at)| at.elapsed() > window)
                .map(|(id, _)| id.clone())
                .collect()
        };
        let held = self.inner.store.held_runs().await?;
        // After a restart, agents get time to reconnect before their runs
        // are judged.
        let core_young = self.inner.started.elapsed() <= window.saturating_mul(2);
        let now = crate::store::now().0;
        for run in held {
            let verdict = {
                let agents = self.agents();
                match agents.connected.get(&run.agent_id) {
                    Some(agent) => {
                        let age =
                            u64::try_from(now.saturating_sub(run.state_changed_at.0)).unwrap_or(0);
                        let missing = !agent.running.contains(&run.id)
                            && Duration::from_millis(age) > settled;
                        missing.then_some(Lost::Dropped)
                    }
                    None if silent.contains(&run.agent_id) => Some(Lost::Silent),
                    // Not seen since this core started.
                    None if !core_young && !agents.gone.contains_key(&run.agent_id) => {
                        Some(Lost::Silent)
                    }
                    None => None,
                }
            };
            let Some(lost) = verdict else { continue };
            self.end_lost_run(&run, lost).await?;
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
        match self.inner.store.propose_state(&run.id, proposal).await {
            Ok(t) if t.verdict == Verdict::Accepted => {
                tracing::warn!(run = %run.id, agent = %agent, state = %t.run.state, "run lost by its agent");
                Ok(())
            }
            Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// How an agent lost a run.
#[derive(Debug, Clone, Copy)]
enum Lost {
    /// The agent is gone or silent.
    Silent,
    /// The agent is here but does not have the run.
    Dropped,
    /// A new process of the agent said hello: the old one died with it.
    Restarted,
}
