//! The OpenAPI document, generated from the route table ([`super::ROUTES`]),
//! the same table the router is made from.

use baton_proto::v1::limits::{MAX_NAME_CHARS, deployment_pattern, name_pattern};
use baton_proto::v1::{MAX_ARTIFACT_KEY_CHARS, StateName};
use serde_json::{Map, Value, json};

use super::routes::ROUTES;

/// JSON schemas of the wire types, by the names the route table uses, and
/// the definitions they refer to (for `components.schemas`).
fn schemas() -> (Map<String, Value>, Map<String, Value>) {
    use baton_proto::v1::*;
    let mut generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|settings| settings.definitions_path = "/components/schemas".into())
        .into_generator();
    let mut named = Map::new();
    macro_rules! named {
        ($($name:literal => $type:ty),* $(,)?) => {
            $( named.insert($name.to_owned(), generator.subschema_for::<$type>().to_value()); )*
        };
    }
    named! {
        "Health" => Health,
        "Artifact" => Artifact,
        "FlowSummary" => FlowSummary,
        "Deployment" => Deployment,
        "DeploymentSpec" => DeploymentSpec,
        "DeploymentUpserted" => DeploymentUpserted,
        "CreateRun" => CreateRun,
        "FlowRun" => FlowRun,
        "FlowRunDetail" => FlowRunDetail,
        "Page<FlowRun>" => Page<FlowRun>,
        "Page<TaskRun>" => Page<TaskRun>,
        "RunArtifact" => RunArtifact,
        "ChildCall" => ChildCall,
        "ChildAnswer" => ChildAnswer,
        "CacheCall" => CacheCall,
        "CacheAnswer" => CacheAnswer,
        "RunStats" => RunStats,
        "ProposeState" => ProposeState,
        "Transition" => Transition,
        "LogLine" => LogLine,
        "PoolSpec" => PoolSpec,
        "QueueSpec" => QueueSpec,
        "Automation" => Automation,
        "AutomationSpec" => AutomationSpec,
        "EmitEvent" => EmitEvent,
        "Webhook" => Webhook,
        "WebhookSpec" => WebhookSpec,
        "Schedule" => Schedule,
        "ScheduleSpec" => ScheduleSpec,
        "SkipLate" => SkipLate,
        "Skipped" => Skipped,
        "WorkPool" => WorkPool,
        "Variable" => Variable,
        "SecretInfo" => SecretInfo,
        "SecretValue" => SecretValue,
        "SetValue" => SetValue,
        "Event" => Event,
        "AgentInfo" => AgentInfo,
        "CreateAgentToken" => CreateAgentToken,
        "AgentTokenCreated" => AgentTokenCreated,
        "CreateApiToken" => CreateApiToken,
        "ApiTokenInfo" => ApiTokenInfo,
        "ApiTokenCreated" => ApiTokenCreated,
        "ApiError" => ApiError,
    }
    (named, generator.take_definitions(true))
}

/// The JSON schema for a name in the route table: a wire type, a list of
/// one (`Type[]`), or `None` for prose.
fn schema_for(named: &Map<String, Value>, name: &str) -> Option<Value> {
    match name.strip_suffix("[]") {
        Some(item) => named.get(item).map(|item| json!({"type": "array", "items": item})),
        None => named.get(name).cloned(),
    }
}

/// What a query parameter's value must be, as the handlers parse it.
fn query_schema(path: &str, name: &str) -> Value {
    match name {
        "limit" => json!({"type": "integer", "format": "uint32"}),
        "after" => json!({"type": "integer", "format": "uint64"}),
        "bucket_seconds" => json!({"type": "integer", "format": "uint64", "minimum": 1}),
        "since" | "until" => json!({"type": "integer", "format": "int64"}),
        "paused" | "upcoming" | "dry_run" => json!({"type": "boolean"}),
        "deployment" => json!({"type": "string", "pattern": deployment_pattern()}),
        "state" => {
            let one = StateName::ALL.map(StateName::as_str).join("|");
            json!({"type": "string", "pattern": format!("^({one})(,({one}))*$")})
        }
        // A task-run cursor is `ATTEMPT.TASK`; a run cursor is a run id.
        "cursor" if path.ends_with("/task-runs") => {
            json!({"type": "string", "pattern": "^[0-9]{1,9}\\.[0-9]{1,18}$"})
        }
        _ => json!({"type": "string"}),
    }
}

/// The range of each integer format the wire types use: serde refuses a
/// number outside it, so the document says so.
fn integer_range(format: &str) -> Option<(Value, Value)> {
    Some(match format {
        "uint8" => (json!(0), json!(u8::MAX)),
        "uint16" => (json!(0), json!(u16::MAX)),
        "uint32" => (json!(0), json!(u32::MAX)),
        "uint64" | "uint" => (json!(0), json!(u64::MAX)),
        "int32" => (json!(i32::MIN), json!(i32::MAX)),
        "int64" | "int" => (json!(i64::MIN), json!(i64::MAX)),
        _ => return None,
    })
}

/// Adds `minimum` and `maximum` to every integer schema in `value` that
/// has a format and lacks them.
fn bound_integers(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            let range = fields.get("format").and_then(Value::as_str).and_then(integer_range);
            if let Some((minimum, maximum)) = range {
                fields.entry("minimum").or_insert(minimum);
                fields.entry("maximum").or_insert(maximum);
            }
            fields.values_mut().for_each(bound_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

/// The OpenAPI 3.1 document of the API.
pub fn document() -> Value {
    let (named, definitions) = schemas();
    let mut paths = Map::new();
    for route in ROUTES {
        let mut parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                // Names people give (flows, deployments, pools, queues,
                // webhooks, variables, secrets) are checked as such.
                let schema = match name {
                    "flow" | "name" | "queue" | "slug" => {
                        json!({"type": "string", "pattern": name_pattern(), "maxLength": MAX_NAME_CHARS})
                    }
                    "key" => json!({
                        "type": "string",
                        "pattern": format!("^[a-z0-9._-]{{1,{MAX_ARTIFACT_KEY_CHARS}}}$"),
                    }),
                    _ => json!({"type": "string"}),
                };
                json!({"name": name, "in": "path", "required": true, "schema": schema})
            })
            .collect();
        parameters.extend(route.query.iter().map(|(name, description)| {
            let required = route.required_query.contains(name);
            json!({"name": name, "in": "query", "required": required, "description": description, "schema": query_schema(route.path, name)})
        }));
        let mut success = json!({"description": route.returns});
        let media = match (schema_for(&named, route.returns), route.media) {
            (Some(schema), "application/json") => Some(json!({"schema": schema})),
            // A stream's body is text; each event's data is the schema.
            (Some(schema), _) => {
                Some(json!({"schema": {"type": "string"}, "x-baton-event-data": schema}))
            }
            (None, "application/json") => None,
            // Text of its own format (the metrics).
            (None, _) => Some(json!({"schema": {"type": "string"}})),
        };
        if let (Some(media), Some(fields)) = (media, success.as_object_mut()) {
            fields.insert("content".to_owned(), json!({ route.media: media }));
        }
        let mut operation = json!({
            "summary": route.summary,
            "parameters": parameters,
            "responses": {
                "2XX": success,
                "default": {
                    "description": "an error",
                    "content": {"application/json": {"schema": schema_for(&named, "ApiError")}}
                }
            }
        });
        // A dry run that passes answers 204 with no body.
        if route.query.iter().any(|(name, _)| *name == "dry_run")
            && let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut)
        {
            responses.insert(
                "204".to_owned(),
                json!({"description": "dry_run=true: the check passed; nothing was written"}),
            );
        }
        if let (Some(scope), Some(fields)) = (route.access.scope(), operation.as_object_mut()) {
            fields.insert("security".to_owned(), json!([{"bearer": []}]));
            fields.insert("x-baton-scope".to_owned(), json!(scope.as_str()));
        }
        if let Some(body) = route.body {
            let content = match schema_for(&named, body) {
                Some(schema) => json!({"application/json": {"schema": schema}}),
                None => json!({"application/octet-stream": {}}),
            };
            if let Some(fields) = operation.as_object_mut() {
                fields.insert(
                    "requestBody".to_owned(),
                    json!({"required": true, "description": body, "content": content}),
                );
            }
        }
        if let Value::Object(methods) =
            paths.entry(route.path.to_owned()).or_insert_with(|| Value::Object(Map::new()))
        {
            methods.insert(route.method.to_owned(), operation);
        }
    }
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Baton core API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Deployments, flow runs and their states, work pools, variables, secrets and events. Bodies are JSON; times are milliseconds since the Unix epoch; errors are ApiError. Send `Authorization: Bearer <token>`: the core's --api-token (admin) or an API token, whose scope (`x-baton-scope` on each operation) is read, run or admin. A core without --api-token takes callers without a token, but gives secret values only to an admin token."
        },
        "paths": paths,
        "components": {
            "schemas": definitions,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        }
    });
    bound_integers(&mut document);
    document
}
