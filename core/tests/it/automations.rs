//! Automations in the store, on both databases: checked specs, names
//! unique, a firing claimed once however many cores try, resuming re-arms.

use baton_core::store::StoreError;
use baton_proto::v1::{AutomationSpec, Timestamp};
use serde_json::json;

use crate::databases::{both, second_store};

fn spec(trigger: serde_json::Value) -> AutomationSpec {
    serde_json::from_value(json!({
        "name": "watch",
        "trigger": trigger,
        "actions": [{"pause-pool": {"pool": "edge"}}],
    }))
    .unwrap()
}

#[tokio::test]
async fn automations_are_checked_and_fire_once() {
    for db in both().await {
        let store = &db.store;
        let proactive_without_window = spec(json!({"proactive": {"event": "run.completed"}}));
        assert!(matches!(
            store.create_automation(proactive_without_window).await,
            Err(StoreError::Invalid(m)) if m.contains("within")
        ));
        let mut no_actions = spec(json!({"reactive": {"event": "run.failed"}}));
        no_actions.actions.clear();
        assert!(matches!(store.create_automation(no_actions).await, Err(StoreError::Invalid(_))));

        let made = store
            .create_automation(spec(json!({"reactive": {"event": "run.failed"}})))
            .await
            .unwrap();
        assert!(matches!(
            store.create_automation(spec(json!({"reactive": {"event": "x"}}))).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(store.automation("watch").await.unwrap().id, made.id);

        // Two cores see the same event: one firing.
        let other = second_store(&db).await.unwrap_or_else(|| store.clone());
        let at = Timestamp(1);
        let (a, b) = tokio::join!(
            store.claim_firing(&made, "e1".into(), at, json!({}), false),
            other.claim_firing(&made, "e1".into(), at, json!({}), false),
        );
        assert_eq!(u8::from(a.unwrap()) + u8::from(b.unwrap()), 1, "{}", db.label);
        assert!(store.claim_firing(&made, "e2".into(), at, json!({}), true).await.unwrap());
        assert_eq!(store.automation("watch").await.unwrap().armed_at, at, "re-armed");

        let paused = store.set_automation_paused("watch", true).await.unwrap();
        assert!(paused.paused);
        let resumed = store.set_automation_paused("watch", false).await.unwrap();
        assert!(!resumed.paused && resumed.armed_at.0 > at.0, "{}: resuming re-arms", db.label);
        store.delete_automation(&made.id).await.unwrap();
        assert!(matches!(store.automation("watch").await, Err(StoreError::NotFound { .. })));
    }
}

#[tokio::test]
async fn an_automation_is_replaced_renamed_or_created_by_put_and_a_dry_run_writes_nothing() {
    for db in both().await {
        let store = &db.store;
        let label = &db.label;
        let reactive = spec(json!({"reactive": {"event": "run.failed"}}));
        // Nothing by that name: created under the path's name, which the
        // body must carry.
        assert!(matches!(
            store.put_automation("other", reactive.clone(), false).await,
            Err(StoreError::Invalid(m)) if m.contains("`watch`")
        ));
        assert!(store.put_automation("watch", reactive.clone(), true).await.unwrap().is_none());
        assert!(store.automations().await.unwrap().is_empty(), "{label}: a dry run wrote");
        let made = store.put_automation("watch", reactive.clone(), false).await.unwrap().unwrap();
        assert!(made.created, "{label}");

        // The same trigger keeps its window; another starts it afresh.
        let mut described = reactive.clone();
        described.description = Some("why".into());
        let kept = store.put_automation("watch", described, false).await.unwrap().unwrap();
        assert!(!kept.created && kept.automation.id == made.automation.id, "{label}");
        assert_eq!(kept.automation.spec.description.as_deref(), Some("why"));
        assert_eq!(kept.automation.armed_at, made.automation.armed_at, "{label}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let proactive = spec(json!({"proactive": {"event": "run.completed", "within": "1h"}}));
        let rearmed =
            store.put_automation(&made.automation.id, proactive, false).await.unwrap().unwrap();
        assert!(rearmed.automation.armed_at.0 > made.automation.armed_at.0, "{label}");

        // Renamed by its id; a name another automation holds is refused,
        // and so is a spec the rules refuse, with nothing changed.
        let mut renamed = reactive.clone();
        renamed.name = "watch-2".into();
        let moved = store.put_automation("watch", renamed, false).await.unwrap().unwrap();
        assert_eq!(moved.automation.id, made.automation.id, "{label}");
        assert!(matches!(store.automation("watch").await, Err(StoreError::NotFound { .. })));
        store.create_automation(reactive.clone()).await.unwrap();
        let mut taken = reactive.clone();
        taken.name = "watch".into();
        assert!(matches!(
            store.put_automation("watch-2", taken, true).await,
            Err(StoreError::Conflict(m)) if m.contains("exists already")
        ));
        let mut no_actions = reactive;
        no_actions.name = "watch-2".into();
        no_actions.actions.clear();
        assert!(matches!(
            store.put_automation("watch-2", no_actions, false).await,
            Err(StoreError::Invalid(m)) if m.contains("at least one action")
        ));
        assert_eq!(store.automation("watch-2").await.unwrap().spec.actions.len(), 1, "{label}");
    }
}
