//! `baton serve`: one process that registers a deployment with the core, in
//! a work pool of its own, and runs that deployment's runs itself (an agent
//! in the same process), like Prefect's `flow.serve()`. When it stops, the
//! deployment is paused so its schedule creates nothing no one would run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use baton_agent::{Agent, AgentConfig, CoreAddresses};
use baton_proto::v1::link::AgentToken;
use baton_proto::v1::{
    AgentTokenCreated, Artifact, CatchUp, CreateAgentToken, Deployment, DeploymentSpec,
    DeploymentUpserted, ScheduleSpec,
};
use clap::Args;

use crate::baton_home;
use crate::build::build_component;
use crate::client::{Client, deployment_path};
use crate::params;
use crate::project::Project;
use crate::values::{self, ValueKind};

#[derive(Args)]
pub struct ServeArgs {
    /// A flow crate (built with `baton flow build`) or a built component;
    /// with `--file`, the project's own when left out.
    #[arg(required_unless_present = "file")]
    flow: Option<PathBuf>,
    /// The deployment's name; it is served as FLOW/NAME. With `--file`, the
    /// file's deployment of that name (the only one when left out).
    #[arg(long, required_unless_present = "file")]
    name: Option<String>,
    /// Take the deployment from a project file (`baton.yaml`): its
    /// parameters, schedules, grants, retries and limits; the flags given
    /// here add to them. It runs in this process whatever pool it names.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// A schedule: five cron fields (an optional sixth, first, for seconds).
    #[arg(long, conflicts_with = "interval")]
    cron: Option<String>,
    /// A schedule: every this long (`30s`, `5m`, `1h`).
    #[arg(long, value_parser = humantime::parse_duration)]
    interval: Option<std::time::Duration>,
    /// The schedule's time zone (an IANA name).
    #[arg(long, default_value = "UTC")]
    timezone: String,
    /// A default parameter, KEY=VALUE (typed by the flow's schema).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Grant a variable to the flow: `NAME=VALUE` sets it on the core
    /// first, `NAME` alone grants one set already. Repeatable.
    #[arg(long = "var", value_name = "NAME[=VALUE]")]
    variables: Vec<String>,
    /// Grant a secret to the flow, as `--var` (`NAME=-` reads the value
    /// from stdin, so it stays out of shell history); redacted from its
    /// logs. Repeatable.
    #[arg(long = "secret", value_name = "NAME[=VALUE]")]
    secrets: Vec<String>,
    /// Let the flow send HTTP requests to this host (`api.example.com`,
    /// `127.0.0.1:8080`, `*.example.com`). Repeatable.
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    allow_hosts: Vec<String>,
    /// Runs at once.
    #[arg(long, default_value_t = 8)]
    slots: u32,
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let project = args
        .file
        .as_deref()
        .map(|file| Ok::<_, anyhow::Error>((Project::load(file)?, file)))
        .transpose()?;
    let entry = match &project {
        Some((project, file)) => Some(project.deployment(args.name.as_deref(), file)?),
        None => None,
    };
    let component = match (&args.flow, &project) {
        (Some(flow), _) if flow.is_dir() => {
            eprintln!("building {}", flow.display());
            build_component(flow)?
        }
        (Some(component), _) => component.clone(),
        (None, Some((project, file))) => project.component(file)?,
        (None, None) => bail!("give a flow (a crate or a component) or --file"),
    };
    let name = match (entry, &args.name) {
        (Some(entry), _) => entry.name.clone(),
        (None, Some(name)) => name.clone(),
        (None, None) => bail!("give the deployment a --name"),
    };
    let bytes =
        std::fs::read(&component).with_context(|| format!("reading {}", component.display()))?;
    let client = Client::from_env();
    let artifact: Artifact = client
        .post_bytes("/api/artifacts", bytes)
        .await
        .with_context(|| format!("pushing {}", component.display()))?;
    let full = format!("{}/{name}", artifact.flow.name);
    let path = deployment_path(&full)?;
    let mut spec = match (entry, &project) {
        (Some(entry), Some((_, file))) => {
            entry.spec(&artifact.digest).with_context(|| file.display().to_string())?
        }
        _ => DeploymentSpec { artifact: artifact.digest.clone(), ..DeploymentSpec::default() },
    };
    spec.parameters = params::over(&artifact.flow.parameters, spec.parameters, &args.params)?;
    let schedule = |cron: Option<String>, interval_seconds: Option<u64>| ScheduleSpec {
        cron,
        interval_seconds,
        rrule: None,
        anchor: None,
        timezone: args.timezone.clone(),
        parameters: serde_json::Map::new(),
        active: true,
        catch_up: CatchUp::default(),
    };
    match (&args.cron, args.interval) {
        (Some(cron), _) => spec.schedules.push(schedule(Some(cron.clone()), None)),
        (None, Some(every)) => spec.schedules.push(schedule(None, Some(every.as_secs().max(1)))),
        (None, None) => {}
    }
    grant(&client, ValueKind::Variable, &args.variables, &mut spec.capabilities.variables).await?;
    grant(&client, ValueKind::Secret, &args.secrets, &mut spec.capabilities.secrets).await?;
    add_new(&mut spec.capabilities.outgoing_hosts, args.allow_hosts.iter().cloned());
    // A pool of its own, so that only this process runs its runs; served
    // means running, whatever the file says.
    let pool = format!("serve-{}-{name}", artifact.flow.name);
    if let Some(named) = spec.work_pool.as_deref().filter(|named| *named != pool) {
        eprintln!("note: {full} runs in this process (pool {pool}), not in pool {named}");
    }
    spec.work_pool = Some(pool.clone());
    spec.work_queue = None;
    spec.paused = false;
    // The token first: making it makes the pool the deployment names.
    let created: AgentTokenCreated = client
        .post("/api/agent-tokens", &CreateAgentToken { pool: pool.clone() })
        .await
        .context("making a token for the serving agent")?;
    let upserted: DeploymentUpserted =
        client.put(&path, &spec).await.with_context(|| format!("registering {full}"))?;
    eprintln!("{} {full}", if upserted.created { "created" } else { "updated" });
    let token: AgentToken = created.token.parse().map_err(anyhow::Error::msg)?;
    let core = CoreAddresses::parse(&created.quic_address).map_err(|e| {
        anyhow::anyhow!("the core reported an unusable QUIC address {}: {e}", created.quic_address)
    })?;
    let agent = Agent::start(AgentConfig {
        cores: core.clone(),
        token,
        pool,
        queues: Vec::new(),
        slots: args.slots,
        data_dir: baton_home().join("serve").join(format!("{}-{name}", artifact.flow.name)),
        cache_max_bytes: baton_agent::DEFAULT_CACHE_MAX_BYTES,
        name: format!("serve {full}"),
        backends: baton_agent::BackendConfig {
            runner: std::env::current_exe().ok(),
            ..baton_agent::BackendConfig::default()
        },
        metrics: None,
        otlp_endpoint: None,
    })
    .await
    .with_context(|| format!("connecting to the core at {core}"))?;
    println!("serving {full}; start a run with `baton deployment run {full}`");

    tokio::select! {
        () = agent.wait() => {}
        () = crate::stop_requested() => {
            eprintln!("stopping: pausing {full}");
            agent.stop();
            agent.wait().await;
        }
    }
    let _: Deployment = client
        .post(&format!("{path}/pause"), &())
        .await
        .with_context(|| format!("pausing {full}"))?;
    eprintln!("paused {full}");
    Ok(ExitCode::SUCCESS)
}

/// Grants values of `kind` named by `--var`/`--secret` flags: `NAME=VALUE`
/// is set on the core first; `NAME` alone must be set already. Values the
/// grants (the file's included) name that the core lacks are reported, as
/// runs reading them would fail.
async fn grant(
    client: &Client,
    kind: ValueKind,
    flags: &[String],
    granted: &mut Vec<String>,
) -> anyhow::Result<()> {
    let noun = kind.noun();
    let mut named = Vec::new();
    for flag in flags {
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (flag.as_str(), None),
        };
        if name.is_empty() {
            bail!("--{} `{flag}` is not of the form NAME or NAME=VALUE", kind.flag());
        }
        if let Some(value) = value {
            values::set(client, kind, name, value.to_owned())
                .await
                .with_context(|| format!("setting {noun} {name}"))?;
            eprintln!("set {noun} {name}");
        }
        named.push(name.to_owned());
    }
    add_new(granted, named.iter().cloned());
    if granted.is_empty() {
        return Ok(());
    }
    let stored = values::names(client, kind).await.with_context(|| format!("listing {noun}s"))?;
    let missing: Vec<&String> = granted.iter().filter(|name| !stored.contains(*name)).collect();
    if let Some(first) = missing.iter().find(|name| named.contains(**name)) {
        bail!(
            "{noun} {first} is not set on the core: give --{} {first}=VALUE, or set it with `baton {noun} set`",
            kind.flag()
        );
    }
    for name in missing {
        eprintln!(
            "warning: {noun} {name} is granted but not set on the core; runs that read it fail"
        );
    }
    Ok(())
}

/// Appends the `new` entries `list` lacks.
fn add_new(list: &mut Vec<String>, new: impl IntoIterator<Item = String>) {
    for entry in new {
        if !list.contains(&entry) {
            list.push(entry);
        }
    }
}
