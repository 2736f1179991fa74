//! `baton.yaml`: the project file `baton deploy` reads, shaped like
//! Prefect's `prefect.yaml` (`build`, `push`, `pull`, `deployments`) for
//! components. Any mistake is reported with the file, line and column, and
//! a misspelt field gets the nearest known one suggested.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use baton_proto::v1::suggest::did_you_mean;
use baton_proto::v1::{
    Capabilities, CatchUp, ConcurrencyPolicy, DeploymentSpec, ScheduleSpec, Timestamp,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::build::build_component;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// A name for people; not used by the core.
    #[serde(default)]
    pub name: Option<String>,
    /// The `baton` version the file was written for.
    #[serde(default, rename = "baton-version")]
    pub baton_version: Option<String>,
    #[serde(default)]
    pub build: Option<Build>,
    #[serde(default)]
    pub push: Option<Push>,
    /// Accepted for parity with `prefect.yaml`; must be empty, since a
    /// component carries its code and nothing is pulled at run time.
    #[serde(default)]
    pub pull: Option<Vec<serde_yaml::Value>>,
    pub deployments: Vec<DeploymentEntry>,
}

/// How the flow component is made.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// The flow crate to build with `baton flow build` (default: the
    /// directory holding baton.yaml).
    #[serde(default, rename = "crate")]
    pub crate_dir: Option<PathBuf>,
    /// A component built elsewhere; nothing is built.
    #[serde(default)]
    pub component: Option<PathBuf>,
}

/// Where the component goes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Push {
    /// The core's API (default: `BATON_API_URL`).
    #[serde(default)]
    pub api_url: Option<String>,
}

/// `work_pool:` of a deployment: a pool's name alone (`work_pool:
/// default`, as prefect.yaml users write it) or the full form.
#[derive(Debug)]
pub struct WorkPoolEntry {
    pub name: String,
    pub work_queue_name: Option<String>,
    pub job_variables: Map<String, Value>,
}

/// The full form of [`WorkPoolEntry`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkPoolFields {
    name: String,
    #[serde(default)]
    work_queue_name: Option<String>,
    #[serde(default)]
    job_variables: Map<String, Value>,
}

impl<'de> Deserialize<'de> for WorkPoolEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entry;
        impl<'de> serde::de::Visitor<'de> for Entry {
            type Value = WorkPoolEntry;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a pool's name, or {name, work_queue_name, job_variables}")
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<WorkPoolEntry, E> {
                Ok(WorkPoolEntry {
                    name: name.to_owned(),
                    work_queue_name: None,
                    job_variables: Map::new(),
                })
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<WorkPoolEntry, A::Error> {
                let fields =
                    WorkPoolFields::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(WorkPoolEntry {
                    name: fields.name,
                    work_queue_name: fields.work_queue_name,
                    job_variables: fields.job_variables,
                })
            }
        }
        deserializer.deserialize_any(Entry)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleEntry {
    #[serde(default)]
    pub cron: Option<String>,
    /// Time between runs: seconds, or a duration such as `90s` or `6h`.
    #[serde(default)]
    pub interval: Option<Interval>,
    #[serde(default)]
    pub rrule: Option<String>,
    /// Where an interval's steps start (RFC 3339, e.g. `2026-01-01T09:00:00Z`).
    #[serde(default)]
    pub anchor: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub parameters: Map<String, Value>,
    #[serde(default = "yes")]
    pub active: bool,
    /// What happens to times missed while the core was down.
    #[serde(default)]
    pub catch_up: CatchUp,
}

/// An interval as written: seconds or a duration.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Interval {
    Seconds(u64),
    Duration(String),
}

impl Interval {
    fn seconds(&self) -> anyhow::Result<u64> {
        match self {
            Self::Seconds(seconds) => Ok(*seconds),
            Self::Duration(text) => humantime::parse_duration(text)
                .map(|d| d.as_secs())
                .with_context(|| format!("interval `{text}` is not a duration such as 90s or 6h")),
        }
    }
}

fn yes() -> bool {
    true
}

/// An RFC 3339 time as the API's milliseconds.
pub fn parse_time(text: &str) -> anyhow::Result<Timestamp> {
    let at = humantime::parse_rfc3339_weak(text)
        .with_context(|| format!("`{text}` is not a time such as 2026-01-01T09:00:00Z"))?;
    let millis = at
        .duration_since(std::time::UNIX_EPOCH)
        .context("times before 1970 are not supported")?
        .as_millis();
    Ok(Timestamp(i64::try_from(millis).unwrap_or(i64::MAX)))
}

/// One deployment of the project's flow.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentEntry {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Map<String, Value>,
    #[serde(default)]
    pub work_pool: Option<WorkPoolEntry>,
    #[serde(default)]
    pub schedules: Vec<ScheduleEntry>,
    #[serde(default)]
    pub concurrency_limit: Option<u32>,
    /// `enqueue` (wait for a slot) or `cancel-new`.
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub retries: u32,
    #[serde(default)]
    pub retry_delay_seconds: u64,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub capabilities: Capabilities,
}

impl DeploymentEntry {
    /// The API body for this deployment of `artifact`.
    pub fn spec(&self, artifact: &str) -> anyhow::Result<DeploymentSpec> {
        let schedules = self
            .schedules
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let kinds = [s.cron.is_some(), s.interval.is_some(), s.rrule.is_some()];
                if kinds.iter().filter(|k| **k).count() != 1 {
                    bail!(
                        "deployment `{}`, schedule {}: give exactly one of cron, interval, rrule",
                        self.name,
                        i + 1
                    );
                }
                let which = || format!("deployment `{}`, schedule {}", self.name, i + 1);
                let interval_seconds =
                    s.interval.as_ref().map(Interval::seconds).transpose().with_context(which)?;
                if interval_seconds == Some(0) {
                    bail!("{}: interval must be at least 1 second", which());
                }
                let anchor = s.anchor.as_deref().map(parse_time).transpose().with_context(which)?;
                Ok(ScheduleSpec {
                    cron: s.cron.clone(),
                    interval_seconds,
                    rrule: s.rrule.clone(),
                    anchor,
                    timezone: s.timezone.clone().unwrap_or_else(|| "UTC".to_owned()),
                    parameters: s.parameters.clone(),
                    active: s.active,
                    catch_up: s.catch_up,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(DeploymentSpec {
            artifact: artifact.to_owned(),
            version: self.version.clone(),
            description: self.description.clone(),
            tags: self.tags.clone(),
            parameters: self.parameters.clone(),
            work_pool: self.work_pool.as_ref().map(|p| p.name.clone()),
            work_queue: self.work_pool.as_ref().and_then(|p| p.work_queue_name.clone()),
            job_variables: self
                .work_pool
                .as_ref()
                .map(|p| p.job_variables.clone())
                .unwrap_or_default(),
            schedules,
            concurrency_limit: self.concurrency_limit,
            concurrency_policy: self.concurrency_policy,
            paused: self.paused,
            capabilities: self.capabilities.clone(),
            retries: self.retries,
            retry_delay_seconds: self.retry_delay_seconds,
            timeout_seconds: self.timeout_seconds,
        })
    }
}

impl Project {
    /// The component of the project read from `file`: built from its
    /// crate, or as named.
    pub fn component(&self, file: &Path) -> anyhow::Result<PathBuf> {
        let base = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let build = self.build.as_ref();
        match (build.and_then(|b| b.component.as_ref()), build.and_then(|b| b.crate_dir.as_ref())) {
            (Some(_), Some(_)) => {
                bail!("{}: `build` takes `crate` or `component`, not both", file.display())
            }
            (Some(component), None) => Ok(base.join(component)),
            (None, crate_dir) => {
                let crate_dir = crate_dir.map_or_else(|| base.to_path_buf(), |dir| base.join(dir));
                eprintln!("building {}", crate_dir.display());
                build_component(&crate_dir)
            }
        }
    }

    /// The deployment called `name`, or the only one when no name is given.
    pub fn deployment(&self, name: Option<&str>, file: &Path) -> anyhow::Result<&DeploymentEntry> {
        let names = || {
            self.deployments.iter().map(|d| format!("`{}`", d.name)).collect::<Vec<_>>().join(", ")
        };
        match (name, self.deployments.as_slice()) {
            (None, [only]) => Ok(only),
            (None, _) => bail!(
                "{} lists several deployments ({}): choose one with --name",
                file.display(),
                names()
            ),
            (Some(name), all) => all.iter().find(|d| d.name == name).ok_or_else(|| {
                anyhow::anyhow!(
                    "{} has no deployment `{name}`; it lists {}",
                    file.display(),
                    names()
                )
            }),
        }
    }

    /// Reads and checks `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses `text`; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> anyhow::Result<Self> {
        let project: Project =
            serde_yaml::from_str(text).map_err(|e| anyhow::anyhow!(describe_error(file, &e)))?;
        if project.deployments.is_empty() {
            bail!("{file}: `deployments` lists no deployment");
        }
        if project.pull.as_ref().is_some_and(|steps| !steps.is_empty()) {
            bail!(
                "{file}: `pull` steps are not needed: a component carries its code, so leave `pull` empty"
            );
        }
        let mut names = BTreeSet::new();
        for deployment in &project.deployments {
            if !names.insert(deployment.name.as_str()) {
                bail!("{file}: deployment `{}` is listed twice", deployment.name);
            }
        }
        Ok(project)
    }
}

/// `FILE:LINE:COLUMN: what is wrong[; did you mean `x`?]`.
fn describe_error(file: &str, error: &serde_yaml::Error) -> String {
    let text = error.to_string();
    let (location, message) = match error.location() {
        // serde_yaml says where in words; we say it as FILE:LINE:COLUMN.
        Some(at) => (
            format!("{}:{}:", at.line(), at.column()),
            text.replacen(&format!(" at line {} column {}", at.line(), at.column()), "", 1),
        ),
        None => (String::new(), text),
    };
    format!("{file}:{location} {message}{}", suggestion(&message))
}

/// For "unknown field `x`, expected one of `a`, `b`" (or a variant), the
/// known name nearest to `x`.
fn suggestion(message: &str) -> String {
    let Some(start) = message.find("unknown field").or_else(|| message.find("unknown variant"))
    else {
        return String::new();
    };
    let message = message.get(start..).unwrap_or_default();
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let Some((unknown, known)) = quoted.split_first() else { return String::new() };
    did_you_mean(unknown, known.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_work_pool_may_be_named_alone_or_in_full() {
        let project = Project::parse(
            "deployments:\n- name: a\n  work_pool: edge\n- name: b\n  work_pool: {name: edge, work_queue_name: fast}\n",
            "baton.yaml",
        )
        .unwrap();
        let pools: Vec<(&str, Option<&str>)> = project
            .deployments
            .iter()
            .filter_map(|d| d.work_pool.as_ref())
            .map(|p| (p.name.as_str(), p.work_queue_name.as_deref()))
            .collect();
        assert_eq!(pools, [("edge", None), ("edge", Some("fast"))]);
        let error = Project::parse(
            "deployments:\n- name: a\n  work_pool: {name: edge, queue: fast}\n",
            "baton.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("unknown field `queue`"), "{error}");
    }

    const GOOD: &str = "name: demo
deployments:
  - name: default
    parameters: {a: 1}
  - name: nightly
    tags: [etl]
    concurrency_limit: 1
    concurrency_policy: cancel-new
    schedules:
      - cron: '0 2 * * *'
        timezone: Europe/Paris
";

    fn error(text: &str) -> String {
        Project::parse(text, "baton.yaml").unwrap_err().to_string()
    }

    #[test]
    fn a_good_file_becomes_deployment_specs() {
        let project = Project::parse(GOOD, "baton.yaml").unwrap();
        let nightly = project.deployments[1].spec("sha256:x").unwrap();
        assert_eq!(nightly.concurrency_policy, ConcurrencyPolicy::CancelNew);
        assert_eq!(nightly.schedules[0].timezone, "Europe/Paris");
        assert_eq!(project.deployments[0].spec("sha256:x").unwrap().parameters["a"], 1);
    }

    #[test]
    fn the_readme_s_schedules_become_schedule_specs() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let block =
            readme.split("```yaml\n    schedules:\n").nth(1).unwrap().split("```").next().unwrap();
        let text = format!("deployments:\n  - name: a\n    schedules:\n{block}");
        let spec =
            Project::parse(&text, "baton.yaml").unwrap().deployments[0].spec("sha256:x").unwrap();
        let [cron, every, rule] = spec.schedules.as_slice() else { panic!("{:?}", spec.schedules) };
        assert_eq!(
            (cron.cron.as_deref(), cron.timezone.as_str()),
            (Some("0 9 * * 1-5"), "Europe/Berlin")
        );
        assert_eq!(every.interval_seconds, Some(900));
        assert_eq!(every.anchor, Some(Timestamp(1_767_225_900_000)));
        assert_eq!(every.catch_up, CatchUp::Latest);
        assert_eq!(every.parameters["mode"], "quick");
        assert!(rule.rrule.is_some() && !rule.active);
        let bad = "deployments:\n  - name: a\n    schedules: [{interval: soon}]\n";
        let project = Project::parse(bad, "baton.yaml").unwrap();
        let message = format!("{:#}", project.deployments[0].spec("sha256:x").unwrap_err());
        assert!(message.contains("interval `soon` is not a duration"), "{message}");
    }

    #[test]
    fn an_unknown_field_names_line_column_and_the_nearest_field() {
        let text = "deployments:\n  - name: default\n    tagz: [a]\n";
        let message = error(text);
        assert!(
            message.starts_with("baton.yaml:3:5: deployments[0]: unknown field `tagz`"),
            "{message}"
        );
        assert!(message.ends_with("; did you mean `tags`?"), "{message}");
    }

    #[test]
    fn a_wrong_type_names_line_and_column() {
        let message = error("deployments:\n  - name: default\n    retries: many\n");
        assert!(
            message.starts_with("baton.yaml:3:14: deployments[0].retries: invalid type")
                || message.starts_with("baton.yaml:3:14: invalid type"),
            "{message}"
        );
        assert!(message.contains("expected u32"), "{message}");
    }

    #[test]
    fn a_bad_value_is_named_with_the_nearest_valid_one() {
        let message = error("deployments:\n  - name: default\n    concurrency_policy: enqeue\n");
        assert!(message.starts_with("baton.yaml:3:"), "{message}");
        assert!(message.contains("unknown variant `enqeue`"), "{message}");
        assert!(message.ends_with("did you mean `enqueue`?"), "{message}");
    }

    #[test]
    fn broken_yaml_and_missing_or_repeated_things_are_refused() {
        assert!(
            error("deployments: [\n").starts_with("baton.yaml:"),
            "{}",
            error("deployments: [\n")
        );
        assert!(error("name: x\n").contains("missing field `deployments`"));
        assert!(error("deployments: []\n").contains("lists no deployment"));
        assert!(error("deployments:\n  - name: a\n  - name: a\n").contains("listed twice"));
        assert!(
            error("pull:\n  - git_clone: x\ndeployments:\n  - name: a\n")
                .contains("`pull` steps are not needed")
        );
        let schedule = Project::parse("deployments:\n  - name: a\n    schedules:\n      - cron: '* * * * *'\n        interval: 60\n", "f")
            .unwrap();
        assert!(
            schedule.deployments[0]
                .spec("d")
                .unwrap_err()
                .to_string()
                .contains("exactly one of cron, interval, rrule")
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// Whatever a baton.yaml holds, reading it ends in a project or an
        /// error, never a panic.
        #[test]
        fn any_text_reads_to_an_answer(text in "(?s).{0,400}") {
            let _ = Project::parse(&text, "baton.yaml");
        }

        #[test]
        fn a_mutated_project_reads_to_an_answer(
            flips in proptest::collection::vec((0_usize..GOOD.len(), 0_u8..128), 1..6),
            cut in 0_usize..=GOOD.len(),
        ) {
            let _ = Project::parse(&crate::fuzz::mutated(GOOD, cut, &flips), "baton.yaml");
        }
    }

    #[test]
    fn aliases_that_multiply_and_deep_nesting_are_refused() {
        let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..12 {
            let previous = format!("*{}", "a".repeat(level));
            let name = "a".repeat(level + 1);
            laughs.push_str(&format!(
                "{name}: &{name} [{}]\n",
                std::iter::repeat_n(previous.as_str(), 10).collect::<Vec<_>>().join(", ")
            ));
        }
        laughs.push_str("deployments: [{name: x}]\nname: demo\n");
        assert!(Project::parse(&laughs, "baton.yaml").is_err());
        let deep = format!(
            "name: {}1{}\ndeployments: [{{name: x}}]\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(Project::parse(&deep, "baton.yaml").is_err());
    }
}
