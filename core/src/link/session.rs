//! One agent's connection: hello and token check, then its control stream
//! (assignments out; heartbeats and events in) and its component fetches.

use std::time::Duration;

use baton_proto::v1::link::io::{read_frame, write_frame};
use baton_proto::v1::link::{
    AgentMessage, AgentToken, CoreMessage, Fetch, FetchAnswer, Hello, MAX_FRAME_BYTES,
    StreamRequest,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::events::Applier;
use crate::dispatch::{AgentSession, Dispatcher};
use crate::prepare::Preparer;
use crate::store::{AgentLease, AgentRecord, Asker, Store};
use crate::subflows::Subflows;
use crate::task_cache;

/// How long an agent may take to open its control stream and say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct Session {
    pub store: Store,
    pub dispatcher: Dispatcher,
    pub subflows: Subflows,
    pub preparer: Preparer,
    /// The core's CA fingerprint, which a token for this core carries.
    pub fingerprint: String,
    pub stop: CancellationToken,
}

impl Session {
    pub async fn serve(self, connection: quinn::Connection) {
        let remote = connection.remote_address();
        let opened = tokio::time::timeout(HELLO_TIMEOUT, async {
            let (send, mut recv) = connection.accept_bi().await.map_err(|e| e.to_string())?;
            let hello = read_frame::<Hello, _>(&mut recv, MAX_FRAME_BYTES)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "the stream ended before a hello".to_owned())?;
            Ok::<_, String>((send, recv, hello))
        })
        .await;
        let (mut send, recv, hello) = match opened {
            Ok(Ok(opened)) => opened,
            Ok(Err(why)) => {
                tracing::info!(%remote, %why, "agent refused: no valid hello");
                connection.close(1_u32.into(), b"no valid hello");
                return;
            }
            Err(_) => {
                connection.close(1_u32.into(), b"no hello in time");
                return;
            }
        };
        let lease = self.dispatcher.new_lease(&hello.agent_id, 0);
        let acked_seq = match self.admit(&hello, &lease).await {
            Ok(acked) => acked,
            Err(reason) => {
                tracing::info!(%remote, agent = %hello.agent_id, %reason, "agent refused");
                let _ = write_frame(&mut send, &CoreMessage::Refused { reason }).await;
                let _ = send.finish();
                // Let the refusal reach the agent before closing.
                tokio::time::sleep(Duration::from_millis(100)).await;
                connection.close(2_u32.into(), b"refused");
                return;
            }
        };
        if hello.new_process
            && let Err(e) = self.dispatcher.agent_restarted(&hello.agent_id).await
        {
            tracing::warn!(agent = %hello.agent_id, error = %e, "could not end the runs of the agent's previous process");
        }
        let heartbeat_ms =
            u64::try_from(self.dispatcher.config().heartbeat.as_millis()).unwrap_or(u64::MAX);
        let lease_ms =
            u64::try_from(self.dispatcher.config().crash_after.as_millis()).unwrap_or(u64::MAX);
        let welcome = CoreMessage::Welcome { acked_seq, heartbeat_ms, lease_ms };
        if write_frame(&mut send, &welcome).await.is_err() {
            return;
        }
        tracing::info!(%remote, agent = %hello.agent_id, pool = %hello.pool, slots = hello.slots, "agent connected");

        let (sender, mut outgoing) = mpsc::unbounded_channel::<CoreMessage>();
        let agent_id = hello.agent_id.clone();
        let close = CancellationToken::new();
        let session = self.dispatcher.connect(AgentSession {
            agent_id: agent_id.clone(),
            lease_session: lease.session.clone(),
            pool: hello.pool.clone(),
            queues: hello.queues.clone(),
            slots: hello.slots,
            cached: hello.cached.clone(),
            running: hello.running.clone(),
            acked_seq,
            sender: sender.clone(),
            close: close.clone(),
        });
        if let Err(e) = self.dispatcher.reconcile(&agent_id, &hello.running).await {
            tracing::warn!(agent = %agent_id, error = %e, "could not check the runs the agent still runs");
        }
        let preparer = self.preparer.clone();
        let pool = hello.pool.clone();
        tokio::spawn(async move { preparer.connected(&pool).await });

        let mut writer = tokio::spawn(async move {
            while let Some(message) = outgoing.recv().await {
                if write_frame(&mut send, &message).await.is_err() {
                    break;
                }
            }
            let _ = send.finish();
        });
        let streams = tokio::spawn(serve_streams(
            connection.clone(),
            self.store.clone(),
            self.subflows.clone(),
            agent_id.clone(),
        ));

        let (messages, received) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_messages(recv, messages));
        let applier = Applier {
            store: self.store.clone(),
            dispatcher: self.dispatcher.clone(),
            agent_id: agent_id.clone(),
            sender,
            ended: close.clone(),
        };
        let ended = tokio::select! {
            why = applier.run(received, acked_seq) => why,
            () = self.stop.cancelled() => "the core is stopping".to_owned(),
            () = close.cancelled() => "the session was dropped: the agent went silent or connected again".to_owned(),
        };
        // Queues still applying events of this session stop with it; what
        // they did not apply is not acknowledged, so the agent sends it
        // again.
        close.cancel();
        reader.abort();
        streams.abort();
        tracing::info!(%remote, agent = %agent_id, why = %ended, "agent disconnected");
        if let Some(last) = self.dispatcher.disconnect(&agent_id, session)
            && let Err(e) =
                self.store.agent_disconnected(&agent_id, &last.session, last.acked_seq).await
        {
            tracing::warn!(agent = %agent_id, error = %e, "could not record the disconnect");
        }
        connection.close(0_u32.into(), ended.as_bytes());
        // The writer ends once the connection is closed or its last sender
        // is gone; it is not waited for beyond that.
        if tokio::time::timeout(Duration::from_secs(1), &mut writer).await.is_err() {
            writer.abort();
        }
    }

    /// Checks the hello's token; returns the last event seq applied from
    /// this agent, or why it is refused.
    async fn admit(&self, hello: &Hello, lease: &AgentLease) -> Result<u64, String> {
        let token: AgentToken = hello.token.parse()?;
        if token.fingerprint != self.fingerprint {
            return Err("this token was made by another core (its fingerprint is not this core's)"
                .to_owned());
        }
        let pool = self
            .store
            .agent_token_pool(&token.id, &token.secret)
            .await
            .map_err(|e| format!("the core could not check the token: {e}"))?
            .ok_or_else(|| {
                "the token is not valid on this core: make one with `baton agent token create`"
                    .to_owned()
            })?;
        if pool != hello.pool {
            return Err(format!("this token is for pool `{pool}`, not `{}`", hello.pool));
        }
        if hello.slots == 0 {
            return Err("an agent needs at least one slot".to_owned());
        }
        let record = AgentRecord {
            id: hello.agent_id.clone(),
            name: hello.name.clone(),
            pool: hello.pool.clone(),
            queues: hello.queues.clone(),
            slots: hello.slots,
            version: hello.version.clone(),
            core_address: hello.core_address.clone(),
        };
        self.store
            .agent_connected(&record, self.dispatcher.core_id(), lease)
            .await
            .map_err(|e| format!("the core could not record the agent: {e}"))
    }
}

/// Reads the control stream into `messages` until it ends or fails (the
/// last message then says why).
async fn read_messages(
    mut recv: quinn::RecvStream,
    messages: mpsc::UnboundedSender<Result<AgentMessage, String>>,
) {
    loop {
        let message = match read_frame::<AgentMessage, _>(&mut recv, MAX_FRAME_BYTES).await {
            Ok(Some(message)) => Ok(message),
            Ok(None) => return,
            Err(e) => Err(e.to_string()),
        };
        let failed = message.is_err();
        if messages.send(message).is_err() || failed {
            return;
        }
    }
}

/// Serves the streams the agent opens: component fetches and questions
/// about its runs' children and task caches.
async fn serve_streams(
    connection: quinn::Connection,
    store: Store,
    subflows: Subflows,
    agent_id: String,
) {
    while let Ok((mut send, mut recv)) = connection.accept_bi().await {
        let store = store.clone();
        let subflows = subflows.clone();
        let agent_id = agent_id.clone();
        tokio::spawn(async move {
            let Ok(Some(request)) =
                read_frame::<StreamRequest, _>(&mut recv, MAX_FRAME_BYTES).await
            else {
                return;
            };
            match request {
                StreamRequest::Fetch(fetch) => serve_fetch(&store, fetch, &mut send).await,
                StreamRequest::Child { child } => {
                    let answer = subflows.answer(Asker::Agent(&agent_id), child).await;
                    send_answer(&mut send, answer).await;
                }
                StreamRequest::Cache { cache } => {
                    let answer = task_cache::answer(&store, Asker::Agent(&agent_id), cache).await;
                    send_answer(&mut send, answer).await;
                }
            }
        });
    }
}

/// Writes the answer to an execution's question and ends the stream; no
/// answer (the database failed) resets it, and the agent asks again.
async fn send_answer(send: &mut quinn::SendStream, answer: Option<impl serde::Serialize>) {
    match answer {
        Some(answer) => {
            if write_frame(&mut *send, &answer).await.is_ok() {
                let _ = send.finish();
            }
        }
        None => {
            let _ = send.reset(1_u32.into());
        }
    }
}

/// Answers a component fetch: the bytes follow a `Found` frame.
async fn serve_fetch(store: &Store, fetch: Fetch, send: &mut quinn::SendStream) {
    let written = match store.artifact_bytes(&fetch.digest).await {
        Ok(bytes) => {
            let size = bytes.len() as u64;
            match write_frame(&mut *send, &FetchAnswer::Found { size }).await {
                Ok(()) => send.write_all(&bytes).await.is_ok(),
                Err(_) => false,
            }
        }
        Err(e) => {
            write_frame(&mut *send, &FetchAnswer::Missing { reason: e.to_string() }).await.is_ok()
        }
    };
    if written {
        let _ = send.finish();
    }
}
