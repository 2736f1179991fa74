//! Thin, typed wrappers over the `baton:flow/host` imports.

use crate::bindings::baton::flow::host;
use crate::bindings::baton::flow::types;

pub use host::AccessError;

/// Severity of a log line; the logging macros pick it for you.
pub use types::Level;

/// Writes a line to the run's log. Prefer [`info!`](crate::info) and friends.
pub fn log(level: Level, message: &str) {
    host::log(level, message);
}

/// Reads a variable that the deployment grants to this flow.
pub fn variable(name: &str) -> anyhow::Result<String> {
    host::variable(name).map_err(|e| access_error("variable", name, e))
}

/// Reads a secret that the deployment grants to this flow. Its value is
/// removed from any log line the flow writes.
pub fn secret(name: &str) -> anyhow::Result<String> {
    host::secret(name).map_err(|e| access_error("secret", name, e))
}

fn access_error(what: &str, name: &str, error: AccessError) -> anyhow::Error {
    match error {
        AccessError::NotGranted => {
            let flag = if what == "variable" { "var" } else { what };
            anyhow::anyhow!(
                "{what} `{name}` is not granted to this flow: list it in its deployment's \
                 `capabilities.{what}s` (`baton serve --{flag} {name}`), or run it with \
                 `baton flow run --{flag} {name}=VALUE`"
            )
        }
        AccessError::NotFound => anyhow::anyhow!("{what} `{name}` is granted but has no value"),
    }
}

/// Emits an event on the core's event bus; automations can react to it.
pub fn emit_event(name: &str, resource: &str, payload: &serde_json::Value) {
    host::emit_event(name, resource, &payload.to_string());
}

/// Reports progress: `fraction` between 0 and 1 and a short message.
pub fn progress(fraction: f32, message: &str) {
    host::progress(fraction, message);
}

/// The run's scratch directory, `/tmp`: the one place a flow can write
/// files, for libraries that need temporary ones. It is empty when the run
/// starts, held to its pool's `scratch_mib` (past it a write fails, and the
/// run's log says why), and emptied after the run. (`std::env::temp_dir`
/// panics on WebAssembly: use this.)
pub fn scratch_dir() -> std::path::PathBuf {
    std::path::PathBuf::from("/tmp")
}

/// Logs at `TRACE`, with `format!` syntax.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log($crate::Level::Trace, &::std::format!($($arg)+)) };
}

/// Logs at `DEBUG`, with `format!` syntax.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log($crate::Level::Debug, &::std::format!($($arg)+)) };
}

/// Logs at `INFO`, with `format!` syntax.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log($crate::Level::Info, &::std::format!($($arg)+)) };
}

/// Logs at `WARN`, with `format!` syntax.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log($crate::Level::Warn, &::std::format!($($arg)+)) };
}

/// Logs at `ERROR`, with `format!` syntax.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log($crate::Level::Error, &::std::format!($($arg)+)) };
}
