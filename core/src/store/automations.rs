//! Automations: their specs (checked when stored), paused or not, the start
//! of a proactive trigger's window, and the firings already claimed.

use baton_proto::v1::{Automation, AutomationSpec, Timestamp};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::events::{self, NewEvent};
use super::{Store, StoreError, StoreResult, found, json_column, new_id, now, to_json};

const COLUMNS: &str = "id, name, spec, paused, armed_at, created_at, updated_at";

/// What [`Store::put_automation`] wrote.
#[derive(Debug, Clone)]
pub struct AutomationPut {
    pub automation: Automation,
    /// No automation had the name before.
    pub created: bool,
}

fn automation(row: &AnyRow) -> StoreResult<Automation> {
    Ok(Automation {
        id: row.try_get("id")?,
        spec: json_column(row, "spec")?,
        paused: row.try_get::<i64, _>("paused")? != 0,
        armed_at: Timestamp(row.try_get("armed_at")?),
        created_at: Timestamp(row.try_get("created_at")?),
        updated_at: Timestamp(row.try_get("updated_at")?),
    })
}

impl Store {
    pub async fn create_automation(&self, spec: AutomationSpec) -> StoreResult<Automation> {
        spec.check().map_err(StoreError::Invalid)?;
        let at = now();
        let id = new_id();
        let inserted = sqlx::query(
            "INSERT INTO automations (id, name, spec, paused, armed_at, created_at, updated_at) \
             VALUES ($1, $2, $3, 0, $4, $4, $4) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&id)
        .bind(&spec.name)
        .bind(to_json(&spec)?)
        .bind(at.0)
        .execute(&self.write)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Conflict(format!("automation {} exists already", spec.name)));
        }
        self.automation(&id).await
    }

    /// Replaces the automation `id_or_name` names with `spec` (a new name
    /// renames it; a changed trigger starts a proactive window afresh), or
    /// creates it when there is none, then `spec` must carry that name.
    /// With `dry_run`, only checks and writes nothing.
    pub async fn put_automation(
        &self,
        id_or_name: &str,
        spec: AutomationSpec,
        dry_run: bool,
    ) -> StoreResult<Option<AutomationPut>> {
        spec.check().map_err(StoreError::Invalid)?;
        let current = match self.automation(id_or_name).await {
            Ok(current) => Some(current),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let Some(current) = current else {
            if spec.name != id_or_name {
                return Err(StoreError::Invalid(format!(
                    "there is no automation {id_or_name} to replace, and a new one takes its \
                     name from the path: the body names it `{}`",
                    spec.name
                )));
            }
            if dry_run {
                return Ok(None);
            }
            let automation = self.create_automation(spec).await?;
            return Ok(Some(AutomationPut { automation, created: true }));
        };
        if spec.name != current.spec.name
            && let Ok(other) = self.automation(&spec.name).await
            && other.id != current.id
        {
            return Err(StoreError::Conflict(format!(
                "automation {} exists already: pick another name",
                spec.name
            )));
        }
        if dry_run {
            return Ok(None);
        }
        let at = now();
        let rearm = spec.trigger != current.spec.trigger;
        let updated = sqlx::query(
            "UPDATE automations SET name = $1, spec = $2, updated_at = $3, \
             armed_at = CASE WHEN $4 = 1 THEN $3 ELSE armed_at END \
             WHERE id = $5 AND NOT EXISTS (SELECT 1 FROM automations o WHERE o.name = $1 AND o.id <> $5)",
        )
        .bind(&spec.name)
        .bind(to_json(&spec)?)
        .bind(at.0)
        .bind(i64::from(rearm))
        .bind(&current.id)
        .execute(&self.write)
        .await?
        .rows_affected();
        if updated == 0 {
            // Deleted, or the new name taken, since it was read.
            return Err(StoreError::Conflict(format!(
                "automation {id_or_name} changed while it was being replaced: try again"
            )));
        }
        let automation = self.automation(&current.id).await?;
        Ok(Some(AutomationPut { automation, created: false }))
    }

    /// An automation by id or name.
    pub async fn automation(&self, id_or_name: &str) -> StoreResult<Automation> {
        let row =
            sqlx::query(&format!("SELECT {COLUMNS} FROM automations WHERE id = $1 OR name = $1"))
                .bind(id_or_name)
                .fetch_optional(&self.read)
                .await?
                .ok_or_else(|| StoreError::not_found(format!("automation {id_or_name}")))?;
        automation(&row)
    }

    pub async fn automations(&self) -> StoreResult<Vec<Automation>> {
        sqlx::query(&format!("SELECT {COLUMNS} FROM automations ORDER BY name"))
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(automation)
            .collect()
    }

    /// Pauses or resumes an automation; resuming starts a proactive
    /// trigger's window afresh.
    pub async fn set_automation_paused(
        &self,
        id_or_name: &str,
        paused: bool,
    ) -> StoreResult<Automation> {
        let current = self.automation(id_or_name).await?;
        let at = now();
        sqlx::query(
            "UPDATE automations SET paused = $1, updated_at = $2, \
             armed_at = CASE WHEN $1 = 0 AND paused <> 0 THEN $2 ELSE armed_at END WHERE id = $3",
        )
        .bind(i64::from(paused))
        .bind(at.0)
        .bind(&current.id)
        .execute(&self.write)
        .await?;
        self.automation(&current.id).await
    }

    pub async fn delete_automation(&self, id_or_name: &str) -> StoreResult<()> {
        let deleted = sqlx::query("DELETE FROM automations WHERE id = $1 OR name = $1")
            .bind(id_or_name)
            .execute(&self.write)
            .await?
            .rows_affected();
        found(deleted, || format!("automation {id_or_name}"))
    }

    /// Claims a firing of an automation: `true` for the one core that
    /// claims `key` first. With `rearm`, a proactive trigger's window
    /// starts again at `at`. The firing is recorded as an event.
    pub async fn claim_firing(
        &self,
        automation: &Automation,
        key: String,
        at: Timestamp,
        cause: serde_json::Value,
        rearm: bool,
    ) -> StoreResult<bool> {
        let id = automation.id.clone();
        let name = automation.spec.name.clone();
        self.write_transaction(move |_, conn| {
            Box::pin(async move {
                let claimed = sqlx::query(
                    "INSERT INTO automation_firings (automation_id, firing_key, fired_at) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&id)
                .bind(&key)
                .bind(at.0)
                .execute(&mut *conn)
                .await?
                .rows_affected()
                    == 1;
                if !claimed {
                    return Ok(false);
                }
                if rearm {
                    sqlx::query("UPDATE automations SET armed_at = $1 WHERE id = $2")
                        .bind(at.0)
                        .bind(&id)
                        .execute(&mut *conn)
                        .await?;
                }
                events::record(
                    conn,
                    NewEvent {
                        name: "automation.triggered",
                        resource: format!("automation/{id}"),
                        related: Vec::new(),
                        payload: serde_json::json!({ "automation": name, "cause": cause }),
                    },
                )
                .await?;
                Ok(true)
            })
        })
        .await
    }
}
