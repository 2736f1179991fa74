//! Checks a run's parameters against a flow's parameter schema, so that a bad
//! value is refused before a run starts, with the field it concerns named.

use std::fmt;

/// One way in which parameters break the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// The parameter concerned, as a dotted path (`a`, `source.url`,
    /// `items.0`); empty when the problem is the parameters object itself.
    pub field: String,
    /// What is wrong, for people.
    pub message: String,
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "parameters: {}", self.message)
        } else {
            write!(f, "parameter `{}`: {}", self.field, self.message)
        }
    }
}

/// Every way in which parameters break the schema (at least one), or a
/// schema that is itself invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamErrors {
    Invalid(Vec<ParamError>),
    BadSchema(String),
}

impl fmt::Display for ParamErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamErrors::Invalid(errors) => {
                let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
                f.write_str(&lines.join("; "))
            }
            ParamErrors::BadSchema(why) => {
                write!(f, "the flow's parameter schema is invalid: {why}")
            }
        }
    }
}

impl std::error::Error for ParamErrors {}

/// Validates `params` against the JSON `schema`.
pub fn validate_params(
    schema: &serde_json::Value,
    params: &serde_json::Value,
) -> Result<(), ParamErrors> {
    let validator =
        jsonschema::validator_for(schema).map_err(|e| ParamErrors::BadSchema(e.to_string()))?;
    let unknown = unknown_names(schema, params);
    let errors: Vec<ParamError> = unknown
        .iter()
        .cloned()
        .chain(
            validator
                .iter_errors(params)
                // Said once, by name, above.
                .filter(|error| {
                    unknown.is_empty()
                        || !matches!(
                            error.kind(),
                            jsonschema::error::ValidationErrorKind::AdditionalProperties { .. }
                        )
                        || !error.instance_path().as_str().is_empty()
                })
                .map(|error| {
                    let field = match error.kind() {
                        jsonschema::error::ValidationErrorKind::Required { property } => {
                            join_field(error.instance_path().as_str(), &unquote(property))
                        }
                        _ => pointer_to_field(error.instance_path().as_str()),
                    };
                    ParamError { field, message: error.to_string() }
                }),
        )
        .collect();
    if errors.is_empty() { Ok(()) } else { Err(ParamErrors::Invalid(errors)) }
}

/// Top-level names in `params` the schema's `properties` do not have, each
/// with the nearest it does have. A schema that lets other names in
/// (`additionalProperties` other than `false`, or `patternProperties`)
/// has none; one that is silent counts as closed, since a misspelt name
/// would otherwise be stored beside the real one and never read.
fn unknown_names(schema: &serde_json::Value, params: &serde_json::Value) -> Vec<ParamError> {
    let (Some(known), Some(given)) =
        (schema.get("properties").and_then(|p| p.as_object()), params.as_object())
    else {
        return Vec::new();
    };
    let open = schema.get("patternProperties").is_some()
        || schema.get("additionalProperties").is_some_and(|a| *a != serde_json::Value::Bool(false));
    if open {
        return Vec::new();
    }
    given
        .keys()
        .filter(|name| !known.contains_key(*name))
        .map(|name| {
            let names = known.keys().map(String::as_str);
            let hint = match crate::v1::suggest::nearest(name, names) {
                Some(nearest) => format!("did you mean `{nearest}`?"),
                None => {
                    let names: Vec<String> = known.keys().map(|n| format!("`{n}`")).collect();
                    if names.is_empty() {
                        "the flow takes no parameters".to_owned()
                    } else {
                        format!("the flow takes {}", names.join(", "))
                    }
                }
            };
            ParamError { field: name.clone(), message: format!("no such parameter; {hint}") }
        })
        .collect()
}

fn unquote(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn pointer_to_field(pointer: &str) -> String {
    pointer
        .split('/')
        .skip(1)
        .map(|segment| segment.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

fn join_field(parent_pointer: &str, property: &str) -> String {
    let parent = pointer_to_field(parent_pointer);
    if parent.is_empty() { property.to_owned() } else { format!("{parent}.{property}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> serde_json::Value {
        json!({
            "type": "object",
            "properties": {
                "a": {"type": "integer"},
                "b": {"type": "integer"},
                "source": {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}
            },
            "required": ["a", "b"],
            "additionalProperties": false
        })
    }

    #[test]
    fn valid_parameters_pass() {
        assert_eq!(validate_params(&schema(), &json!({"a": 1, "b": 2})), Ok(()));
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let Err(ParamErrors::Invalid(errors)) =
            validate_params(&schema(), &json!({"a": "x", "b": 2}))
        else {
            panic!("expected invalid");
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "a");
        assert!(errors[0].to_string().starts_with("parameter `a`: "), "{}", errors[0]);
        assert!(errors[0].message.contains("integer"), "{}", errors[0].message);
    }

    #[test]
    fn a_missing_field_is_named_even_when_nested() {
        let Err(ParamErrors::Invalid(errors)) =
            validate_params(&schema(), &json!({"a": 1, "source": {}}))
        else {
            panic!("expected invalid");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"b"), "{fields:?}");
        assert!(fields.contains(&"source.url"), "{fields:?}");
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_nearest_known_one() {
        let mut open = schema();
        open.as_object_mut().unwrap().remove("additionalProperties");
        // A schema silent on other names is closed; `false` says so twice
        // over, and is still said once.
        for schema in [open, schema()] {
            let Err(ParamErrors::Invalid(errors)) =
                validate_params(&schema, &json!({"a": 1, "b": 2, "bb": 3, "zzzzzzzz": 4}))
            else {
                panic!("expected invalid");
            };
            let said: Vec<String> = errors.iter().map(ToString::to_string).collect();
            assert_eq!(
                said,
                [
                    "parameter `bb`: no such parameter; did you mean `b`?",
                    "parameter `zzzzzzzz`: no such parameter; the flow takes `a`, `b`, `source`",
                ],
            );
        }
        // Unless the schema lets other names in.
        let mut extra = schema();
        extra["additionalProperties"] = json!({"type": "integer"});
        assert_eq!(validate_params(&extra, &json!({"a": 1, "b": 2, "bb": 3})), Ok(()));
    }

    #[test]
    fn a_broken_schema_is_reported_as_such() {
        let result = validate_params(&json!({"type": 12}), &json!({}));
        assert!(matches!(result, Err(ParamErrors::BadSchema(_))), "{result:?}");
    }
}
