//! The web UI under load, as recorded in BENCHMARKS.md, in real headless
//! Chromium against a real core (SQLite, no agent: the runs wait).
//!
//! `cargo bench -p baton-tests --bench ui`
//!
//! - first meaningful paint of the dashboard: from navigation start to the
//!   `baton:dashboard` mark (the runs-by-state chart and the timeline drawn
//!   with data), with 100,000 runs in the core, spread over the last day;
//! - the runs list while 1,000 run events a second arrive: how late the
//!   page's event loop answers a timer (what a click would wait), and that
//!   the rows follow.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark code"
)]

use std::time::{Duration, Instant};

use baton_tests::CoreProcess;
use baton_tests::browser::Browser;
use baton_tests::http::Connection;
use baton_tests::measure::unix_ms;
use serde_json::{Value, json};

const DAY: i64 = 86_400_000;

fn main() {
    // `cargo test --benches` runs this without `--bench`: a quick smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let (runs, clients, storm_seconds) = if full { (100_000, 8, 10) } else { (200, 2, 1) };

    let core = CoreProcess::start(None);
    let home = tempfile::tempdir().unwrap();
    core.deploy(home.path(), "hello", "bench", "    parameters: {a: 1, b: 2}\n");
    let address = core.api_address();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // The runs, scheduled across the last day (so the chart has every
        // hour) by several clients.
        let started = Instant::now();
        let now = unix_ms();
        let tasks: Vec<_> = (0..clients)
            .map(|client| {
                tokio::spawn(async move {
                    let mut connection = Connection::open(address).await;
                    for i in (client..runs).step_by(clients) {
                        let at = now - DAY + (i as i64 * DAY / runs as i64);
                        let (status, run) = connection
                            .json(
                                "POST",
                                "/api/deployments/hello/bench/runs",
                                &json!({"scheduled_at": at}),
                            )
                            .await;
                        assert!(status < 300, "{status} {run}");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        println!("set-up: {runs} runs created in {:.1?}", started.elapsed());

        let browser = Browser::start().await;
        let client = &browser.client;
        let mut paints = Vec::new();
        for _ in 0..if full { 10 } else { 2 } {
            client.goto(&format!("{}/", core.url)).await.unwrap();
            let mut mark = Value::Null;
            for _ in 0..300 {
                mark = client
                    .execute(
                        "const m = performance.getEntriesByName('baton:dashboard'); \
                         return m.length ? m[0].startTime : null;",
                        vec![],
                    )
                    .await
                    .unwrap();
                if !mark.is_null() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            paints.push(mark.as_f64().expect("the dashboard never drew its charts"));
        }
        let first = paints[0];
        let mut warm = paints[1..].to_vec();
        warm.sort_by(f64::total_cmp);
        println!(
            "dashboard first meaningful paint with {runs} runs: first load {first:.0} ms; \
             later loads (cached bundle) p50 {:.0} ms, max {:.0} ms",
            warm[warm.len() / 2],
            warm[warm.len() - 1]
        );

        // The runs list under a storm of run events.
        client.goto(&format!("{}/runs", core.url)).await.unwrap();
        browser.wait_text("table.runs", "hello/bench").await;
        let (_, page) = Connection::open(address)
            .await
            .json("GET", "/api/runs?limit=50", &Value::Null)
            .await;
        let shown: Vec<String> =
            page["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
        // The probe: a timer every 20 ms records how late it ran.
        client
            .execute(
                "window.__lags = []; let last = performance.now(); \
                 window.__probe = setInterval(() => { const t = performance.now(); \
                 window.__lags.push(t - last - 20); last = t; }, 20); return null;",
                vec![],
            )
            .await
            .unwrap();
        let rate = 1_000;
        let total = rate * storm_seconds;
        let storm_started = Instant::now();
        let senders: Vec<_> = (0..4)
            .map(|sender| {
                let shown = shown.clone();
                tokio::spawn(async move {
                    let mut connection = Connection::open(address).await;
                    let states = ["PENDING", "RUNNING", "COMPLETED"];
                    for i in (sender..total).step_by(4) {
                        // Paced: event i goes out at i / rate seconds.
                        let due = Duration::from_micros((i as u64) * 1_000_000 / rate as u64);
                        if let Some(wait) = due.checked_sub(storm_started.elapsed()) {
                            tokio::time::sleep(wait).await;
                        }
                        let state = states[(i / shown.len()) % states.len()];
                        let id = &shown[i % shown.len()];
                        let body = json!({
                            "name": format!("run.{}", state.to_lowercase()),
                            "resource": format!("run/{id}"),
                            "payload": {"state": state},
                        });
                        let (status, answer) = connection.json("POST", "/api/events", &body).await;
                        assert!(status < 300, "{status} {answer}");
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.await.unwrap();
        }
        let sent_in = storm_started.elapsed();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let lags = client
            .execute("clearInterval(window.__probe); return window.__lags;", vec![])
            .await
            .unwrap();
        let mut lags: Vec<f64> = lags.as_array().unwrap().iter().filter_map(Value::as_f64).collect();
        lags.sort_by(f64::total_cmp);
        let last_state = ["PENDING", "RUNNING", "COMPLETED"][((total - 1) / shown.len()) % 3];
        let table = browser.wait_text("table.runs", last_state).await;
        println!(
            "runs list under {total} run events in {sent_in:.1?} ({:.0}/s): event-loop lag p50 {:.1} ms, \
             p99 {:.1} ms, max {:.1} ms over {} probes; rows show {last_state}: {}",
            total as f64 / sent_in.as_secs_f64(),
            lags[lags.len() / 2],
            lags[(lags.len() - 1) * 99 / 100],
            lags[lags.len() - 1],
            lags.len(),
            table.contains(last_state),
        );
        browser.close().await;
    });
}
