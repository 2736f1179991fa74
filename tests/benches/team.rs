//! An installation for a team, as recorded in BENCHMARKS.md: several cores
//! (`baton server start`) on one PostgreSQL database, each its own process,
//! with agents given every core.
//!
//! `cargo xtask with-services cargo bench -p baton-tests --bench team`
//!
//! - 1, 2 and 3 cores, one agent per core (64 slots, its own core first):
//!   create -> COMPLETED of `hello` one run at a time (through each core in
//!   turn), and a burst created by 8 clients spread over the cores, from the
//!   first creation to the last completion by the cores' clocks;
//! - failover: two cores and one agent given both; the agent's core is
//!   SIGKILLed and a run created at once through the other: from the kill
//!   until that run starts on the agent;
//! - the cost of scraping: one core on SQLite, bursts with and without a
//!   scrape of `/metrics` every second, in turn.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing, reason = "benchmark code")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use baton_tests::bench::{completed, create, run_burst, state_at};
use baton_tests::http::Connection;
use baton_tests::measure::{percentile, unix_ms};
use baton_tests::{AgentProcess, CoreProcess, fresh_postgres_database};
use serde_json::{Value, json};

/// Waits until `count` agents are connected (as any core lists them).
async fn agents_connected(address: SocketAddr, count: usize) {
    let mut connection = Connection::open(address).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, agents) = connection.json("GET", "/api/agents", &Value::Null).await;
        let connected =
            agents.as_array().unwrap().iter().filter(|a| a["connected"] == true).count();
        if connected >= count {
            return;
        }
        assert!(Instant::now() < deadline, "{connected} of {count} agents connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `cores` cores on a fresh database, one agent per core: latency one run
/// at a time, then a burst.
fn cores_side_by_side(cores: usize, latency_runs: usize, burst: usize) {
    let url = fresh_postgres_database();
    let started: Vec<CoreProcess> = (0..cores).map(|_| CoreProcess::start(Some(&url))).collect();
    let home = tempfile::tempdir().unwrap();
    started[0].deploy(home.path(), "hello", "team", "    parameters: {a: 1, b: 2}\n");
    let token = started[0].agent_token(home.path());
    let quic: Vec<&str> = started.iter().map(|core| core.quic.as_str()).collect();
    let data: Vec<_> = (0..cores).map(|_| tempfile::tempdir().unwrap()).collect();
    let _agents: Vec<AgentProcess> = (0..cores)
        .map(|i| {
            // Its own core first, then the others.
            let order: Vec<&str> = (0..cores).map(|k| quic[(i + k) % cores]).collect();
            AgentProcess::start_via(
                &started[i],
                home.path(),
                &token,
                data[i].path(),
                &order.join(","),
                64,
            )
        })
        .collect();
    let addresses: Vec<SocketAddr> = started.iter().map(CoreProcess::api_address).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        agents_connected(addresses[0], cores).await;
        let mut connections = Vec::new();
        for address in &addresses {
            connections.push(Connection::open(*address).await);
        }
        // Warm up: every agent compiles the component (at deploy) and runs it.
        for connection in &mut connections {
            let id = create(connection, "hello/team", json!({})).await;
            completed(connection, &id).await;
        }
        let mut took = Vec::with_capacity(latency_runs);
        for i in 0..latency_runs {
            let connection = &mut connections[i % cores];
            let sent = Instant::now();
            let id = create(connection, "hello/team", json!({"a": i, "b": 1})).await;
            completed(connection, &id).await;
            took.push(sent.elapsed());
        }
        took.sort_unstable();
        let burst = run_burst(&addresses, "hello/team", burst, 8).await;
        println!(
            "{cores} core(s) on one PostgreSQL, {cores} agent(s): create -> COMPLETED one at a time \
             p50 {:.2?}, p99 {:.2?} ({latency_runs} runs); burst of {} runs from 8 clients: \
             {:.0} runs/s, {} LATE",
            percentile(&took, 0.5),
            percentile(&took, 0.99),
            burst.runs,
            burst.rate(),
            burst.late,
        );
    });
}

/// Two cores, one agent given both: the time from killing its core until
/// a run starts on it through the other.
fn failover(repeats: usize) {
    let mut took = Vec::new();
    for _ in 0..repeats {
        let url = fresh_postgres_database();
        let core_a = CoreProcess::start(Some(&url));
        let core_b = CoreProcess::start(Some(&url));
        let home = tempfile::tempdir().unwrap();
        core_b.deploy(home.path(), "hello", "team", "    parameters: {a: 1, b: 2}\n");
        let token = core_b.agent_token(home.path());
        let data = tempfile::tempdir().unwrap();
        let cores = format!("{},{}", core_a.quic, core_b.quic);
        let _agent = AgentProcess::start_via(&core_b, home.path(), &token, data.path(), &cores, 16);
        let address = core_b.api_address();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let mut connection = Connection::open(address).await;
            agents_connected(address, 1).await;
            let id = create(&mut connection, "hello/team", json!({})).await;
            completed(&mut connection, &id).await;
            drop(core_a);
            let killed = unix_ms();
            // It waits on the surviving core until the agent reaches it.
            let next = create(&mut connection, "hello/team", json!({})).await;
            completed(&mut connection, &next).await;
            let (_, detail) =
                connection.json("GET", &format!("/api/runs/{next}"), &Value::Null).await;
            took.push(Duration::from_millis(
                u64::try_from(state_at(&detail, "RUNNING") - killed).unwrap_or(0),
            ));
        });
    }
    took.sort_unstable();
    println!(
        "failover: from SIGKILL of the agent's core to a run starting on it through the other: \
         median {:.2?} (of {repeats}: {took:.2?})",
        percentile(&took, 0.5),
    );
}

/// Bursts on one core with and without a scrape of `/metrics` every
/// second, alternating.
fn scraping_cost(burst: usize, rounds: usize) {
    let core = CoreProcess::start(None);
    let home = tempfile::tempdir().unwrap();
    core.deploy(home.path(), "hello", "team", "    parameters: {a: 1, b: 2}\n");
    let token = core.agent_token(home.path());
    let data = tempfile::tempdir().unwrap();
    let _agent = AgentProcess::start_with_slots(&core, home.path(), &token, data.path(), 64);
    let address = core.api_address();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        agents_connected(address, 1).await;
        let mut connection = Connection::open(address).await;
        let id = create(&mut connection, "hello/team", json!({})).await;
        completed(&mut connection, &id).await;
        let (mut without, mut with) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            without.push(run_burst(&[address], "hello/team", burst, 8).await.rate());
            let scraping = Arc::new(AtomicBool::new(true));
            let scraper = tokio::spawn({
                let scraping = Arc::clone(&scraping);
                async move {
                    let mut connection = Connection::open(address).await;
                    let mut scrapes = 0;
                    while scraping.load(Ordering::Relaxed) {
                        let (status, _) = connection.call("GET", "/metrics", b"").await;
                        assert_eq!(status, 200);
                        scrapes += 1;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    scrapes
                }
            });
            with.push(run_burst(&[address], "hello/team", burst, 8).await.rate());
            scraping.store(false, Ordering::Relaxed);
            assert!(scraper.await.unwrap() > 0, "never scraped");
        }
        println!(
            "bursts of {burst} runs on one core (SQLite): without scraping {without:.0?} runs/s; \
             with /metrics scraped every second {with:.0?} runs/s"
        );
    });
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: a quick smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let (latency_runs, burst, repeats, rounds) =
        if full { (300, 3_000, 5, 3) } else { (6, 30, 1, 1) };
    for cores in 1..=3 {
        cores_side_by_side(cores, latency_runs, burst);
    }
    failover(repeats);
    scraping_cost(if full { 5_000 } else { 40 }, rounds);
}
