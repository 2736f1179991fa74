//! What a flow component says about itself.

use serde::{Deserialize, Serialize};

/// The result of a flow's `describe` export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FlowInfo {
    /// Flow name, unique within an installation.
    pub name: String,
    /// Version of the flow's code.
    pub version: String,
    /// One paragraph for people.
    pub description: String,
    /// JSON schema of the parameters object.
    pub parameters: serde_json::Value,
}
