//! Outgoing HTTP from flows, through a real core and agent: granted per
//! deployment (`capabilities.outgoing_hosts`), refused otherwise with the
//! host named in the run's log, redirects checked like requests, and
//! responses held to the run's size cap. Test servers on loopback count
//! what reaches them, so a refusal that still sent something fails.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use baton_tests::System;
use serde_json::{Value, json};

use crate::agents::{run, wait_for};

/// A loopback HTTP server answering `/data` with JSON, `/redirect?to=URL`
/// with a 302 there, and `/big` with 17 MiB; counts the requests it got.
struct TestServer {
    port: u16,
    requests: Arc<AtomicUsize>,
}

impl TestServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                let mut request_line = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // The rest of the head.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, headers, body): (&str, String, Vec<u8>) = if path == "/data" {
                    (
                        "200 OK",
                        "content-type: application/json\r\n".into(),
                        br#"{"rate": 1.08}"#.to_vec(),
                    )
                } else if let Some(to) = path.strip_prefix("/redirect?to=") {
                    ("302 Found", format!("location: {to}\r\n"), Vec::new())
                } else if path == "/big" {
                    ("200 OK", String::new(), vec![b'x'; 17 << 20])
                } else {
                    ("404 Not Found", String::new(), Vec::new())
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
            }
        });
        Self { port, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn logs(system: &System, id: &str) -> Vec<String> {
    let listed = system.ok(&["run", "logs", id, "--json"]);
    let lines: Vec<Value> = serde_json::from_str(&listed).unwrap();
    lines.iter().map(|line| line["message"].as_str().unwrap_or_default().to_owned()).collect()
}

fn ends(system: &System, url: &str, state: &str) -> (Value, Vec<String>) {
    let id = run(&system.core, system.home.path(), "fetch/default", &[&format!("url={url}")]);
    let (done, _) = wait_for(&system.core, system.home.path(), &id, state, Duration::from_secs(30));
    (done, logs(system, &id))
}

#[test]
fn a_flow_reaches_the_hosts_its_deployment_allows_and_no_other() {
    let allowed = TestServer::start();
    let refused = TestServer::start();
    let system = System::start(2);
    let yaml = format!("    capabilities: {{outgoing_hosts: ['127.0.0.1:{}']}}\n", allowed.port);
    system.core.deploy(system.home.path(), "fetch", "default", &yaml);

    // Allowed: the data comes back.
    let (done, _) = ends(&system, &allowed.url("/data"), "COMPLETED");
    assert_eq!(done["output"]["body"], json!({"rate": 1.08}), "{done:#}");
    assert_eq!(allowed.requests(), 1);

    // Not listed: refused as an HTTP error the flow sees, the host named
    // in the log, nothing sent.
    let (failed, logs) = ends(&system, &refused.url("/data"), "FAILED");
    let message = failed["state_message"].as_str().unwrap_or_default();
    assert!(message.contains("HttpRequestDenied"), "{failed:#}");
    let named = format!("outgoing HTTP request to http://127.0.0.1:{} refused", refused.port);
    assert!(logs.iter().any(|line| line.contains(&named)), "{logs:?}");
    assert_eq!(refused.requests(), 0, "a refused request reached its server");

    // A redirect to a host not listed is refused like a request.
    let bounce = allowed.url(&format!("/redirect?to={}", refused.url("/data")));
    let (_, logs) = ends(&system, &bounce, "FAILED");
    assert!(logs.iter().any(|line| line.contains(&named)), "{logs:?}");
    assert_eq!(refused.requests(), 0, "a redirect reached a host not listed");
    assert_eq!(allowed.requests(), 2);

    // A response over the run's cap is cut off with an error.
    let (failed, logs) = ends(&system, &allowed.url("/big"), "FAILED");
    assert!(
        logs.iter().any(|line| line.contains("over the 16 MiB a run may receive")),
        "{logs:?} {failed:#}"
    );

    // `localhost` resolves to the agent's own machine: only an entry
    // naming it exactly opens it, never a wildcard.
    let yaml = "    capabilities: {outgoing_hosts: ['*:*']}\n";
    system.core.deploy(system.home.path(), "fetch", "default", yaml);
    let before = allowed.requests();
    let (_, logs) = ends(&system, &format!("http://localhost:{}/data", allowed.port), "FAILED");
    assert!(logs.iter().any(|line| line.contains("resolves to 127.0.0.1")), "{logs:?}");
    assert_eq!(allowed.requests(), before);
}
