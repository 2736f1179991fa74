//! Flow artifacts: component bytes by digest, with what `describe` said.

use baton_proto::v1::{Artifact, FlowDeployment, FlowInfo, FlowSummary, FlowVersion, Timestamp};
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

    /// Every flow with an uploaded component: its versions, newest first,
    /// and its deployments.
    pub async fn flows(&self) -> StoreResult<Vec<FlowSummary>> {
        let versions = sqlx::query(
            "SELECT flow_name, flow_version, digest, description, created_at FROM artifacts \
             ORDER BY flow_name, created_at DESC, digest",
        )
        .fetch_all(&self.read)
        .await?;
        let mut flows: Vec<FlowSummary> = Vec::new();
        for row in &versions {
            let name: String = row.try_get("flow_name")?;
            let version = FlowVersion {
                version: row.try_get("flow_version")?,
                digest: row.try_get("digest")?,
                description: row.try_get("description")?,
                created_at: Timestamp(row.try_get("created_at")?),
            };
            match flows.last_mut().filter(|flow| flow.name == name) {
                Some(flow) => flow.versions.push(version),
                None => flows.push(FlowSummary {
                    name,
                    versions: vec![version],
                    deployments: Vec::new(),
                }),
            }
        }
        let deployments = sqlx::query(
            "SELECT flow_name, name, artifact_digest, paused FROM deployments ORDER BY flow_name, name",
        )
        .fetch_all(&self.read)
        .await?;
        for row in &deployments {
            let flow_name: String = row.try_get("flow_name")?;
            let name: String = row.try_get("name")?;
            if let Some(flow) = flows.iter_mut().find(|flow| flow.name == flow_name) {
                flow.deployments.push(FlowDeployment {
                    deployment: format!("{flow_name}/{name}"),
                    digest: row.try_get("artifact_digest")?,
                    paused: row.try_get::<i64, _>("paused")? != 0,
                });
            }
        }
        Ok(flows)
    }
}
