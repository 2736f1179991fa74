//! Reading a flow's parameter schema as people see it: references into
//! `$defs` followed, `Option`s seen through, enums as their choices, and a
//! short name for each parameter's type. Shared by the UI's Run form and
//! `baton flow inspect`.

use serde_json::Value;

/// `schema` with what stands in for another schema followed, within
/// `root`: a `$ref` into `$defs` (or `definitions`), an `allOf` of one
/// schema (how a reference carries its own description), an
/// `anyOf`/`oneOf` of one schema and `null` (an `Option`). At most a few
/// steps, so a reference cycle ends.
pub fn resolved<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..8 {
        let next = if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference
                .strip_prefix("#/$defs/")
                .map(|n| ("$defs", n))
                .or_else(|| reference.strip_prefix("#/definitions/").map(|n| ("definitions", n)));
            name.and_then(|(section, name)| root.get(section)?.get(name))
        } else if let Some([only]) =
            schema.get("allOf").and_then(Value::as_array).map(Vec::as_slice)
        {
            Some(only)
        } else {
            not_null(schema)
        };
        match next {
            Some(next) => schema = next,
            None => break,
        }
    }
    schema
}

/// The one schema beside `null` in an `anyOf`/`oneOf`.
fn not_null(schema: &Value) -> Option<&Value> {
    let options = schema.get("anyOf").or_else(|| schema.get("oneOf"))?.as_array()?;
    let mut others =
        options.iter().filter(|o| o.get("type").and_then(Value::as_str) != Some("null"));
    let only = others.next()?;
    (others.next().is_none() && options.len() == 2).then_some(only)
}

/// The values an enum allows: `enum`, or a `oneOf`/`anyOf` of `const`s
/// (how an enum whose variants have doc comments is written).
pub fn choices(schema: &Value) -> Option<Vec<Value>> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Some(values.clone());
    }
    let options = schema.get("oneOf").or_else(|| schema.get("anyOf"))?.as_array()?;
    options
        .iter()
        .map(|option| {
            option.get("const").cloned().or_else(|| {
                option.get("enum")?.as_array().filter(|e| e.len() == 1)?.first().cloned()
            })
        })
        .collect()
}

/// A short name for a (resolved) schema's type: `string`, `integer`,
/// `one of "a", "b"`, `list of object`, `string|null`, `object`.
pub fn type_name(root: &Value, schema: &Value) -> String {
    let schema = resolved(root, schema);
    if let Some(values) = choices(schema) {
        let values: Vec<String> = values.iter().map(Value::to_string).collect();
        return format!("one of {}", values.join(", "));
    }
    match schema.get("type") {
        Some(Value::String(kind)) if kind == "array" => match schema.get("items") {
            Some(items) => format!("list of {}", type_name(root, items)),
            None => "list".to_owned(),
        },
        Some(Value::String(kind)) => kind.clone(),
        Some(Value::Array(kinds)) => {
            kinds.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("|")
        }
        _ if schema.get("properties").is_some() => "object".to_owned(),
        _ => "any".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// As schemars writes `struct P { group_by: GroupBy, region: Option<Region>, rows: Vec<Row> }`.
    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "group_by": {"$ref": "#/$defs/GroupBy"},
                "region": {"anyOf": [{"$ref": "#/$defs/Region"}, {"type": "null"}]},
                "rows": {"type": "array", "items": {"$ref": "#/$defs/Row"}},
                "note": {"allOf": [{"$ref": "#/$defs/Note"}], "description": "why"}
            },
            "$defs": {
                "GroupBy": {"type": "string", "enum": ["region", "product"]},
                "Region": {"oneOf": [{"const": "eu", "description": "Europe"}, {"const": "us"}]},
                "Row": {"type": "object", "properties": {"id": {"type": "integer"}}},
                "Note": {"type": "string"}
            }
        })
    }

    #[test]
    fn references_and_options_are_followed_to_their_types() {
        let root = schema();
        let property = |name: &str| &root["properties"][name];
        assert_eq!(type_name(&root, property("group_by")), r#"one of "region", "product""#);
        assert_eq!(type_name(&root, property("region")), r#"one of "eu", "us""#);
        assert_eq!(type_name(&root, property("rows")), "list of object");
        assert_eq!(type_name(&root, property("note")), "string");
        assert_eq!(
            choices(resolved(&root, property("region"))),
            Some(vec![json!("eu"), json!("us")])
        );
        // A cycle ends.
        let cycle = json!({"$defs": {"A": {"$ref": "#/$defs/A"}}});
        assert_eq!(type_name(&cycle, &json!({"$ref": "#/$defs/A"})), "any");
    }
}
