//! The scheduler: keeps every active schedule planned ahead (its runs exist
//! before their time, so a schedule fires when the dispatcher reaches the
//! time, not when a poll notices it), decides the times missed while no
//! core was running by each schedule's catch-up policy, and records each
//! firing as an event. Several cores may run it on one database: progress
//! is written only if unchanged since read, and a time's run has a key.

use std::sync::Arc;
use std::time::Duration;

use baton_proto::v1::{CatchUp, Timestamp};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::schedule::{self, Horizon, Schedule};
use crate::store::{DueSchedule, ScheduleUpdate, Store, StoreError, now};

/// How the scheduler plans and catches up.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerConfig {
    pub horizon: Horizon,
    /// How often it looks for schedules to plan (it is also woken when
    /// schedules change).
    pub tick: Duration,
    /// Missed times older than this are not caught up.
    pub catch_up_window: Duration,
    /// A silence of the scheduler clock longer than this means no core ran.
    pub down_after: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            horizon: Horizon::default(),
            tick: Duration::from_secs(1),
            catch_up_window: Duration::from_secs(24 * 3600),
            down_after: Duration::from_secs(5),
        }
    }
}

/// Schedules looked at per read.
const BATCH: u32 = 10_000;

/// Schedules whose decisions are written in one transaction.
const PER_WRITE: usize = 2000;

/// What a catch-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaughtUp {
    pub skipped: usize,
    pub created: usize,
}

/// The scheduler's handle; clones share it.
#[derive(Clone)]
pub struct Scheduler {
    store: Store,
    config: SchedulerConfig,
    wake: Arc<Notify>,
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// What planning one schedule at `at` writes.
fn update(due: DueSchedule, at: Timestamp, horizon: Horizon) -> ScheduleUpdate {
    match Schedule::parse(&due.spec) {
        Ok(schedule) => {
            let plan =
                schedule.plan(schedule::instant(due.planned_until), schedule::instant(at), horizon);
            ScheduleUpdate {
                create: plan.create.into_iter().map(schedule::timestamp).collect(),
                planned_until: schedule::timestamp(plan.planned_until),
                next_look: schedule::timestamp(plan.next_look),
                due,
            }
        }
        // Checked when it was stored; if it no longer reads (a newer
        // time-zone database?), look again in an hour.
        Err(error) => {
            tracing::warn!(deployment = %due.deployment_id, %error, "a schedule does not read");
            ScheduleUpdate {
                create: Vec::new(),
                planned_until: due.planned_until,
                next_look: Timestamp(at.0 + 3_600_000),
                due,
            }
        }
    }
}

/// Plans a batch on every CPU (planning is most of a pass's own work; the
/// database is the rest).
async fn plan_all(due: Vec<DueSchedule>, at: Timestamp, horizon: Horizon) -> Vec<ScheduleUpdate> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let share = due.len().div_ceil(threads).max(64);
    let planning: Vec<_> = parts(due, share)
        .into_iter()
        .map(|part| {
            tokio::task::spawn_blocking(move || {
                part.into_iter().map(|d| update(d, at, horizon)).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut updates = Vec::new();
    for part in planning {
        match part.await {
            Ok(part) => updates.extend(part),
            // Planning does not panic on any input; if it ever did, the
            // part's schedules stay due.
            Err(error) => tracing::error!(%error, "planning schedules failed"),
        }
    }
    updates
}

/// `items` in parts of at most `size`, in order.
fn parts<T>(items: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let mut items = items.into_iter();
    std::iter::from_fn(|| Some(items.by_ref().take(size).collect::<Vec<T>>()))
        .take_while(|part| !part.is_empty())
        .collect()
}

impl Scheduler {
    pub fn new(store: Store, config: SchedulerConfig) -> Self {
        Self { store, config, wake: Arc::new(Notify::new()) }
    }

    /// Looks at the schedules now (they changed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Plans every schedule whose time to be looked at has come; returns
    /// how many runs it created.
    pub async fn pass(&self, at: Timestamp) -> Result<usize, StoreError> {
        let mut created = 0;
        // Each read takes the most overdue; what one pass wrote is not due
        // again before `at`, so this ends (bounded anyway).
        for _ in 0..10_000 {
            let due = self.store.schedules_due(at, BATCH).await?;
            let full = due.len() == BATCH as usize;
            // A part is planned while the one before it is written.
            let mut planned = Vec::new();
            for part in parts(due, PER_WRITE) {
                let write = self.store.apply_schedule_updates(std::mem::take(&mut planned));
                let (written, next) = tokio::join!(write, plan_all(part, at, self.config.horizon));
                created += written?;
                planned = next;
            }
            created += self.store.apply_schedule_updates(planned).await?;
            if !full {
                break;
            }
        }
        Ok(created)
    }

    /// Decides the schedule times missed while no core ran (the scheduler
    /// clock silent for longer than `down_after`), by each schedule's
    /// policy. Runs before the dispatcher starts, so nothing missed is
    /// dispatched before it is decided.
    pub async fn catch_up(&self, at: Timestamp) -> Result<CaughtUp, StoreError> {
        let mut done = CaughtUp::default();
        let Some(last) = self.store.last_tick().await? else {
            return Ok(done);
        };
        let silence = u64::try_from(at.0 - last.0).unwrap_or(0);
        if silence < u64::try_from(self.config.down_after.as_millis()).unwrap_or(u64::MAX) {
            return Ok(done);
        }
        let (from, to) = (schedule::instant(last), schedule::instant(at));
        let oldest = to - chrono_duration(self.config.catch_up_window);
        for due in self.store.active_schedules().await? {
            let Ok(schedule) = Schedule::parse(&due.spec) else { continue };
            let missed = schedule.times(from.max(oldest), to, 100_000);
            let planned = self.store.planned_runs(&due, last, at).await?;
            let planned_times: Vec<_> =
                planned.iter().map(|(_, t)| schedule::instant(*t)).collect();
            let policy = due.spec.catch_up;
            let decided = schedule::catch_up(
                policy,
                &missed,
                &planned_times,
                oldest,
                self.config.horizon.max_runs,
            );
            let name = match policy {
                CatchUp::Skip => "skip",
                CatchUp::Latest => "latest",
                CatchUp::All => "all",
            };
            for (id, time) in &planned {
                if decided.skip.contains(&schedule::instant(*time)) {
                    let why = format!("missed while no core was running (catch-up: {name})");
                    self.store.skip_missed_run(id, why).await?;
                    done.skipped += 1;
                }
            }
            let create: Vec<Timestamp> =
                decided.create.into_iter().map(schedule::timestamp).collect();
            done.created += self.store.create_missed_runs(&due, &create).await?;
        }
        self.store.record_tick(at).await?;
        Ok(done)
    }

    /// Ticks until `stop`: plans, records firings, keeps the clock.
    pub async fn run(self, stop: CancellationToken) {
        let mut fired_until = now();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.config.tick) => {}
            }
            let at = now();
            let began = std::time::Instant::now();
            if let Err(error) = self.pass(at).await {
                tracing::warn!(%error, "planning schedules failed; retrying");
            }
            self.store.metrics().scheduler_pass.observe(began.elapsed().as_secs_f64());
            match self.store.record_fired(fired_until, at).await {
                Ok(()) => fired_until = at,
                Err(error) => tracing::warn!(%error, "recording schedule firings failed"),
            }
            if let Err(error) = self.store.record_tick(at).await {
                tracing::warn!(%error, "the scheduler clock could not be kept");
            }
        }
    }
}
