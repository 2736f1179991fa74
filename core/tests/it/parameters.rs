//! Parameters and schemas from anyone (a client's JSON, a hostile flow's
//! `describe`) are validated to an answer, never a panic: a proptest
//! corpus of random values against random and keyword-shaped schemas,
//! run on every test run.

use baton_proto::v1::validate_params;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z$]{0,6}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A schema made of JSON Schema's own keywords with any values (an
/// invalid pattern, a dangling `$ref`, a type that is not a type).
fn keyword_schema() -> impl Strategy<Value = Value> {
    let keyword = prop_oneof![
        Just("type"),
        Just("properties"),
        Just("required"),
        Just("minimum"),
        Just("maximum"),
        Just("pattern"),
        Just("enum"),
        Just("items"),
        Just("$ref"),
        Just("$defs"),
        Just("additionalProperties"),
        Just("format"),
        Just("minLength"),
        Just("maxLength"),
        Just("oneOf"),
        Just("not"),
    ];
    proptest::collection::btree_map(keyword, any_json(), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn random_parameters_against_a_real_schema_never_panic(params in any_json()) {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": {"type": "integer", "minimum": 0},
                "b": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8},
                "c": {"type": "array", "items": {"$ref": "#/$defs/item"}},
            },
            "required": ["a"],
            "$defs": {"item": {"enum": [1, "two", null]}},
        });
        let _ = validate_params(&schema, &params);
    }

    #[test]
    fn any_schema_and_parameters_never_panic(schema in keyword_schema(), params in any_json()) {
        let _ = validate_params(&schema, &params);
    }

    #[test]
    fn random_json_as_a_schema_never_panics(schema in any_json(), params in any_json()) {
        let _ = validate_params(&schema, &params);
    }
}

#[test]
fn a_schema_that_refers_to_itself_is_an_answer_not_a_hang() {
    let schema = json!({"$ref": "#", "type": "object"});
    let _ = validate_params(&schema, &json!({"a": 1}));
    let nested = json!({"properties": {"x": {"$ref": "#"}}});
    let mut deep = json!(1);
    for _ in 0..200 {
        deep = json!({"x": deep});
    }
    let _ = validate_params(&nested, &deep);
}
