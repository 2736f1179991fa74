//! `baton`: the one binary. Each subcommand lives in its own module; this
//! file holds the command-line grammar and the exit-status policy.

mod agent;
mod api_token;
mod automation;
mod build;
mod client;
mod deploy;
mod deployment;
mod events;
mod flow;
mod image;
mod params;
mod pool;
mod project;
mod report;
mod runs;
mod schedule;
mod serve;
mod server;
mod table;
mod values;

#[cfg(test)]
mod fuzz {
    /// `good` cut at `cut` with each `(position, byte)` of `flips` written
    /// over it: a malformed neighbour of a valid input.
    pub(crate) fn mutated(good: &str, cut: usize, flips: &[(usize, u8)]) -> String {
        let mut bytes = good.as_bytes()[..cut.min(good.len())].to_vec();
        for &(at, byte) in flips {
            if let Some(slot) = bytes.get_mut(at) {
                *slot = byte;
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status when a command could not do its job because of its input or
/// environment (a bad component, bad parameters, a missing file).
pub const EXIT_BAD_INPUT: u8 = 2;

#[derive(Parser)]
#[command(name = "baton", version, about = "Baton: flows as WebAssembly components, orchestrated")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build, inspect and run flow components locally.
    #[command(subcommand)]
    Flow(flow::FlowCommand),
    /// Run the core (the server that holds deployments and runs).
    #[command(subcommand)]
    Server(server::ServerCommand),
    /// Register a deployment and run its runs in this process until Ctrl-C.
    Serve(serve::ServeArgs),
    /// Run an agent, and manage the tokens that let agents in.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Build, push and create or update the deployments of a baton.yaml.
    Deploy {
        /// The project file.
        #[arg(long, short, default_value = "baton.yaml")]
        file: PathBuf,
    },
    /// Start a project: a baton.yaml and a flow crate that deploy as they are.
    Init {
        /// Where to write the project (created if missing).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The flow's name (default: the folder's).
        #[arg(long)]
        name: Option<String>,
        /// Write a Python flow (pyproject.toml, flow.py) instead of a Rust crate.
        #[arg(long)]
        python: bool,
    },
    /// Deployments on the core.
    #[command(subcommand)]
    Deployment(deployment::DeploymentCommand),
    /// Flow runs on the core.
    #[command(subcommand)]
    Run(runs::RunCommand),
    /// Work pools on the core.
    #[command(subcommand)]
    Pool(pool::PoolCommand),
    /// The runner image container pools run in.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Variables flows can be granted.
    #[command(subcommand)]
    Variable(values::ValueCommand),
    /// Secrets flows can be granted (sealed at rest).
    #[command(subcommand)]
    Secret(values::ValueCommand),
    /// Tokens for the core's API, each with a scope: read, run or admin.
    #[command(subcommand)]
    ApiToken(api_token::ApiTokenCommand),
    /// Events: everything that happens on the core.
    #[command(subcommand)]
    Event(events::EventCommand),
    /// Incoming webhooks that turn outside calls into events.
    #[command(subcommand)]
    Webhook(events::WebhookCommand),
    /// Automations: a trigger on events and actions to take.
    #[command(subcommand)]
    Automation(automation::AutomationCommand),
}

/// Allocations of 1 MiB and more come straight from the OS and go back to
/// it when freed. glibc otherwise raises this threshold after each such free
/// (up to 32 MiB) and keeps the memory of a freed 10 MiB message for good:
/// one oversized output or event would pin an agent's resident memory at
/// its peak.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_frees_to_the_os() {
    // SAFETY: mallopt only sets an allocator parameter; this runs first in
    // `main`, before any other thread exists.
    #[allow(unsafe_code, reason = "the one libc call that sets the allocator's threshold")]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_frees_to_the_os() {}

/// Makes a write to a closed stdout end the process as Unix tools end
/// (`baton run ls --json | head`), not with a panic. Only for commands
/// that print and exit: processes that feed children's pipes must see the
/// error instead.
#[cfg(unix)]
fn stop_quietly_on_a_closed_pipe() {
    // SAFETY: restores the default disposition of one signal, before any
    // other thread exists.
    #[allow(unsafe_code, reason = "the one libc call that restores SIGPIPE")]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn stop_quietly_on_a_closed_pipe() {}

fn main() -> ExitCode {
    return_large_frees_to_the_os();
    let cli = Cli::parse();
    if !matches!(
        cli.command,
        Command::Serve(_) | Command::Server(_) | Command::Agent(_) | Command::Flow(_)
    ) {
        stop_quietly_on_a_closed_pipe();
    }
    // Processes that run runs say a line per run (as Prefect's worker
    // does); one-shot commands only warnings. Colours only on a terminal.
    let serving = matches!(cli.command, Command::Serve(_) | Command::Server(_) | Command::Agent(_));
    let default_filter =
        if serving { "warn,baton=info,baton_core=info,baton_agent=info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BATON_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let result = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(async {
            match cli.command {
                Command::Flow(command) => flow::run(command).await,
                Command::Server(command) => server::run(command).await,
                Command::Agent(command) => agent::run(command).await,
                Command::Serve(args) => serve::serve(args).await,
                Command::Deploy { file } => deploy::deploy(&file).await,
                Command::Init { dir, name, python } => deploy::init(
                    &dir,
                    name,
                    if python { deploy::Language::Python } else { deploy::Language::Rust },
                ),
                Command::Deployment(command) => deployment::run(command).await,
                Command::Run(command) => runs::run(command).await,
                Command::Event(command) => events::run(command).await,
                Command::Webhook(command) => events::webhook(command).await,
                Command::Automation(command) => automation::run(command).await,
                Command::Pool(command) => pool::run(command).await,
                Command::Image(command) => image::run(command).await,
                Command::Variable(command) => {
                    values::run(values::ValueKind::Variable, command).await
                }
                Command::Secret(command) => values::run(values::ValueKind::Secret, command).await,
                Command::ApiToken(command) => api_token::run(command).await,
            }
        }),
        Err(e) => Err(anyhow::Error::new(e).context("starting the async runtime")),
    };
    match result {
        Ok(status) => status,
        Err(error) => {
            // One line, the whole chain: "reading x.wasm: No such file ...".
            let message = format!("{error:#}").replace('\n', " ");
            eprintln!("error: {message}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// Where Baton keeps its data: `$BATON_HOME`, else `~/.baton`.
pub fn baton_home() -> PathBuf {
    if let Some(home) = std::env::var_os("BATON_HOME") {
        return PathBuf::from(home);
    }
    std::env::var_os("HOME")
        .map_or_else(|| PathBuf::from(".baton"), |h| PathBuf::from(h).join(".baton"))
}

/// Returns when the process is asked to stop: Ctrl-C (SIGINT), or SIGTERM
/// as `docker stop` and Kubernetes send it.
pub async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
