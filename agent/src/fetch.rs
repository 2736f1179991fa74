//! A run's component, fetched from the core on a stream of its own and
//! checked against the digest the assignment names. Every backend gets its
//! component this way; what it does with the bytes is its own business.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use baton_proto::v1::link::io::{IoError, read_frame, write_frame};
use baton_proto::v1::link::{Fetch, FetchAnswer, MAX_FRAME_BYTES};
use baton_sandbox::Digest;

use crate::agent::Shared;

/// The largest component fetched from the core.
const MAX_COMPONENT_BYTES: u64 = 64 << 20;
/// How long fetching a component may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a component could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("the agent is not connected to the core to fetch the component")]
    NotConnected,
    #[error("fetching the component: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("fetching the component: {0}")]
    Frame(#[from] IoError),
    #[error("fetching the component: the core closed the stream without answering")]
    NoAnswer,
    /// The core's own words: it has no such component.
    #[error("{0}")]
    Missing(String),
    #[error("the component is {size} bytes, over the agent's limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("reading the component's bytes: {0}")]
    Read(#[from] quinn::ReadExactError),
    #[error("fetching the component took over {0:?}")]
    TimedOut(Duration),
    #[error(
        "the component fetched for {expected} has digest sha256:{actual}: it was corrupted or replaced"
    )]
    DigestMismatch { expected: String, actual: Digest },
}

/// One turn per component at fetching and compiling it, so that the runs
/// of a component not yet compiled (and the core's `Prepare` of it) wait
/// for one fetch and one compile instead of each doing both: 64 runs of a
/// just-deployed 20 MB component would otherwise fetch 1.3 GB.
#[derive(Default)]
pub(crate) struct LoadTurns {
    turns: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
}

/// A component's turn at loading; the next waiter's begins when it drops.
pub(crate) struct LoadTurn {
    shared: Arc<Shared>,
    digest: Digest,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for LoadTurn {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut turns = self.shared.load_turns.turns.lock().unwrap_or_else(PoisonError::into_inner);
        // Nobody waits (the map holds the only handle): forget it.
        if turns.get(&self.digest).is_some_and(|turn| Arc::strong_count(turn) == 1) {
            turns.remove(&self.digest);
        }
    }
}

/// Where a run's component comes from: the core, by its digest.
pub(crate) struct ComponentSource {
    shared: Arc<Shared>,
    /// As the assignment names it (`sha256:<hex>`).
    artifact: String,
    digest: Digest,
}

impl ComponentSource {
    pub(crate) fn new(shared: Arc<Shared>, artifact: String, digest: Digest) -> Self {
        Self { shared, artifact, digest }
    }

    pub(crate) fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Waits for this component's turn at being fetched and compiled:
    /// whoever had it before may have left it compiled, so look again.
    pub(crate) async fn turn(&self) -> LoadTurn {
        let turn = Arc::clone(
            self.shared
                .load_turns
                .turns
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(self.digest)
                .or_default(),
        );
        let guard = turn.lock_owned().await;
        LoadTurn { shared: Arc::clone(&self.shared), digest: self.digest, guard: Some(guard) }
    }

    /// The component's bytes, checked against its digest.
    pub(crate) async fn fetch(&self) -> Result<Vec<u8>, FetchError> {
        let bytes = tokio::time::timeout(FETCH_TIMEOUT, self.fetch_unchecked())
            .await
            .map_err(|_| FetchError::TimedOut(FETCH_TIMEOUT))??;
        let actual = Digest::of(&bytes);
        if actual != self.digest {
            return Err(FetchError::DigestMismatch { expected: self.artifact.clone(), actual });
        }
        Ok(bytes)
    }

    async fn fetch_unchecked(&self) -> Result<Vec<u8>, FetchError> {
        let connection = self.shared.connection().ok_or(FetchError::NotConnected)?;
        let (mut send, mut recv) = connection.open_bi().await?;
        write_frame(&mut send, &Fetch { digest: self.artifact.clone() }).await?;
        // Nothing more to say on this stream; if it is already gone, reading
        // the answer says why.
        let _ = send.finish();
        let answer = read_frame::<FetchAnswer, _>(&mut recv, MAX_FRAME_BYTES).await?;
        match answer.ok_or(FetchError::NoAnswer)? {
            FetchAnswer::Missing { reason } => Err(FetchError::Missing(reason)),
            FetchAnswer::Found { size } if size > MAX_COMPONENT_BYTES => {
                Err(FetchError::TooLarge { size, limit: MAX_COMPONENT_BYTES })
            }
            FetchAnswer::Found { size } => {
                let len = usize::try_from(size)
                    .map_err(|_| FetchError::TooLarge { size, limit: MAX_COMPONENT_BYTES })?;
                let mut bytes = vec![0; len];
                recv.read_exact(&mut bytes).await?;
                Ok(bytes)
            }
        }
    }
}
