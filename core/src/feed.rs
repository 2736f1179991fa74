//! The live event feed: each new event, once and in order of occurrence,
//! to whoever listens (the API's stream, the automations). Events come from
//! many writers (database triggers included, and other cores on a shared
//! PostgreSQL), so the feed tails the events table: at once when the store
//! says it wrote something, and every `POLL` anyway. Every `SWEEP` a window
//! of recent events is read again, since an event may commit a little after
//! a later one; ids already sent are skipped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use baton_proto::v1::{Event, Timestamp};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::store::{Store, now};

/// How often the table is read when nothing pokes the feed.
const POLL: Duration = Duration::from_millis(250);
/// How often the overlap window is read again.
const SWEEP: Duration = Duration::from_secs(1);
/// How late an event may commit after its time and still be sent.
const OVERLAP_MS: i64 = 2_000;
/// Events read per query.
const BATCH: u32 = 1_000;

/// Whether a name matches a pattern where `*` stands for any run of
/// characters (`run.*`, `*.failed`, `webhook.github`).
pub fn name_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else { return pattern == name };
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = rest.get(at + part.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// The feed's handle; clones share it.
#[derive(Clone)]
pub struct Feed {
    sender: broadcast::Sender<Arc<Event>>,
}

impl Default for Feed {
    fn default() -> Self {
        Self::new()
    }
}

impl Feed {
    pub fn new() -> Self {
        // A listener this far behind is told it lagged.
        let (sender, _) = broadcast::channel(8_192);
        Self { sender }
    }

    /// New events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }

    /// Tails the store's events until `stop`: after each write it reads on
    /// from where it stopped; every `SWEEP` it reads the last `OVERLAP_MS`
    /// again for events that committed late.
    pub async fn run(self, store: Store, stop: CancellationToken) {
        let mut written = store.writes();
        let start = Timestamp(now().0);
        let mut tail = (start, String::new());
        // Ids sent, with their time, within the overlap window.
        let mut sent: HashMap<String, i64> = HashMap::new();
        let mut last_sweep = tokio::time::Instant::now();
        loop {
            let sweep = last_sweep.elapsed() >= SWEEP;
            let from = if sweep {
                last_sweep = tokio::time::Instant::now();
                (Timestamp(tail.0.0 - OVERLAP_MS), String::new())
            } else {
                tail.clone()
            };
            self.read_from(&store, from, &mut tail, &mut sent).await;
            if sweep {
                let keep_from = tail.0.0 - OVERLAP_MS;
                sent.retain(|_, at| *at >= keep_from);
            }
            tokio::select! {
                () = stop.cancelled() => return,
                Ok(()) = written.changed() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Sends the events after `from` not sent yet, page by page; `tail`
    /// moves to the newest read.
    async fn read_from(
        &self,
        store: &Store,
        mut from: (Timestamp, String),
        tail: &mut (Timestamp, String),
        sent: &mut HashMap<String, i64>,
    ) {
        loop {
            let events = match store.events_from(&from, BATCH).await {
                Ok(events) => events,
                Err(error) => {
                    tracing::warn!(%error, "reading new events failed; retrying");
                    return;
                }
            };
            let full = events.len() == BATCH as usize;
            for event in events {
                from = (event.occurred, event.id.clone());
                if from > *tail {
                    *tail = from.clone();
                }
                if sent.insert(event.id.clone(), event.occurred.0).is_some() {
                    continue;
                }
                // Nobody listening is fine.
                let _ = self.sender.send(Arc::new(event));
            }
            if !full {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_with_stars_anywhere() {
        assert!(name_matches("run.failed", "run.failed"));
        assert!(!name_matches("run.failed", "run.failed2"));
        assert!(name_matches("run.*", "run.completed"));
        assert!(!name_matches("run.*", "deployment.updated"));
        assert!(name_matches("*.failed", "run.failed"));
        assert!(name_matches("*", "anything"));
        assert!(name_matches("webhook.*.push", "webhook.github.push"));
        assert!(!name_matches("webhook.*.push", "webhook.github.pull"));
    }
}
