//! Incoming webhooks: a slug, the name of the event a call becomes, and
//! optionally a secret (sealed like secrets) the caller signs with.

use baton_proto::v1::{Timestamp, Webhook, WebhookSpec};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::deployments::check_name;
use super::{Store, StoreError, StoreResult, found, now};

fn webhook(row: &AnyRow) -> StoreResult<Webhook> {
    let slug: String = row.try_get("slug")?;
    Ok(Webhook {
        path: format!("/hooks/{slug}"),
        slug,
        event: row.try_get("event_name")?,
        signed: row.try_get::<Option<Vec<u8>>, _>("sealed_secret")?.is_some(),
        created_at: Timestamp(row.try_get("created_at")?),
    })
}

/// What the sealed secret of webhook `slug` is bound to.
fn secret_name(slug: &str) -> String {
    format!("webhook:{slug}")
}

impl Store {
    pub async fn create_webhook(&self, spec: WebhookSpec) -> StoreResult<Webhook> {
        check_name("webhook", &spec.slug)?;
        let event = spec.event.unwrap_or_else(|| format!("webhook.{}", spec.slug));
        if event.is_empty() || event.contains('*') {
            return Err(StoreError::Invalid(format!(
                "event name `{event}` must be non-empty, without `*`"
            )));
        }
        let sealed = match &spec.secret {
            Some(secret) if secret.is_empty() => {
                return Err(StoreError::Invalid("a webhook secret may not be empty".to_owned()));
            }
            Some(secret) => Some(
                self.cipher
                    .seal(&secret_name(&spec.slug), secret)
                    .map_err(|e| StoreError::Secret(e.to_string()))?,
            ),
            None => None,
        };
        let inserted = sqlx::query(
            "INSERT INTO webhooks (slug, event_name, sealed_secret, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (slug) DO NOTHING",
        )
        .bind(&spec.slug)
        .bind(&event)
        .bind(sealed)
        .bind(now().0)
        .execute(&self.write)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Conflict(format!("webhook {} exists already", spec.slug)));
        }
        self.webhook(&spec.slug).await.map(|(webhook, _)| webhook)
    }

    /// A webhook and its secret, unsealed.
    pub async fn webhook(&self, slug: &str) -> StoreResult<(Webhook, Option<String>)> {
        let row = sqlx::query(
            "SELECT slug, event_name, sealed_secret, created_at FROM webhooks WHERE slug = $1",
        )
        .bind(slug)
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("webhook {slug}")))?;
        let secret = row
            .try_get::<Option<Vec<u8>>, _>("sealed_secret")?
            .map(|sealed| self.cipher.open(&secret_name(slug), &sealed))
            .transpose()
            .map_err(|e| StoreError::Secret(e.to_string()))?;
        Ok((webhook(&row)?, secret))
    }

    pub async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        sqlx::query(
            "SELECT slug, event_name, sealed_secret, created_at FROM webhooks ORDER BY slug",
        )
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(webhook)
        .collect()
    }

    pub async fn delete_webhook(&self, slug: &str) -> StoreResult<()> {
        let deleted = sqlx::query("DELETE FROM webhooks WHERE slug = $1")
            .bind(slug)
            .execute(&self.write)
            .await?
            .rows_affected();
        found(deleted, || format!("webhook {slug}"))
    }
}
