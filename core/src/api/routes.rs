//! Every route of the API, declared once: its method, path, handler and
//! documentation. The router ([`super::router`]) and the OpenAPI document
//! ([`super::document`]) are both made from this table.

use axum::routing::MethodRouter;

use super::handlers::{
    agents, api_tokens, artifacts, automations, deployments, events, logs, pools, runs, schedules,
    secrets, service, subflows, task_cache, variables, webhooks,
};
use super::{Access, AppState};

/// One endpoint, as documented.
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    pub summary: &'static str,
    /// Query parameters, `name: meaning`.
    pub query: &'static [(&'static str, &'static str)],
    /// Those of `query` a request must carry.
    pub required_query: &'static [&'static str],
    /// What the request body is, if any.
    pub body: Option<&'static str>,
    /// What a successful response holds...
    pub returns: &'static str,
    /// ...in what media type.
    pub media: &'static str,
}

/// A route's documentation; the table fills in its method and path.
const fn doc(summary: &'static str, returns: &'static str) -> RouteDoc {
    RouteDoc {
        method: "",
        path: "",
        access: Access::Admin,
        summary,
        query: &[],
        required_query: &[],
        body: None,
        returns,
        media: "application/json",
    }
}

/// Makes [`ROUTES`] and the method routers from one list of
/// `(method, access, path, handler, documentation)`.
macro_rules! routes {
    ($(($method:ident, $access:ident, $path:literal, $handler:path, $doc:expr)),* $(,)?) => {
        pub const ROUTES: &[RouteDoc] = &[
            $(RouteDoc { method: stringify!($method), path: $path, access: Access::$access, ..$doc }),*
        ];

        /// Each route's path, access and handler, in the table's order.
        pub(super) fn method_routers() -> Vec<(&'static str, Access, MethodRouter<AppState>)> {
            vec![$(($path, Access::$access, axum::routing::$method($handler))),*]
        }
    };
}

routes![
    (
        get,
        Public,
        "/api/health",
        service::health,
        doc("Whether the core and its database answer", "Health")
    ),
    (
        get,
        Read,
        "/metrics",
        service::metrics,
        RouteDoc {
            media: crate::metrics::CONTENT_TYPE,
            ..doc(
                "The core's metrics in the Prometheus (OpenMetrics) text format; the README lists them",
                "metrics text",
            )
        }
    ),
    (
        get,
        Read,
        "/api/openapi.json",
        service::openapi_document,
        doc("This document", "OpenAPI 3.1 document")
    ),
    (
        post,
        Admin,
        "/api/artifacts",
        artifacts::upload_artifact,
        RouteDoc {
            body: Some("the component's bytes (application/wasm)"),
            ..doc("Upload a flow component; 201 when new, 200 when already stored", "Artifact",)
        }
    ),
    (
        get,
        Read,
        "/api/flows",
        artifacts::list_flows,
        doc("Flows with their uploaded versions (newest first) and deployments", "FlowSummary[]")
    ),
    (
        get,
        Read,
        "/api/artifacts/{digest}",
        artifacts::artifact_info,
        doc("What an artifact's describe said", "Artifact")
    ),
    (
        get,
        Read,
        "/api/artifacts/{digest}/content",
        artifacts::artifact_content,
        doc("An artifact's bytes", "application/wasm")
    ),
    (
        get,
        Read,
        "/api/deployments",
        deployments::list_deployments,
        RouteDoc {
            query: &[
                ("flow", "only this flow's"),
                ("tag", "only those with this tag"),
                ("paused", "true or false"),
            ],
            ..doc("List deployments", "Deployment[]")
        }
    ),
    (
        put,
        Admin,
        "/api/deployments/{flow}/{name}",
        deployments::upsert_deployment,
        RouteDoc {
            body: Some("DeploymentSpec"),
            query: &[(
                "dry_run",
                "true: only check the deployment as a write would, writing nothing (204)",
            )],
            ..doc("Create or update a deployment", "DeploymentUpserted",)
        }
    ),
    (
        get,
        Read,
        "/api/deployments/{flow}/{name}",
        deployments::get_deployment,
        doc("Read a deployment", "Deployment")
    ),
    (
        delete,
        Admin,
        "/api/deployments/{flow}/{name}",
        deployments::delete_deployment,
        doc("Delete a deployment and its runs", "nothing (204)",)
    ),
    (
        post,
        Admin,
        "/api/deployments/{flow}/{name}/pause",
        deployments::pause_deployment,
        doc("Pause: nothing of it is dispatched", "Deployment",)
    ),
    (
        post,
        Admin,
        "/api/deployments/{flow}/{name}/resume",
        deployments::resume_deployment,
        doc("Resume a paused deployment", "Deployment",)
    ),
    (
        post,
        Run,
        "/api/deployments/{flow}/{name}/runs",
        runs::create_run,
        RouteDoc {
            body: Some("CreateRun"),
            ..doc("Create a run; 200 with the existing run for a used idempotency key", "FlowRun",)
        }
    ),
    (
        get,
        Read,
        "/api/deployments/{flow}/{name}/schedules",
        schedules::list_schedules,
        doc("A deployment's schedules with their next times", "Schedule[]",)
    ),
    (
        post,
        Admin,
        "/api/deployments/{flow}/{name}/schedules",
        schedules::add_schedule,
        RouteDoc {
            body: Some("ScheduleSpec"),
            ..doc("Add a schedule (409 if the deployment has it already)", "Schedule",)
        }
    ),
    (
        delete,
        Admin,
        "/api/deployments/{flow}/{name}/schedules/{id}",
        schedules::delete_schedule,
        doc("Delete a schedule and the runs it planned that have not started", "nothing (204)",)
    ),
    (
        post,
        Admin,
        "/api/deployments/{flow}/{name}/schedules/{id}/pause",
        schedules::pause_schedule,
        doc("Pause a schedule: its planned runs are withdrawn", "Schedule",)
    ),
    (
        post,
        Admin,
        "/api/deployments/{flow}/{name}/schedules/{id}/resume",
        schedules::resume_schedule,
        doc("Resume a schedule: planned again from now", "Schedule",)
    ),
    (
        post,
        Run,
        "/api/runs/skip-late",
        runs::skip_late,
        RouteDoc {
            body: Some("SkipLate"),
            ..doc("Cancel every LATE run (of one deployment)", "Skipped",)
        }
    ),
    (
        get,
        Read,
        "/api/runs/stats",
        runs::run_stats,
        RouteDoc {
            query: &[
                ("since", "first bucket's start (ms since the epoch)"),
                ("until", "window's end (default now)"),
                ("bucket_seconds", "bucket width (default 3600; at most 1000 buckets)"),
            ],
            required_query: &["since"],
            ..doc("Runs by state per bucket of scheduled time", "RunStats")
        }
    ),
    (
        get,
        Read,
        "/api/runs",
        runs::list_runs,
        RouteDoc {
            query: &[
                ("state", "comma-separated state names"),
                ("deployment", "FLOW/NAME"),
                ("flow", "flow name"),
                ("tag", "run tag"),
                ("parent_id", "only the runs this run's flow started (its subflows)"),
                (
                    "upcoming",
                    "true: only runs planned for later (SCHEDULED, due in the future); false: all but those",
                ),
                ("since", "created at or after (ms since the epoch)"),
                ("until", "created before (ms since the epoch)"),
                ("cursor", "next_cursor of the previous page"),
                ("limit", "at most this many (≤ 500)"),
            ],
            ..doc("List runs, newest first", "Page<FlowRun>")
        }
    ),
    (
        get,
        Read,
        "/api/runs/{id}",
        runs::get_run,
        doc("A run with its state history and task runs", "FlowRunDetail")
    ),
    (
        get,
        Read,
        "/api/runs/{id}/task-runs",
        runs::list_task_runs,
        RouteDoc {
            query: &[
                ("cursor", "next_cursor of the previous page (or the run's task_runs_next_cursor)"),
                ("limit", "at most this many (≤ 500)"),
            ],
            ..doc("A run's task runs by attempt and task id, a page at a time", "Page<TaskRun>")
        }
    ),
    (
        get,
        Read,
        "/api/runs/{id}/artifacts",
        runs::list_run_artifacts,
        doc(
            "The artifacts a run created (markdown, tables, links, progress), oldest first",
            "RunArtifact[]"
        )
    ),
    (
        get,
        Read,
        "/api/run-artifacts/{key}",
        runs::latest_run_artifact,
        doc("The latest artifact created under a key, across runs", "RunArtifact")
    ),
    (
        post,
        Run,
        "/api/runs/{id}/state",
        runs::propose_state,
        RouteDoc {
            body: Some("ProposeState"),
            ..doc(
                "Propose a state; the orchestration rules accept, reject or delay it",
                "Transition",
            )
        }
    ),
    (
        post,
        Run,
        "/api/runs/{id}/cancel",
        runs::cancel_run,
        doc("Cancel a run (RUNNING becomes CANCELLING)", "Transition",)
    ),
    (
        post,
        Run,
        "/api/runs/{id}/retry",
        runs::retry_run,
        doc(
            "Retry an ended run: a new run of its deployment with its parameters, tags and job variables, whose retry_of names it",
            "FlowRun",
        )
    ),
    (
        get,
        Read,
        "/api/runs/{id}/logs",
        logs::get_logs,
        RouteDoc {
            query: &[
                ("after", "only lines after this position (a line's attempt << 32 | seq)"),
                ("limit", "at most this many"),
            ],
            ..doc("A run's log lines in order", "LogLine[]")
        }
    ),
    (
        get,
        Read,
        "/api/runs/{id}/logs/stream",
        logs::stream_logs,
        RouteDoc {
            query: &[(
                "after",
                "only lines after this position (attempt << 32 | seq; or the Last-Event-ID header)",
            )],
            media: "text/event-stream",
            ..doc(
                "A run's log lines as they are written (text/event-stream; each `logs` event carries LogLine[] as JSON, `end` follows the last)",
                "LogLine[]",
            )
        }
    ),
    (
        post,
        Run,
        "/api/runs/{id}/logs",
        logs::append_logs,
        RouteDoc {
            body: Some("LogLine[]"),
            ..doc("Append log lines (a line already stored is skipped)", "{stored}",)
        }
    ),
    (get, Read, "/api/pools", pools::list_pools, doc("List work pools", "WorkPool[]")),
    (
        post,
        Admin,
        "/api/pools",
        pools::create_pool,
        RouteDoc { body: Some("PoolSpec"), ..doc("Create a work pool", "WorkPool") }
    ),
    (
        get,
        Read,
        "/api/pools/{name}",
        pools::get_pool,
        doc("Read a work pool and its queues", "WorkPool")
    ),
    (
        delete,
        Admin,
        "/api/pools/{name}",
        pools::delete_pool,
        doc("Delete an unused work pool", "nothing (204)")
    ),
    (
        post,
        Admin,
        "/api/pools/{name}/pause",
        pools::pause_pool,
        doc("Pause a work pool", "WorkPool")
    ),
    (
        post,
        Admin,
        "/api/pools/{name}/resume",
        pools::resume_pool,
        doc("Resume a work pool", "WorkPool")
    ),
    (
        put,
        Admin,
        "/api/pools/{name}/queues/{queue}",
        pools::upsert_queue,
        RouteDoc { body: Some("QueueSpec"), ..doc("Create or update a queue", "WorkPool") }
    ),
    (get, Read, "/api/variables", variables::list_variables, doc("List variables", "Variable[]")),
    (
        put,
        Admin,
        "/api/variables/{name}",
        variables::set_variable,
        RouteDoc { body: Some("SetValue"), ..doc("Set a variable", "Variable") }
    ),
    (
        get,
        Read,
        "/api/variables/{name}",
        variables::get_variable,
        doc("Read a variable", "Variable")
    ),
    (
        delete,
        Admin,
        "/api/variables/{name}",
        variables::delete_variable,
        doc("Delete a variable", "nothing (204)")
    ),
    (
        get,
        Read,
        "/api/secrets",
        secrets::list_secrets,
        doc("List secrets' names (never values)", "SecretInfo[]")
    ),
    (
        put,
        Admin,
        "/api/secrets/{name}",
        secrets::set_secret,
        RouteDoc { body: Some("SetValue"), ..doc("Set a secret (sealed at rest)", "SecretInfo") }
    ),
    (
        get,
        SecretValue,
        "/api/secrets/{name}",
        secrets::get_secret,
        doc("Read a secret's value (an admin token only)", "SecretValue")
    ),
    (
        delete,
        Admin,
        "/api/secrets/{name}",
        secrets::delete_secret,
        doc("Delete a secret", "nothing (204)")
    ),
    (
        get,
        Read,
        "/api/events",
        events::list_events,
        RouteDoc {
            query: &[
                ("name", "a name; * stands for any run of characters (run.*)"),
                ("resource", "exact"),
                ("since", "ms since the epoch"),
                ("limit", "at most this many"),
            ],
            ..doc("Events, newest first", "Event[]")
        }
    ),
    (
        post,
        Run,
        "/api/events",
        events::emit_event,
        RouteDoc { body: Some("EmitEvent"), ..doc("Record an event", "Event") }
    ),
    (
        get,
        Read,
        "/api/events/stream",
        events::stream_events,
        RouteDoc {
            query: &[
                ("name", "a name; * stands for any run of characters"),
                ("resource", "a resource; * likewise"),
            ],
            media: "text/event-stream",
            ..doc(
                "New events as they happen (text/event-stream; each `event` carries an Event as JSON)",
                "Event",
            )
        }
    ),
    (get, Read, "/api/webhooks", webhooks::list_webhooks, doc("Incoming webhooks", "Webhook[]")),
    (
        post,
        Admin,
        "/api/webhooks",
        webhooks::create_webhook,
        RouteDoc { body: Some("WebhookSpec"), ..doc("Create an incoming webhook", "Webhook") }
    ),
    (
        delete,
        Admin,
        "/api/webhooks/{slug}",
        webhooks::delete_webhook,
        doc("Delete a webhook", "nothing (204)")
    ),
    (
        post,
        Public,
        "/api/runs/{id}/children",
        subflows::child_call,
        RouteDoc {
            body: Some("ChildCall"),
            ..doc(
                "A subflow call of one execution of a run (start a child run, or wait for one to end), from a runner with no link to its agent (a Kubernetes pod); authorised by that execution's key as the bearer token, 401 without it",
                "ChildAnswer",
            )
        }
    ),
    (
        post,
        Public,
        "/api/runs/{id}/task-cache",
        task_cache::cache_call,
        RouteDoc {
            body: Some("CacheCall"),
            ..doc(
                "A task cache call of one execution of a run (look up the result stored under a cache key's sha256 by a run of the same deployment, or store one), from a runner with no link to its agent (a Kubernetes pod); authorised by that execution's key as the bearer token, 401 without it",
                "CacheAnswer",
            )
        }
    ),
    (
        post,
        Public,
        "/hooks/{slug}",
        webhooks::receive_webhook,
        doc(
            "A call to a webhook (any body; JSON becomes the payload): recorded as an event, 202; 401 if its signature (x-baton-signature: sha256=<hex HMAC-SHA256>) is missing or wrong",
            "Event",
        )
    ),
    (
        get,
        Read,
        "/api/automations",
        automations::list_automations,
        doc("Automations", "Automation[]")
    ),
    (
        post,
        Admin,
        "/api/automations",
        automations::create_automation,
        RouteDoc { body: Some("AutomationSpec"), ..doc("Create an automation", "Automation") }
    ),
    (
        get,
        Read,
        "/api/automations/{id}",
        automations::get_automation,
        doc("An automation, by id or name", "Automation")
    ),
    (
        put,
        Admin,
        "/api/automations/{id}",
        automations::put_automation,
        RouteDoc {
            body: Some("AutomationSpec"),
            query: &[(
                "dry_run",
                "true: only check the automation as a write would, writing nothing (204)",
            )],
            ..doc(
                "Replace an automation, by id or name (a new name in the body renames it; a changed trigger starts a proactive window afresh), or create it under the path's name: 200 replaced, 201 created",
                "Automation",
            )
        }
    ),
    (
        delete,
        Admin,
        "/api/automations/{id}",
        automations::delete_automation,
        doc("Delete an automation", "nothing (204)")
    ),
    (
        post,
        Admin,
        "/api/automations/{id}/pause",
        automations::pause_automation,
        doc("Pause an automation", "Automation")
    ),
    (
        post,
        Admin,
        "/api/automations/{id}/resume",
        automations::resume_automation,
        doc("Resume an automation (a proactive trigger's window starts again)", "Automation",)
    ),
    (
        get,
        Read,
        "/api/agents",
        agents::list_agents,
        doc("Agents that ever connected, connected ones first", "AgentInfo[]")
    ),
    (
        post,
        Admin,
        "/api/agent-tokens",
        agents::create_agent_token,
        RouteDoc {
            body: Some("CreateAgentToken"),
            ..doc("Make a token for agents of a pool (shown once)", "AgentTokenCreated",)
        }
    ),
    (
        get,
        Admin,
        "/api/api-tokens",
        api_tokens::list_api_tokens,
        doc("API tokens and their scopes (never the tokens)", "ApiTokenInfo[]")
    ),
    (
        post,
        Admin,
        "/api/api-tokens",
        api_tokens::create_api_token,
        RouteDoc {
            body: Some("CreateApiToken"),
            ..doc(
                "Make an API token with a scope: read, run or admin (shown once)",
                "ApiTokenCreated"
            )
        }
    ),
    (
        delete,
        Admin,
        "/api/api-tokens/{id}",
        api_tokens::revoke_api_token,
        doc("Revoke an API token (other cores stop taking it within 5 s)", "nothing (204)")
    ),
];
