//! Events end to end: webhooks with good and bad signatures, events
//! emitted and listed by pattern, the live stream, agents' comings and
//! goings.

use std::io::BufRead;
use std::process::Stdio;
use std::time::{Duration, Instant};

use baton_tests::http::Connection;
use baton_tests::{AgentProcess, CoreProcess, finish, wait_until};
use hmac::{Hmac, Mac};
use serde_json::Value;

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[test]
fn a_signed_webhook_takes_good_signatures_and_refuses_bad_ones() {
    let core = CoreProcess::start(None);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    core.ok(
        h,
        &["webhook", "create", "--slug", "github", "--secret", "s3cret", "--event", "github.push"],
    );
    core.ok(h, &["webhook", "create", "--slug", "open"]);
    let listed: Value = serde_json::from_str(&core.ok(h, &["webhook", "ls", "--json"])).unwrap();
    assert_eq!(listed[0]["slug"], "github");
    assert_eq!(listed[0]["signed"], true);
    assert_eq!(listed[1]["event"], "webhook.open");

    let address = core.api_address();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut http = Connection::open(address).await;
        let body = br#"{"ref":"refs/heads/main","commits":3}"#;
        let good = sign("s3cret", body);
        let (status, _) =
            http.call_with("POST", "/hooks/github", &[("X-Baton-Signature", &good)], body).await;
        assert_eq!(status, 202);
        let wrong = sign("guess", body);
        for headers in [vec![("X-Baton-Signature", wrong.as_str())], vec![]] {
            let (status, answer) = http.call_with("POST", "/hooks/github", &headers, body).await;
            assert_eq!(status, 401, "{}", String::from_utf8_lossy(&answer));
        }
        // Signed for another body.
        let (status, _) = http
            .call_with("POST", "/hooks/github", &[("X-Baton-Signature", &good)], b"{\"ref\":\"x\"}")
            .await;
        assert_eq!(status, 401);
        // Unsigned webhook, and a body that is not JSON.
        let (status, _) = http.call("POST", "/hooks/open", b"plain words").await;
        assert_eq!(status, 202);
        let (status, _) = http.call("POST", "/hooks/nobody", b"{}").await;
        assert_eq!(status, 404);
    });
    let pushes = core.events(h, "github.*");
    assert_eq!(pushes.len(), 1, "only the good call is an event: {pushes:#?}");
    assert_eq!(pushes[0]["payload"]["commits"], 3);
    assert_eq!(pushes[0]["resource"], "webhook/github");
    assert_eq!(core.events(h, "webhook.open")[0]["payload"]["body"], "plain words");
}

#[test]
fn events_are_emitted_listed_by_pattern_and_streamed_live() {
    let core = CoreProcess::start(None);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let mut watch = core
        .baton(h)
        .args(["event", "watch", "--json", "--name", "deploy.*"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    // The stream is open once the watcher is connected; emit until it sees one.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (sender, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.by_ref() {
            if sender.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let seen: Value = loop {
        core.ok(h, &["event", "emit", "other.thing"]);
        core.ok(
            h,
            &[
                "event",
                "emit",
                "deploy.done",
                "--resource",
                "app/shop",
                "--payload",
                r#"{"version":7}"#,
            ],
        );
        if let Ok(line) = received.recv_timeout(Duration::from_millis(500)) {
            break serde_json::from_str(&line).unwrap();
        }
        assert!(Instant::now() < deadline, "the watcher saw nothing");
    };
    assert_eq!(seen["name"], "deploy.done");
    assert_eq!(seen["resource"], "app/shop");
    assert_eq!(seen["payload"]["version"], 7);
    let _ = watch.kill();
    let _ = watch.wait();

    let listed = core.events(h, "deploy.*");
    assert!(!listed.is_empty() && listed.iter().all(|e| e["name"] == "deploy.done"));
    let refused = finish(core.baton(h).args(["event", "emit", "x", "--payload", "{not json"]));
    assert!(refused.stderr.contains("--payload is not valid JSON"), "{}", refused.stderr);
}

#[test]
fn agents_connecting_and_leaving_are_events() {
    let core = CoreProcess::start(None);
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let token = core.agent_token(home.path());
    let mut agent = AgentProcess::start(&core, home.path(), &token, data.path());
    wait_until("agent.connected", Duration::from_secs(10), || {
        !core.events(home.path(), "agent.connected").is_empty()
    });
    let connected = &core.events(home.path(), "agent.connected")[0];
    assert_eq!(connected["related"][0], "pool/default");
    agent.kill();
    // Killed: the link times out or the watchdog notices.
    wait_until("agent.disconnected", Duration::from_secs(30), || {
        !core.events(home.path(), "agent.disconnected").is_empty()
    });
    assert_eq!(
        core.events(home.path(), "agent.disconnected")[0]["resource"],
        connected["resource"]
    );
}
