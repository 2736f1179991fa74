//! Run artifacts as the API reads them: a run's, and the latest of a key
//! across runs. They are written with the rest of a run's reports
//! (`reports.rs`).

use baton_proto::v1::{RunArtifact, RunArtifactKind, Timestamp, check_artifact_key};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, StoreResult, as_u32};

const COLUMNS: &str = "run_id, attempt, artifact_key, kind, description, content, created_at";

fn artifact_row(row: &AnyRow) -> StoreResult<RunArtifact> {
    let kind: String = row.try_get("kind")?;
    let content: String = row.try_get("content")?;
    Ok(RunArtifact {
        run_id: row.try_get("run_id")?,
        attempt: as_u32(row.try_get("attempt")?),
        key: row.try_get("artifact_key")?,
        kind: RunArtifactKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("artifact kind `{kind}`")))?,
        description: row.try_get("description")?,
        content: serde_json::from_str(&content).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: Timestamp(row.try_get("created_at")?),
    })
}

impl Store {
    /// Every artifact run `run_id` created, oldest first.
    pub async fn run_artifacts(&self, run_id: &str) -> StoreResult<Vec<RunArtifact>> {
        // A run that does not exist is not found, rather than empty.
        self.run(run_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM run_artifacts WHERE run_id = $1 ORDER BY attempt, seq"
        ))
        .bind(run_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(artifact_row).collect()
    }

    /// The latest artifact of `key`, across runs.
    pub async fn latest_run_artifact(&self, key: &str) -> StoreResult<RunArtifact> {
        check_artifact_key(key).map_err(StoreError::Invalid)?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM run_artifacts WHERE artifact_key = $1 \
             ORDER BY created_at DESC, run_id DESC, attempt DESC, seq DESC LIMIT 1"
        ))
        .bind(key)
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("artifact `{key}`")))?;
        artifact_row(&row)
    }
}
