//! The OpenAPI document, generated from one table of the API's routes. A
//! test sends a request to every route in the table through the real router,
//! so the document cannot list a route the API lacks.

use serde_json::{Map, Value, json};

/// One endpoint, as documented.
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Query parameters, `name: meaning`.
    pub query: &'static [(&'static str, &'static str)],
    /// What the request body is, if any.
    pub body: Option<&'static str>,
    /// What a successful response holds.
    pub returns: &'static str,
}

const fn route(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    returns: &'static str,
) -> RouteDoc {
    RouteDoc { method, path, summary, query: &[], body: None, returns }
}

pub const ROUTES: &[RouteDoc] = &[
    route("get", "/api/health", "Whether the core and its database answer", "Health"),
    route("get", "/api/openapi.json", "This document", "OpenAPI 3.1 document"),
    RouteDoc {
        body: Some("the component's bytes (application/wasm)"),
        ..route(
            "post",
            "/api/artifacts",
            "Upload a flow component; 201 when new, 200 when already stored",
            "Artifact",
        )
    },
    route("get", "/api/artifacts/{digest}", "What an artifact's describe said", "Artifact"),
    route("get", "/api/artifacts/{digest}/content", "An artifact's bytes", "application/wasm"),
    RouteDoc {
        query: &[
            ("flow", "only this flow's"),
            ("tag", "only those with this tag"),
            ("paused", "true or false"),
        ],
        ..route("get", "/api/deployments", "List deployments", "Deployment[]")
    },
    RouteDoc {
        body: Some("DeploymentSpec"),
        ..route(
            "put",
            "/api/deployments/{flow}/{name}",
            "Create or update a deployment",
            "DeploymentUpserted",
        )
    },
    route("get", "/api/deployments/{flow}/{name}", "Read a deployment", "Deployment"),
    route(
        "delete",
        "/api/deployments/{flow}/{name}",
        "Delete a deployment and its runs",
        "nothing (204)",
    ),
    route(
        "post",
        "/api/deployments/{flow}/{name}/pause",
        "Pause: nothing of it is dispatched",
        "Deployment",
    ),
    route(
        "post",
        "/api/deployments/{flow}/{name}/resume",
        "Resume a paused deployment",
        "Deployment",
    ),
    RouteDoc {
        body: Some("CreateRun"),
        ..route(
            "post",
            "/api/deployments/{flow}/{name}/runs",
            "Create a run; 200 with the existing run for a used idempotency key",
            "FlowRun",
        )
    },
    route(
        "get",
        "/api/deployments/{flow}/{name}/schedules",
        "A deployment's schedules with their next times",
        "Schedule[]",
    ),
    RouteDoc {
        body: Some("ScheduleSpec"),
        ..route(
            "post",
            "/api/deployments/{flow}/{name}/schedules",
            "Add a schedule (409 if the deployment has it already)",
            "Schedule",
        )
    },
    route(
        "delete",
        "/api/deployments/{flow}/{name}/schedules/{id}",
        "Delete a schedule and the runs it planned that have not started",
        "nothing (204)",
    ),
    route(
        "post",
        "/api/deployments/{flow}/{name}/schedules/{id}/pause",
        "Pause a schedule: its planned runs are withdrawn",
        "Schedule",
    ),
    route(
        "post",
        "/api/deployments/{flow}/{name}/schedules/{id}/resume",
        "Resume a schedule: planned again from now",
        "Schedule",
    ),
    RouteDoc {
        body: Some("SkipLate"),
        ..route(
            "post",
            "/api/runs/skip-late",
            "Cancel every LATE run (of one deployment)",
            "Skipped",
        )
    },
    RouteDoc {
        query: &[
            ("since", "first bucket's start (ms since the epoch)"),
            ("until", "window's end (default now)"),
            ("bucket_seconds", "bucket width (default 3600; at most 1000 buckets)"),
        ],
        ..route("get", "/api/runs/stats", "Runs by state per bucket of scheduled time", "RunStats")
    },
    RouteDoc {
        query: &[
            ("state", "comma-separated state names"),
            ("deployment", "FLOW/NAME"),
            ("flow", "flow name"),
            ("tag", "run tag"),
            ("since", "created at or after (ms since the epoch)"),
            ("until", "created before (ms since the epoch)"),
            ("cursor", "next_cursor of the previous page"),
            ("limit", "at most this many (≤ 500)"),
        ],
        ..route("get", "/api/runs", "List runs, newest first", "Page<FlowRun>")
    },
    route("get", "/api/runs/{id}", "A run with its state history and task runs", "FlowRunDetail"),
    RouteDoc {
        body: Some("ProposeState"),
        ..route(
            "post",
            "/api/runs/{id}/state",
            "Propose a state; the orchestration rules accept, reject or delay it",
            "Transition",
        )
    },
    route(
        "post",
        "/api/runs/{id}/cancel",
        "Cancel a run (RUNNING becomes CANCELLING)",
        "Transition",
    ),
    RouteDoc {
        query: &[
            ("after", "only lines after this position (a line's attempt << 32 | seq)"),
            ("limit", "at most this many"),
        ],
        ..route("get", "/api/runs/{id}/logs", "A run's log lines in order", "LogLine[]")
    },
    RouteDoc {
        query: &[(
            "after",
            "only lines after this position (attempt << 32 | seq; or the Last-Event-ID header)",
        )],
        ..route(
            "get",
            "/api/runs/{id}/logs/stream",
            "A run's log lines as they are written (text/event-stream; each `logs` event carries LogLine[] as JSON, `end` follows the last)",
            "LogLine[]",
        )
    },
    RouteDoc {
        body: Some("LogLine[]"),
        ..route(
            "post",
            "/api/runs/{id}/logs",
            "Append log lines (a line already stored is skipped)",
            "{stored}",
        )
    },
    route("get", "/api/pools", "List work pools", "WorkPool[]"),
    RouteDoc {
        body: Some("PoolSpec"),
        ..route("post", "/api/pools", "Create a work pool", "WorkPool")
    },
    route("get", "/api/pools/{name}", "Read a work pool and its queues", "WorkPool"),
    route("delete", "/api/pools/{name}", "Delete an unused work pool", "nothing (204)"),
    route("post", "/api/pools/{name}/pause", "Pause a work pool", "WorkPool"),
    route("post", "/api/pools/{name}/resume", "Resume a work pool", "WorkPool"),
    RouteDoc {
        body: Some("QueueSpec"),
        ..route("put", "/api/pools/{name}/queues/{queue}", "Create or update a queue", "WorkPool")
    },
    route("get", "/api/variables", "List variables", "Variable[]"),
    RouteDoc {
        body: Some("SetValue"),
        ..route("put", "/api/variables/{name}", "Set a variable", "Variable")
    },
    route("get", "/api/variables/{name}", "Read a variable", "Variable"),
    route("delete", "/api/variables/{name}", "Delete a variable", "nothing (204)"),
    route("get", "/api/secrets", "List secrets' names (never values)", "SecretInfo[]"),
    RouteDoc {
        body: Some("SetValue"),
        ..route("put", "/api/secrets/{name}", "Set a secret (sealed at rest)", "SecretInfo")
    },
    route("get", "/api/secrets/{name}", "Read a secret's value", "SecretValue"),
    route("delete", "/api/secrets/{name}", "Delete a secret", "nothing (204)"),
    RouteDoc {
        query: &[
            ("name", "a name; * stands for any run of characters (run.*)"),
            ("resource", "exact"),
            ("since", "ms since the epoch"),
            ("limit", "at most this many"),
        ],
        ..route("get", "/api/events", "Events, newest first", "Event[]")
    },
    RouteDoc {
        body: Some("EmitEvent"),
        ..route("post", "/api/events", "Record an event", "Event")
    },
    RouteDoc {
        query: &[
            ("name", "a name; * stands for any run of characters"),
            ("resource", "a resource; * likewise"),
        ],
        ..route(
            "get",
            "/api/events/stream",
            "New events as they happen (text/event-stream; each `event` carries an Event as JSON)",
            "Event",
        )
    },
    route("get", "/api/webhooks", "Incoming webhooks", "Webhook[]"),
    RouteDoc {
        body: Some("WebhookSpec"),
        ..route("post", "/api/webhooks", "Create an incoming webhook", "Webhook")
    },
    route("delete", "/api/webhooks/{slug}", "Delete a webhook", "nothing (204)"),
    route(
        "post",
        "/hooks/{slug}",
        "A call to a webhook (any body; JSON becomes the payload): recorded as an event, 202; 401 if its signature (x-baton-signature: sha256=<hex HMAC-SHA256>) is missing or wrong",
        "Event",
    ),
    route("get", "/api/automations", "Automations", "Automation[]"),
    RouteDoc {
        body: Some("AutomationSpec"),
        ..route("post", "/api/automations", "Create an automation", "Automation")
    },
    route("get", "/api/automations/{id}", "An automation, by id or name", "Automation"),
    route("delete", "/api/automations/{id}", "Delete an automation", "nothing (204)"),
    route("post", "/api/automations/{id}/pause", "Pause an automation", "Automation"),
    route(
        "post",
        "/api/automations/{id}/resume",
        "Resume an automation (a proactive trigger's window starts again)",
        "Automation",
    ),
    route("get", "/api/agents", "Agents that ever connected, connected ones first", "AgentInfo[]"),
    RouteDoc {
        body: Some("CreateAgentToken"),
        ..route(
            "post",
            "/api/agent-tokens",
            "Make a token for agents of a pool (shown once)",
            "AgentTokenCreated",
        )
    },
];

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
        "Deployment" => Deployment,
        "DeploymentSpec" => DeploymentSpec,
        "DeploymentUpserted" => DeploymentUpserted,
        "CreateRun" => CreateRun,
        "FlowRun" => FlowRun,
        "FlowRunDetail" => FlowRunDetail,
        "Page<FlowRun>" => Page<FlowRun>,
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

/// The OpenAPI 3.1 document of the API.
pub fn document() -> Value {
    let (named, definitions) = schemas();
    let mut paths = Map::new();
    for route in ROUTES {
        let mut parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        parameters.extend(route.query.iter().map(|(name, description)| {
            json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}})
        }));
        let mut success = json!({"description": route.returns});
        if let (Some(schema), Some(fields)) =
            (schema_for(&named, route.returns), success.as_object_mut())
        {
            fields.insert("content".to_owned(), json!({"application/json": {"schema": schema}}));
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
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Baton core API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Deployments, flow runs and their states, work pools, variables, secrets and events. Bodies are JSON; times are milliseconds since the Unix epoch; errors are ApiError. Send `Authorization: Bearer <token>` when the core has an API token."
        },
        "paths": paths,
        "components": {"schemas": definitions}
    })
}
