//! The cost of an outgoing HTTP request made from inside the sandbox, against
//! the same request made natively, both to one server on loopback, as
//! recorded in BENCHMARKS.md (goal: sandbox ≤ 1.5× native + 100 µs).
//!
//! `cargo bench -p baton-sandbox --bench http`
//!
//! Sandbox: the `fetch` flow with `repeat` N, less the median run with
//! `repeat` 1, over N - 1, so a run's fixed cost (instantiating,
//! parameters, output) drops out. Native: N requests in turn with hyper's
//! HTTP/1 client, a new connection each, as the sandbox's `http/send.rs`
//! makes them (same client and I/O adapter, same current-thread runtime,
//! no connection reuse on either side). Rounds interleave the three
//! measurements so drift hits them alike.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark code"
)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use baton_proto::v1::RunOutcome;
use baton_proto::v1::outgoing::OutgoingHosts;
use baton_sandbox::{Grants, LoadedFlow, ReportCollector, RunRequest, Sandbox, SandboxConfig};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use serde_json::json;
use wasmtime_wasi_http::io::TokioIo;

/// What the server answers, to every request.
const BODY: &str = r#"{"rate": 1.08}"#;

/// A blocking HTTP/1.1 server on its own thread: reads a request's head,
/// answers [`BODY`] and closes (`connection: close`), one connection at a
/// time. Returns its port and the number of requests it has answered.
fn start_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding the test server");
    let port = listener.local_addr().expect("the test server's address").port();
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&answered);
    // One write for the whole response, so no Nagle delay between parts.
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            // Read the whole head (GETs have no body): closing with unread
            // bytes would reset the connection.
            let mut head = Vec::with_capacity(512);
            let mut buffer = [0_u8; 512];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buffer[..n]),
                }
            }
            if stream.write_all(response.as_bytes()).is_ok() {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    (port, answered)
}

/// One run of the `fetch` flow making `repeat` requests of `port`'s
/// `/data`; its wall time.
async fn sandboxed(sandbox: &Sandbox, flow: &LoadedFlow, port: u16, repeat: u32) -> Duration {
    let url = format!("http://127.0.0.1:{port}/data");
    let mut request = RunRequest::new(
        json!({"url": url, "repeat": repeat}),
        Arc::new(ReportCollector::default()),
    );
    request.grants = Grants {
        // Loopback is reachable only through an entry naming it exactly.
        outgoing_hosts: OutgoingHosts::parse(&[format!("127.0.0.1:{port}")]).unwrap(),
        ..Grants::default()
    };
    let started = Instant::now();
    let outcome = sandbox.run(flow, request).await;
    let took = started.elapsed();
    let RunOutcome::Completed { output } = outcome else { panic!("fetch failed: {outcome:?}") };
    assert_eq!(output["body"], serde_json::from_str::<serde_json::Value>(BODY).unwrap());
    took
}

/// `count` GETs of `port`'s `/data` in turn, a fresh connection each, bodies
/// read whole; their wall time.
async fn native(port: u16, count: u32) -> Duration {
    let started = Instant::now();
    for _ in 0..count {
        let stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .expect("connecting to the test server");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        // As `http/send.rs` does: the connection is driven by a task of its own.
        tokio::spawn(connection);
        let request = http::Request::get("/data")
            .header(http::header::HOST, format!("127.0.0.1:{port}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, BODY.as_bytes());
    }
    started.elapsed()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: a quick smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    // N stays well under a run's limit of 1000 requests; the rounds keep
    // the connections (each leaves a TIME_WAIT behind) to some 20 000.
    let (requests, rounds): (u32, usize) = if full { (200, 50) } else { (20, 3) };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let sandbox =
        Sandbox::new(&SandboxConfig { max_instances: 4, ..SandboxConfig::default() }).unwrap();
    let flow = sandbox.load(&baton_tests::flow_wasm("fetch")).unwrap();
    let (port, answered) = start_server();

    let (mut once, mut many, mut per_native) = (Vec::new(), Vec::new(), Vec::new());
    runtime.block_on(async {
        // Warm up both paths, and check the flow makes every request.
        let before = answered.load(Ordering::Relaxed);
        sandboxed(&sandbox, &flow, port, requests).await;
        assert_eq!(answered.load(Ordering::Relaxed) - before, requests as usize);
        native(port, requests).await;

        for _ in 0..rounds {
            once.push(micros(sandboxed(&sandbox, &flow, port, 1).await));
            many.push(micros(sandboxed(&sandbox, &flow, port, requests).await));
            per_native.push(micros(native(port, requests).await) / f64::from(requests));
        }
    });

    // A run's fixed cost is the median of the one-request runs: one slow
    // run among them (a page fault, a preemption) then shifts no round.
    let run_once = median(once);
    let per_sandbox: Vec<f64> =
        many.iter().map(|m| (m - run_once) / f64::from(requests - 1)).collect();
    let (sandbox_us, native_us) = (median(per_sandbox.clone()), median(per_native.clone()));
    let spread = |values: &[f64]| {
        let (min, max) =
            values.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        format!("{min:.1}..{max:.1}")
    };
    let goal = 1.5 * native_us + 100.0;
    println!(
        "per request, median of {rounds} rounds of {requests} (min..max):\n  \
         sandbox {sandbox_us:.1} µs ({})\n  \
         native  {native_us:.1} µs ({})\n  \
         ratio   {:.2}×\n  \
         goal    ≤ 1.5 × native + 100 µs = {goal:.1} µs: {}\n\
         a sandbox run with one request: {:.1} µs (median)",
        spread(&per_sandbox),
        spread(&per_native),
        sandbox_us / native_us,
        if sandbox_us <= goal { "met" } else { "NOT met" },
        run_once,
    );
}
