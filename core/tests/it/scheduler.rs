//! The scheduler against real databases: passes racing on one database
//! (two schedulers of one core, and two cores sharing PostgreSQL), a
//! re-deploy replacing planned runs, a paused deployment planning nothing.

use std::collections::HashSet;

use baton_core::scheduler::{Scheduler, SchedulerConfig};
use baton_core::store::{RunFilter, Store};
use baton_proto::v1::{DeploymentSpec, FlowRun, ScheduleSpec, StateName};
use serde_json::json;

use crate::databases::{both, second_store};
use crate::store::deploy;

fn every_minute(parameters: serde_json::Value) -> ScheduleSpec {
    serde_json::from_value(json!({"cron": "* * * * *", "parameters": parameters})).unwrap()
}

fn spec(schedules: Vec<ScheduleSpec>, parameters: serde_json::Value) -> DeploymentSpec {
    DeploymentSpec {
        schedules,
        parameters: parameters.as_object().unwrap().clone(),
        ..DeploymentSpec::default()
    }
}

/// Every run of a deployment.
async fn runs_of(store: &Store, deployment_id: &str) -> Vec<FlowRun> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let filter = RunFilter {
            deployment_id: Some(deployment_id.to_owned()),
            cursor,
            limit: 500,
            ..RunFilter::default()
        };
        let page = store.runs(&filter).await.unwrap();
        all.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            return all;
        }
    }
}

fn assert_one_run_per_time(label: &str, runs: &[FlowRun]) {
    let times: HashSet<_> = runs.iter().map(|r| r.scheduled_at).collect();
    assert_eq!(times.len(), runs.len(), "{label}: a schedule time got two runs");
}

#[tokio::test]
async fn racing_scheduler_passes_never_make_two_runs_for_one_time() {
    for db in both().await {
        let id = deploy(
            &db.store,
            "racing",
            spec(vec![every_minute(json!({}))], json!({"a": 1, "b": 2})),
        )
        .await;
        // A second core on the same database (PostgreSQL), or a second
        // scheduler of the same core (SQLite has one writer).
        let other_store = second_store(&db).await.unwrap_or_else(|| db.store.clone());
        let one = Scheduler::new(db.store.clone(), SchedulerConfig::default());
        let two = Scheduler::new(other_store, SchedulerConfig::default());
        for _ in 0..5 {
            let at = baton_core::store::now_for_tests();
            let (a, b) = tokio::join!(one.pass(at), two.pass(at));
            a.unwrap();
            b.unwrap();
        }
        let runs = runs_of(&db.store, &id).await;
        // An hour of minutes, planned once.
        assert!((60..=61).contains(&runs.len()), "{}: {} runs", db.label, runs.len());
        assert_one_run_per_time(db.label, &runs);
        assert!(runs.iter().all(|r| r.state == StateName::Scheduled && r.parameters["b"] == 2));
    }
}

#[tokio::test]
async fn a_redeploy_replaces_the_planned_runs_that_have_not_started() {
    for db in both().await {
        let scheduler = Scheduler::new(db.store.clone(), SchedulerConfig::default());
        let schedules = vec![every_minute(json!({"b": 2}))];
        let id = deploy(&db.store, "nightly", spec(schedules.clone(), json!({"a": 1}))).await;
        scheduler.pass(baton_core::store::now_for_tests()).await.unwrap();
        let before = runs_of(&db.store, &id).await;
        assert!(before.len() >= 60, "{}", db.label);

        // New defaults: the planned runs are made again with them.
        deploy(&db.store, "nightly", spec(schedules, json!({"a": 7}))).await;
        scheduler.pass(baton_core::store::now_for_tests()).await.unwrap();
        let after = runs_of(&db.store, &id).await;
        assert!(after.len() >= 60, "{}", db.label);
        assert_one_run_per_time(db.label, &after);
        assert!(
            after.iter().all(|r| r.parameters == *json!({"a": 7, "b": 2}).as_object().unwrap()),
            "{}: a run kept the old parameters",
            db.label
        );
        let old: HashSet<_> = before.iter().map(|r| r.id.clone()).collect();
        assert!(after.iter().all(|r| !old.contains(&r.id)), "{}", db.label);
    }
}

#[tokio::test]
async fn a_paused_deployment_or_schedule_plans_nothing() {
    for db in both().await {
        let scheduler = Scheduler::new(db.store.clone(), SchedulerConfig::default());
        let id = deploy(
            &db.store,
            "paused",
            spec(vec![every_minute(json!({}))], json!({"a": 1, "b": 2})),
        )
        .await;
        scheduler.pass(baton_core::store::now_for_tests()).await.unwrap();
        assert!(!runs_of(&db.store, &id).await.is_empty());

        db.store.set_deployment_paused("hello", "paused", true).await.unwrap();
        assert!(runs_of(&db.store, &id).await.is_empty(), "{}: planned runs withdrawn", db.label);
        scheduler.pass(baton_core::store::now_for_tests()).await.unwrap();
        assert!(runs_of(&db.store, &id).await.is_empty(), "{}: nothing planned", db.label);

        db.store.set_deployment_paused("hello", "paused", false).await.unwrap();
        let schedule = db.store.schedules("hello", "paused").await.unwrap().remove(0);
        db.store.set_schedule_active("hello", "paused", &schedule.id, false).await.unwrap();
        scheduler.pass(baton_core::store::now_for_tests()).await.unwrap();
        assert!(
            runs_of(&db.store, &id).await.is_empty(),
            "{}: a paused schedule plans nothing",
            db.label
        );

        db.store.set_schedule_active("hello", "paused", &schedule.id, true).await.unwrap();
        scheduler.pass(baton_core::store::now_for_tests()).await.unwrap();
        assert!(runs_of(&db.store, &id).await.len() >= 60, "{}: planned again", db.label);
    }
}
