//! Memory cost of many concurrently live instances, and the latency
//! distribution of warm starts, as recorded in BENCHMARKS.md.
//!
//! `cargo bench -p baton-sandbox --bench live_instances`
//!
//! Live instances: N runs of the `sleeps` flow started at once, each waiting
//! in the host's clock; the process's resident memory is read from
//! /proc/self/status before and while they are all live.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark code"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_proto::v1::RunOutcome;
use baton_sandbox::{ReportCollector, RunRequest, Sandbox, SandboxConfig};
use baton_tests::measure::{percentile, resident_kib};
use serde_json::json;

fn main() {
    // `cargo test --benches` runs this without `--bench`: a quick smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let (instances, warm_runs) = if full { (1000, 20_000) } else { (20, 200) };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let sandbox = Arc::new(
        Sandbox::new(&SandboxConfig {
            max_instances: instances as u32,
            ..SandboxConfig::default()
        })
        .unwrap(),
    );

    let hello = sandbox.load(&baton_tests::flow_wasm("hello")).unwrap();
    let mut latencies = Vec::with_capacity(warm_runs);
    runtime.block_on(async {
        for _ in 0..warm_runs {
            let request =
                RunRequest::new(json!({"a": 2, "b": 3}), Arc::new(ReportCollector::default()));
            let started = Instant::now();
            let outcome = sandbox.run(&hello, request).await;
            latencies.push(started.elapsed());
            assert_eq!(outcome, RunOutcome::Completed { output: json!(5) });
        }
    });
    latencies.sort_unstable();
    println!(
        "warm start of hello ({warm_runs} runs): p50 {:?}, p99 {:?}, max {:?}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );

    let sleeps = sandbox.load(&baton_tests::flow_wasm("sleeps")).unwrap();
    let before = resident_kib(None);
    let hold = Duration::from_secs(if full { 3 } else { 1 });
    let peak = runtime.block_on(async {
        let runs: Vec<_> = (0..instances)
            .map(|_| {
                let sandbox = sandbox.clone();
                let flow = sleeps.clone();
                tokio::spawn(async move {
                    let params = json!({"millis": hold.as_millis() as u64});
                    sandbox
                        .run(&flow, RunRequest::new(params, Arc::new(ReportCollector::default())))
                        .await
                })
            })
            .collect();
        tokio::time::sleep(hold / 2).await;
        let peak = resident_kib(None);
        for run in runs {
            assert!(matches!(run.await.unwrap(), RunOutcome::Completed { .. }));
        }
        peak
    });
    let added = peak.saturating_sub(before);
    println!(
        "{instances} live instances of sleeps: resident memory {before} KiB -> {peak} KiB, +{added} KiB ({:.1} KiB per instance)",
        added as f64 / instances as f64
    );
}
