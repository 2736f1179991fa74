//! `baton serve`: one process that registers a deployment with the core, in
//! a work pool of its own, and runs that deployment's runs itself (an agent
//! in the same process), like Prefect's `flow.serve()`. When it stops, the
//! deployment is paused so its schedule creates nothing no one would run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use baton_agent::{Agent, AgentConfig};
use baton_proto::v1::link::AgentToken;
use baton_proto::v1::{
    AgentTokenCreated, Artifact, CatchUp, CreateAgentToken, Deployment, DeploymentSpec,
    DeploymentUpserted, ScheduleSpec,
};
use clap::Args;

use crate::baton_home;
use crate::client::{Client, deployment_path};
use crate::flow::build_component;
use crate::params;

#[derive(Args)]
pub struct ServeArgs {
    /// A flow crate (built with `baton flow build`) or a built component.
    flow: PathBuf,
    /// The deployment's name; it is served as FLOW/NAME.
    #[arg(long)]
    name: String,
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
    /// Runs at once.
    #[arg(long, default_value_t = 8)]
    slots: u32,
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let component = if args.flow.is_dir() {
        eprintln!("building {}", args.flow.display());
        build_component(&args.flow)?
    } else {
        args.flow.clone()
    };
    let bytes =
        std::fs::read(&component).with_context(|| format!("reading {}", component.display()))?;
    let client = Client::from_env();
    let artifact: Artifact = client
        .post_bytes("/api/artifacts", bytes)
        .await
        .with_context(|| format!("pushing {}", component.display()))?;
    let full = format!("{}/{}", artifact.flow.name, args.name);
    let path = deployment_path(&full)?;
    let parameters = params::collect(&artifact.flow.parameters, None, &args.params)?;
    let serde_json::Value::Object(parameters) = parameters else {
        bail!("parameters must be a JSON object");
    };
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
    let schedules = match (&args.cron, args.interval) {
        (Some(cron), _) => vec![schedule(Some(cron.clone()), None)],
        (None, Some(every)) => vec![schedule(None, Some(every.as_secs().max(1)))],
        (None, None) => Vec::new(),
    };
    // A pool of its own, so that only this process runs its runs.
    let pool = format!("serve-{}-{}", artifact.flow.name, args.name);
    let spec = DeploymentSpec {
        artifact: artifact.digest.clone(),
        parameters,
        schedules,
        work_pool: Some(pool.clone()),
        ..DeploymentSpec::default()
    };
    // The token first: making it makes the pool the deployment names.
    let created: AgentTokenCreated = client
        .post("/api/agent-tokens", &CreateAgentToken { pool: pool.clone() })
        .await
        .context("making a token for the serving agent")?;
    let upserted: DeploymentUpserted =
        client.put(&path, &spec).await.with_context(|| format!("registering {full}"))?;
    eprintln!("{} {full}", if upserted.created { "created" } else { "updated" });
    let token: AgentToken = created.token.parse().map_err(anyhow::Error::msg)?;
    let core = created.quic_address.parse().with_context(|| {
        format!("the core reported an unusable QUIC address {}", created.quic_address)
    })?;
    let agent = Agent::start(AgentConfig {
        core,
        token,
        pool,
        queues: Vec::new(),
        slots: args.slots,
        data_dir: baton_home().join("serve").join(format!("{}-{}", artifact.flow.name, args.name)),
        cache_max_bytes: baton_agent::DEFAULT_CACHE_MAX_BYTES,
        name: format!("serve {full}"),
        backends: baton_agent::BackendConfig {
            runner: std::env::current_exe().ok(),
            ..baton_agent::BackendConfig::default()
        },
    })
    .await
    .with_context(|| format!("connecting to the core at {core}"))?;
    println!("serving {full}; start a run with `baton deployment run {full}`");

    tokio::select! {
        () = agent.wait() => {}
        _ = tokio::signal::ctrl_c() => {
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
