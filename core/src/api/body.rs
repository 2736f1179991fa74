//! Request bodies: JSON as the OpenAPI document describes it, raw bytes,
//! and the API's answer when one is refused.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{ApiFailure, ApiResult, JSON_BODY_LIMIT};

/// A JSON body of type `T`, taken as the OpenAPI document describes it and
/// refused with the API's JSON error: 413 with the limit when it is too
/// large, else 400 saying where and why. Where JSON Schema and serde
/// disagree, JSON Schema wins: an integer may be written `2.0`, and an
/// object may not be written as an array (serde would take `[]` for a
/// struct whose fields all have defaults).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + JsonSchema + 'static> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiFailure;

    async fn from_request(request: Request, state: &S) -> ApiResult<Self> {
        if !is_json(request.headers()) {
            return Err(ApiFailure::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON, with `Content-Type: application/json`",
            ));
        }
        let bytes = raw_body(Bytes::from_request(request, state).await)?;
        let value = from_json::<T>(&bytes)?;
        // Only a body with an array in it can hold one where an object
        // belongs; the others skip the second look.
        if bytes.contains(&b'[') {
            check_shape::<T>(&bytes)?;
        }
        Ok(JsonBody(value))
    }
}

/// A raw body, or 413 with the limit when it is too large.
pub fn raw_body(payload: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    payload.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            let limit = baton_proto::v1::limits::human_bytes(JSON_BODY_LIMIT);
            ApiFailure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the request body is over the limit of {limit}"),
            )
        } else {
            ApiFailure::bad_request(rejection.body_text())
        }
    })
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(media) = headers.get(header::CONTENT_TYPE).and_then(|t| t.to_str().ok()) else {
        return false;
    };
    let media = media.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let error = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => match deserializer.end() {
            Ok(()) => return Ok(value),
            Err(error) => return Err(unparsable(&error)),
        },
        Err(error) => error,
    };
    if !error.inner().is_data() {
        return Err(unparsable(error.inner()));
    }
    // Off the fast path: only a body serde refused is parsed a second time.
    let Ok(mut value) = serde_json::from_slice::<Value>(bytes) else {
        return Err(mistyped(&error));
    };
    if !integral_floats_to_integers(&mut value) {
        return Err(mistyped(&error));
    }
    serde_path_to_error::deserialize(value).map_err(|error| mistyped(&error))
}

fn unparsable(error: &serde_json::Error) -> ApiFailure {
    ApiFailure::bad_request(format!("Failed to parse the request body as JSON: {error}"))
}

fn mistyped(error: &serde_path_to_error::Error<serde_json::Error>) -> ApiFailure {
    ApiFailure::bad_request(format!(
        "Failed to deserialize the JSON body into the target type: {error}"
    ))
}

/// Turns every number written as a float with no fraction (`2.0`, `1e3`)
/// into the integer it is; true if there was one.
fn integral_floats_to_integers(value: &mut Value) -> bool {
    // The integers an f64 can hold exactly at the edges of i64 and u64.
    const I64_END: f64 = 9_223_372_036_854_775_808.0;
    const U64_END: f64 = 18_446_744_073_709_551_616.0;
    match value {
        Value::Number(number) => match number.as_f64() {
            Some(float) if number.is_f64() && float.fract() == 0.0 => {
                if (-I64_END..I64_END).contains(&float) {
                    *value = Value::from(float as i64);
                } else if (0.0..U64_END).contains(&float) {
                    *value = Value::from(float as u64);
                } else {
                    return false;
                }
                true
            }
            _ => false,
        },
        Value::Array(items) => {
            items.iter_mut().fold(false, |found, item| integral_floats_to_integers(item) | found)
        }
        Value::Object(fields) => {
            fields.values_mut().fold(false, |found, item| integral_floats_to_integers(item) | found)
        }
        _ => false,
    }
}

/// The JSON schema of each body type, made once.
static SCHEMAS: LazyLock<RwLock<HashMap<TypeId, Arc<Value>>>> = LazyLock::new(Default::default);

fn schema_of<T: JsonSchema + 'static>() -> Arc<Value> {
    let known = SCHEMAS.read().ok().and_then(|schemas| schemas.get(&TypeId::of::<T>()).cloned());
    known.unwrap_or_else(|| {
        let schema = Arc::new(schemars::schema_for!(T).to_value());
        if let Ok(mut schemas) = SCHEMAS.write() {
            schemas.insert(TypeId::of::<T>(), schema.clone());
        }
        schema
    })
}

/// Refuses a body whose values are not of the JSON types its schema
/// names, as a JSON Schema validator would (serde has done the rest).
fn check_shape<T: JsonSchema + 'static>(bytes: &[u8]) -> ApiResult<()> {
    let value: Value = serde_json::from_slice(bytes).map_err(|error| unparsable(&error))?;
    let schema = schema_of::<T>();
    let definitions = schema.get("$defs").and_then(Value::as_object);
    match misshapen(&value, &schema, definitions, "") {
        None => Ok(()),
        Some(Misfit { path, wanted, found }) => {
            let at = if path.is_empty() { "the body".to_owned() } else { format!("`{path}`") };
            Err(ApiFailure::bad_request(format!("{at} must be {wanted}, not {found}")))
        }
    }
}

/// A value of a JSON type its schema does not allow.
struct Misfit {
    path: String,
    /// The types the schema allows there (`object`, `string or null`).
    wanted: String,
    found: &'static str,
}

/// The first place where `value` holds a JSON type `schema` does not allow.
fn misshapen(
    value: &Value,
    schema: &Value,
    definitions: Option<&Map<String, Value>>,
    path: &str,
) -> Option<Misfit> {
    let resolved = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|reference| reference.strip_prefix("#/$defs/"))
        .and_then(|name| definitions?.get(name));
    if let Some(target) = resolved {
        return misshapen(value, target, definitions, path);
    }
    if let Some(types) = schema.get("type")
        && !allows(types, value)
    {
        let wanted = match types {
            Value::Array(names) => {
                names.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or ")
            }
            other => other.as_str().unwrap_or_default().to_owned(),
        };
        return Some(Misfit { path: path.to_owned(), wanted, found: type_of(value) });
    }
    for all in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        if let Some(found) = misshapen(value, all, definitions, path) {
            return Some(found);
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alternatives) = schema.get(key).and_then(Value::as_array) {
            let mut first = None;
            for alternative in alternatives {
                match misshapen(value, alternative, definitions, path) {
                    None => {
                        first = None;
                        break;
                    }
                    Some(found) => {
                        first.get_or_insert(found);
                    }
                }
            }
            if first.is_some() {
                return first;
            }
        }
    }
    match value {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let others = schema.get("additionalProperties").filter(|s| s.is_object());
            fields.iter().find_map(|(name, field)| {
                let field_schema = properties.and_then(|p| p.get(name)).or(others)?;
                let path = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                misshapen(field, field_schema, definitions, &path)
            })
        }
        Value::Array(items) => {
            let item_schema = schema.get("items")?;
            items.iter().enumerate().find_map(|(i, item)| {
                misshapen(item, item_schema, definitions, &format!("{path}[{i}]"))
            })
        }
        _ => None,
    }
}

/// Whether a schema's `type` (a name or a list of them) allows `value`.
fn allows(types: &Value, value: &Value) -> bool {
    let one = |name: &Value| match name.as_str() {
        Some("integer") => value.as_f64().is_some_and(|n| n.fract() == 0.0),
        Some("number") => value.is_number(),
        Some(name) => type_of(value) == name,
        None => true,
    };
    match types {
        Value::Array(names) => names.iter().any(one),
        name => one(name),
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
