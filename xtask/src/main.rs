//! Developer tasks, in Rust so they run the same everywhere:
//!
//! - `cargo xtask start`: the main job: build `baton` and the example flows,
//!   start a core and an agent, deploy the examples, run each once, and keep
//!   the system running until Ctrl-C (see `start.rs`).
//! - `cargo xtask test`: set up what the tests need, then run every check
//!   and test (formatting, clippy, unit, integration and end-to-end tests).
//! - `cargo xtask ui`: build the web UI into `web/dist` (see `ui.rs`).
//! - `cargo xtask desktop`: set up and run the desktop app (`desktop.rs`).
//! - `cargo xtask bench`: the benchmarks recorded in BENCHMARKS.md.
//! - `cargo xtask with-services COMMAND...` (or `with-postgres`): runs a
//!   command with the services the tests use: a private PostgreSQL server
//!   in `BATON_TEST_POSTGRES_URL`, a Podman API socket in
//!   `BATON_TEST_DOCKER_HOST` and a Docker daemon's in
//!   `BATON_TEST_DOCKERD_HOST` (for one test, say).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

mod desktop;
mod dockerd;
mod podman;
mod postgres;
mod start;
mod ui;

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = repo_root()?;
    match task.as_str() {
        "start" => start::start(&root),
        "test" => test(&root),
        "bench" => bench(&root),
        "setup" => setup(),
        "ui" => setup().and_then(|()| ui::build(&root)),
        "desktop" => setup().and_then(|()| desktop::start(&root)),
        "with-services" | "with-postgres" => with_services(&root),
        _ => {
            bail!("usage: cargo xtask <start|test|bench|ui|desktop|setup|with-services COMMAND...>")
        }
    }
}

fn repo_root() -> anyhow::Result<PathBuf> {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map(Path::to_path_buf).context("xtask lives inside the repository")
}

/// Runs a command in `dir`, failing with the command line if it fails.
fn run(dir: &Path, program: &str, args: &[&str]) -> anyhow::Result<()> {
    run_with_env(dir, program, args, &[])
}

fn run_with_env(
    dir: &Path,
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<()> {
    eprintln!("$ {program} {}", args.join(" "));
    let mut command = Command::new(program);
    // What `cargo run` set for the xtask: the builds it starts must see
    // what the tests' own builds see.
    baton_tests::clear_package_env(&mut command);
    let status = command
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .status()
        .with_context(|| format!("starting {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs a command and returns its stdout.
fn output(dir: &Path, program: &str, args: &[&str]) -> anyhow::Result<String> {
    eprintln!("$ {program} {}", args.join(" "));
    let mut command = Command::new(program);
    baton_tests::clear_package_env(&mut command);
    let output = command
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("starting {program}"))?;
    if !output.status.success() {
        bail!("`{program} {}` failed ({})", args.join(" "), output.status);
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Installs what building and testing need and a fresh machine may lack.
fn setup() -> anyhow::Result<()> {
    let installed = output(Path::new("."), "rustup", &["target", "list", "--installed"])
        .context("rustup is needed to add the wasm32 targets")?;
    // Flows are built for wasm32-wasip2, the web UI for wasm32-unknown-unknown.
    for target in ["wasm32-wasip2", "wasm32-unknown-unknown"] {
        if !installed.lines().any(|t| t.trim() == target) {
            run(Path::new("."), "rustup", &["target", "add", target])?;
        }
    }
    let components = output(Path::new("."), "rustup", &["component", "list", "--installed"])?;
    for component in ["rustfmt", "clippy"] {
        if !components.lines().any(|c| c.starts_with(component)) {
            run(Path::new("."), "rustup", &["component", "add", component])?;
        }
    }
    install_python_tools()
}

/// The tests' Python tools (Schemathesis, kubernetes-validate,
/// componentize-py for the Python flows), in a
/// virtual environment of their own (PyPI is reachable where crates.io is;
/// nothing is installed system-wide).
fn install_python_tools() -> anyhow::Result<()> {
    let venv = baton_tests::python_tools();
    let marker = venv.join("installed");
    let wanted = baton_tests::PYTHON_TOOLS.join(" ");
    if std::fs::read_to_string(&marker).is_ok_and(|v| v == wanted) {
        return Ok(());
    }
    let here = Path::new(".");
    let venv_arg = venv.to_str().context("the target directory's path is not UTF-8")?;
    run(here, "python3", &["-m", "venv", "--clear", venv_arg])
        .context("python3 with its venv module is needed for the API fuzzing test")?;
    let pip = venv.join("bin/pip");
    let pip = pip.to_str().context("the target directory's path is not UTF-8")?;
    let mut args = vec!["install", "--quiet", "--disable-pip-version-check"];
    args.extend(baton_tests::PYTHON_TOOLS);
    run(here, pip, &args)?;
    write_if_changed(&marker, wanted.as_bytes())
}

/// A program of the tools' virtual environment (see [`install_python_tools`]).
fn python_tools_bin(name: &str) -> anyhow::Result<String> {
    let path = baton_tests::python_tools().join("bin").join(name);
    path.to_str().map(str::to_owned).context("the target directory's path is not UTF-8")
}

/// Debian packages the browser tests need: Chromium and its WebDriver, and
/// a font for legible screenshots.
const BROWSER_PACKAGES: [&str; 3] = ["chromium", "chromium-driver", "fonts-dejavu-core"];

/// Installs those of `packages` that are missing, with apt-get.
fn apt_install(why: &str, packages: &[&str]) -> anyhow::Result<()> {
    apt_install_with(why, packages, &[])
}

/// The same, without the packages they only recommend.
fn apt_install_without_recommends(why: &str, packages: &[&str]) -> anyhow::Result<()> {
    apt_install_with(why, packages, &["--no-install-recommends"])
}

fn apt_install_with(why: &str, packages: &[&str], options: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|package| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", package])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing {} with apt-get ({why})", missing.join(" "));
    let mut install = vec!["install", "-y", "-q"];
    install.extend(options);
    install.extend(&missing);
    for args in [vec!["update", "-q"], install] {
        let status = Command::new("apt-get")
            .args(&args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .with_context(|| format!("running apt-get ({why})"))?;
        if !status.success() {
            bail!("`apt-get {}` failed", args.join(" "));
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` unless it holds them already: an unchanged
/// file keeps its time, so cargo rebuilds nothing that embeds it.
fn write_if_changed(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if std::fs::read(path).ok().as_deref() != Some(bytes) {
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn flow_packages() -> Vec<&'static str> {
    baton_tests::FLOWS.iter().flat_map(|flow| ["-p", flow]).collect()
}

fn test(root: &Path) -> anyhow::Result<()> {
    setup()?;
    run(root, "cargo", &["fmt", "--all", "--check"])?;
    // The Python SDK's own tests: schemas from type hints, outcomes, tasks.
    run(
        root,
        "python3",
        &["-m", "unittest", "discover", "-s", "sdk/python/tests", "-t", "sdk/python"],
    )?;
    apt_install("the browser tests", &BROWSER_PACKAGES)?;
    // The UI and the desktop's flows first: the core and the desktop app
    // embed them; the UI's own lints run on wasm32.
    desktop::prepare(root)?;
    run(
        root,
        "cargo",
        &[
            "clippy",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "baton-web",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run(root, "cargo", &["clippy", "--release", "--all-targets", "--", "-D", "warnings"])?;
    let mut flows_clippy =
        vec!["clippy", "--release", "--target", "wasm32-wasip2", "-p", "baton-sdk"];
    flows_clippy.extend(flow_packages());
    flows_clippy.extend(["--", "-D", "warnings"]);
    run(root, "cargo", &flows_clippy)?;
    run(root, "cargo", &["test", "--release", "--doc"])?;
    // The benchmarks also run once each, as tests, so they cannot rot. One
    // invocation (one package selection) so that dependencies build once.
    let services = Services::start()?;
    run_with_env(
        root,
        "cargo",
        &[
            "test",
            "--release",
            "--tests",
            "--bench",
            "sandbox",
            "--bench",
            "live_instances",
            "--bench",
            "api",
            "--bench",
            "scheduler",
            "--bench",
            "e2e",
            "--bench",
            "team",
            "--bench",
            "ui",
        ],
        &services.env(),
    )?;
    drop(services);
    eprintln!("\nall checks and tests passed");
    Ok(())
}

/// The services the tests use, stopped when dropped.
struct Services {
    postgres: postgres::Postgres,
    podman: podman::Podman,
    dockerd: dockerd::Dockerd,
}

impl Services {
    fn start() -> anyhow::Result<Self> {
        let postgres = postgres::Postgres::start().context("starting PostgreSQL for the tests")?;
        eprintln!("PostgreSQL for the tests: {}", postgres.url);
        let podman = podman::Podman::start().context("starting Podman for the tests")?;
        eprintln!("Podman's Docker API for the tests: {}", podman.host);
        let dockerd = dockerd::Dockerd::start().context("starting dockerd for the tests")?;
        eprintln!("Docker's API for the tests: {}", dockerd.host);
        Ok(Self { postgres, podman, dockerd })
    }

    fn env(&self) -> [(&str, &str); 3] {
        [
            ("BATON_TEST_POSTGRES_URL", &self.postgres.url),
            ("BATON_TEST_DOCKER_HOST", &self.podman.host),
            ("BATON_TEST_DOCKERD_HOST", &self.dockerd.host),
        ]
    }
}

fn with_services(root: &Path) -> anyhow::Result<()> {
    let command: Vec<String> = std::env::args().skip(2).collect();
    let Some((program, args)) = command.split_first() else {
        bail!("usage: cargo xtask with-services COMMAND...");
    };
    let services = Services::start()?;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_with_env(root, program, &args, &services.env())
}

fn bench(root: &Path) -> anyhow::Result<()> {
    setup()?;
    apt_install("the UI benchmark", &BROWSER_PACKAGES)?;
    ui::build(root)?;
    run(root, "cargo", &["bench", "-p", "baton-sandbox"])?;
    run(root, "cargo", &["bench", "-p", "baton-core", "--bench", "api"])?;
    run(root, "cargo", &["bench", "-p", "baton-core", "--bench", "scheduler"])?;
    let services = Services::start()?;
    run_with_env(
        root,
        "cargo",
        &["bench", "-p", "baton-tests", "--bench", "e2e", "--bench", "team"],
        &services.env(),
    )?;
    drop(services);
    run(root, "cargo", &["bench", "-p", "baton-tests", "--bench", "ui"])
}

/// An empty directory of the test services, `baton-test-NAME-PID` in the
/// temporary directory: one per run, so that test runs side by side (two
/// clones on one machine) never stop each other's servers.
fn fresh_dir(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("baton-test-{name}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Waits up to 30 s for the Docker API that `server` serves on `socket` to
/// answer; fails with the server's `log` if it exits first.
fn wait_for_api(
    what: &str,
    server: &mut std::process::Child,
    socket: &Path,
    log: &Path,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !answers_ping(socket) {
        if let Some(status) = server.try_wait()? {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            bail!("{what} exited ({status}): {log}");
        }
        if std::time::Instant::now() > deadline {
            bail!("{what} did not answer on {} within 30 s", socket.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(())
}

/// Whether the Docker API on `socket` answers its ping.
fn answers_ping(socket: &std::path::Path) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    if stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.") && answer.contains(" 200 ")
}
