//! Speed of the core's API on SQLite, as recorded in BENCHMARKS.md:
//! creating runs, state transitions, listing the newest runs of a large
//! store, and the resident memory of an idle core.
//!
//! `cargo bench -p baton-core --bench api`
//!
//! Clients are plain HTTP/1.1 keep-alive connections on loopback, several
//! at once; every request is timed from write to the end of its response.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark code"
)]

use std::time::{Duration, Instant};

use baton_core::server::{Server, ServerConfig};
use baton_tests::http::Connection;
use baton_tests::measure::{percentile, resident_kib};
use serde_json::{Value, json};

fn report(what: &str, count: usize, elapsed: Duration, mut latencies: Vec<Duration>) {
    latencies.sort_unstable();
    println!(
        "{what}: {count} in {elapsed:.2?} = {:.0}/s; latency p50 {:?}, p99 {:?}",
        count as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
    );
}

/// Runs `per_client` requests on each of `clients` connections; `make`
/// gives the (method, path, body) of request `i` of client `c`.
async fn load<F>(
    address: std::net::SocketAddr,
    clients: usize,
    per_client: usize,
    make: F,
) -> (Duration, Vec<Duration>)
where
    F: Fn(usize, usize) -> (String, String, Value) + Send + Sync + Clone + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let make = make.clone();
            tokio::spawn(async move {
                let mut connection = Connection::open(address).await;
                let mut latencies = Vec::with_capacity(per_client);
                for i in 0..per_client {
                    let (method, path, body) = make(c, i);
                    let sent = Instant::now();
                    let (status, answer) = connection.json(&method, &path, &body).await;
                    latencies.push(sent.elapsed());
                    assert!(status < 300, "{method} {path}: {status} {answer}");
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    (started.elapsed(), latencies)
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: a quick smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let (clients, per_client, big_store) =
        if full { (8, 2_500, 1_000_000) } else { (2, 20, 2_000) };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(ServerConfig::new(dir.path().to_owned(), "127.0.0.1:0".parse().unwrap())).await.unwrap();
        let address = server.address;
        let mut setup = Connection::open(address).await;
        let (status, artifact) = setup.call("POST", "/api/artifacts", &baton_tests::flow_wasm("hello")).await;
        assert!(status < 300, "{}", String::from_utf8_lossy(&artifact));
        let artifact: Value = serde_json::from_slice(&artifact).unwrap();
        let (status, _) =
            setup.json("PUT", "/api/deployments/hello/bench", &json!({"artifact": artifact["digest"]})).await;
        assert!(status < 300);

        let total = clients * per_client;
        // The floor: the same clients asking for nothing but health.
        let (elapsed, latencies) =
            load(address, clients, per_client, |_, _| ("GET".into(), "/api/health".into(), Value::Null)).await;
        report(&format!("health checks ({clients} clients)"), total, elapsed, latencies);

        let (elapsed, latencies) = load(address, clients, per_client, |_, _| {
            ("POST".into(), "/api/deployments/hello/bench/runs".into(), json!({"parameters": {"a": 1, "b": 2}}))
        })
        .await;
        report(&format!("create runs ({clients} clients)"), total, elapsed, latencies);

        // Drive every run SCHEDULED -> PENDING -> RUNNING -> COMPLETED.
        let (_, page) = setup.json("GET", "/api/runs?limit=500", &Value::Null).await;
        let mut ids: Vec<String> = page["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
        let mut cursor = page["next_cursor"].as_str().map(str::to_owned);
        while let Some(c) = cursor {
            let (_, page) = setup.json("GET", &format!("/api/runs?limit=500&cursor={c}"), &Value::Null).await;
            ids.extend(page["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()));
            cursor = page["next_cursor"].as_str().map(str::to_owned);
        }
        assert_eq!(ids.len(), total);
        let ids = std::sync::Arc::new(ids);
        let states = ["PENDING", "RUNNING", "COMPLETED"];
        let (elapsed, latencies) = load(address, clients, per_client * states.len(), move |c, i| {
            let run = &ids[c * per_client + i / states.len()];
            ("POST".into(), format!("/api/runs/{run}/state"), json!({"state": states[i % states.len()]}))
        })
        .await;
        report(&format!("state transitions ({clients} clients)"), total * states.len(), elapsed, latencies);

        server.stop();
        server.wait().await.unwrap();

        // A big store: rows written straight into the database file.
        let url = format!("sqlite://{}", dir.path().join("baton.db").display());
        {
            use sqlx::Connection as _;
            let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let deployment: (String,) = sqlx::query_as("SELECT id FROM deployments").fetch_one(&mut db).await.unwrap();
            let inserted = Instant::now();
            sqlx::query(
                "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $1) \
                 INSERT INTO flow_runs (id, deployment_id, flow_name, deployment_name, parameters, tags, state, state_changed_at, \
                 state_seq, scheduled_at, run_count, max_retries, retry_delay_ms, created_at) \
                 SELECT printf('00000000-0000-7000-8000-%012d', x), $2, 'hello', 'bench', '{\"a\":1,\"b\":2}', '[]', \
                 CASE x % 4 WHEN 0 THEN 'COMPLETED' WHEN 1 THEN 'FAILED' WHEN 2 THEN 'SCHEDULED' ELSE 'CANCELLED' END, x, 1, x, 0, 0, 0, x FROM n",
            )
            .bind(big_store as i64)
            .bind(&deployment.0)
            .execute(&mut db)
            .await
            .unwrap();
            println!("(wrote {big_store} more runs in {:.1?})", inserted.elapsed());
        }
        let server = Server::start(ServerConfig::new(dir.path().to_owned(), "127.0.0.1:0".parse().unwrap())).await.unwrap();
        for (what, path) in [
            ("list 50 newest runs", "/api/runs?limit=50"),
            ("list 50 newest FAILED runs", "/api/runs?limit=50&state=FAILED"),
            ("list 50 newest runs of a deployment", "/api/runs?limit=50&deployment=hello/bench"),
        ] {
            let path = path.to_owned();
            let (elapsed, latencies) = load(server.address, 1, if full { 500 } else { 10 }, move |_, _| {
                ("GET".into(), path.clone(), Value::Null)
            })
            .await;
            report(&format!("{what} of {} in the store", big_store + total), latencies.len(), elapsed, latencies);
        }
        server.stop();
        server.wait().await.unwrap();
    });

    // An idle core, as a user starts it.
    let core = baton_tests::CoreProcess::start(None);
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "idle core (baton server start, SQLite): resident {} kB",
        resident_kib(Some(core.pid()))
    );
}
