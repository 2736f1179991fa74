//! Builds the repository's flows (examples and hostile test flows) once per
//! test process, with the same cargo invocation `baton flow build` uses.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

pub const ALL: &[&str] = &[
    "hello",
    "etl",
    "loop-forever",
    "memory-hog",
    "read-passwd",
    "open-socket",
    "panics",
    "returns-error",
    "grants",
    "sleeps",
    "prints",
];

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The bytes of the flow package `name`, built for wasm32-wasip2.
pub fn wasm(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut command = Command::new(cargo);
        command.current_dir(workspace_root()).args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--quiet",
        ]);
        for package in ALL {
            command.args(["-p", package]);
        }
        let status = command.status().expect("running cargo to build the test flows");
        assert!(status.success(), "building the test flows failed");
        std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| workspace_root().join("target"), PathBuf::from)
            .join("wasm32-wasip2/release")
    });
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
