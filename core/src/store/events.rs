//! Events: every accepted state change and every change to a deployment,
//! pool, variable or secret is recorded as one, in the same transaction;
//! agents connecting and leaving, schedules firing, webhook calls and
//! whatever flows or people emit are too.

use baton_proto::v1::{Event, Timestamp};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Store, StoreResult, json_column, new_id, now, to_json};

/// What an event is about, before it gets an id and a time.
pub(crate) struct NewEvent<'a> {
    pub name: &'a str,
    pub resource: String,
    pub related: Vec<String>,
    pub payload: serde_json::Value,
}

pub(crate) async fn record(conn: &mut AnyConnection, event: NewEvent<'_>) -> StoreResult<()> {
    insert(conn, &new_id(), now(), event).await
}

/// Records an event at most once per `key`: its id is a UUIDv7 of `at`
/// whose random part comes from the key.
pub(crate) async fn record_once(
    conn: &mut AnyConnection,
    key: &str,
    at: Timestamp,
    event: NewEvent<'_>,
) -> StoreResult<()> {
    use sha2::{Digest as _, Sha256};
    let hash = Sha256::digest(key.as_bytes());
    let mut random = [0_u8; 10];
    random.iter_mut().zip(hash.iter()).for_each(|(r, h)| *r = *h);
    let millis = u64::try_from(at.0).unwrap_or(0);
    let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
    insert(conn, &id.to_string(), at, event).await
}

/// Inserts an event; an id already taken means it is recorded already.
async fn insert(
    conn: &mut AnyConnection,
    id: &str,
    at: Timestamp,
    event: NewEvent<'_>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO events (id, occurred, name, resource, related, payload) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(at.0)
    .bind(event.name)
    .bind(event.resource)
    .bind(to_json(&event.related)?)
    .bind(event.payload.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// A name pattern (`*` for any run of characters) as an SQL `LIKE`
/// pattern with `\` escaping.
fn like_pattern(pattern: &str) -> String {
    let mut like = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        match c {
            '*' => like.push('%'),
            '%' | '_' | '\\' => {
                like.push('\\');
                like.push(c);
            }
            c => like.push(c),
        }
    }
    like
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// A name, where `*` stands for any run of characters (`run.*`).
    pub name: Option<String>,
    pub resource: Option<String>,
    pub since: Option<Timestamp>,
    /// Most events returned; 0 means 100.
    pub limit: u32,
}

fn event(row: &AnyRow) -> StoreResult<Event> {
    Ok(Event {
        id: row.try_get("id")?,
        occurred: Timestamp(row.try_get("occurred")?),
        name: row.try_get("name")?,
        resource: row.try_get("resource")?,
        related: json_column(row, "related")?,
        payload: json_column(row, "payload")?,
    })
}

impl Store {
    /// Records an event now and returns it.
    pub async fn record_event(
        &self,
        name: &str,
        resource: String,
        related: Vec<String>,
        payload: serde_json::Value,
    ) -> StoreResult<Event> {
        let event = Event {
            id: new_id(),
            occurred: now(),
            name: name.to_owned(),
            resource,
            related,
            payload,
        };
        let stored = event.clone();
        self.write_transaction(move |_, conn| {
            Box::pin(async move {
                insert(
                    conn,
                    &stored.id,
                    stored.occurred,
                    NewEvent {
                        name: &stored.name,
                        resource: stored.resource.clone(),
                        related: stored.related.clone(),
                        payload: stored.payload.clone(),
                    },
                )
                .await
            })
        })
        .await?;
        Ok(event)
    }

    /// Events from `(occurred, id)` on (after it), oldest first: what the
    /// live feed tails.
    pub async fn events_from(
        &self,
        from: &(Timestamp, String),
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT id, occurred, name, resource, related, payload FROM events \
             WHERE occurred > $1 OR (occurred = $1 AND id > $2) ORDER BY occurred, id LIMIT $3",
        )
        .bind(from.0.0)
        .bind(&from.1)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(event).collect()
    }

    /// Events, newest first.
    pub async fn events(&self, filter: &EventFilter) -> StoreResult<Vec<Event>> {
        let mut sql = String::from(
            "SELECT id, occurred, name, resource, related, payload FROM events WHERE 1 = 1",
        );
        let mut binds: Vec<String> = Vec::new();
        if let Some(name) = &filter.name {
            binds.push(like_pattern(name));
            sql.push_str(&format!(" AND name LIKE ${} ESCAPE '\\'", binds.len()));
        }
        if let Some(resource) = &filter.resource {
            binds.push(resource.clone());
            sql.push_str(&format!(" AND resource = ${}", binds.len()));
        }
        let since = filter.since.map_or(i64::MIN, |t| t.0);
        sql.push_str(&format!(
            " AND occurred >= ${} ORDER BY id DESC LIMIT ${}",
            binds.len() + 1,
            binds.len() + 2
        ));
        let mut query = sqlx::query(&sql);
        for bind in &binds {
            query = query.bind(bind);
        }
        let rows = query
            .bind(since)
            .bind(i64::from(if filter.limit == 0 { 100 } else { filter.limit.min(1000) }))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(event).collect()
    }
}
