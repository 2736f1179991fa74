//! The scheduler at scale on SQLite, as recorded in BENCHMARKS.md: 100,000
//! deployments with one cron schedule each (daily, at times spread over the
//! day). Timed: the first pass (plans three runs of each), a pass over all
//! of them when every one must be looked at again (the runs exist: each is
//! evaluated and nothing is written twice), and the pass that follows when
//! none is due.
//!
//! `cargo bench -p baton-core --bench scheduler`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark code"
)]

use std::time::Instant;

use baton_core::scheduler::{Scheduler, SchedulerConfig};
use baton_core::secrets::SecretCipher;
use baton_core::store::{Store, now_for_tests};
use baton_proto::v1::{DeploymentSpec, FlowInfo};
use serde_json::json;

fn main() {
    // `cargo test --benches` runs this without `--bench`: a quick smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let deployments = if full { 100_000 } else { 500 };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::connect(&Store::sqlite_url(dir.path()), SecretCipher::ephemeral().unwrap())
                .await
                .unwrap();
        let info = FlowInfo {
            name: "hello".into(),
            version: "1".into(),
            description: String::new(),
            parameters: json!({"type": "object", "properties": {"a": {"type": "integer"}}}),
        };
        let (artifact, _) = store.put_artifact("sha256:hello", &info, b"hello").await.unwrap();
        let started = Instant::now();
        for i in 0..deployments {
            let cron = format!("{} {} * * *", i % 60, (i / 60) % 24);
            let spec: DeploymentSpec = serde_json::from_value(json!({
                "artifact": artifact.digest,
                "parameters": {"a": i},
                "schedules": [{"cron": cron, "timezone": "Europe/Berlin"}],
            }))
            .unwrap();
            store.upsert_deployment("hello", &format!("d{i}"), spec, &artifact).await.unwrap();
        }
        println!("set-up: {deployments} deployments in {:.1?}", started.elapsed());

        let scheduler = Scheduler::new(store.clone(), SchedulerConfig::default());
        let started = Instant::now();
        let created = scheduler.pass(now_for_tests()).await.unwrap();
        let first = started.elapsed();
        assert_eq!(created, deployments * 3);
        println!(
            "first pass: {deployments} schedules planned, {created} runs created in {first:.2?}"
        );

        // Every schedule due again: each is evaluated, nothing new is made.
        {
            use sqlx::Connection as _;
            let url = Store::sqlite_url(dir.path());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query("UPDATE schedule_states SET next_look = 0")
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
        let started = Instant::now();
        let created = scheduler.pass(now_for_tests()).await.unwrap();
        let all = started.elapsed();
        // Times that passed since the first pass are replaced by new ones.
        println!(
            "pass over all {deployments} schedules (all due, their runs exist): {all:.2?}, {created} runs created"
        );

        let started = Instant::now();
        let created = scheduler.pass(now_for_tests()).await.unwrap();
        println!("pass with none due (the steady state): {:.2?}, {created} runs created", started.elapsed());
    });
}
