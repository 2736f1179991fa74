//! Artifacts: what a flow leaves for people to read, stored with its run
//! and shown on the run's page and by `baton run inspect`.
//!
//! ```text
//! baton_sdk::markdown_artifact("daily-report", "# Sales\n\n**1,204** orders")?;
//! baton_sdk::table_artifact("regions", &rows)?;          // rows: [{...}, ...]
//! baton_sdk::link_artifact("dashboard", "https://grafana.example.com/d/1", "Dashboard")?;
//! baton_sdk::progress_artifact("load", 0.75)?;
//! ```
//!
//! A key (lower-case letters, digits, `-`, `_`, `.`) names an artifact
//! across runs: the API answers a key with its latest artifact. An empty
//! key leaves the artifact unnamed.

use anyhow::{Result, anyhow};
use serde::Serialize;

use crate::bindings::baton::flow::artifacts;

pub use artifacts::ArtifactKind;

/// Creates an artifact of `kind` with `content` (see [`ArtifactKind`] for
/// what each holds).
pub fn create_artifact(key: &str, kind: ArtifactKind, content: &serde_json::Value) -> Result<()> {
    let key = (!key.is_empty()).then_some(key);
    artifacts::create(key, kind, &content.to_string(), None).map_err(|e| anyhow!(e))
}

/// A Markdown report.
pub fn markdown_artifact(key: &str, markdown: &str) -> Result<()> {
    create_artifact(key, ArtifactKind::Markdown, &serde_json::Value::String(markdown.to_owned()))
}

/// A table: each row an object (a struct that serialises to one), its
/// fields the columns.
pub fn table_artifact<Row: Serialize>(key: &str, rows: &[Row]) -> Result<()> {
    create_artifact(key, ArtifactKind::Table, &serde_json::to_value(rows)?)
}

/// A link to an http(s) URL.
pub fn link_artifact(key: &str, url: &str, text: &str) -> Result<()> {
    create_artifact(key, ArtifactKind::Link, &serde_json::json!({"url": url, "text": text}))
}

/// How far something has got, from 0 to 1.
pub fn progress_artifact(key: &str, fraction: f64) -> Result<()> {
    create_artifact(key, ArtifactKind::Progress, &serde_json::json!(fraction))
}
