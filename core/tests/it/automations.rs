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
