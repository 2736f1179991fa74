//! One connection's life after the core's `Welcome`: a writer that sends
//! heartbeats and every event the core has not seen on this connection, and
//! a reader that carries out what the core says. Runs outlive it.

use std::sync::Arc;
use std::time::Duration;

use baton_proto::v1::link::io::{IoError, read_frame, write_frame};
use baton_proto::v1::link::{
    AgentEvent, AgentMessage, CoreMessage, Execution, FrameError, MAX_FRAME_BYTES, encode,
};
use baton_sandbox::CancellationToken;
use quinn::VarInt;
use tokio::time::MissedTickBehavior;

use crate::agent::{Link, STOP_GRACE, Shared};
use crate::runs;

/// Events written per look at the outbox.
const BATCH: usize = 256;

/// Runs the connection until it drops or, when the agent stops, until the
/// cancelled runs have ended and their events are acknowledged (or the
/// grace period is over).
pub(crate) async fn run(shared: &Arc<Shared>, link: Link) {
    let Link { core, connection, send, recv, acked_seq, heartbeat } = link;
    shared.outbox.welcome(acked_seq);
    shared.set_connection(Some(connection.clone()));
    let ended = CancellationToken::new();
    let writer = tokio::spawn(write_loop(Arc::clone(shared), send, heartbeat, ended.clone()));
    let reader = tokio::spawn(read_loop(Arc::clone(shared), recv, ended.clone()));
    tokio::select! {
        () = ended.cancelled() => {}
        () = core_gone_silent(shared, heartbeat) => {
            tracing::warn!(%core, "no word from the core for {:?}: connecting to another", silence_limit(heartbeat));
            ended.cancel();
        }
        () = shared.stop.cancelled() => {
            let flushed = tokio::select! {
                flushed = tokio::time::timeout(STOP_GRACE, async {
                    shared.runs.all_ended().await;
                    shared.outbox.drained().await;
                }) => flushed.is_ok(),
                // The connection dropped meanwhile: nothing more can be said.
                () = ended.cancelled() => false,
            };
            if !flushed {
                tracing::warn!(
                    unacknowledged = shared.outbox.len(),
                    "stopping before the core acknowledged every event"
                );
            }
            ended.cancel();
        }
    }
    shared.set_connection(None);
    let reason: &[u8] = if shared.stop.is_cancelled() { b"agent stopping" } else { b"" };
    connection.close(VarInt::from_u32(0), reason);
    let _ = writer.await;
    let _ = reader.await;
}

/// How long the core may say nothing before it counts as gone (killed,
/// paused or cut off): a heartbeat and a half, since it answers each
/// heartbeat at once whatever its database does. The agent then connects
/// to another core, well within its lease.
fn silence_limit(heartbeat: Duration) -> Duration {
    heartbeat + heartbeat / 2
}

/// Returns once the core has said nothing for [`silence_limit`]; never for
/// a core that gave no lease.
async fn core_gone_silent(shared: &Shared, heartbeat: Duration) {
    let limit = silence_limit(heartbeat);
    loop {
        let Some(silent) = shared.core_silent_for() else {
            return std::future::pending().await;
        };
        if silent > limit {
            return;
        }
        tokio::time::sleep(limit - silent + Duration::from_millis(50)).await;
    }
}

/// Sends every event not yet sent on this connection as soon as it is in
/// the outbox, and a heartbeat every `heartbeat`.
async fn write_loop(
    shared: Arc<Shared>,
    mut send: quinn::SendStream,
    heartbeat: Duration,
    ended: CancellationToken,
) {
    let _ended = ended.clone().drop_guard();
    let mut ticker = tokio::time::interval(heartbeat);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The last seq sent on this connection: after a reconnect every event
    // the core has not acknowledged is sent again.
    let mut sent = 0;
    let mut beat = false;
    loop {
        // Read `running` before sending events, so that a run missing
        // from a heartbeat has had its `Finished` sent before it.
        let running = beat.then(|| (shared.runs.running(), shared.take_prepared()));
        let written = async {
            loop {
                let batch = shared.outbox.after(sent, BATCH);
                if batch.is_empty() {
                    break;
                }
                for event in batch {
                    sent = event.seq;
                    let frame = event_frame(event).map_err(IoError::Frame)?;
                    send.write_all(&frame).await.map_err(|e| IoError::Stream(e.into()))?;
                }
            }
            if let Some((running, prepared)) = running {
                write_frame(&mut send, &AgentMessage::Heartbeat { running, prepared }).await?;
            }
            Ok::<_, IoError>(())
        };
        let result = tokio::select! {
            result = written => result,
            () = ended.cancelled() => return,
        };
        if let Err(error) = result {
            tracing::warn!("lost the connection to the core while sending: {error}");
            return;
        }
        beat = tokio::select! {
            () = ended.cancelled() => return,
            () = shared.outbox.grown() => false,
            _ = ticker.tick() => true,
        };
    }
}

/// An event's frame; an event too large for one is sent as its stand-in
/// (see `AgentEvent::stand_in`), never retried as it is.
fn event_frame(event: AgentEvent) -> Result<Vec<u8>, FrameError> {
    let message = AgentMessage::Event(event);
    let size = match encode(&message) {
        Err(FrameError::TooLarge { len, .. }) => usize::try_from(len).unwrap_or(usize::MAX),
        frame => return frame,
    };
    match message {
        AgentMessage::Event(event) => {
            tracing::warn!(run = %event.run_id, seq = event.seq, size, "an event too large to send goes as a stand-in");
            encode(&AgentMessage::Event(event.stand_in(size)))
        }
        other => encode(&other),
    }
}

/// Reads the core's messages and carries them out.
async fn read_loop(shared: Arc<Shared>, mut recv: quinn::RecvStream, ended: CancellationToken) {
    let _ended = ended.clone().drop_guard();
    loop {
        let message = tokio::select! {
            () = ended.cancelled() => return,
            message = read_frame::<CoreMessage, _>(&mut recv, MAX_FRAME_BYTES) => message,
        };
        match message {
            Ok(Some(message)) => {
                shared.heard_core();
                handle(&shared, message);
            }
            Ok(None) => {
                tracing::warn!("the core closed the control stream");
                return;
            }
            Err(error) => {
                tracing::warn!("lost the connection to the core: {error}");
                return;
            }
        }
    }
}

fn handle(shared: &Arc<Shared>, message: CoreMessage) {
    match message {
        CoreMessage::Assign(assignment) => runs::assign(shared, *assignment),
        CoreMessage::Cancel { run_id, attempt } => {
            if !shared.runs.cancel(&Execution { run_id: run_id.clone(), attempt }) {
                tracing::debug!(%run_id, attempt, "cancel of a run that is not running here");
            }
        }
        CoreMessage::Stop { run_id, attempt, reason } => {
            let execution = Execution { run_id: run_id.clone(), attempt };
            if shared.runs.cancel(&execution) {
                tracing::warn!(%run_id, attempt, %reason, "stopping an execution that no longer holds its run");
            }
        }
        CoreMessage::Ack { seq } => shared.outbox.ack(seq),
        CoreMessage::Prepare { artifact, pool_kind } => runs::prepare(shared, artifact, pool_kind),
        other @ (CoreMessage::Welcome { .. } | CoreMessage::Refused { .. }) => {
            tracing::warn!("ignoring a `{}` message in the middle of a connection", kind(&other));
        }
    }
}

/// A message's name, for errors and logs.
pub(crate) fn kind(message: &CoreMessage) -> &'static str {
    match message {
        CoreMessage::Welcome { .. } => "welcome",
        CoreMessage::Refused { .. } => "refused",
        CoreMessage::Assign(_) => "assign",
        CoreMessage::Cancel { .. } => "cancel",
        CoreMessage::Stop { .. } => "stop",
        CoreMessage::Ack { .. } => "ack",
        CoreMessage::Prepare { .. } => "prepare",
    }
}
