//! Job templates: what a work pool's infrastructure can be told per run.
//! A pool's `base_job_template` holds `variables`, a JSON schema of the
//! job variables its type understands, with their defaults. Deployments
//! and runs set job variables; a run's are its pool's defaults, overridden
//! by its deployment's, overridden by its own, checked against the schema.

use serde_json::{Map, Value, json};

use super::PoolKind;

/// The largest memory a wasm pool's run may ask for (`memory_mib`): the
/// sandbox's own limit. A run that asks for more goes to its pool's
/// `escalate_to`, if it has one, and is capped otherwise.
pub const MAX_SANDBOX_MEMORY_MIB: u64 = 4096;

/// The default base job template of a pool of `kind`.
pub fn default_base_job_template(kind: PoolKind) -> Map<String, Value> {
    let variables = match kind {
        PoolKind::Wasm => json!({
            "memory_mib": integer("Linear memory cap of the run's sandbox, in MiB", 256, 1),
            "scratch_mib": scratch_mib(),
        }),
        PoolKind::Process => json!({
            "env": env(),
            "working_dir": nullable_string("Working directory of the run's process (default: a fresh temporary one)"),
            "memory_mib": nullable_integer("Memory of the run's process, in MiB: its flow's memory cap, and (with room for the runtime) its writable memory (RLIMIT_DATA)", 1),
            "cpu_seconds": nullable_integer("CPU-time limit of the run's process (RLIMIT_CPU), in seconds", 1),
            "scratch_mib": scratch_mib(),
        }),
        PoolKind::Container => json!({
            "image": string("Image with `baton` in it (`baton image build` makes one)", "localhost/baton-runner:latest"),
            "env": env(),
            "command": {
                "description": "Command instead of the image's `baton flow exec`",
                "type": ["array", "null"], "items": {"type": "string"}, "default": null
            },
            "cpu": {"description": "CPUs the container may use", "type": ["number", "null"], "exclusiveMinimum": 0, "default": null},
            "memory_mib": nullable_integer("Memory limit of the container, in MiB", 6),
            "network_mode": string("Network of the container (`none`, `bridge`, `host`, or a network's name)", "none"),
            "volumes": {
                "description": "Binds, `HOST:CONTAINER[:ro]`",
                "type": "array", "items": {"type": "string", "pattern": "^[^:]+:[^:]+(:(ro|rw))?$"}, "default": []
            },
            "labels": labels("Labels added to Baton's own"),
            "user": nullable_string("User (and group) the container runs as, `UID[:GID]` or a name"),
            "stop_grace_seconds": integer("Seconds between the stop signal and the kill on cancel", 10, 0),
            "pull_policy": {"type": "string", "enum": ["always", "missing", "never"], "default": "missing"},
            "engine_socket": nullable_string("Docker Engine API socket (default: the agent's --docker-host)"),
            "scratch_mib": scratch_mib(),
        }),
        PoolKind::Kubernetes => json!({
            "image": string("Image with `baton` as its entrypoint (as `baton image build` makes it)", "baton-runner:latest"),
            "namespace": string("Namespace of the Job", "default"),
            "api_url": nullable_string("The core's HTTP API as the Job's pod reaches it (`http://baton.baton.svc:4200`): the runner fetches the flow's component there; required"),
            "api_token_secret": {
                "description": "Secret in the Job's namespace holding an API token (read scope) the runner fetches the component with, `NAME/KEY`",
                "type": ["string", "null"], "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[-._a-zA-Z0-9]+$", "default": null
            },
            "service_account_name": nullable_string("Service account of the Job's pod"),
            "env": env(),
            "cpu_request": quantity("CPU request, as a Kubernetes quantity (`500m`)"),
            "cpu_limit": quantity("CPU limit, as a Kubernetes quantity"),
            "memory_request": quantity("Memory request, as a Kubernetes quantity (`512Mi`)"),
            "memory_limit": quantity("Memory limit, as a Kubernetes quantity: the flow's memory cap too"),
            "node_selector": labels("Node selector of the Job's pod"),
            "tolerations": {"description": "Tolerations of the Job's pod", "type": "array", "items": {"type": "object"}, "default": []},
            "image_pull_policy": {"type": "string", "enum": ["Always", "IfNotPresent", "Never"], "default": "IfNotPresent"},
            "ttl_seconds_after_finished": integer("Seconds Kubernetes keeps the finished Job (Baton deletes it sooner)", 60, 0),
            "backoff_limit": integer("Pod retries of the Job (Baton retries runs itself)", 0, 0),
            "active_deadline_seconds": nullable_integer("Wall-clock limit of the Job, in seconds (default: the run's time limit plus the pod's start)", 1),
            "pod_start_timeout_seconds": integer("Seconds the Job's pod may take to start (scheduling, image pull) before the run is CRASHED", 300, 1),
            "stop_grace_seconds": integer("Seconds between SIGTERM and SIGKILL when the run is cancelled", 10, 0),
            "labels": labels("Labels added to Baton's own"),
            "annotations": labels("Annotations of the Job and its pod"),
            "scratch_mib": scratch_mib(),
        }),
    };
    let mut template = Map::new();
    template.insert(
        "variables".to_owned(),
        json!({"type": "object", "properties": variables, "additionalProperties": false}),
    );
    template
}

/// The cap of a run's scratch directory, on every type of pool.
fn scratch_mib() -> Value {
    integer(
        "Size cap of the run's scratch directory (the flow's `/tmp`, removed after the run), in MiB",
        DEFAULT_SCRATCH_MIB,
        1,
    )
}

/// What a run's scratch directory holds at most unless its job variables
/// say otherwise.
pub const DEFAULT_SCRATCH_MIB: u64 = 256;

/// The bytes a run's scratch directory may hold, from its job variables.
pub fn scratch_bytes(job_variables: &Map<String, Value>) -> u64 {
    job_variables
        .get("scratch_mib")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_SCRATCH_MIB)
        .saturating_mul(1 << 20)
}

fn string(description: &str, default: &str) -> Value {
    json!({"description": description, "type": "string", "default": default})
}

fn nullable_string(description: &str) -> Value {
    json!({"description": description, "type": ["string", "null"], "default": null})
}

/// A Kubernetes resource quantity (`500m`, `1.5`, `512Mi`, `1G`), or null.
fn quantity(description: &str) -> Value {
    json!({
        "description": description, "type": ["string", "null"], "default": null,
        "pattern": "^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
    })
}

fn integer(description: &str, default: u64, minimum: u64) -> Value {
    json!({"description": description, "type": "integer", "minimum": minimum, "default": default})
}

fn nullable_integer(description: &str, minimum: u64) -> Value {
    json!({"description": description, "type": ["integer", "null"], "minimum": minimum, "default": null})
}

fn env() -> Value {
    json!({
        "description": "Environment variables of the run",
        "type": "object", "additionalProperties": {"type": "string"}, "default": {}
    })
}

fn labels(description: &str) -> Value {
    json!({
        "description": description,
        "type": "object", "additionalProperties": {"type": "string"}, "default": {}
    })
}

/// The `variables` schema of a base job template, if it has one that is
/// an object.
pub fn variables_schema(template: &Map<String, Value>) -> Option<&Value> {
    template.get("variables").filter(|schema| schema.is_object())
}

/// The template's defaults, overridden by each of `layers` in turn,
/// unchecked (for layers checked before, as a run's are at its creation).
pub fn merge_job_variables(
    template: &Map<String, Value>,
    layers: &[&Map<String, Value>],
) -> Map<String, Value> {
    let mut merged: Map<String, Value> = variables_schema(template)
        .and_then(|schema| schema.get("properties"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(name, property)| Some((name.clone(), property.get("default")?.clone())))
        .collect();
    for layer in layers {
        merged.extend(layer.iter().map(|(name, value)| (name.clone(), value.clone())));
    }
    merged
}

/// A run's job variables: the template's defaults, overridden by each of
/// `layers` in turn (a deployment's, then the run's own), then checked
/// against the template's schema. `Err` names every field that is wrong.
#[cfg(feature = "validate")]
pub fn resolve_job_variables(
    template: &Map<String, Value>,
    layers: &[&Map<String, Value>],
) -> Result<Map<String, Value>, String> {
    let schema = variables_schema(template)
        .ok_or_else(|| "the work pool's base job template has no `variables` schema".to_owned())?;
    let value = Value::Object(merge_job_variables(template, layers));
    match super::validate_params(schema, &value) {
        Ok(()) => match value {
            Value::Object(resolved) => Ok(resolved),
            _ => Ok(Map::new()),
        },
        Err(super::ParamErrors::BadSchema(why)) => {
            Err(format!("the work pool's job variables schema is invalid: {why}"))
        }
        Err(super::ParamErrors::Invalid(errors)) => Err(errors
            .iter()
            .map(|error| match error.field.as_str() {
                "" => format!("job variables: {}", error.message),
                field => format!("job variable `{field}`: {}", error.message),
            })
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

/// Whether `template` is a base job template: an object whose `variables`
/// is a JSON schema. `Err` says what is wrong.
#[cfg(feature = "validate")]
pub fn check_base_job_template(template: &Map<String, Value>) -> Result<(), String> {
    let schema = variables_schema(template).ok_or_else(|| {
        "a base job template needs `variables`, a JSON schema (an object) of its job variables"
            .to_owned()
    })?;
    jsonschema::validator_for(schema).map(|_| ()).map_err(|error| {
        format!("the base job template's `variables` is not a valid JSON schema: {error}")
    })?;
    // The defaults must pass the schema themselves.
    resolve_job_variables(template, &[]).map(|_| ())
}

#[cfg(all(test, feature = "validate"))]
mod tests {
    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn every_default_template_is_valid_and_its_defaults_pass_it() {
        for kind in [PoolKind::Wasm, PoolKind::Process, PoolKind::Container, PoolKind::Kubernetes] {
            let template = default_base_job_template(kind);
            assert_eq!(check_base_job_template(&template), Ok(()), "{kind:?}");
        }
    }

    #[test]
    fn variables_merge_pool_then_deployment_then_run() {
        let template = default_base_job_template(PoolKind::Container);
        let deployment = object(json!({"image": "acme/flows:1", "memory_mib": 512}));
        let run = object(json!({"memory_mib": 1024, "env": {"MODE": "full"}}));
        let resolved = resolve_job_variables(&template, &[&deployment, &run]).unwrap();
        assert_eq!(resolved["image"], "acme/flows:1");
        assert_eq!(resolved["memory_mib"], 1024);
        assert_eq!(resolved["env"], json!({"MODE": "full"}));
        assert_eq!(resolved["network_mode"], "none", "the pool's default");
    }

    #[test]
    fn a_bad_variable_is_refused_naming_the_field() {
        let template = default_base_job_template(PoolKind::Container);
        let run = object(json!({"memory_mib": "lots"}));
        let error = resolve_job_variables(&template, &[&run]).unwrap_err();
        assert!(error.starts_with("job variable `memory_mib`: "), "{error}");
        let unknown = object(json!({"memroy_mib": 1}));
        let error = resolve_job_variables(&template, &[&unknown]).unwrap_err();
        assert!(error.contains("memroy_mib"), "{error}");
    }

    #[test]
    fn a_template_without_a_schema_is_refused() {
        let error = check_base_job_template(&object(json!({"image": "x"}))).unwrap_err();
        assert!(error.contains("needs `variables`"), "{error}");
        let bad =
            object(json!({"variables": {"type": "object", "properties": {"a": {"type": 7}}}}));
        assert!(check_base_job_template(&bad).unwrap_err().contains("not a valid JSON schema"));
    }
}
