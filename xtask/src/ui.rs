//! `cargo xtask ui`: builds the web UI (`web/`, Yew) into `web/dist`, which
//! the `baton-web` crate embeds for the core to serve. No trunk: cargo builds
//! the wasm, wasm-bindgen (installed at the version `Cargo.lock` pins) writes
//! its JavaScript glue, and the static files are copied beside them. Only
//! files whose bytes changed are rewritten, so an unchanged UI makes cargo
//! rebuild nothing.

use std::path::Path;

use anyhow::{Context, bail};

use super::{run, write_if_changed};

pub fn build(root: &Path) -> anyhow::Result<()> {
    ensure_wasm_bindgen(root)?;
    run(
        root,
        "cargo",
        &["build", "--profile", "web", "--target", "wasm32-unknown-unknown", "-p", "baton-web"],
    )?;
    let target = baton_tests::target_dir();
    let wasm = target.join("wasm32-unknown-unknown/web/baton_web.wasm");
    let staging = target.join("ui-staging");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)?;
    let (wasm, staging_arg) = (wasm.to_string_lossy(), staging.to_string_lossy());
    run(
        root,
        "wasm-bindgen",
        &["--target", "web", "--no-typescript", "--out-dir", &staging_arg, &wasm],
    )?;
    for entry in std::fs::read_dir(root.join("web/static")).context("reading web/static")? {
        let path = entry?.path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, staging.join(name))?;
        }
    }
    sync(&staging, &root.join("web/dist"))?;
    let size: u64 = std::fs::read_dir(root.join("web/dist"))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    eprintln!("web UI built into web/dist ({} KiB)", size / 1024);
    Ok(())
}

/// Installs wasm-bindgen-cli unless the version `Cargo.lock` pins is on PATH
/// (the CLI and the crate must match exactly).
fn ensure_wasm_bindgen(root: &Path) -> anyhow::Result<()> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let Some(version) = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"wasm-bindgen\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .and_then(|v| v.strip_suffix('"'))
    else {
        bail!("Cargo.lock does not pin wasm-bindgen");
    };
    let have = std::process::Command::new("wasm-bindgen").arg("--version").output();
    if have.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim().ends_with(version)) {
        return Ok(());
    }
    // Not `--locked`: its lockfile pins a crate the registry here lacks.
    run(root, "cargo", &["install", "wasm-bindgen-cli", "--version", version])
}

/// Makes `to` hold exactly the files of `from`, writing only what differs.
fn sync(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    let mut wanted = Vec::new();
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        let Some(name) = path.file_name().map(ToOwned::to_owned) else { continue };
        write_if_changed(&to.join(&name), &std::fs::read(&path)?)?;
        wanted.push(name);
    }
    for entry in std::fs::read_dir(to)? {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| !wanted.iter().any(|w| w == n)) {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}
