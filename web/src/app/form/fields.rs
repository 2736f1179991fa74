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
    /// An object whose properties the schema names: a field each.
    Object(Vec<Field>),
    /// A list of such objects: a row each, a field per property.
    Rows(Vec<Field>),
    /// What the schema leaves open (a map, a list of plain values, any
    /// value): JSON in a text area.
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
            Kind::Object(_) => "object",
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

/// How many objects deep fields nest; deeper, or round a reference
/// cycle, a value is JSON.
const DEPTH: usize = 4;

/// The parameters of a flow's schema, each with the way it is edited.
pub fn parameter_fields(schema: &Value) -> Vec<Field> {
    object_fields(schema, schema, DEPTH)
}

/// The properties of (resolved) `object` as fields.
fn object_fields(root: &Value, object: &Value, depth: usize) -> Vec<Field> {
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = object.get("properties").and_then(Value::as_object) else {
        return Vec::new();
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
            Field {
                name: name.clone(),
                kind: kind_of(root, property, depth),
                required: required.contains(&name.as_str()),
                help,
            }
        })
        .collect()
}

fn kind_of(root: &Value, property: &Value, depth: usize) -> Kind {
    if let Some(kind) = scalar_kind(property) {
        return kind;
    }
    let Some(depth) = depth.checked_sub(1) else {
        return Kind::Json;
    };
    if has_fields(property) {
        return Kind::Object(object_fields(root, property, depth));
    }
    match (type_of(property), property.get("items")) {
        (Some("array"), Some(items)) if has_fields(resolved(root, items)) => {
            Kind::Rows(object_fields(root, resolved(root, items), depth))
        }
        _ => Kind::Json,
    }
}

/// The kind of a (resolved) schema edited in one control.
fn scalar_kind(property: &Value) -> Option<Kind> {
    if let Some(choices) = choices(property) {
        return Some(Kind::Choice(choices));
    }
    match type_of(property)? {
        "string" => Some(Kind::Text),
        "integer" => Some(Kind::Integer),
        "number" => Some(Kind::Number),
        "boolean" => Some(Kind::Boolean),
        _ => None,
    }
}

/// A schema's type; of `["string", "null"]` (an `Option`), the one that
/// is not null.
fn type_of(schema: &Value) -> Option<&str> {
    match schema.get("type")? {
        Value::String(kind) => Some(kind),
        Value::Array(kinds) => {
            let mut named = kinds.iter().filter_map(Value::as_str).filter(|k| *k != "null");
            let only = named.next()?;
            named.next().is_none().then_some(only)
        }
        _ => None,
    }
}

/// Whether a (resolved) schema is an object of named properties and
/// nothing else (a map takes any key: that is JSON).
fn has_fields(schema: &Value) -> bool {
    let named = schema.get("properties").and_then(Value::as_object).is_some_and(|p| !p.is_empty());
    let open =
        matches!(schema.get("additionalProperties"), Some(Value::Object(_) | Value::Bool(true)));
    named && !open && type_of(schema).is_none_or(|kind| kind == "object")
}

/// What a field holds while it is edited.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Text(String),
    /// An object: its fields' entries.
    Object(Entries),
    /// A list of objects: each row's entries.
    Rows {
        rows: Vec<Entries>,
        /// It started with rows (the deployment's or the flow's default):
        /// emptied, it is sent as `[]`, since sending nothing would bring
        /// those rows back.
        given: bool,
    },
}

/// Entries by field name.
pub type Entries = BTreeMap<String, Entry>;

/// The entry a field starts with for `value`.
pub fn entry_of(kind: &Kind, value: Option<&Value>) -> Entry {
    match kind {
        Kind::Object(fields) => Entry::Object(entries_of(fields, value)),
        Kind::Rows(columns) => {
            let items = value.and_then(Value::as_array);
            Entry::Rows {
                rows: items
                    .map(|items| items.iter().map(|item| entries_of(columns, Some(item))).collect())
                    .unwrap_or_default(),
                given: items.is_some_and(|items| !items.is_empty()),
            }
        }
        kind => Entry::Text(text_of(kind, value)),
    }
}

/// The entries an object starts with (empty ones for a new row).
pub fn entries_of(fields: &[Field], object: Option<&Value>) -> Entries {
    fields
        .iter()
        .map(|field| {
            let value = object.and_then(|object| object.get(&field.name));
            (field.name.clone(), entry_of(&field.kind, value))
        })
        .collect()
}

/// The text a control starts with for `value`.
fn text_of(kind: &Kind, value: Option<&Value>) -> String {
    match (kind, value) {
        (_, None | Some(Value::Null)) => String::new(),
        (Kind::Text, Some(Value::String(text))) => text.clone(),
        (Kind::Json | Kind::Object(_) | Kind::Rows(_), Some(value)) => {
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
        Kind::Choice(_) | Kind::Object(_) | Kind::Rows(_) | Kind::Json => {
            serde_json::from_str(trimmed).map_err(|e| format!("not valid JSON: {e}"))?
        }
    };
    Ok(Some(value))
}

/// Whether nothing is filled in (an unticked checkbox counts as nothing).
fn is_blank(entry: &Entry) -> bool {
    match entry {
        Entry::Text(text) => text.trim().is_empty(),
        Entry::Object(entries) => entries.values().all(is_blank),
        Entry::Rows { rows, .. } => rows.is_empty(),
    }
}

/// The value a field's entry stands for; `None` when there is nothing to
/// send: left empty, an optional object left blank, an optional list
/// without rows that had none to start with. A required list without
/// rows is `[]`.
fn entry_value(field: &Field, entry: &Entry) -> Result<Option<Value>, String> {
    match (&field.kind, entry) {
        (Kind::Object(fields), Entry::Object(entries)) => {
            if !field.required && entries.values().all(is_blank) {
                return Ok(None);
            }
            object_value(fields, entries).map(Some)
        }
        (Kind::Rows(columns), Entry::Rows { rows, given }) => {
            if rows.is_empty() && !field.required && !given {
                return Ok(None);
            }
            rows.iter()
                .enumerate()
                .map(|(index, row)| {
                    object_value(columns, row)
                        .map_err(|problem| format!("row {}: {problem}", index + 1))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|items| Some(Value::Array(items)))
        }
        (kind, Entry::Text(text)) => value_of(kind, text),
        // An entry made for another kind holds nothing of this one.
        _ => Ok(None),
    }
}

/// The object these fields' entries stand for.
fn object_value(fields: &[Field], entries: &Entries) -> Result<Value, String> {
    let mut object = Map::new();
    for field in fields {
        let value = match entries.get(&field.name) {
            Some(entry) => entry_value(field, entry),
            None => Ok(None),
        };
        match value.map_err(|problem| format!("{}: {problem}", field.name))? {
            Some(value) => {
                object.insert(field.name.clone(), value);
            }
            None if field.required => return Err(format!("{} is required", field.name)),
            None => {}
        }
    }
    Ok(Value::Object(object))
}

/// The parameters the entries stand for, and each field's problem (by
/// field name; `""` for the schema itself).
pub fn check(
    schema: &Value,
    fields: &[Field],
    entries: &Entries,
) -> (Map<String, Value>, BTreeMap<String, String>) {
    let mut parameters = Map::new();
    let mut problems = BTreeMap::new();
    for field in fields {
        let value = match entries.get(&field.name) {
            Some(entry) => entry_value(field, entry),
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
