//! Helpers for the end-to-end tests: build the real `baton` binary once and
//! run it as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The cargo that runs these tests.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Where cargo puts build output.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from)
}

/// The release `baton` binary, built on first use.
#[allow(clippy::panic, reason = "test support: a failed build fails the test")]
pub fn baton_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let status = cargo()
            .current_dir(repo_root())
            .args(["build", "--release", "--quiet", "-p", "baton"])
            .status();
        if !status.is_ok_and(|s| s.success()) {
            panic!("building the baton binary failed");
        }
        target_dir().join("release").join("baton")
    })
}

/// A `baton` command with its own `BATON_HOME`.
pub fn baton(home: &Path) -> Command {
    let mut command = Command::new(baton_binary());
    command.env("BATON_HOME", home).current_dir(repo_root());
    command
}

/// What a finished command printed, as text.
pub struct Finished {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Finished {
    fn from(output: Output) -> Self {
        Self {
            status: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs `command` to the end.
#[allow(clippy::panic, reason = "test support: a command that cannot start fails the test")]
pub fn finish(command: &mut Command) -> Finished {
    match command.output() {
        Ok(output) => output.into(),
        Err(e) => panic!("starting {command:?}: {e}"),
    }
}

/// Compares `actual` with the golden file `tests/e2e/snapshots/NAME.txt`;
/// with `BATON_BLESS=1` in the environment, writes it instead.
#[allow(clippy::panic, reason = "test support: a mismatch fails the test")]
pub fn assert_snapshot(name: &str, actual: &str) {
    let path = repo_root().join("tests/e2e/snapshots").join(format!("{name}.txt"));
    if std::env::var_os("BATON_BLESS").is_some() {
        if let Err(e) = std::fs::write(&path, actual) {
            panic!("writing {}: {e}", path.display());
        }
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("reading {} (run with BATON_BLESS=1 to create it): {e}", path.display())
    });
    if expected != actual {
        panic!(
            "{name} differs from {} (run with BATON_BLESS=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        );
    }
}

/// Every flow crate in the repository (examples and test flows).
pub const FLOWS: &[&str] = &[
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

/// The bytes of the flow package `name`, built for wasm32-wasip2 (all
/// flows are built once per test process, as `baton flow build` would).
#[allow(clippy::panic, reason = "test support: a failed build fails the test")]
pub fn flow_wasm(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let mut command = cargo();
        command.current_dir(repo_root()).args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--quiet",
        ]);
        for package in FLOWS {
            command.args(["-p", package]);
        }
        if !command.status().is_ok_and(|s| s.success()) {
            panic!("building the test flows failed");
        }
        target_dir().join("wasm32-wasip2").join("release")
    });
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
