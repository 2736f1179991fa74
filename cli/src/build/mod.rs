//! `baton flow build`: a flow project into a component. A directory with a
//! `Cargo.toml` is a Rust crate (`rust.rs`); one with a `pyproject.toml` a
//! Python project (`python.rs`).

use std::path::{Path, PathBuf};

use anyhow::bail;

mod python;
mod rust;

/// The build tool failed; its messages are on stderr already.
#[derive(Debug, thiserror::Error)]
#[error("building {0} failed (the messages above say why)")]
pub struct BuildFailed(String);

/// Builds the flow project in `dir` and returns the component's path.
pub fn build_component(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.join("Cargo.toml").is_file() {
        rust::build(dir)
    } else if dir.join("pyproject.toml").is_file() {
        python::build(dir)
    } else {
        bail!(
            "{} has no Cargo.toml or pyproject.toml: `baton flow build` takes the directory of a Rust crate or a Python project",
            dir.display()
        )
    }
}
