//! Run artifacts: what a flow leaves for people to read (a markdown report,
//! a table, a link, a progress figure), stored with its run, as Prefect's
//! artifacts are. Not to be confused with the component artifacts flows
//! are deployed from ([`super::Artifact`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Timestamp;
use super::limits::{cut, over_limit};

/// The largest artifact a flow may create (its content and description).
pub const MAX_RUN_ARTIFACT_BYTES: usize = 1 << 20;
/// The longest artifact key.
pub const MAX_ARTIFACT_KEY_CHARS: usize = 100;

/// What an artifact's content is, and so how it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunArtifactKind {
    /// A JSON string of Markdown (shown rendered, raw HTML as text).
    Markdown,
    /// A JSON array of objects: the rows, their keys the columns.
    Table,
    /// `{"url": "https://…", "text": "…"}`: an http(s) link.
    Link,
    /// A number from 0 to 1.
    Progress,
}

impl RunArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Markdown => "markdown",
            Self::Table => "table",
            Self::Link => "link",
            Self::Progress => "progress",
        }
    }

    /// The kind named `name` (as [`Self::as_str`] names it).
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Markdown, Self::Table, Self::Link, Self::Progress]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// Checks that `content` is what this kind holds; `Err` says why not.
    pub fn check(self, content: &Value) -> Result<(), String> {
        match (self, content) {
            (Self::Markdown, Value::String(_)) => Ok(()),
            (Self::Markdown, _) => Err("a markdown artifact's content is a JSON string".to_owned()),
            (Self::Table, Value::Array(rows)) if rows.iter().all(Value::is_object) => Ok(()),
            (Self::Table, _) => {
                Err("a table artifact's content is an array of objects (its rows)".to_owned())
            }
            (Self::Link, Value::Object(link)) => match link.get("url").and_then(Value::as_str) {
                Some(url) if is_web_url(url) => match link.get("text") {
                    None | Some(Value::String(_)) => Ok(()),
                    Some(_) => Err("a link artifact's `text` is a string".to_owned()),
                },
                Some(url) => Err(format!(
                    "a link artifact's url must be http:// or https://, not `{}`",
                    cut(url, 100)
                )),
                None => Err("a link artifact's content has a string `url`".to_owned()),
            },
            (Self::Link, _) => {
                Err("a link artifact's content is {\"url\": \"https://…\", \"text\": \"…\"}"
                    .to_owned())
            }
            (Self::Progress, Value::Number(n))
                if n.as_f64().is_some_and(|f| (0.0..=1.0).contains(&f)) =>
            {
                Ok(())
            }
            (Self::Progress, _) => {
                Err("a progress artifact's content is a number from 0 to 1".to_owned())
            }
        }
    }
}

/// The columns of a table artifact's rows: their keys, in the order they
/// first appear.
pub fn table_columns(rows: &[Value]) -> Vec<&str> {
    let mut columns: Vec<&str> = Vec::new();
    for row in rows.iter().filter_map(Value::as_object) {
        for column in row.keys() {
            if !columns.contains(&column.as_str()) {
                columns.push(column);
            }
        }
    }
    columns
}

/// Whether `url` is an absolute http(s) URL: the only links shown.
pub fn is_web_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !url.contains(char::is_whitespace)
}

/// Checks an artifact's key (optional): like a name, lower case
/// (`daily-report`, `model.accuracy`).
pub fn check_artifact_key(key: &str) -> Result<(), String> {
    let valid = !key.is_empty()
        && key.chars().count() <= MAX_ARTIFACT_KEY_CHARS
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "artifact key `{}` must be 1 to {MAX_ARTIFACT_KEY_CHARS} lower-case letters, digits, `-`, `_` or `.`",
            cut(key, 200)
        ))
    }
}

/// Checks a whole artifact as a flow creates it: its key, its size (of
/// `content`, JSON text, and a description of `description_bytes`), and
/// only then, within the limit, its content for its kind. Returns the
/// content parsed.
pub fn check_run_artifact(
    key: Option<&str>,
    kind: RunArtifactKind,
    content: &str,
    description_bytes: usize,
) -> Result<Value, String> {
    if let Some(key) = key {
        check_artifact_key(key)?;
    }
    let size = content.len().saturating_add(description_bytes);
    if size > MAX_RUN_ARTIFACT_BYTES {
        let what = format!("artifact `{}`", key.unwrap_or("(no key)"));
        return Err(over_limit(&what, size, MAX_RUN_ARTIFACT_BYTES));
    }
    let content: Value = serde_json::from_str(content)
        .map_err(|e| format!("the artifact's content is not JSON: {e}"))?;
    kind.check(&content)?;
    Ok(content)
}

/// An artifact a run created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RunArtifact {
    pub run_id: String,
    /// The attempt of the run that created it.
    pub attempt: u32,
    /// Its key, if it has one: the latest artifact of a key, across runs,
    /// is `GET /api/run-artifacts/{key}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub kind: RunArtifactKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub content: Value,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_kind_takes_its_own_content_only() {
        use RunArtifactKind::*;
        assert!(Markdown.check(&json!("# Report")).is_ok());
        assert!(Markdown.check(&json!({"md": 1})).is_err());
        assert!(Table.check(&json!([{"a": 1}, {"b": 2}])).is_ok());
        assert!(Table.check(&json!([1, 2])).is_err());
        assert!(Link.check(&json!({"url": "https://example.com/x", "text": "x"})).is_ok());
        let refused = Link.check(&json!({"url": "javascript:alert(1)"})).unwrap_err();
        assert!(refused.contains("must be http:// or https://"), "{refused}");
        assert!(Progress.check(&json!(0.5)).is_ok());
        assert!(Progress.check(&json!(1.5)).is_err());
        assert!(check_artifact_key("daily-report.v2").is_ok());
        assert!(check_artifact_key("Daily Report").is_err());
        // Over the limit is refused before the content is even parsed.
        let big = "x".repeat(MAX_RUN_ARTIFACT_BYTES + 1);
        let refused = check_run_artifact(Some("r"), Markdown, &big, 0).unwrap_err();
        assert!(refused.contains("artifact `r`") && refused.contains("limit"), "{refused}");
        let text = json!("x".repeat(MAX_RUN_ARTIFACT_BYTES - 10)).to_string();
        assert!(check_run_artifact(None, Markdown, &text, 8).is_ok());
        assert!(check_run_artifact(None, Markdown, &text, 9).is_err());
        let refused = check_run_artifact(None, Table, "[{", 0).unwrap_err();
        assert!(refused.contains("not JSON"), "{refused}");
    }
}
