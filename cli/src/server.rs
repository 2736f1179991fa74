//! `baton server start`: runs a core in the foreground until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use baton_core::server::{Server, ServerConfig};
use baton_core::store::{Retention, redact_url};
use clap::{Args, Subcommand};

use crate::baton_home;

#[derive(Subcommand)]
pub enum ServerCommand {
    /// Start a core: the REST API on --http, the store, the background loops.
    Start(StartArgs),
}

#[derive(Args)]
pub struct StartArgs {
    /// Where the core keeps its SQLite database, secret key and caches
    /// (default: $BATON_HOME, else ~/.baton).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// `postgres://...` to share a PostgreSQL database between cores
    /// (default: SQLite in the data directory).
    #[arg(long, env = "BATON_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// Address of the REST API.
    #[arg(long, default_value = "127.0.0.1:4200", value_name = "ADDR")]
    http: SocketAddr,
    /// Where agents connect over QUIC.
    #[arg(long, default_value = "127.0.0.1:4201", value_name = "ADDR")]
    quic: SocketAddr,
    /// Take no agents (no QUIC listener).
    #[arg(long, conflicts_with = "quic")]
    no_agents: bool,
    /// An agent not heard from this long is gone, and its runs crash.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    crash_after: Duration,
    /// A run not dispatched this long after its time is marked LATE.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    late_after: Duration,
    /// Schedules are planned at least this far ahead...
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    plan_ahead: Duration,
    /// ...and at least this many runs ahead (at most 100 runs and 100 days).
    #[arg(long, default_value_t = 3)]
    plan_runs: usize,
    /// Schedule times missed while no core ran longer ago than this are
    /// not caught up.
    #[arg(long, default_value = "1d", value_parser = humantime::parse_duration)]
    catch_up_window: Duration,
    /// Token every API request must carry; required to listen beyond loopback.
    #[arg(long, env = "BATON_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Hex key that seals secrets; every core sharing a database needs the
    /// same (default: a key file in the data directory).
    #[arg(long, env = "BATON_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// How long log lines are kept (`30d`, `12h`, or `forever`).
    #[arg(long, default_value = "30d", value_parser = keep_for)]
    retain_logs: Keep,
    /// How long events are kept.
    #[arg(long, default_value = "30d", value_parser = keep_for)]
    retain_events: Keep,
    /// How long finished runs are kept, with their states, tasks and logs.
    #[arg(long, default_value = "90d", value_parser = keep_for)]
    retain_runs: Keep,
    /// How long an uploaded component no deployment uses is kept.
    #[arg(long, default_value = "1d", value_parser = keep_for)]
    retain_unused_artifacts: Keep,
    /// How long an agent out of contact (and holding no run), such as one
    /// of a stopped `baton serve`, stays listed.
    #[arg(long, default_value = "1d", value_parser = keep_for)]
    retain_agents: Keep,
    /// Send a trace of each run over OTLP/HTTP to this collector
    /// (`http://HOST:4318`), with the agents' spans.
    #[arg(long, env = "BATON_OTLP_ENDPOINT", value_name = "URL")]
    otlp_endpoint: Option<String>,
}

/// A retention period; `None` is forever.
#[derive(Clone, Copy)]
pub struct Keep(Option<Duration>);

fn keep_for(text: &str) -> Result<Keep, String> {
    if text == "forever" {
        return Ok(Keep(None));
    }
    humantime::parse_duration(text)
        .map(|d| Keep(Some(d)))
        .map_err(|e| format!("{e} (try 30d, 12h or forever)"))
}

pub async fn run(command: ServerCommand) -> anyhow::Result<ExitCode> {
    let ServerCommand::Start(args) = command;
    let mut config = ServerConfig::new(args.data_dir.unwrap_or_else(baton_home), args.http);
    config.database_url = args.database_url;
    config.quic = (!args.no_agents).then_some(args.quic);
    config.dispatch.crash_after = args.crash_after;
    config.late_after = args.late_after;
    config.scheduler.horizon.min_ahead =
        chrono::Duration::from_std(args.plan_ahead).context("--plan-ahead is too long")?;
    config.scheduler.horizon.min_runs = args.plan_runs;
    config.scheduler.catch_up_window = args.catch_up_window;
    config.api_token = args.api_token;
    config.secret_key = args.secret_key;
    config.otlp_endpoint = args.otlp_endpoint;
    config.retention = Retention {
        logs: args.retain_logs.0,
        events: args.retain_events.0,
        finished_runs: args.retain_runs.0,
        unused_artifacts: args.retain_unused_artifacts.0,
        disconnected_agents: args.retain_agents.0,
    };
    let database = config
        .database_url
        .as_deref()
        .map_or_else(|| format!("SQLite in {}", config.data_dir.display()), redact_url);
    let server = Server::start(config).await.context("starting the core")?;
    println!("Baton core listening on http://{} (database: {database})", server.address);
    println!("API: http://{0}/api  OpenAPI: http://{0}/api/openapi.json", server.address);
    if let Some(link) = &server.link {
        println!("Agents: quic://{} (CA fingerprint sha256:{})", link.address, link.fingerprint);
        println!("  make a token with `baton agent token create --pool POOL`");
    }
    let stopper = server.stopper();
    tokio::spawn(async move {
        crate::stop_requested().await;
        eprintln!("stopping");
        stopper.cancel();
    });
    server.wait().await?;
    Ok(ExitCode::SUCCESS)
}
