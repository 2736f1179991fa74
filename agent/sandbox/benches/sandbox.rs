//! Warm start and cold load of a flow, and log lines through the host, as
//! recorded in BENCHMARKS.md.
//!
//! `cargo bench -p baton-sandbox --bench sandbox`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "benchmark code")]

use std::collections::BTreeMap;
use std::sync::Arc;

use baton_proto::v1::RunOutcome;
use baton_sandbox::{Grants, ReportCollector, RunRequest, Sandbox, SandboxConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

fn warm_start(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let sandbox =
        Sandbox::new(&SandboxConfig { max_instances: 16, ..SandboxConfig::default() }).unwrap();
    let flow = sandbox.load(&baton_tests::flow_wasm("hello")).unwrap();
    // Instantiate, call `run` with JSON parameters (two log lines come back
    // through the host), drop the instance.
    c.bench_function("warm_start/hello", |b| {
        b.iter(|| {
            let request =
                RunRequest::new(json!({"a": 2, "b": 3}), Arc::new(ReportCollector::default()));
            let outcome = runtime.block_on(sandbox.run(&flow, request));
            assert_eq!(outcome, RunOutcome::Completed { output: json!(5) });
        });
    });
}

fn cold_load(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let config = SandboxConfig {
        cache_dir: Some(dir.path().to_owned()),
        max_instances: 4,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::new(&config).unwrap();
    let wasm = baton_tests::flow_wasm("hello");
    let digest = sandbox.load(&wasm).unwrap().digest();
    // Load the precompiled artifact from disk and link it, as an agent does
    // for a cached component after a restart.
    c.bench_function("cold_load/hello_from_disk_cache", |b| {
        b.iter(|| {
            sandbox.evict(&digest);
            sandbox.load_cached(&digest).expect("cached");
        });
    });
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    let uncached =
        Sandbox::new(&SandboxConfig { max_instances: 4, ..SandboxConfig::default() }).unwrap();
    group.bench_function("hello_from_wasm", |b| {
        b.iter(|| {
            uncached.evict(&digest);
            uncached.load(&wasm).unwrap();
        });
    });
    group.finish();
}

/// Log lines through the host, from the flow's stdout to the reporter,
/// with and without a granted secret to redact (the log budget's burst
/// holds them all, so none is dropped).
fn log_lines(c: &mut Criterion) {
    const LINES: u32 = 40_000;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let sandbox =
        Sandbox::new(&SandboxConfig { max_instances: 4, ..SandboxConfig::default() }).unwrap();
    let flow = sandbox.load(&baton_tests::flow_wasm("prints")).unwrap();
    let mut group = c.benchmark_group("log_lines");
    group.sample_size(10);
    group.throughput(Throughput::Elements(u64::from(LINES)));
    for (name, secrets) in [
        ("plain", BTreeMap::new()),
        ("redacted", BTreeMap::from([("token".to_owned(), Some("s3cr3t-v4lue".to_owned()))])),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let reports = Arc::new(ReportCollector::default());
                let mut request = RunRequest::new(json!({"lines": LINES}), reports.clone());
                request.grants = Grants { secrets: secrets.clone(), ..Grants::default() };
                let outcome = runtime.block_on(sandbox.run(&flow, request));
                assert_eq!(outcome, RunOutcome::Completed { output: json!(LINES) });
            });
        });
    }
    group.finish();
}

criterion_group!(benches, warm_start, cold_load, log_lines);
criterion_main!(benches);
