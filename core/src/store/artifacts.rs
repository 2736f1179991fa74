//! Flow artifacts: component bytes by digest, with what `describe` said.

use baton_proto::v1::{Artifact, FlowInfo, Timestamp};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, StoreResult, json_column, now};

const COLUMNS: &str =
    "digest, size, flow_name, flow_version, description, parameter_schema, created_at";

fn artifact(row: &AnyRow) -> StoreResult<Artifact> {
    let size: i64 = row.try_get("size")?;
    Ok(Artifact {
        digest: row.try_get("digest")?,
        size: u64::try_from(size).unwrap_or_default(),
        flow: FlowInfo {
            name: row.try_get("flow_name")?,
            version: row.try_get("flow_version")?,
            description: row.try_get("description")?,
            parameters: json_column(row, "parameter_schema")?,
        },
        created_at: Timestamp(row.try_get("created_at")?),
    })
}

impl Store {
    /// Stores an artifact; storing the same digest again changes nothing.
    /// Returns the artifact and whether it was new.
    pub async fn put_artifact(
        &self,
        digest: &str,
        flow: &FlowInfo,
        bytes: &[u8],
    ) -> StoreResult<(Artifact, bool)> {
        let size = i64::try_from(bytes.len())
            .map_err(|_| StoreError::Invalid("artifact too large".into()))?;
        let inserted = sqlx::query(
            "INSERT INTO artifacts (digest, size, flow_name, flow_version, description, parameter_schema, bytes, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest)
        .bind(size)
        .bind(&flow.name)
        .bind(&flow.version)
        .bind(&flow.description)
        .bind(flow.parameters.to_string())
        .bind(bytes)
        .bind(now().0)
        .execute(&self.write)
        .await?
        .rows_affected()
            == 1;
        Ok((self.artifact(digest).await?, inserted))
    }

    pub async fn artifact(&self, digest: &str) -> StoreResult<Artifact> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM artifacts WHERE digest = $1"))
            .bind(digest)
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("artifact {digest}")))?;
        artifact(&row)
    }

    pub async fn artifact_bytes(&self, digest: &str) -> StoreResult<Vec<u8>> {
        let row = sqlx::query("SELECT bytes FROM artifacts WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("artifact {digest}")))?;
        Ok(row.try_get("bytes")?)
    }
}
