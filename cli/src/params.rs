//! Turns `--params-json` and `--param key=value` into one parameters object,
//! reading each value as the flow's schema expects it.

use anyhow::{Context, bail};
use serde_json::{Map, Value};

/// Builds the parameters object: `json` first (if given), then each
/// `key=value` on top of it. A value is JSON (`2`, `true`, `[1,2]`) unless
/// the schema says the field is a string, or it does not parse as JSON.
/// The parameters' JSON text: given inline (`--params-json`), or read
/// from a file (`--params-file`, `-` for stdin).
pub fn json_text(
    inline: Option<String>,
    file: Option<&std::path::Path>,
) -> anyhow::Result<Option<String>> {
    match file {
        None => Ok(inline),
        Some(path) if path == std::path::Path::new("-") => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("reading the parameters from stdin")?;
            Ok(Some(text))
        }
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the parameters from {}", path.display()))
            .map(Some),
    }
}

pub fn collect(schema: &Value, json: Option<&str>, pairs: &[String]) -> anyhow::Result<Value> {
    let params = match json {
        None => Map::new(),
        Some(text) => {
            match serde_json::from_str(text).context("the parameters are not valid JSON")? {
                Value::Object(map) => map,
                other => bail!("the parameters must be a JSON object, got {}", kind(&other)),
            }
        }
    };
    Ok(Value::Object(over(schema, params, pairs)?))
}

/// `params` with `--param` `pairs` (typed by `schema`) set over them.
pub fn over(
    schema: &Value,
    mut params: Map<String, Value>,
    pairs: &[String],
) -> anyhow::Result<Map<String, Value>> {
    insert_pairs("--param", schema, pairs, &mut params)?;
    Ok(params)
}

/// `--job-var KEY=VALUE` pairs: JSON values, else strings.
pub fn job_variables(pairs: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut variables = Map::new();
    insert_pairs("--job-var", &Value::Null, pairs, &mut variables)?;
    Ok(variables)
}

fn insert_pairs(
    flag: &str,
    schema: &Value,
    pairs: &[String],
    into: &mut Map<String, Value>,
) -> anyhow::Result<()> {
    for pair in pairs {
        let Some((key, raw)) = pair.split_once('=') else {
            bail!("{flag} `{pair}` is not of the form key=value");
        };
        let key = key.trim();
        if key.is_empty() {
            bail!("{flag} `{pair}` has an empty key");
        }
        into.insert(key.to_owned(), value_for(schema, key, raw));
    }
    Ok(())
}

fn value_for(schema: &Value, key: &str, raw: &str) -> Value {
    if expects_string(schema.pointer(&format!("/properties/{}", escape(key)))) {
        return Value::String(raw.to_owned());
    }
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

/// Whether a property's schema accepts strings and nothing that a JSON
/// reading of the text would produce instead.
fn expects_string(property: Option<&Value>) -> bool {
    match property.and_then(|p| p.get("type")) {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(types)) => {
            types.iter().any(|t| t == "string")
                && !types.iter().any(|t| t == "integer" || t == "number" || t == "boolean")
        }
        _ => false,
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"properties": {"a": {"type": "integer"}, "name": {"type": "string"}, "opt": {"type": ["string", "null"]}}})
    }

    #[test]
    fn values_follow_the_schema() {
        let params = collect(
            &schema(),
            None,
            &[
                "a=2".into(),
                "name=007".into(),
                "opt=true".into(),
                "free=[1,2]".into(),
                "word=hi".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            params,
            json!({"a": 2, "name": "007", "opt": "true", "free": [1, 2], "word": "hi"})
        );
    }

    #[test]
    fn pairs_override_json() {
        let params = collect(&schema(), Some(r#"{"a": 1, "b": 2}"#), &["a=5".into()]).unwrap();
        assert_eq!(params, json!({"a": 5, "b": 2}));
    }

    #[test]
    fn malformed_input_is_refused_with_the_reason() {
        let error = collect(&schema(), None, &["nokey".into()]).unwrap_err();
        assert_eq!(error.to_string(), "--param `nokey` is not of the form key=value");
        let error = collect(&schema(), Some("[1]"), &[]).unwrap_err();
        assert_eq!(error.to_string(), "the parameters must be a JSON object, got an array");
        assert!(collect(&schema(), Some("{"), &[]).is_err());
    }
}
