//! A client that gets through TLS (it trusts the core) but then sends
//! garbage, oversized frames, or nothing at all: each is cut off, and the
//! core goes on serving agents.

use std::sync::Arc;
use std::time::Duration;

use baton_agent::tls::{PinnedCaVerifier, quic_client_config};
use baton_proto::v1::link::{self, AgentToken, CoreMessage, Hello, MAX_FRAME_BYTES};
use baton_tests::{AgentProcess, CoreProcess, finish};

/// Opens a control stream to the core, writes `bytes`, and returns what the
/// core answered (a frame, or how the stream ended).
async fn send(core: &CoreProcess, fingerprint: &str, bytes: Vec<u8>) -> String {
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(
        quic_client_config(Arc::new(PinnedCaVerifier::new(fingerprint))).unwrap(),
    );
    let connection =
        endpoint.connect(core.quic.parse().unwrap(), link::SERVER_NAME).unwrap().await.unwrap();
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    send.write_all(&bytes).await.unwrap();
    let answer = tokio::time::timeout(
        Duration::from_secs(15),
        link::io::read_frame::<CoreMessage, _>(&mut recv, MAX_FRAME_BYTES),
    )
    .await;
    let closed = tokio::time::timeout(Duration::from_secs(15), connection.closed()).await;
    format!("{answer:?} / {closed:?}")
}

fn hello(token: &str) -> Hello {
    Hello {
        token: token.to_owned(),
        agent_id: "hostile".into(),
        name: "hostile".into(),
        pool: "default".into(),
        queues: vec![],
        slots: 1,
        cached: vec![],
        running: vec![],
        version: "0".into(),
        new_process: true,
        core_address: String::new(),
    }
}

#[test]
fn garbage_after_the_handshake_is_cut_off_and_the_core_goes_on() {
    let core = CoreProcess::start(None);
    let home = tempfile::tempdir().unwrap();
    let token = core.agent_token(home.path());
    let parsed: AgentToken = token.parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // A header announcing 4 GiB: refused from the header alone.
        let mut huge = u32::MAX.to_be_bytes().to_vec();
        huge.extend(link::VERSION.to_be_bytes());
        let answer = send(&core, &parsed.fingerprint, huge).await;
        assert!(answer.contains("no valid hello"), "{answer}");

        // Bytes that are no frame at all, a frame of another version, JSON
        // that is not a hello.
        let mut other_version = link::encode(&hello(&token)).unwrap();
        other_version[4..6].copy_from_slice(&9_u16.to_be_bytes());
        let not_json = [0, 0, 0, 3, 0, 1, b'{', b'{', b'{'].to_vec();
        for bytes in [vec![0xff; 64], other_version, not_json] {
            let answer = send(&core, &parsed.fingerprint, bytes).await;
            assert!(answer.contains("no valid hello"), "{answer}");
        }

        // A well-formed hello with a forged secret: refused, with the reason.
        let forged = AgentToken { secret: "0".repeat(64), ..parsed.clone() };
        let answer =
            send(&core, &parsed.fingerprint, link::encode(&hello(&forged.to_string())).unwrap())
                .await;
        assert!(answer.contains("Refused") && answer.contains("not valid"), "{answer}");
    });

    // The core still serves a real agent.
    let data = tempfile::tempdir().unwrap();
    let _agent = AgentProcess::start(&core, home.path(), &token, data.path());
    core.deploy(home.path(), "hello", "default", "    parameters: {a: 1}\n");
    let watched = finish(core.baton(home.path()).args([
        "deployment",
        "run",
        "hello/default",
        "--param",
        "b=1",
        "--watch",
    ]));
    assert_eq!((watched.status, watched.stdout.trim()), (Some(0), "2"), "{}", watched.stderr);
}
