//! `baton agent start|token create|ls`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use baton_agent::{Agent, AgentConfig, CoreAddresses};
use baton_proto::v1::link::AgentToken;
use baton_proto::v1::{AgentInfo, AgentTokenCreated, CreateAgentToken};
use clap::{Args, Subcommand};

use crate::client::Client;
use crate::{baton_home, table};

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Connect to a core and run the flows it pushes, until Ctrl-C.
    Start(Box<StartArgs>),
    /// Tokens that let agents in.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Agents the core knows.
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `baton agent start`.
#[derive(Args)]
pub struct StartArgs {
    /// The core's QUIC address, or those of several cores of one
    /// database (`a:4201,b:4201`; a name may resolve to several): the
    /// agent connects to one and fails over to the next.
    #[arg(long, default_value = "127.0.0.1:4201", value_name = "ADDR[,ADDR...]", value_parser = CoreAddresses::parse)]
    core: CoreAddresses,
    /// From `baton agent token create`.
    #[arg(long, env = "BATON_AGENT_TOKEN", hide_env_values = true)]
    token: String,
    /// The work pool to take runs from.
    #[arg(long)]
    pool: String,
    /// Queues of the pool to take runs from (default: all).
    #[arg(long = "queue", value_name = "QUEUE")]
    queues: Vec<String>,
    /// Runs at once.
    #[arg(long, default_value_t = 16)]
    slots: u32,
    /// Where the agent keeps its id and compiled components
    /// (default: $BATON_HOME/agent).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A name for people (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// Disk kept for compiled components; the least recently used go
    /// first.
    #[arg(long, default_value = "2GiB")]
    cache_max: bytesize::ByteSize,
    /// The container engine's Docker API, for a container pool's runs:
    /// `unix:///PATH` (Docker's or Podman's socket) or `tcp://HOST:PORT`
    /// (default: DOCKER_HOST, then the usual sockets).
    #[arg(long, value_name = "URL")]
    docker_host: Option<String>,
    /// Serve the agent's metrics (Prometheus text) at
    /// http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Send the spans of the runs it executes over OTLP/HTTP to this
    /// collector (`http://HOST:4318`).
    #[arg(long, env = "BATON_OTLP_ENDPOINT", value_name = "URL")]
    otlp_endpoint: Option<String>,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token for agents of a pool; it is printed once, as the last
    /// line.
    Create {
        /// The work pool the token's agents serve.
        #[arg(long)]
        pool: String,
    },
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "agent".to_owned())
}

pub async fn run(command: AgentCommand) -> anyhow::Result<ExitCode> {
    match command {
        AgentCommand::Start(args) => {
            let StartArgs {
                core,
                token,
                pool,
                queues,
                slots,
                data_dir,
                name,
                cache_max,
                docker_host,
                metrics,
                otlp_endpoint,
            } = *args;
            let token: AgentToken = token.parse().map_err(anyhow::Error::msg)?;
            let config = AgentConfig {
                cores: core.clone(),
                token,
                pool: pool.clone(),
                queues,
                slots,
                data_dir: data_dir.unwrap_or_else(|| baton_home().join("agent")),
                cache_max_bytes: cache_max.as_u64(),
                name: name.unwrap_or_else(host_name),
                backends: baton_agent::BackendConfig {
                    runner: std::env::current_exe().ok(),
                    docker_host,
                },
                metrics,
                otlp_endpoint,
            };
            let agent = Agent::start(config)
                .await
                .with_context(|| format!("connecting to the core at {core}"))?;
            println!("agent {} connected to {core}: pool {pool}, {slots} slots", agent.id());
            tokio::select! {
                () = agent.wait() => {}
                () = crate::stop_requested() => {
                    eprintln!("stopping");
                    agent.stop();
                    agent.wait().await;
                }
            }
        }
        AgentCommand::Token(TokenCommand::Create { pool }) => {
            let created: AgentTokenCreated =
                Client::from_env().post("/api/agent-tokens", &CreateAgentToken { pool }).await?;
            eprintln!("a token for agents of pool `{}`; start one with:", created.pool);
            eprintln!(
                "  baton agent start --core {} --pool {} --token <the token below>",
                created.quic_address, created.pool
            );
            println!("{}", created.token);
        }
        AgentCommand::Ls { json } => {
            let agents: Vec<AgentInfo> = Client::from_env().get("/api/agents").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&agents)?);
            } else {
                let rows: Vec<Vec<String>> = agents
                    .iter()
                    .map(|a| {
                        vec![
                            a.id.clone(),
                            a.name.clone(),
                            a.pool.clone(),
                            if a.connected { "connected".into() } else { "gone".into() },
                            a.core_address.clone().unwrap_or_else(|| "-".into()),
                            format!("{}/{}", a.running, a.slots),
                            table::time(a.last_seen),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table::render(
                        &["AGENT", "NAME", "POOL", "STATUS", "CORE", "RUNNING", "LAST SEEN"],
                        &rows
                    )
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
