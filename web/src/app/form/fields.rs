//! The Run form's model: a flow's parameter schema read as fields (each
//! edited by its kind), what a field holds while it is edited, and the
//! parameters those entries stand for, checked by the core's validator.

use std::collections::BTreeMap;

use baton_proto::v1::schema_view::{choices, resolved};
use baton_proto::v1::{ParamErrors, validate_params};
use serde_json::{Map, Value};

/// How a parameter is edited.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Text,
    Integer,
    Number,
    Boolean,
    Choice(Vec<Value>),
    /// A list of objects whose properties are all of the kinds above: a
    /// row each, a field per property.
    Rows(Vec<Field>),
    /// Other objects and lists, and anything else: JSON in a text area.
    Json,
}

impl Kind {
    /// What people are asked for, beside the field's name.
    pub fn hint(&self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Integer => "whole number",
            Kind::Number => "number",
            Kind::Boolean => "yes / no",
            Kind::Choice(_) => "one of",
            Kind::Rows(_) => "list",
            Kind::Json => "JSON",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub kind: Kind,
    pub required: bool,
    pub help: Option<String>,
}

/// The parameters of a flow's schema, each with the way it is edited.
pub fn parameter_fields(schema: &Value) -> Vec<Field> {
    fields(schema, schema, |root, property| Some(parameter_kind(root, property)))
        .unwrap_or_default()
}

/// The properties of `object` as fields, or `None` when `kind_of` has no
/// kind for one of them.
fn fields(
    root: &Value,
    object: &Value,
    kind_of: fn(&Value, &Value) -> Option<Kind>,
) -> Option<Vec<Field>> {
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = object.get("properties").and_then(Value::as_object) else {
        return Some(Vec::new());
    };
    properties
        .iter()
        .map(|(name, declared)| {
            // Descriptions sit beside a reference; the type behind it.
            let property = resolved(root, declared);
            let help = declared
                .get("description")
                .or_else(|| property.get("description"))
                .or_else(|| declared.get("title"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            Some(Field {
                name: name.clone(),
                kind: kind_of(root, property)?,
                required: required.contains(&name.as_str()),
                help,
            })
        })
        .collect()
}

fn parameter_kind(root: &Value, property: &Value) -> Kind {
    scalar_kind(property)
        .or_else(|| row_columns(root, property).map(Kind::Rows))
        .unwrap_or(Kind::Json)
}

/// The kind of a (resolved) schema edited in one control.
fn scalar_kind(property: &Value) -> Option<Kind> {
    if let Some(choices) = choices(property) {
        return Some(Kind::Choice(choices));
    }
    match property.get("type").and_then(Value::as_str)? {
        "string" => Some(Kind::Text),
        "integer" => Some(Kind::Integer),
        "number" => Some(Kind::Number),
        "boolean" => Some(Kind::Boolean),
        _ => None,
    }
}

/// The columns of a list of objects whose properties each fit one control.
fn row_columns(root: &Value, list: &Value) -> Option<Vec<Field>> {
    if list.get("type").and_then(Value::as_str) != Some("array") {
        return None;
    }
    let items = resolved(root, list.get("items")?);
    fields(root, items, |_, property| scalar_kind(property)).filter(|columns| !columns.is_empty())
}

/// What a field holds while it is edited.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Text(String),
    /// A list of objects: each row's text by column.
    Rows(Vec<Row>),
}

/// One object of a list being edited: its text by property.
pub type Row = BTreeMap<String, String>;

/// The entry a field starts with for `value`.
pub fn entry_of(kind: &Kind, value: Option<&Value>) -> Entry {
    match kind {
        Kind::Rows(columns) => Entry::Rows(
            value
                .and_then(Value::as_array)
                .map(|items| items.iter().map(|item| row_of(columns, item)).collect())
                .unwrap_or_default(),
        ),
        kind => Entry::Text(text_of(kind, value)),
    }
}

/// The row a list's object starts as; an empty one for a new row.
pub fn row_of(columns: &[Field], item: &Value) -> Row {
    columns
        .iter()
        .map(|column| (column.name.clone(), text_of(&column.kind, item.get(&column.name))))
        .collect()
}

/// The text a control starts with for `value`.
fn text_of(kind: &Kind, value: Option<&Value>) -> String {
    match (kind, value) {
        (_, None | Some(Value::Null)) => String::new(),
        (Kind::Text, Some(Value::String(text))) => text.clone(),
        (Kind::Json | Kind::Rows(_), Some(value)) => {
            serde_json::to_string_pretty(value).unwrap_or_default()
        }
        (_, Some(value)) => value.to_string(),
    }
}

/// The value a control's text stands for; `None` when left empty.
fn value_of(kind: &Kind, text: &str) -> Result<Option<Value>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() && !matches!(kind, Kind::Boolean) {
        return Ok(None);
    }
    let value = match kind {
        Kind::Text => Value::String(text.to_owned()),
        Kind::Integer => trimmed
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("`{trimmed}` is not a whole number"))?,
        Kind::Number => trimmed
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("`{trimmed}` is not a number"))?,
        Kind::Boolean => Value::Bool(trimmed == "true"),
        Kind::Choice(_) | Kind::Rows(_) | Kind::Json => {
            serde_json::from_str(trimmed).map_err(|e| format!("not valid JSON: {e}"))?
        }
    };
    Ok(Some(value))
}

/// The value an entry stands for; `None` when left empty (no rows).
fn entry_value(kind: &Kind, entry: &Entry) -> Result<Option<Value>, String> {
    match (kind, entry) {
        (Kind::Rows(columns), Entry::Rows(rows)) if !rows.is_empty() => rows
            .iter()
            .enumerate()
            .map(|(index, row)| row_value(columns, index, row))
            .collect::<Result<Vec<_>, _>>()
            .map(|items| Some(Value::Array(items))),
        (_, Entry::Rows(_)) => Ok(None),
        (kind, Entry::Text(text)) => value_of(kind, text),
    }
}

/// The object row `index` (from 0) stands for.
fn row_value(columns: &[Field], index: usize, row: &Row) -> Result<Value, String> {
    let mut item = Map::new();
    for column in columns {
        let text = row.get(&column.name).map(String::as_str).unwrap_or_default();
        match value_of(&column.kind, text) {
            Ok(Some(value)) => {
                item.insert(column.name.clone(), value);
            }
            Ok(None) if column.required => {
                return Err(format!("row {}: {} is required", index + 1, column.name));
            }
            Ok(None) => {}
            Err(problem) => return Err(format!("row {}: {}: {problem}", index + 1, column.name)),
        }
    }
    Ok(Value::Object(item))
}

/// The parameters the entries stand for, and each field's problem (by
/// field name; `""` for the schema itself).
pub fn check(
    schema: &Value,
    fields: &[Field],
    entries: &BTreeMap<String, Entry>,
) -> (Map<String, Value>, BTreeMap<String, String>) {
    let mut parameters = Map::new();
    let mut problems = BTreeMap::new();
    for field in fields {
        let value = match entries.get(&field.name) {
            Some(entry) => entry_value(&field.kind, entry),
            None => Ok(None),
        };
        match value {
            Ok(Some(value)) => {
                parameters.insert(field.name.clone(), value);
            }
            Ok(None) if field.required => {
                problems.insert(field.name.clone(), "required".to_owned());
            }
            Ok(None) => {}
            Err(problem) => {
                problems.insert(field.name.clone(), problem);
            }
        }
    }
    if problems.is_empty()
        && let Err(errors) = validate_params(schema, &Value::Object(parameters.clone()))
    {
        match errors {
            ParamErrors::Invalid(errors) => {
                for error in errors {
                    let field = error.field.split('.').next().unwrap_or_default().to_owned();
                    problems.entry(field).or_insert(error.message);
                }
            }
            ParamErrors::BadSchema(why) => {
                problems.insert(String::new(), why);
            }
        }
    }
    (parameters, problems)
}
