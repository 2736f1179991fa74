//! Group commit for SQLite: run-state transitions waiting at the same moment
//! are applied in one transaction on the single writer connection, so each
//! pays for its own statements but shares one BEGIN and one COMMIT.
//!
//! A transition writes nothing until its rules have accepted it, so a
//! transition that fails (not found, rejected, conflict) leaves nothing
//! behind; only a database error rolls the whole batch back, and then every
//! caller in it gets an error.

use std::future::Future;
use std::pin::Pin;

use sqlx::{AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};

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
                    Some(why) => Err(StoreError::Conflict(why)),
                });
            });
            (healthy, deliver)
        })
    }

    fn fail(self: Box<Self>, why: String) {
        let _ = self.reply.send(Err(StoreError::Conflict(why)));
    }
}

/// The queue in front of the writer task.
#[derive(Clone)]
pub(crate) struct Batcher {
    jobs: mpsc::UnboundedSender<Box<dyn BatchJob>>,
}

impl Batcher {
    /// Starts the writer task over `pool` (SQLite's single write connection).
    /// `store` must not hold this batcher, or the task would never end.
    pub(crate) fn start(pool: AnyPool, store: Store) -> Self {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Box<dyn BatchJob>>();
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
        self.jobs
            .send(Box::new(Pending { work, reply }))
            .map_err(|_| StoreError::Conflict("the store's writer has stopped".to_owned()))?;
        answer.await.map_err(|_| {
            StoreError::Conflict("the store's writer dropped a transition".to_owned())
        })?
    }
}

async fn run_batch(pool: &AnyPool, store: Store, batch: Vec<Box<dyn BatchJob>>) {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => {
            return batch.into_iter().for_each(|job| job.fail(format!("the database failed: {e}")));
        }
    };
    if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
        return batch.into_iter().for_each(|job| job.fail(format!("the database failed: {e}")));
    }
    let mut deliveries = Vec::with_capacity(batch.len());
    let mut healthy = true;
    for job in batch {
        let (ok, deliver) = job.run(store.clone(), &mut conn).await;
        healthy &= ok;
        deliveries.push(deliver);
    }
    let failed = if healthy {
        sqlx::query("COMMIT")
            .execute(&mut *conn)
            .await
            .err()
            .map(|e| format!("committing failed: {e}"))
    } else {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        Some("a database error rolled back this batch of transitions; propose again".to_owned())
    };
    for deliver in deliveries {
        deliver(failed.clone());
    }
}
