//! The Docker Engine API (Docker's socket or Podman's `podman system
//! service`), as the container backend and `baton image build` use it:
//! finding and connecting to an engine, the runner image.

use std::path::{Path, PathBuf};

use bollard::query_parameters::BuildImageOptions;
use bollard::{API_DEFAULT_VERSION, Docker};
use futures_util::StreamExt as _;

use crate::backend::labels::{BATON, MANAGED_BY};

/// The runner image `baton image build` makes unless told a tag.
pub const RUNNER_IMAGE: &str = "localhost/baton-runner:latest";

/// How long one request to the engine may take (a long-running container
/// is followed on its attached stream, which this does not bound).
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// Sockets tried, in order, when neither `--docker-host` nor `DOCKER_HOST`
/// names one.
const USUAL_SOCKETS: [&str; 2] = ["/var/run/docker.sock", "/run/podman/podman.sock"];

/// The engine could not be reached or refused a request.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "no container engine: give one with --docker-host unix:///PATH (or DOCKER_HOST); none of {0} exists"
    )]
    NoSocket(String),
    #[error("the container engine at {host}: {source}")]
    Api { host: String, source: bollard::errors::Error },
    #[error("building the runner image: {0}")]
    Build(String),
}

/// The engine's address: `given`, else `DOCKER_HOST`, else the first of
/// the usual sockets (Podman's rootless one included) that exists.
pub fn resolve_host(given: Option<&str>) -> Result<String, EngineError> {
    if let Some(host) = given.map(str::to_owned).or_else(|| std::env::var("DOCKER_HOST").ok()) {
        return Ok(host);
    }
    let rootless = std::env::var_os("XDG_RUNTIME_DIR")
        .map(|dir| PathBuf::from(dir).join("podman/podman.sock"));
    let candidates: Vec<PathBuf> =
        USUAL_SOCKETS.iter().map(PathBuf::from).chain(rootless).collect();
    match candidates.iter().find(|socket| socket.exists()) {
        Some(socket) => Ok(format!("unix://{}", socket.display())),
        None => Err(EngineError::NoSocket(
            candidates.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(", "),
        )),
    }
}

/// Connects to the engine at `host` (`unix://` or `tcp://`) and settles the
/// API version with it (Debian's dockerd speaks 1.41, bollard defaults to
/// newer).
pub async fn connect(host: &str) -> Result<Docker, EngineError> {
    let api = |source| EngineError::Api { host: host.to_owned(), source };
    let docker = if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
    } else {
        Docker::connect_with_unix(host, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
    }
    .map_err(api)?;
    docker.negotiate_version().await.map_err(api)
}

/// Whether an engine error is its "no such container/image" answer.
/// Podman answers 500 "no such container" about a container being removed
/// as it is asked.
pub(crate) fn not_found(error: &bollard::errors::Error) -> bool {
    match error {
        bollard::errors::Error::DockerResponseServerError { status_code: 404, .. } => true,
        bollard::errors::Error::DockerResponseServerError { status_code: 500, message } => {
            message.contains("no such container")
        }
        _ => false,
    }
}

/// Builds the runner image into the engine at `host`, with no registry:
/// `exe` (this `baton`) and the shared libraries it loads, `FROM scratch`,
/// running `baton flow exec`. Returns the image's reference.
pub async fn build_runner_image(host: &str, tag: &str, exe: &Path) -> Result<String, EngineError> {
    let context = runner_context(exe).map_err(EngineError::Build)?;
    let docker = connect(host).await?;
    let options = BuildImageOptions {
        dockerfile: "Dockerfile".to_owned(),
        t: Some(tag.to_owned()),
        rm: true,
        forcerm: true,
        ..BuildImageOptions::default()
    };
    let mut build = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(step) = build.next().await {
        let step = step.map_err(|source| EngineError::Api { host: host.to_owned(), source })?;
        if let Some(error) = step.error_detail.and_then(|detail| detail.message) {
            return Err(EngineError::Build(error));
        }
        if let Some(line) = step.stream.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
            tracing::debug!("{line}");
        }
    }
    Ok(tag.to_owned())
}

/// The build context of the runner image, as a tar archive.
fn runner_context(exe: &Path) -> Result<Vec<u8>, String> {
    let mut archive = tar::Builder::new(Vec::new());
    let mut add = |inside: &str, from: &Path, mode: u32| -> Result<(), String> {
        let bytes = std::fs::read(from).map_err(|e| format!("reading {}: {e}", from.display()))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        archive
            .append_data(&mut header, inside, bytes.as_slice())
            .map_err(|e| format!("archiving {}: {e}", from.display()))
    };
    add("rootfs/bin/baton", exe, 0o755)?;
    for library in shared_libraries(exe)? {
        let inside = format!("rootfs{}", library.display());
        add(&inside, &library, 0o755)?;
    }
    let dockerfile = format!(
        "FROM scratch\nCOPY rootfs/ /\nLABEL {MANAGED_BY}={BATON}\n\
         ENTRYPOINT [\"/bin/baton\"]\nCMD [\"flow\", \"exec\"]\n"
    );
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    archive
        .append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
        .map_err(|e| format!("archiving the Dockerfile: {e}"))?;
    archive.into_inner().map_err(|e| format!("archiving: {e}"))
}

/// The shared libraries `exe` loads, with their real paths, as `ldd` names
/// them (none for a static binary).
fn shared_libraries(exe: &Path) -> Result<Vec<PathBuf>, String> {
    let listed = std::process::Command::new("ldd")
        .arg(exe)
        .output()
        .map_err(|e| format!("running ldd on {}: {e}", exe.display()))?;
    let text = String::from_utf8_lossy(&listed.stdout);
    if !listed.status.success() || text.contains("not a dynamic executable") {
        return Ok(Vec::new());
    }
    // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`, or the
    // loader itself: `/lib64/ld-linux-x86-64.so.2 (0x...)`.
    Ok(text
        .lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, target)) => target.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}
