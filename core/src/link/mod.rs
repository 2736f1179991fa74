//! The QUIC gateway agents connect to (ALPN `baton/1`).
//!
//! Each connection is one agent session: the agent's hello is checked
//! against its token, then assignments and cancellations flow to the agent
//! on the control stream while its heartbeats and numbered events flow
//! back; every other stream the agent opens is a component fetch.

mod events;
mod session;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::dispatch::Dispatcher;
use crate::prepare::Preparer;
use crate::store::Store;
use crate::subflows::Subflows;
pub use tls::{CoreIdentity, TlsError};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("binding QUIC on {address}: {source}")]
    Bind { address: SocketAddr, source: std::io::Error },
}

/// What the gateway serves agents from.
pub struct LinkServices {
    pub store: Store,
    pub dispatcher: Dispatcher,
    /// What answers their runs' subflow calls.
    pub subflows: Subflows,
    /// Asks an agent that connects to compile its pool's components.
    pub preparer: Preparer,
}

/// Streams an agent may have open at once besides its control stream.
const MAX_AGENT_STREAMS: u32 = 4096;

/// A listening gateway.
pub struct Link {
    pub address: SocketAddr,
    endpoint: quinn::Endpoint,
}

/// UDP buffers large enough that a burst (a component being fetched) is not
/// dropped by the kernel.
const SOCKET_BUFFER_BYTES: usize = 4 << 20;

fn udp_socket(address: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel may cap them lower.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    socket.bind(&address.into())?;
    Ok(socket.into())
}

impl Link {
    /// Binds `listen` and serves agents until `stop`.
    pub fn start(
        listen: SocketAddr,
        identity: &CoreIdentity,
        services: LinkServices,
        stop: CancellationToken,
    ) -> Result<Self, LinkError> {
        let LinkServices { store, dispatcher, subflows, preparer } = services;
        let mut transport = quinn::TransportConfig::default();
        // Each run waiting for a subflow holds a stream; fetches come on
        // top.
        transport.max_concurrent_bidi_streams(MAX_AGENT_STREAMS.into());
        let heartbeat = dispatcher.config().heartbeat;
        transport.keep_alive_interval(Some(heartbeat));
        // Silence is judged by the dispatcher's watchdog; QUIC's own idle
        // timeout only frees connections long dead.
        let idle = dispatcher.config().crash_after.saturating_mul(3).max(Duration::from_secs(10));
        transport.max_idle_timeout(idle.try_into().ok());
        let config = identity.quic_server_config(transport)?;
        let bind_error = |source| LinkError::Bind { address: listen, source };
        let socket = udp_socket(listen).map_err(bind_error)?;
        let endpoint = quinn::Endpoint::new(
            identity.endpoint_config(),
            Some(config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(bind_error)?;
        let address = endpoint.local_addr().map_err(bind_error)?;
        let accepting = endpoint.clone();
        let fingerprint = identity.fingerprint();
        tokio::spawn(async move {
            loop {
                let incoming = tokio::select! {
                    () = stop.cancelled() => break,
                    incoming = accepting.accept() => incoming,
                };
                let Some(incoming) = incoming else { break };
                let session = session::Session {
                    store: store.clone(),
                    dispatcher: dispatcher.clone(),
                    subflows: subflows.clone(),
                    preparer: preparer.clone(),
                    fingerprint: fingerprint.clone(),
                    stop: stop.clone(),
                };
                tokio::spawn(async move {
                    let remote = incoming.remote_address();
                    match incoming.await {
                        Ok(connection) => session.serve(connection).await,
                        Err(e) => tracing::info!(%remote, error = %e, "agent handshake failed"),
                    }
                });
            }
            accepting.close(0_u32.into(), b"core stopping");
        });
        Ok(Self { address, endpoint })
    }

    /// Waits until every connection is closed (after `stop`).
    pub async fn wait_idle(&self) {
        self.endpoint.wait_idle().await;
    }
}
