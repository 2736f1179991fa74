//! Rust flows: a crate built with cargo for wasm32-wasip2.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::BuildFailed;

/// The target every Rust flow is built for.
const FLOW_TARGET: &str = "wasm32-wasip2";

/// Builds the flow crate in `crate_dir` for wasm32-wasip2 (release) and
/// returns the component's path.
pub(super) fn build(crate_dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = crate_dir.join("Cargo.toml");
    let manifest =
        manifest.canonicalize().with_context(|| format!("resolving {}", manifest.display()))?;
    ensure_flow_target()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            FLOW_TARGET,
            "--message-format",
            "json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cargo (is Rust installed?)")?;
    let mut component = None;
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.context("reading cargo's output")?;
            if let Some(path) = built_component(&line, &manifest) {
                component = Some(path);
            }
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        return Err(BuildFailed(crate_dir.display().to_string()).into());
    }
    component.ok_or_else(|| {
        anyhow::anyhow!(
            "{} built no .wasm file: a flow crate needs `[lib] crate-type = [\"cdylib\"]` in its Cargo.toml",
            crate_dir.display()
        )
    })
}

/// The `.wasm` file in one line of cargo's JSON messages, if it is the
/// artifact of the crate at `manifest`.
fn built_component(line: &str, manifest: &Path) -> Option<PathBuf> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message.get("reason")? != "compiler-artifact" {
        return None;
    }
    let from = Path::new(message.get("manifest_path")?.as_str()?).canonicalize().ok()?;
    if from != manifest {
        return None;
    }
    message
        .get("filenames")?
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".wasm"))
        .map(PathBuf::from)
}

/// Installs the wasm32-wasip2 standard library with rustup when it is missing.
fn ensure_flow_target() -> anyhow::Result<()> {
    let libdir = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", FLOW_TARGET])
        .output()
        .context("running rustc (is Rust installed?)")?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&libdir.stdout).trim());
    if libdir.join("lib").exists()
        || std::fs::read_dir(&libdir).is_ok_and(|mut d| d.next().is_some())
    {
        return Ok(());
    }
    eprintln!("the {FLOW_TARGET} target is missing; installing it with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", FLOW_TARGET])
        .status()
        .context("running rustup: install the target with `rustup target add wasm32-wasip2`")?;
    if !status.success() {
        bail!("`rustup target add {FLOW_TARGET}` failed");
    }
    Ok(())
}
