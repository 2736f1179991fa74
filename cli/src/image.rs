//! `baton image build`: the runner image a container pool's runs start
//! from, built into a container engine without a registry.

use std::process::ExitCode;

use anyhow::Context;
use baton_agent::engine;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Build the runner image (this `baton` and the libraries it loads,
    /// `FROM scratch`, running `baton flow exec`) into the engine; prints
    /// the image's reference last.
    Build {
        /// The image's reference.
        #[arg(long, default_value = engine::RUNNER_IMAGE)]
        tag: String,
        /// The container engine's Docker API: `unix:///PATH` or
        /// `tcp://HOST:PORT` (default: DOCKER_HOST, then the usual sockets).
        #[arg(long, value_name = "URL")]
        docker_host: Option<String>,
    },
}

pub async fn run(command: ImageCommand) -> anyhow::Result<ExitCode> {
    match command {
        ImageCommand::Build { tag, docker_host } => {
            let host = engine::resolve_host(docker_host.as_deref())?;
            let exe = std::env::current_exe().context("finding this baton binary")?;
            eprintln!("building {tag} from {} into {host}", exe.display());
            let image = engine::build_runner_image(&host, &tag, &exe).await?;
            println!("{image}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
