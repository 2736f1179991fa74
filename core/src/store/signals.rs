//! Signals between the cores sharing a PostgreSQL database: the store's
//! triggers `NOTIFY` when a run falls due (or frees a slot) and when one is
//! asked to cancel (migration `0012_run_signals`); each core listens.
//! SQLite has one core, which wakes itself, so it has no signals.

use sqlx::postgres::PgListener;

use super::{Dialect, Store, StoreResult};

/// The channel the triggers notify on.
const CHANNEL: &str = "baton_runs";

/// What a notification asks of the cores that hear it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A run of this pool fell due or freed a concurrency slot.
    Due { pool: String },
    /// A run this agent holds is to be cancelled.
    Cancel { agent_id: String },
}

impl Signal {
    fn parse(payload: &str) -> Option<Self> {
        match payload.split_once(' ')? {
            ("due", pool) => Some(Signal::Due { pool: pool.to_owned() }),
            ("cancel", agent_id) => Some(Signal::Cancel { agent_id: agent_id.to_owned() }),
            _ => None,
        }
    }
}

/// A subscription to the signals of every core.
pub struct Signals {
    listener: PgListener,
}

impl Signals {
    /// The next signal. After a lost connection the listener reconnects;
    /// what was sent meanwhile is gone (callers poll as a fallback).
    pub async fn next(&mut self) -> StoreResult<Signal> {
        loop {
            let notification = self.listener.recv().await?;
            if let Some(signal) = Signal::parse(notification.payload()) {
                return Ok(signal);
            }
            tracing::debug!(payload = notification.payload(), "ignoring an unknown signal");
        }
    }
}

impl Store {
    /// Listens for the signals of every core sharing the database; `None`
    /// on SQLite.
    pub async fn signals(&self) -> StoreResult<Option<Signals>> {
        let (Dialect::Postgres, Some(url)) = (self.dialect, &self.url) else {
            return Ok(None);
        };
        let mut listener = PgListener::connect(url).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(Signals { listener }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_what_they_ask() {
        assert_eq!(Signal::parse("due edge pool"), Some(Signal::Due { pool: "edge pool".into() }));
        assert_eq!(Signal::parse("cancel a1"), Some(Signal::Cancel { agent_id: "a1".into() }));
        assert_eq!(Signal::parse("cancel"), None);
        assert_eq!(Signal::parse("reboot now"), None);
    }
}
