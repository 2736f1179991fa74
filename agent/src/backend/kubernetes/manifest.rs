//! What the `kubernetes` backend asks the cluster for: a Secret holding
//! the runner's job and a Job whose one pod runs `baton flow exec
//! --job-file` on it. Pure functions of the run and its job variables, so
//! that golden copies of them can be checked against Kubernetes' schema.

use std::collections::BTreeMap;

use baton_proto::v1::DEFAULT_SCRATCH_MIB;
use baton_proto::v1::link::Execution;
use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, PodSpec, PodTemplateSpec,
    ResourceRequirements, Secret, SecretKeySelector, SecretVolumeSource, SecurityContext,
    Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

use crate::backend::SCRATCH_MOUNT;
use crate::backend::labels::{AGENT_ID, ATTEMPT, BATON, MANAGED_BY, RUN_ID};
use crate::runner::API_TOKEN_ENV;

/// The runner's container in the Job's pod.
pub(crate) const RUNNER: &str = "runner";
/// Where the job's Secret is mounted, and its one key.
const JOB_MOUNT: &str = "/baton/job";
const JOB_KEY: &str = "job.json";
/// Where the runner keeps what it compiles (an `emptyDir`).
pub(crate) const CACHE_MOUNT: &str = "/baton/cache";

/// A kubernetes pool's job variables, as its base job template names them.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct Variables {
    pub(crate) image: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) api_url: Option<String>,
    pub(crate) api_token_secret: Option<String>,
    pub(crate) service_account_name: Option<String>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) cpu_request: Option<String>,
    pub(crate) cpu_limit: Option<String>,
    pub(crate) memory_request: Option<String>,
    pub(crate) memory_limit: Option<String>,
    pub(crate) node_selector: BTreeMap<String, String>,
    pub(crate) tolerations: Vec<Toleration>,
    pub(crate) image_pull_policy: Option<String>,
    pub(crate) ttl_seconds_after_finished: Option<i32>,
    pub(crate) backoff_limit: Option<i32>,
    pub(crate) active_deadline_seconds: Option<i64>,
    pub(crate) pod_start_timeout_seconds: Option<u64>,
    pub(crate) stop_grace_seconds: Option<u64>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) scratch_mib: Option<u64>,
}

/// The default image: the runner image `baton image build` makes, as a
/// cluster's nodes would pull it.
pub(crate) const DEFAULT_IMAGE: &str = "baton-runner:latest";
/// Seconds a pod may take to start, and between SIGTERM and SIGKILL.
const DEFAULT_POD_START_SECONDS: u64 = 300;
const DEFAULT_STOP_GRACE_SECONDS: u64 = 10;

impl Variables {
    pub(crate) fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }

    pub(crate) fn pod_start_seconds(&self) -> u64 {
        self.pod_start_timeout_seconds.unwrap_or(DEFAULT_POD_START_SECONDS)
    }

    pub(crate) fn stop_grace_seconds(&self) -> u64 {
        self.stop_grace_seconds.unwrap_or(DEFAULT_STOP_GRACE_SECONDS)
    }

    /// The memory limit in bytes, if there is one Baton can read.
    pub(crate) fn memory_limit_bytes(&self) -> Option<u64> {
        self.memory_limit.as_deref().and_then(quantity_bytes)
    }
}

/// The bytes a memory quantity (`512Mi`, `1G`, `1073741824`) stands for;
/// `None` for forms no one uses for memory (`500m`).
pub(crate) fn quantity_bytes(quantity: &str) -> Option<u64> {
    let split =
        quantity.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(quantity.len());
    let (number, suffix) = quantity.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit: u64 = match suffix {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return None,
    };
    let bytes = number * unit as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// The name of an execution's Job and Secret: `baton-<run id>-<attempt>`,
/// kept to what a Kubernetes name may be.
pub(crate) fn object_name(execution: &Execution) -> String {
    let run: String = execution
        .run_id
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let mut name = format!("baton-{run}-{}", execution.attempt);
    name.truncate(63);
    name
}

/// The labels Baton finds its objects by: managed-by, run, attempt, agent.
pub(crate) fn baton_labels(execution: &Execution, agent_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.to_owned(), BATON.to_owned()),
        (RUN_ID.to_owned(), execution.run_id.clone()),
        (ATTEMPT.to_owned(), execution.attempt.to_string()),
        (AGENT_ID.to_owned(), agent_id.to_owned()),
    ])
}

/// The label selector of an execution's pod.
pub(crate) fn execution_selector(execution: &Execution) -> String {
    format!("{RUN_ID}={},{ATTEMPT}={}", execution.run_id, execution.attempt)
}

/// The Secret that carries the runner's job (its parameters and granted
/// secrets are why it is a Secret).
pub(crate) fn job_secret(
    execution: &Execution,
    agent_id: &str,
    namespace: &str,
    runner_job: &[u8],
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(object_name(execution)),
            namespace: Some(namespace.to_owned()),
            labels: Some(baton_labels(execution, agent_id)),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(JOB_KEY.to_owned(), ByteString(runner_job.to_vec()))])),
        immutable: Some(true),
        ..Secret::default()
    }
}

/// The Job that runs an execution; `deadline_seconds`: its wall-clock
/// limit unless the variables set one.
pub(crate) fn job(
    execution: &Execution,
    agent_id: &str,
    variables: &Variables,
    deadline_seconds: i64,
) -> Job {
    let name = object_name(execution);
    let mut labels = variables.labels.clone();
    labels.extend(baton_labels(execution, agent_id));
    let annotations = (!variables.annotations.is_empty()).then(|| variables.annotations.clone());
    let metadata = ObjectMeta {
        labels: Some(labels),
        annotations: annotations.clone(),
        ..ObjectMeta::default()
    };
    let grace = i64::try_from(variables.stop_grace_seconds()).unwrap_or(i64::MAX);
    Job {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(variables.namespace().to_owned()),
            ..metadata.clone()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(variables.backoff_limit.unwrap_or(0)),
            ttl_seconds_after_finished: Some(variables.ttl_seconds_after_finished.unwrap_or(60)),
            active_deadline_seconds: Some(
                variables.active_deadline_seconds.unwrap_or(deadline_seconds),
            ),
            template: PodTemplateSpec {
                metadata: Some(metadata),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".to_owned()),
                    service_account_name: variables.service_account_name.clone(),
                    // The runner never calls the Kubernetes API.
                    automount_service_account_token: Some(false),
                    node_selector: (!variables.node_selector.is_empty())
                        .then(|| variables.node_selector.clone()),
                    tolerations: (!variables.tolerations.is_empty())
                        .then(|| variables.tolerations.clone()),
                    termination_grace_period_seconds: Some(grace),
                    containers: vec![runner_container(variables)],
                    volumes: Some(vec![
                        Volume {
                            name: "job".to_owned(),
                            secret: Some(SecretVolumeSource {
                                secret_name: Some(name),
                                default_mode: Some(0o440),
                                ..SecretVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                        Volume {
                            name: "cache".to_owned(),
                            empty_dir: Some(EmptyDirVolumeSource::default()),
                            ..Volume::default()
                        },
                        Volume {
                            name: "scratch".to_owned(),
                            empty_dir: Some(EmptyDirVolumeSource {
                                size_limit: Some(Quantity(format!(
                                    "{}Mi",
                                    variables.scratch_mib.unwrap_or(DEFAULT_SCRATCH_MIB)
                                ))),
                                ..EmptyDirVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                    ]),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

fn runner_container(variables: &Variables) -> Container {
    let mut env: Vec<EnvVar> = variables
        .env
        .iter()
        .map(|(name, value)| EnvVar {
            name: name.clone(),
            value: Some(value.clone()),
            ..EnvVar::default()
        })
        .collect();
    if let Some((secret, key)) =
        variables.api_token_secret.as_deref().and_then(|s| s.split_once('/'))
    {
        env.push(EnvVar {
            name: API_TOKEN_ENV.to_owned(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.to_owned(),
                    key: key.to_owned(),
                    optional: Some(false),
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        });
    }
    let quantities = |pairs: [(&str, &Option<String>); 2]| {
        let map: BTreeMap<String, Quantity> = pairs
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_owned(), Quantity(value.clone()?))))
            .collect();
        (!map.is_empty()).then_some(map)
    };
    let resources = ResourceRequirements {
        requests: quantities([
            ("cpu", &variables.cpu_request),
            ("memory", &variables.memory_request),
        ]),
        limits: quantities([("cpu", &variables.cpu_limit), ("memory", &variables.memory_limit)]),
        ..ResourceRequirements::default()
    };
    Container {
        name: RUNNER.to_owned(),
        image: Some(variables.image.clone().unwrap_or_else(|| DEFAULT_IMAGE.to_owned())),
        image_pull_policy: Some(
            variables.image_pull_policy.clone().unwrap_or_else(|| "IfNotPresent".to_owned()),
        ),
        // The image's entrypoint is `baton`.
        args: Some(
            ["flow", "exec", "--job-file", &format!("{JOB_MOUNT}/{JOB_KEY}")]
                .map(str::to_owned)
                .to_vec(),
        ),
        env: (!env.is_empty()).then_some(env),
        resources: Some(resources),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "job".to_owned(),
                mount_path: JOB_MOUNT.to_owned(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "cache".to_owned(),
                mount_path: CACHE_MOUNT.to_owned(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "scratch".to_owned(),
                mount_path: SCRATCH_MOUNT.to_owned(),
                ..VolumeMount::default()
            },
        ]),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
        ..Container::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_quantities_read_as_bytes() {
        assert_eq!(quantity_bytes("512Mi"), Some(512 << 20));
        assert_eq!(quantity_bytes("1Gi"), Some(1 << 30));
        assert_eq!(quantity_bytes("1.5G"), Some(1_500_000_000));
        assert_eq!(quantity_bytes("1048576"), Some(1 << 20));
        assert_eq!(quantity_bytes("500m"), None);
        assert_eq!(quantity_bytes("lots"), None);
    }

    #[test]
    fn names_are_kubernetes_names() {
        let execution =
            Execution { run_id: "0193A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B".to_owned(), attempt: 2 };
        assert_eq!(object_name(&execution), "baton-0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b-2");
        let long = Execution { run_id: "x".repeat(100), attempt: 1 };
        assert_eq!(object_name(&long).len(), 63);
    }
}
