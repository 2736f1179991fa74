//! Group commit for SQLite: writes waiting at the same moment are applied
//! in one transaction on the single writer connection. Run-state writes
//! share statements too (see `transitions`), so a batch made only of them
//! is one statement: every statement is a round trip to sqlx's SQLite
//! thread, and those round trips, not SQLite, bound the writer.
//!
//! A transition writes nothing until its rules have accepted it, so a
//! transition that fails (not found, rejected, conflict) leaves nothing
//! behind; only a database error rolls the whole batch back, and then every
//! caller in it gets an error.

use std::future::Future;
use std::pin::Pin;

use sqlx::{AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};

use super::transitions::{self, StateWrite};
use super::{Store, StoreError, StoreResult};

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Most transitions one transaction takes.
const MAX_BATCH: usize = 256;

/// Hands the result to the caller once the batch has committed (`None`) or
/// failed (`Some(why)`).
type Delivery = Box<dyn FnOnce(Option<String>) + Send>;

pub(crate) trait BatchJob: Send {
    /// Runs the work; `false` when it hit a database error.
    fn run<'c>(
        self: Box<Self>,
        store: Store,
        conn: &'c mut AnyConnection,
    ) -> BoxFuture<'c, (bool, Delivery)>;
    /// Answers without running.
    fn fail(self: Box<Self>, why: String);
}

struct Pending<T, F> {
    work: F,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> BatchJob for Pending<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(Store, &'c mut AnyConnection) -> BoxFuture<'c, StoreResult<T>>
        + Send
        + 'static,
{
    fn run<'c>(
        self: Box<Self>,
        store: Store,
        conn: &'c mut AnyConnection,
    ) -> BoxFuture<'c, (bool, Delivery)> {
        let Pending { work, reply } = *self;
        Box::pin(async move {
            let result = work(store, conn).await;
            let healthy = !matches!(result, Err(StoreError::Database(_)));
            let deliver: Delivery = Box::new(move |failed| {
                let _ = reply.send(match failed {
                    None => result,
                    Some(why) => Err(batch_failure(why)),
                });
            });
            (healthy, deliver)
        })
    }

    fn fail(self: Box<Self>, why: String) {
        let _ = self.reply.send(Err(batch_failure(why)));
    }
}

enum Job {
    Work(Box<dyn BatchJob>),
    State(Box<StateWrite>, oneshot::Sender<StoreResult<bool>>),
}

impl Job {
    fn fail(self, why: String) {
        match self {
            Job::Work(job) => job.fail(why),
            Job::State(_, reply) => {
                let _ = reply.send(Err(batch_failure(why)));
            }
        }
    }
}

/// The queue in front of the writer task.
#[derive(Clone)]
pub(crate) struct Batcher {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Batcher {
    /// Starts the writer task over `pool` (SQLite's single write connection).
    /// `store` must not hold this batcher, or the task would never end.
    pub(crate) fn start(pool: AnyPool, store: Store) -> Self {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match queue.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                run_batch(&pool, store.clone(), batch).await;
            }
        });
        Self { jobs }
    }

    /// Runs `work` in the next batch and returns its result after commit.
    pub(crate) async fn submit<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Store, &'c mut AnyConnection) -> BoxFuture<'c, StoreResult<T>>
            + Send
            + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Work(Box::new(Pending { work, reply })))?;
        answer.await.map_err(|_| dropped())?
    }

    /// Writes `write` in the next batch; `false` when its guard failed.
    pub(crate) async fn submit_state(&self, write: StateWrite) -> StoreResult<bool> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::State(Box::new(write), reply))?;
        answer.await.map_err(|_| dropped())?
    }

    fn send(&self, job: Job) -> StoreResult<()> {
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Conflict("the store's writer has stopped".to_owned()))
    }
}

fn dropped() -> StoreError {
    StoreError::Conflict("the store's writer dropped a write".to_owned())
}

async fn run_batch(pool: &AnyPool, store: Store, batch: Vec<Job>) {
    store.metrics().group_commit_batch.observe(batch.len() as f64);
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => {
            return batch.into_iter().for_each(|job| job.fail(format!("the database failed: {e}")));
        }
    };
    let mut states = Vec::new();
    let mut works = Vec::new();
    for job in batch {
        match job {
            Job::Work(work) => works.push(work),
            Job::State(write, reply) => states.push((*write, reply)),
        }
    }
    let writes: Vec<&StateWrite> = states.iter().map(|(write, _)| write).collect();
    let statements = transitions::statements(&writes);
    // One statement is atomic on its own.
    let transaction = !works.is_empty() || statements.len() > 1;
    if transaction && let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
        let why = format!("the database failed: {e}");
        works.into_iter().for_each(|job| job.fail(why.clone()));
        return states.into_iter().for_each(|(_, reply)| {
            let _ = reply.send(Err(batch_failure(why.clone())));
        });
    }
    let mut healthy = true;
    let mut held = vec![false; writes.len()];
    for members in &statements {
        let group: Vec<&StateWrite> =
            members.iter().filter_map(|&i| writes.get(i).copied()).collect();
        match transitions::write_states(&mut conn, &group).await {
            // A statement holds at most one write per run.
            Ok(ids) => members.iter().zip(&group).for_each(|(&i, write)| {
                if let Some(slot) = held.get_mut(i) {
                    *slot = ids.contains(&write.run_id);
                }
            }),
            Err(_) => healthy = false,
        }
    }
    let mut deliveries: Vec<Delivery> = Vec::with_capacity(works.len() + states.len());
    for job in works {
        let (ok, deliver) = job.run(store.clone(), &mut conn).await;
        healthy &= ok;
        deliveries.push(deliver);
    }
    let failed = if !healthy {
        if transaction {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        }
        Some("a database error rolled back this batch of writes; propose again".to_owned())
    } else if transaction {
        sqlx::query("COMMIT")
            .execute(&mut *conn)
            .await
            .err()
            .map(|e| format!("committing failed: {e}"))
    } else {
        None
    };
    for ((_, reply), held) in states.into_iter().zip(held) {
        let _ = reply.send(match &failed {
            None => Ok(held),
            Some(why) => Err(batch_failure(why.clone())),
        });
    }
    for deliver in deliveries {
        deliver(failed.clone());
    }
}

/// The error every write of a failed batch gets: the batch's failure is a
/// text shared by all of them, so a full disk is recognised by SQLite's
/// message for `SQLITE_FULL`.
fn batch_failure(why: String) -> StoreError {
    if why.contains("database or disk is full") {
        StoreError::StorageFull(why)
    } else {
        StoreError::Conflict(why)
    }
}
