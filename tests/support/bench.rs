//! What the end-to-end benchmarks drive a core's API with: creating runs,
//! waiting for them, bursts from several clients.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark support: a failed request fails the benchmark"
)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::Connection;
use crate::measure::unix_ms;

pub async fn create(connection: &mut Connection, deployment: &str, parameters: Value) -> String {
    let (status, run) = connection
        .json(
            "POST",
            &format!("/api/deployments/{deployment}/runs"),
            &json!({ "parameters": parameters }),
        )
        .await;
    assert!(status < 300, "{status} {run}");
    run["id"].as_str().unwrap().to_owned()
}

/// Polls until the run is `COMPLETED`; returns the run.
pub async fn completed(connection: &mut Connection, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, run) = connection.json("GET", &format!("/api/runs/{id}"), &Value::Null).await;
        match run["state"].as_str() {
            Some("COMPLETED") => return run,
            Some("FAILED" | "CRASHED" | "CANCELLED") => panic!("run {id} ended {run:#}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "run {id} did not complete: {run:#}");
        tokio::time::sleep(Duration::from_micros(250)).await;
    }
}

/// Milliseconds from creation to completion by the core's clock.
pub fn recorded_ms(run: &Value) -> i64 {
    run["ended_at"].as_i64().unwrap() - run["created_at"].as_i64().unwrap()
}

/// When a run's history first reached `state` (ms since the epoch).
pub fn state_at(detail: &Value, state: &str) -> i64 {
    detail["states"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["state"] == state)
        .unwrap_or_else(|| panic!("never {state}: {detail:#}"))["at"]
        .as_i64()
        .unwrap()
}

/// What a burst came to.
pub struct Burst {
    pub runs: usize,
    /// From the first run created to the last ended, by the core's clock.
    pub span_ms: i64,
    /// Runs that went `LATE` (not dispatched within the core's grace).
    pub late: usize,
}

impl Burst {
    pub fn rate(&self) -> f64 {
        self.runs as f64 * 1000.0 / self.span_ms as f64
    }
}

/// Creates `runs` runs of `deployment` (`a`, `b` parameters) from `clients`
/// connections at once, spread over the cores at `addresses`, waits for
/// every one to end and checks it COMPLETED.
pub async fn run_burst(
    addresses: &[std::net::SocketAddr],
    deployment: &str,
    runs: usize,
    clients: usize,
) -> Burst {
    let since = unix_ms();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let deployment = deployment.to_owned();
            let address = addresses[client % addresses.len()];
            tokio::spawn(async move {
                let mut connection = Connection::open(address).await;
                let mut ids = Vec::new();
                for i in 0..runs / clients {
                    ids.push(create(&mut connection, &deployment, json!({"a": i, "b": 1})).await);
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.unwrap());
    }
    let mut connection = Connection::open(addresses[0]).await;
    // Wait without loading the core: one cheap query every 20 ms.
    let deadline = Instant::now() + Duration::from_secs(300);
    let open =
        format!("/api/runs?deployment={deployment}&state=SCHEDULED,LATE,PENDING,RUNNING&limit=1");
    loop {
        let (_, open) = connection.json("GET", &open, &Value::Null).await;
        if open["items"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        assert!(Instant::now() < deadline, "the burst did not finish: {open:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let burst_ids: std::collections::HashSet<String> = ids.iter().cloned().collect();
    let (mut first_created, mut last_ended, mut seen) = (i64::MAX, 0, 0);
    let mut cursor: Option<String> = None;
    loop {
        let after = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let (_, page) = connection
            .json(
                "GET",
                &format!("/api/runs?deployment={deployment}&limit=500{after}"),
                &Value::Null,
            )
            .await;
        for run in page["items"].as_array().unwrap() {
            if burst_ids.contains(run["id"].as_str().unwrap()) {
                assert_eq!(run["state"], "COMPLETED", "{run:#}");
                seen += 1;
                first_created = first_created.min(run["created_at"].as_i64().unwrap());
                last_ended = last_ended.max(run["ended_at"].as_i64().unwrap());
            }
        }
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, ids.len());
    let (_, late) = connection
        .json("GET", &format!("/api/events?name=run.late&since={since}&limit=10000"), &Value::Null)
        .await;
    let late = late
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["resource"]
                .as_str()
                .and_then(|r| r.strip_prefix("run/"))
                .is_some_and(|id| burst_ids.contains(id))
        })
        .count();
    Burst { runs: ids.len(), span_ms: (last_ended - first_created).max(1), late }
}
