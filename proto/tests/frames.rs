//! Any bytes a peer sends decode to a message or an error, never a panic:
//! a proptest corpus of random and mutated frames, run on every test run.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use baton_proto::v1::link::{
    AgentEvent, AgentEventBody, AgentMessage, CoreMessage, Execution, Fetch, FetchAnswer, Hello,
    MAX_FRAME_BYTES, decode_frame, encode,
};
use baton_proto::v1::{LogLevel, PoolKind, ReportBody, RunReport, Timestamp};
use proptest::prelude::*;

fn decode_all(bytes: &[u8]) {
    // Each kind a peer may receive; the answer itself does not matter.
    let _ = decode_frame::<Hello>(bytes, MAX_FRAME_BYTES);
    let _ = decode_frame::<AgentMessage>(bytes, MAX_FRAME_BYTES);
    let _ = decode_frame::<CoreMessage>(bytes, MAX_FRAME_BYTES);
    let _ = decode_frame::<Fetch>(bytes, MAX_FRAME_BYTES);
    let _ = decode_frame::<FetchAnswer>(bytes, MAX_FRAME_BYTES);
}

fn valid_frames() -> Vec<Vec<u8>> {
    let report = RunReport {
        seq: 1,
        at: Timestamp(5),
        body: ReportBody::Log { level: LogLevel::Info, message: "hi".into(), task_id: None },
    };
    vec![
        encode(&AgentMessage::Event(AgentEvent {
            seq: 9,
            run_id: "r".into(),
            attempt: 2,
            body: AgentEventBody::Report { report },
        }))
        .unwrap(),
        encode(&AgentMessage::Heartbeat {
            running: vec![Execution { run_id: "a".into(), attempt: 1 }],
            prepared: vec!["sha256:00".into()],
        })
        .unwrap(),
        encode(&CoreMessage::Welcome { acked_seq: 3, heartbeat_ms: 1000, lease_ms: 10_000 })
            .unwrap(),
        encode(&CoreMessage::Stop { run_id: "a".into(), attempt: 1, reason: "stale".into() })
            .unwrap(),
        encode(&Fetch { digest: "sha256:00".into() }).unwrap(),
        encode(&CoreMessage::Prepare { artifact: "sha256:00".into(), pool_kind: PoolKind::Wasm })
            .unwrap(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn mutated_frames_never_panic(
        which in 0_usize..6,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let mut frame = valid_frames()[which].clone();
        for (at, byte) in flips {
            let at = at % frame.len();
            frame[at] = byte;
        }
        let cut = cut % (frame.len() + 1);
        decode_all(&frame[..cut]);
        decode_all(&frame);
    }
}
