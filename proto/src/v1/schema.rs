//! What the derived JSON schemas (for the OpenAPI document) cannot say by
//! themselves.

use schemars::Schema;
use serde_json::Value;

/// A schemars transform for a struct with `#[serde(default)]`: `fields`
/// must be given all the same. Serde's default fills them in for Rust
/// callers, with values the core refuses (an empty name, say).
pub(crate) fn required(fields: &'static [&'static str]) -> impl FnMut(&mut Schema) {
    move |schema| {
        let object = schema.ensure_object();
        if let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) {
            for field in fields {
                if let Some(property) = properties.get_mut(*field).and_then(Value::as_object_mut) {
                    property.remove("default");
                }
            }
        }
        let required = object.entry("required").or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = required {
            for field in fields {
                if !list.iter().any(|name| name == field) {
                    list.push(Value::from(*field));
                }
            }
        }
    }
}
