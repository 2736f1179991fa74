//! The agent's outbox: every event it has produced and the core has not yet
//! acknowledged. Events are numbered from 1 without gaps for the life of
//! the agent process, so that after a reconnect the agent can resend all
//! that were not acknowledged and the core can drop the ones it already
//! applied: the agent delivers at least once, the core applies exactly once.
//!
//! The outbox is in memory and bounded. Past its capacity it drops the
//! oldest run reports (log lines first), never a run's `Started`,
//! `Finished` or `Declined`; a dropped report leaves a gap in the numbers,
//! and the execution's log says how many went, in a line just before its
//! end.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use baton_proto::v1::link::{AgentEvent, AgentEventBody, Execution};
use baton_proto::v1::{LogLevel, ReportBody, RunReport};
use tokio::sync::Notify;

/// Events kept by default while the core does not acknowledge them.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Events waiting for the core's acknowledgement.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    /// Woken when an event is pushed (one waiter: the connection's writer).
    grew: Notify,
    /// Woken when events are acknowledged.
    acked: Notify,
}

#[derive(Debug)]
struct State {
    /// The seq of the next event pushed.
    next_seq: u64,
    /// Unacknowledged events, in seq order.
    events: VecDeque<AgentEvent>,
    capacity: usize,
    /// Reports dropped because the outbox was full.
    dropped: u64,
    /// Reports dropped, by execution, until its end is pushed.
    dropped_by: HashMap<Execution, u64>,
    /// The seq of each running execution's last report (a marker of
    /// dropped reports goes after it).
    last_report: HashMap<Execution, u64>,
}

impl Default for Outbox {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl Outbox {
    /// An empty outbox that keeps up to `capacity` events (more only when
    /// none of them may be dropped).
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                next_seq: 1,
                events: VecDeque::new(),
                capacity: capacity.max(1),
                dropped: 0,
                dropped_by: HashMap::new(),
                last_report: HashMap::new(),
            }),
            grew: Notify::new(),
            acked: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an event about `execution`; returns its seq.
    pub fn push(&self, execution: &Execution, body: AgentEventBody) -> u64 {
        let seq = {
            let mut state = self.lock();
            match &body {
                AgentEventBody::Report { report } => {
                    state.reported(execution, report.seq);
                    state.append(execution, body)
                }
                // The execution's last word: room is made first, so that
                // the line saying what of it was dropped counts all.
                _ => {
                    while state.events.len()
                        + 1
                        + usize::from(state.dropped_by.contains_key(execution))
                        > state.capacity
                        && state.make_room()
                    {}
                    if let Some(marker) = state.ended(execution) {
                        state.keep(execution, marker);
                    }
                    state.keep(execution, body)
                }
            }
        };
        self.grew.notify_one();
        seq
    }

    /// Drops every event up to and including `seq`: the core has applied
    /// them.
    pub fn ack(&self, seq: u64) {
        {
            let mut state = self.lock();
            while state.events.front().is_some_and(|e| e.seq <= seq) {
                state.events.pop_front();
            }
        }
        self.acked.notify_waiters();
    }

    /// Takes the core's welcome: events up to `acked_seq` are applied. A
    /// core that has applied more than this process ever numbered knew an
    /// earlier process with this agent id (the id is kept in the data
    /// directory): numbering continues after its last event, and events
    /// waiting are renumbered after it, or the core would skip them.
    pub fn welcome(&self, acked_seq: u64) {
        {
            let mut state = self.lock();
            if acked_seq >= state.next_seq {
                let mut next = acked_seq.saturating_add(1);
                for event in &mut state.events {
                    event.seq = next;
                    next = next.saturating_add(1);
                }
                state.next_seq = next;
                return;
            }
        }
        self.ack(acked_seq);
    }

    /// Up to `max` unacknowledged events numbered after `seq`, in order.
    pub fn after(&self, seq: u64, max: usize) -> Vec<AgentEvent> {
        let state = self.lock();
        let start = state.events.partition_point(|e| e.seq <= seq);
        state.events.range(start..).take(max).cloned().collect()
    }

    /// Events not yet acknowledged.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    /// Whether every event has been acknowledged.
    pub fn is_empty(&self) -> bool {
        self.lock().events.is_empty()
    }

    /// The seq of the last event pushed (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.lock().next_seq.saturating_sub(1)
    }

    /// Reports dropped because the outbox was full.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Waits until an event is pushed (returns at once if one was pushed
    /// since the last wait returned).
    pub async fn grown(&self) {
        self.grew.notified().await;
    }

    /// Waits until every event has been acknowledged.
    pub async fn drained(&self) {
        loop {
            let acked = self.acked.notified();
            if self.is_empty() {
                return;
            }
            acked.await;
        }
    }
}

impl State {
    /// Numbers and keeps a report, making room by dropping the oldest
    /// report if the outbox is full (this one, if only lifecycle events
    /// are waiting); returns its seq.
    fn append(&mut self, execution: &Execution, body: AgentEventBody) -> u64 {
        if self.events.len() >= self.capacity && !self.make_room() {
            let seq = self.number();
            self.note_dropped(execution.clone());
            return seq;
        }
        self.keep(execution, body)
    }

    /// Numbers and keeps an event, over the bound if need be.
    fn keep(&mut self, execution: &Execution, body: AgentEventBody) -> u64 {
        let seq = self.number();
        self.events.push_back(AgentEvent {
            seq,
            run_id: execution.run_id.clone(),
            attempt: execution.attempt,
            body,
        });
        seq
    }

    fn number(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq = seq.saturating_add(1);
        seq
    }

    fn reported(&mut self, execution: &Execution, report_seq: u64) {
        match self.last_report.get_mut(execution) {
            Some(last) => *last = (*last).max(report_seq),
            None => {
                self.last_report.insert(execution.clone(), report_seq);
            }
        }
    }

    /// Forgets an execution that ended; the log line saying how many of
    /// its reports were dropped, if any were.
    fn ended(&mut self, execution: &Execution) -> Option<AgentEventBody> {
        let last = self.last_report.remove(execution).unwrap_or(0);
        let dropped = self.dropped_by.remove(execution)?;
        let message = format!(
            "{dropped} reports of this run (log lines first) were dropped: the core did not \
             acknowledge the agent's events in time and its outbox holds {}",
            self.capacity
        );
        let body = ReportBody::Log { level: LogLevel::Warn, message, task_id: None };
        let report = RunReport { seq: last.saturating_add(1), at: baton_sandbox::now(), body };
        Some(AgentEventBody::Report { report })
    }

    /// Drops the oldest droppable event (a log line if there is one, else
    /// another report); false if none may be dropped.
    fn make_room(&mut self) -> bool {
        let position = self
            .events
            .iter()
            .position(|e| droppable(&e.body) == Some(Priority::Log))
            .or_else(|| self.events.iter().position(|e| droppable(&e.body).is_some()));
        let Some(event) = position.and_then(|position| self.events.remove(position)) else {
            return false;
        };
        self.note_dropped(Execution { run_id: event.run_id, attempt: event.attempt });
        true
    }

    /// Counts a dropped report of `execution`, with a warning now and then.
    fn note_dropped(&mut self, execution: Execution) {
        // An execution that ended already has had its say (under more
        // pressure still, the line saying what it lost can go too).
        if self.last_report.contains_key(&execution) {
            *self.dropped_by.entry(execution).or_insert(0) += 1;
        }
        self.dropped = self.dropped.saturating_add(1);
        if self.dropped.is_power_of_two() {
            tracing::warn!(
                dropped = self.dropped,
                capacity = self.capacity,
                "the core has not acknowledged {} events; dropping the oldest run reports",
                self.capacity
            );
        }
    }
}

/// Which reports go first when the outbox is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Priority {
    Log,
    OtherReport,
}

fn droppable(body: &AgentEventBody) -> Option<Priority> {
    match body {
        AgentEventBody::Report { report } => match report.body {
            ReportBody::Log { .. } => Some(Priority::Log),
            _ => Some(Priority::OtherReport),
        },
        AgentEventBody::Started { .. }
        | AgentEventBody::Finished { .. }
        | AgentEventBody::Declined { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use baton_proto::v1::{LogLevel, RunOutcome, RunReport, Timestamp};

    use super::*;

    fn started() -> AgentEventBody {
        AgentEventBody::Started { infrastructure: baton_proto::v1::Infrastructure::sandbox() }
    }

    fn run(id: &str) -> Execution {
        Execution { run_id: id.to_owned(), attempt: 1 }
    }

    #[test]
    fn a_core_that_knew_an_earlier_process_gets_numbers_after_its_last() {
        let outbox = Outbox::new(10);
        outbox.push(&run("r1"), started());
        // The core applied up to 41 from this agent id's previous process.
        outbox.welcome(41);
        assert_eq!(outbox.after(0, 10).iter().map(|e| e.seq).collect::<Vec<_>>(), [42]);
        assert_eq!(outbox.push(&run("r1"), started()), 43);
        // A reconnect to the same core: nothing renumbered, applied ones dropped.
        outbox.welcome(42);
        assert_eq!(outbox.after(0, 10).iter().map(|e| e.seq).collect::<Vec<_>>(), [43]);
    }

    fn log(n: u64) -> AgentEventBody {
        AgentEventBody::Report {
            report: RunReport {
                seq: n,
                at: Timestamp(0),
                body: ReportBody::Log {
                    level: LogLevel::Info,
                    message: format!("line {n}"),
                    task_id: None,
                },
            },
        }
    }

    fn progress(n: u64) -> AgentEventBody {
        AgentEventBody::Report {
            report: RunReport {
                seq: n,
                at: Timestamp(0),
                body: ReportBody::Progress { fraction: 0.5, message: String::new() },
            },
        }
    }

    fn seqs(events: &[AgentEvent]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn numbers_events_from_one_without_gaps() {
        let outbox = Outbox::default();
        assert_eq!(outbox.last_seq(), 0);
        assert_eq!(outbox.push(&run("r1"), started()), 1);
        assert_eq!(outbox.push(&run("r1"), log(1)), 2);
        assert_eq!(outbox.push(&run("r2"), started()), 3);
        assert_eq!(outbox.last_seq(), 3);
        let events = outbox.after(0, 10);
        assert_eq!(seqs(&events), [1, 2, 3]);
        assert_eq!(events[2].run_id, "r2");
    }

    #[test]
    fn ack_drops_up_to_seq_and_numbering_continues() {
        let outbox = Outbox::default();
        for _ in 0..5 {
            outbox.push(&run("r"), log(1));
        }
        outbox.ack(3);
        assert_eq!(seqs(&outbox.after(0, 10)), [4, 5]);
        // An old ack changes nothing; an ack past the end empties it.
        outbox.ack(2);
        assert_eq!(outbox.len(), 2);
        outbox.ack(99);
        assert!(outbox.is_empty());
        assert_eq!(outbox.push(&run("r"), started()), 6);
    }

    #[test]
    fn after_resumes_where_a_connection_left_off() {
        let outbox = Outbox::default();
        for _ in 0..10 {
            outbox.push(&run("r"), log(1));
        }
        assert_eq!(seqs(&outbox.after(0, 3)), [1, 2, 3]);
        assert_eq!(seqs(&outbox.after(3, 3)), [4, 5, 6]);
        assert_eq!(seqs(&outbox.after(9, 3)), [10]);
        assert!(outbox.after(10, 3).is_empty());
        // After a reconnect whose Welcome acknowledged 4, the rest is resent.
        outbox.ack(4);
        assert_eq!(seqs(&outbox.after(0, 100)), [5, 6, 7, 8, 9, 10]);
    }

    #[test]
    fn when_full_drops_the_oldest_logs_first_and_never_lifecycle_events() {
        let outbox = Outbox::new(4);
        outbox.push(&run("r"), started()); // 1
        outbox.push(&run("r"), progress(1)); // 2
        outbox.push(&run("r"), log(2)); // 3
        outbox.push(&run("r"), log(3)); // 4
        outbox.push(&run("r"), log(4)); // 5: drops 3
        assert_eq!(seqs(&outbox.after(0, 10)), [1, 2, 4, 5]);
        // r's end: room for it and the line saying what r lost (drops 4
        // and 5), the line (6), then the end (7).
        outbox.push(&run("r"), AgentEventBody::Finished { outcome: RunOutcome::Cancelled });
        let events = outbox.after(0, 10);
        assert_eq!(seqs(&events), [1, 2, 6, 7]);
        let AgentEventBody::Report { report } = &events[2].body else { panic!("{events:?}") };
        let ReportBody::Log { level, message, .. } = &report.body else { panic!("{report:?}") };
        assert_eq!(*level, LogLevel::Warn);
        assert!(message.starts_with("3 reports of this run"), "{message}");
        // After the run's last report (log 4 was its fourth).
        assert_eq!(report.seq, 5);
        outbox.push(&run("s"), AgentEventBody::Declined { reason: "no".to_owned() }); // 8: drops 6
        outbox.push(&run("t"), started()); // 9: no log left, drops the progress 2
        assert_eq!(seqs(&outbox.after(0, 10)), [1, 7, 8, 9]);
        // Nothing droppable: the bound gives way rather than lose a lifecycle event.
        outbox.push(&run("t"), AgentEventBody::Finished { outcome: RunOutcome::Cancelled }); // 10
        assert_eq!(seqs(&outbox.after(0, 10)), [1, 7, 8, 9, 10]);
        assert_eq!(outbox.dropped(), 5);
        // A report arriving then is the oldest report there is.
        assert_eq!(outbox.push(&run("t"), log(5)), 11);
        assert_eq!(seqs(&outbox.after(0, 10)), [1, 7, 8, 9, 10]);
        assert_eq!(outbox.dropped(), 6);
    }

    #[test]
    fn an_execution_that_lost_nothing_ends_without_a_marker() {
        let outbox = Outbox::new(10);
        outbox.push(&run("r"), started());
        outbox.push(&run("r"), log(1));
        outbox.push(&run("r"), AgentEventBody::Finished { outcome: RunOutcome::Cancelled });
        assert_eq!(seqs(&outbox.after(0, 10)), [1, 2, 3]);
    }

    #[tokio::test]
    async fn pushes_wake_the_writer_and_acks_wake_the_drain() {
        let outbox = Arc::new(Outbox::default());
        // A push before the wait is not missed.
        outbox.push(&run("r"), started());
        tokio::time::timeout(Duration::from_secs(1), outbox.grown()).await.unwrap();

        let drained = tokio::spawn({
            let outbox = Arc::clone(&outbox);
            async move { outbox.drained().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!drained.is_finished());
        outbox.ack(1);
        tokio::time::timeout(Duration::from_secs(1), drained).await.unwrap().unwrap();
    }
}
