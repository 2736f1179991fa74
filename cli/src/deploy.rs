//! `baton deploy` (build, push, upsert each deployment of a `baton.yaml`)
//! and `baton init` (a starter project that deploys as it is).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use baton_proto::v1::{Artifact, DeploymentUpserted};

use crate::client::{Client, deployment_path};
use crate::project::Project;

pub async fn deploy(file: &Path) -> anyhow::Result<ExitCode> {
    let project = Project::load(file)?;
    if let Some(name) = &project.name {
        eprintln!("project {name}");
    }
    if let Some(version) = &project.baton_version
        && version != env!("CARGO_PKG_VERSION")
    {
        eprintln!(
            "note: {} was written for baton {version}; this is baton {}",
            file.display(),
            env!("CARGO_PKG_VERSION")
        );
    }
    let component = project.component(file)?;
    let bytes =
        std::fs::read(&component).with_context(|| format!("reading {}", component.display()))?;
    let client = match project.push.and_then(|p| p.api_url) {
        Some(url) => Client::with_url(&url),
        None => Client::from_env(),
    };
    eprintln!("pushing {} ({} KiB)", component.display(), bytes.len() / 1024);
    let artifact: Artifact = client
        .post_bytes("/api/artifacts", bytes)
        .await
        .with_context(|| format!("pushing {}", component.display()))?;
    println!("artifact {} {} {}", artifact.flow.name, artifact.flow.version, artifact.digest);
    // All or nothing: every deployment is checked by the core before any
    // is written, so one the core refuses leaves the others as they were.
    let mut checked = Vec::with_capacity(project.deployments.len());
    let mut refused = Vec::new();
    for entry in &project.deployments {
        let full = format!("{}/{}", artifact.flow.name, entry.name);
        let spec = entry.spec(&artifact.digest).with_context(|| file.display().to_string())?;
        let path = deployment_path(&full)?;
        if let Err(error) = client.put_empty(&format!("{path}?dry_run=true"), &spec).await {
            refused.push(format!("{full}: {error:#}"));
        }
        checked.push((full, path, spec));
    }
    if !refused.is_empty() {
        bail!(
            "{}: nothing was deployed, since the core refused {}:\n  {}",
            file.display(),
            if refused.len() == 1 {
                "one deployment".to_owned()
            } else {
                format!("{} deployments", refused.len())
            },
            refused.join("\n  ")
        );
    }
    for (full, path, spec) in checked {
        let upserted: DeploymentUpserted =
            client.put(&path, &spec).await.with_context(|| format!("deploying {full}"))?;
        if upserted.created {
            println!("created {full}");
        } else if upserted.changed.is_empty() {
            println!("unchanged {full}");
        } else {
            println!("updated {full}: {}", upserted.changed.join(", "));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where this installation's SDK is, when `baton` was built from a clone.
fn sdk_dependency() -> String {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/rust");
    match sdk.canonicalize() {
        Ok(path) => format!("baton-sdk = {{ path = {:?} }}", path.display().to_string()),
        Err(_) => format!("baton-sdk = \"{}\"", env!("CARGO_PKG_VERSION")),
    }
}

/// The language of the flow `baton init` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Rust,
    Python,
}

pub fn init(dir: &Path, name: Option<String>, language: Language) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for existing in ["baton.yaml", "Cargo.toml", "src", "pyproject.toml", "flow.py"] {
        if dir.join(existing).exists() {
            bail!(
                "{} already has {existing}; `baton init` starts a project in an empty folder",
                dir.display()
            );
        }
    }
    let folder = dir
        .canonicalize()?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name.unwrap_or(folder);
    let name: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_owned();
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        bail!("`{name}` cannot name a flow: give --name with a letter first");
    }
    let files: [(PathBuf, String); 3] = match language {
        Language::Rust => {
            std::fs::create_dir_all(dir.join("src"))?;
            [
                (dir.join("Cargo.toml"), cargo_toml(&name)),
                (dir.join("src").join("lib.rs"), LIB_RS.to_owned()),
                (dir.join("baton.yaml"), BATON_YAML.to_owned()),
            ]
        }
        Language::Python => [
            (dir.join("pyproject.toml"), pyproject_toml(&name)),
            (dir.join("flow.py"), FLOW_PY.replace("NAME", &name)),
            (dir.join("baton.yaml"), BATON_YAML.to_owned()),
        ],
    };
    for (path, text) in &files {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    println!(
        "\nnext: `baton deploy` in {} (with a core running: `baton server start`)",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
description = "Greets someone (a starter Baton flow)"

[lib]
crate-type = ["cdylib"]

[dependencies]
{sdk}
serde = {{ version = "1", features = ["derive"] }}
schemars = "1"

# A project of its own, even inside another workspace.
[workspace]
"#,
        sdk = sdk_dependency()
    )
}

fn pyproject_toml(name: &str) -> String {
    format!(
        r#"[project]
name = "{name}"
version = "0.1.0"
description = "Greets someone (a starter Baton flow)"
requires-python = ">=3.11"
# Pure-Python packages only: they are bundled into the component.
dependencies = []

[tool.baton]
# The module whose import registers the flow.
module = "flow"
"#
    )
}

const FLOW_PY: &str = r#""""A starter flow: greets someone, in a task that is retried on failure."""

from baton import flow, log, task


@task(retries=2)
def compose(name: str) -> str:
    return f"hello, {name}!"


@flow(name="NAME", version="0.1.0")
def greet(name: str = "world") -> str:
    """Greets someone.

    Args:
        name: Who to greet.
    """
    log.info(f"greeting {name}")
    return compose(name)
"#;

const LIB_RS: &str = r#"//! A starter flow: greets someone, in a task that is retried on failure.

use baton_sdk::prelude::*;

/// Parameters of the flow; the core checks them against this schema.
#[derive(Deserialize, JsonSchema)]
struct Params {
    /// Who to greet.
    #[serde(default = "world")]
    name: String,
}

fn world() -> String {
    "world".to_owned()
}

fn greet(params: Params) -> Result<String> {
    info!("greeting {}", params.name);
    let greeting = task("compose").retries(2).run(|| Ok(format!("hello, {}!", params.name)))?;
    Ok(greeting)
}

baton_sdk::flow!(greet);
"#;

const BATON_YAML: &str = r#"# The Baton project file: `baton deploy` builds the flow, pushes it to the
# core and creates or updates each deployment below.
name: starter

# How the flow is built: `crate` (default: this folder; a Rust crate or a
# Python project) is built with `baton flow build`; or give
# `component: path/to/flow.wasm`.
build:
  crate: .

# Where the component goes (default: BATON_API_URL, else http://127.0.0.1:4200).
push: {}

# Components carry their code: nothing is pulled at run time.
pull: []

deployments:
  - name: default
    description: Greets the world
    tags: [starter]
    parameters:
      name: world
    # work_pool: {name: default, work_queue_name: null, job_variables: {}}
    # schedules: [{cron: "0 9 * * 1-5", timezone: Europe/Paris}]
    concurrency_limit: 2
    concurrency_policy: enqueue
    retries: 1
    retry_delay_seconds: 10
"#;
