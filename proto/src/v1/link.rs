//! The agent link: what core and agents say to each other over QUIC (ALPN
//! [`ALPN`]), and how it is framed.
//!
//! An agent dials the core and opens one bidirectional *control* stream. Its
//! first frame is [`Hello`]; the core answers [`CoreMessage::Welcome`] or
//! [`CoreMessage::Refused`]. Then the core pushes assignments and
//! cancellations, and the agent sends heartbeats and numbered events, which
//! the core acknowledges. Components are fetched on streams of their own: the
//! agent sends a [`Fetch`], the core answers a [`FetchAnswer`] frame followed
//! by the component's raw bytes until the stream ends.
//!
//! A frame is a 4-byte big-endian body length, a 2-byte big-endian protocol
//! version, then the body as JSON. Decoding checks the length against a cap
//! before reading a byte of the body, and never panics on any input.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::run::{RunOutcome, RunReport};
use super::{Infrastructure, PoolKind};

/// The ALPN protocol both ends must offer.
pub const ALPN: &[u8] = b"baton/1";
/// The version every frame carries; a peer with another one is refused.
/// Version 2 names the attempt (the fencing token) in every message about
/// a run.
pub const VERSION: u16 = 2;
/// Bytes before a frame's body: length (4) and version (2).
pub const HEADER_BYTES: usize = 6;
/// The largest frame body either end accepts.
pub const MAX_FRAME_BYTES: u32 = 8 << 20;
/// The name the core's certificate is issued for, whatever its address.
pub const SERVER_NAME: &str = "baton-core";

/// Why a frame could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The announced body is larger than the cap.
    TooLarge { len: u64, cap: u32 },
    /// The peer speaks another protocol version.
    Version { theirs: u16 },
    /// The body is not a message of the expected kind.
    Malformed(String),
    /// The bytes end inside a frame.
    Truncated,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge { len, cap } => {
                write!(f, "a frame of {len} bytes is over the {cap}-byte cap")
            }
            FrameError::Version { theirs } => write!(
                f,
                "the peer speaks protocol version {theirs}; this side speaks {VERSION}: upgrade the older one"
            ),
            FrameError::Malformed(why) => write!(f, "malformed frame: {why}"),
            FrameError::Truncated => write!(f, "the stream ended inside a frame"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Encodes `message` as one frame.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    let body = serde_json::to_vec(message).map_err(|e| FrameError::Malformed(e.to_string()))?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|len| *len <= MAX_FRAME_BYTES)
        .ok_or(FrameError::TooLarge { len: body.len() as u64, cap: MAX_FRAME_BYTES })?;
    let mut frame = Vec::with_capacity(HEADER_BYTES + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&VERSION.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// The size of `message`'s frame body, counted without building it: a
/// sender checks that a message fits before committing to send it.
pub fn body_size<T: Serialize>(message: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Serialising our own types into a counter cannot fail; if it did, the
    // size is unknown and the send's own check decides.
    let _ = serde_json::to_writer(&mut count, message);
    count.0
}

/// Reads a frame's header: the length of the body that follows.
pub fn body_len(header: [u8; HEADER_BYTES], cap: u32) -> Result<usize, FrameError> {
    let [l0, l1, l2, l3, v0, v1] = header;
    let len = u32::from_be_bytes([l0, l1, l2, l3]);
    let version = u16::from_be_bytes([v0, v1]);
    if version != VERSION {
        return Err(FrameError::Version { theirs: version });
    }
    if len > cap {
        return Err(FrameError::TooLarge { len: u64::from(len), cap });
    }
    usize::try_from(len).map_err(|_| FrameError::TooLarge { len: u64::from(len), cap })
}

/// Decodes a frame's body.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Decodes the first frame of `bytes`; returns it and the bytes it took.
pub fn decode_frame<T: DeserializeOwned>(bytes: &[u8], cap: u32) -> Result<(T, usize), FrameError> {
    let header: [u8; HEADER_BYTES] =
        bytes.get(..HEADER_BYTES).and_then(|h| h.try_into().ok()).ok_or(FrameError::Truncated)?;
    let len = body_len(header, cap)?;
    let end = HEADER_BYTES.checked_add(len).ok_or(FrameError::Truncated)?;
    let body = bytes.get(HEADER_BYTES..end).ok_or(FrameError::Truncated)?;
    Ok((decode(body)?, end))
}

/// What `baton agent token create` prints: everything an agent needs to
/// trust the core (the SHA-256 fingerprint of the core's CA certificate)
/// and to be trusted by it (a token id and its secret).
/// Written `baton1.<id>.<secret>.<fingerprint>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentToken {
    pub id: String,
    pub secret: String,
    /// Lower-case hex SHA-256 of the CA certificate's DER bytes.
    pub fingerprint: String,
}

impl std::fmt::Display for AgentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "baton1.{}.{}.{}", self.id, self.secret, self.fingerprint)
    }
}

impl std::str::FromStr for AgentToken {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let hex_part = |part: &str, what: &str, len: usize| {
            if part.len() == len && part.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(part.to_ascii_lowercase())
            } else {
                Err(format!("not an agent token: its {what} should be {len} hex digits"))
            }
        };
        let parts: Vec<&str> = text.trim().split('.').collect();
        match parts.as_slice() {
            ["baton1", id, secret, fingerprint] => Ok(AgentToken {
                id: hex_part(id, "id", 32)?,
                secret: hex_part(secret, "secret", 64)?,
                fingerprint: hex_part(fingerprint, "fingerprint", 64)?,
            }),
            _ => Err("not an agent token: expected baton1.<id>.<secret>.<fingerprint>, as printed by `baton agent token create`".to_owned()),
        }
    }
}

/// The agent's first frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The token from `baton agent token create`.
    pub token: String,
    /// Chosen by the agent once and kept in its data directory, so the core
    /// knows it again after a reconnect.
    pub agent_id: String,
    /// A name for people (the host name by default).
    pub name: String,
    pub pool: String,
    /// Queues of the pool to take runs from; empty means all.
    #[serde(default)]
    pub queues: Vec<String>,
    /// Runs it can run at once.
    pub slots: u32,
    /// Digests of the components it has cached.
    #[serde(default)]
    pub cached: Vec<String>,
    /// Executions it is still running (after a reconnect).
    #[serde(default)]
    pub running: Vec<Execution>,
    /// The agent's version, for people.
    pub version: String,
    /// The address it reached this core at, as it was given it (`HOST:PORT`):
    /// which of several cores it is on, for people.
    #[serde(default)]
    pub core_address: String,
    /// The first hello of this agent process: runs the core remembers for
    /// this agent id died with an earlier process.
    #[serde(default)]
    pub new_process: bool,
}

/// What the core sends on the control stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CoreMessage {
    /// The agent is in. Events up to `acked_seq` were applied before (the
    /// agent drops them and resends the rest); heartbeats are expected
    /// every `heartbeat_ms` (each is answered with an `Ack`). An agent that
    /// hears nothing from the core for `lease_ms` has lost its lease: the
    /// core may have given its runs to others, so it stops them (0: no
    /// lease).
    Welcome {
        acked_seq: u64,
        heartbeat_ms: u64,
        #[serde(default)]
        lease_ms: u64,
    },
    /// The agent is not let in; the connection closes.
    Refused { reason: String },
    /// Run this.
    Assign(Box<Assignment>),
    /// Stop this execution of a run: its cancellation was asked for (it
    /// ends `CANCELLED`).
    Cancel { run_id: String, attempt: u32 },
    /// Stop this execution: it no longer holds its run (a newer attempt
    /// does, or the run ended while the agent was away). Its outcome will
    /// not be applied; `reason` goes into its log.
    Stop { run_id: String, attempt: u32, reason: String },
    /// Events up to `seq` are applied.
    Ack { seq: u64 },
    /// A component deployed to the agent's pool (`artifact`, a `sha256:`
    /// digest) for a backend of `pool_kind`: fetch and compile it now, so
    /// that no run of it waits for a compile. The agent names it in a
    /// heartbeat's `prepared` once done.
    Prepare { artifact: String, pool_kind: PoolKind },
}

/// A run pushed to an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub run_id: String,
    /// Which dispatch of the run this is: the fencing token that every
    /// event about this execution carries.
    pub attempt: u32,
    pub flow: String,
    /// `flow/name`.
    pub deployment: String,
    /// The component's `sha256:` digest.
    pub artifact: String,
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// Linear memory cap in bytes, if the deployment sets one.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// Wall-clock limit in milliseconds, if the deployment sets one.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Variables and secrets the run may read; `None` when granted but unset.
    #[serde(default)]
    pub variables: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub secrets: BTreeMap<String, Option<String>>,
    /// Where the run may send HTTP requests: its deployment's
    /// `capabilities.outgoing_hosts` (see [`super::outgoing`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outgoing_hosts: Vec<String>,
    /// Native programs the run may start: its deployment's
    /// `capabilities.commands` (granted only outside the wasm sandbox).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// The key of this execution, for a runner with no link to its agent
    /// (a pod) to make the run's subflow calls over the API
    /// (`POST /api/runs/{id}/children`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_key: Option<String>,
    /// The type of the pool the run is in: which backend executes it.
    #[serde(default)]
    pub pool_kind: PoolKind,
    /// Its job variables, resolved: the pool's base job template's
    /// defaults, its deployment's, its own.
    #[serde(default)]
    pub job_variables: serde_json::Map<String, serde_json::Value>,
}

/// What the agent sends on the control stream after its [`Hello`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    /// Still here; these executions are running.
    Heartbeat {
        running: Vec<Execution>,
        /// Components compiled since the last heartbeat (see
        /// [`CoreMessage::Prepare`]).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        prepared: Vec<String>,
    },
    Event(AgentEvent),
}

/// Something that happened to a run on the agent. `seq` counts the agent's
/// events from 1 without gaps, across reconnects, so the core applies each
/// exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentEvent {
    pub seq: u64,
    pub run_id: String,
    /// The attempt of the execution it happened in.
    pub attempt: u32,
    #[serde(flatten)]
    pub body: AgentEventBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AgentEventBody {
    /// The flow started (`RUNNING`), there.
    Started { infrastructure: Infrastructure },
    /// A log line, a task or an event from the running flow.
    Report { report: RunReport },
    /// The run ended.
    Finished { outcome: RunOutcome },
    /// The agent could not start the run (say, its component could not be
    /// fetched); the core hands it back.
    Declined { reason: String },
}

impl AgentEvent {
    /// What is sent instead of this event when it is `size` bytes, too
    /// large for a frame: a report becomes an error line in the run's log,
    /// an outcome a failure, a refusal a shorter one. The stand-in keeps the
    /// event's numbers, so the events behind it are never blocked by it.
    pub fn stand_in(self, size: usize) -> AgentEvent {
        use super::limits::{MAX_MESSAGE_BYTES, cut, over_limit};
        let frame = MAX_FRAME_BYTES as usize;
        let body = match self.body {
            AgentEventBody::Report { report } => AgentEventBody::Report {
                report: RunReport {
                    body: super::run::ReportBody::Log {
                        level: super::run::LogLevel::Error,
                        message: format!(
                            "a report was dropped: {}",
                            over_limit("its frame", size, frame)
                        ),
                        task_id: None,
                    },
                    ..report
                },
            },
            AgentEventBody::Finished { .. } => AgentEventBody::Finished {
                outcome: RunOutcome::Failed {
                    message: format!(
                        "the run's outcome could not be sent: {}",
                        over_limit("its frame", size, frame)
                    ),
                    details: None,
                },
            },
            AgentEventBody::Declined { reason } => {
                AgentEventBody::Declined { reason: cut(&reason, MAX_MESSAGE_BYTES) }
            }
            started @ AgentEventBody::Started { .. } => started,
        };
        AgentEvent { body, ..self }
    }
}

/// One execution of a run: the run and the attempt it was assigned as.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Execution {
    pub run_id: String,
    pub attempt: u32,
}

/// First frame on a fetch stream, from the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fetch {
    pub digest: String,
}

/// What an execution asks about its children ([`super::ChildOp`]); the
/// core answers one [`super::ChildAnswer`] frame on the same stream, then
/// ends it. Only the agent holding the run (this attempt of it) may ask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildRequest {
    pub run_id: String,
    pub attempt: u32,
    #[serde(flatten)]
    pub op: super::ChildOp,
}

/// What an execution asks of the task cache ([`super::CacheOp`]); the
/// core answers one [`super::CacheAnswer`] frame on the same stream, then
/// ends it. Only the agent holding the run (this attempt of it) may ask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheRequest {
    pub run_id: String,
    pub attempt: u32,
    #[serde(flatten)]
    pub op: super::CacheOp,
}

/// The first frame of a stream the agent opens besides its control
/// stream: a component fetch, or a question about a run's children or
/// its task cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StreamRequest {
    Child { child: ChildRequest },
    Cache { cache: CacheRequest },
    Fetch(Fetch),
}

/// The core's answer on a fetch stream; with `Found`, the component's bytes
/// follow until the stream ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FetchAnswer {
    Found { size: u64 },
    Missing { reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_too_large_for_a_frame_has_a_stand_in_that_fits() {
        use crate::v1::run::{LogLevel, ReportBody};
        let huge = "x".repeat(MAX_FRAME_BYTES as usize);
        let event = |body| AgentEvent { seq: 7, run_id: "r".into(), attempt: 2, body };
        let report = event(AgentEventBody::Report {
            report: RunReport {
                seq: 3,
                at: crate::v1::Timestamp(1),
                body: ReportBody::Log {
                    level: LogLevel::Info,
                    message: huge.clone(),
                    task_id: None,
                },
            },
        });
        let finished = event(AgentEventBody::Finished {
            outcome: RunOutcome::Completed { output: serde_json::Value::String(huge.clone()) },
        });
        for too_large in [report, finished] {
            let size = body_size(&AgentMessage::Event(too_large.clone()));
            assert!(encode(&AgentMessage::Event(too_large.clone())).is_err());
            let stand_in = too_large.stand_in(size);
            assert_eq!((stand_in.seq, stand_in.attempt), (7, 2), "keeps its numbers");
            let frame = encode(&AgentMessage::Event(stand_in.clone())).unwrap();
            assert!(frame.len() < 1024, "{stand_in:?}");
            let said = format!("{stand_in:?}");
            assert!(said.contains("exceeds the 8 MiB limit"), "{said}");
        }
    }

    #[test]
    fn tokens_round_trip_and_bad_ones_say_why() {
        let token =
            AgentToken { id: "a".repeat(32), secret: "b".repeat(64), fingerprint: "c".repeat(64) };
        assert_eq!(token.to_string().parse::<AgentToken>(), Ok(token));
        let error = "baton1.xyz.1.2".parse::<AgentToken>().unwrap_err();
        assert!(error.contains("id should be 32 hex digits"), "{error}");
        assert!("hello".parse::<AgentToken>().is_err());
    }

    #[test]
    fn frames_round_trip() {
        let message = CoreMessage::Cancel { run_id: "r1".to_owned(), attempt: 1 };
        let frame = encode(&message).unwrap();
        let (decoded, used) = decode_frame::<CoreMessage>(&frame, MAX_FRAME_BYTES).unwrap();
        assert_eq!((decoded, used), (message, frame.len()));
    }

    #[test]
    fn oversized_frames_are_refused_from_the_header() {
        let mut frame =
            encode(&AgentMessage::Heartbeat { running: vec![], prepared: vec![] }).unwrap();
        frame[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            decode_frame::<AgentMessage>(&frame, MAX_FRAME_BYTES),
            Err(FrameError::TooLarge { len: u64::from(u32::MAX), cap: MAX_FRAME_BYTES })
        );
    }

    #[test]
    fn another_version_is_named() {
        let mut frame =
            encode(&AgentMessage::Heartbeat { running: vec![], prepared: vec![] }).unwrap();
        frame[4..6].copy_from_slice(&7_u16.to_be_bytes());
        let error = decode_frame::<AgentMessage>(&frame, MAX_FRAME_BYTES).unwrap_err();
        assert_eq!(error, FrameError::Version { theirs: 7 });
        assert!(error.to_string().contains("version 7"));
    }

    #[test]
    fn truncated_and_corrupt_frames_are_errors() {
        let frame = encode(&CoreMessage::Ack { seq: 3 }).unwrap();
        for cut in 0..frame.len() {
            assert!(decode_frame::<CoreMessage>(&frame[..cut], MAX_FRAME_BYTES).is_err());
        }
        let mut corrupt = frame.clone();
        corrupt[HEADER_BYTES] = b'[';
        assert!(matches!(
            decode_frame::<CoreMessage>(&corrupt, MAX_FRAME_BYTES),
            Err(FrameError::Malformed(_))
        ));
    }
}

/// Reading and writing frames on async streams (QUIC streams, or anything
/// else that is `AsyncRead`/`AsyncWrite`).
#[cfg(feature = "io")]
pub mod io {
    use serde::{Serialize, de::DeserializeOwned};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    use super::{FrameError, HEADER_BYTES, body_len, decode, encode};

    /// Why a frame could not be read or written on a stream.
    #[derive(Debug)]
    pub enum IoError {
        Frame(FrameError),
        Stream(std::io::Error),
    }

    impl std::fmt::Display for IoError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                IoError::Frame(e) => e.fmt(f),
                IoError::Stream(e) => write!(f, "the stream failed: {e}"),
            }
        }
    }

    impl std::error::Error for IoError {}

    /// Reads one frame; `None` when the stream ended cleanly between frames.
    pub async fn read_frame<T, R>(reader: &mut R, cap: u32) -> Result<Option<T>, IoError>
    where
        T: DeserializeOwned,
        R: AsyncRead + Unpin,
    {
        let mut header = [0_u8; HEADER_BYTES];
        let mut filled = 0;
        while filled < HEADER_BYTES {
            let rest = header.get_mut(filled..).unwrap_or_default();
            match reader.read(rest).await.map_err(IoError::Stream)? {
                0 if filled == 0 => return Ok(None),
                0 => return Err(IoError::Frame(FrameError::Truncated)),
                n => filled += n,
            }
        }
        let len = body_len(header, cap).map_err(IoError::Frame)?;
        let mut body = vec![0_u8; len];
        reader.read_exact(&mut body).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => IoError::Frame(FrameError::Truncated),
            _ => IoError::Stream(e),
        })?;
        decode(&body).map(Some).map_err(IoError::Frame)
    }

    /// Writes one frame.
    pub async fn write_frame<T, W>(writer: &mut W, message: &T) -> Result<(), IoError>
    where
        T: Serialize,
        W: AsyncWrite + Unpin,
    {
        let frame = encode(message).map_err(IoError::Frame)?;
        writer.write_all(&frame).await.map_err(IoError::Stream)
    }
}
