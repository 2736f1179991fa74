//! Native commands: run a program of the infrastructure the flow is on,
//! such as a tool of the image it was escalated to, and get what it wrote.
//! Granted only on process, container and kubernetes pools, and only for
//! the programs the deployment lists in `capabilities.commands` (or
//! `baton flow run --allow-command`); anywhere else [`Command::run`]
//! returns an error that says why. Its output also goes to the run log,
//! line by line as it is written.
//!
//! ```text
//! let output = baton_sdk::command("dbt").args(["run", "--select", "orders"]).run()?;
//! ensure!(output.success(), "dbt failed: {}", output.stderr_text());
//! ```

use std::time::Duration;

use anyhow::{Result, anyhow};

use crate::bindings::baton::flow::commands::{self, CommandError};

/// A command to run `program`: a name the deployment lists, looked up on
/// `PATH`, or a path as listed.
pub fn command(program: &str) -> Command {
    Command {
        spec: commands::Command {
            program: program.to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            working_dir: None,
            timeout_ms: None,
        },
    }
}

/// A command being built; [`Command::run`] runs it to its end.
#[derive(Debug, Clone)]
pub struct Command {
    spec: commands::Command,
}

impl Command {
    /// Adds one argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.spec.args.push(arg.into());
        self
    }

    /// Adds arguments.
    #[must_use]
    pub fn args<I>(mut self, args: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.spec.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable, on top of the infrastructure's.
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec.env.push((name.into(), value.into()));
        self
    }

    /// Sets environment variables.
    #[must_use]
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.spec.env.extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Gives it this standard input (by default it reads an empty one).
    #[must_use]
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.spec.stdin = Some(input.into());
        self
    }

    /// Runs it in `dir` (by default, the run's scratch directory).
    #[must_use]
    pub fn current_dir(mut self, dir: impl Into<String>) -> Self {
        self.spec.working_dir = Some(dir.into());
        self
    }

    /// Kills it, with every process it started, after `timeout`.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.spec.timeout_ms = Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Runs it to its end. A command that ran is `Ok` whatever its exit
    /// status (see [`Output::success`]); one that was refused, could not
    /// start or ran past its timeout is an error.
    pub fn run(&self) -> Result<Output> {
        match commands::run(&self.spec) {
            Ok(output) => Ok(Output::from(output)),
            Err(CommandError::NotGranted(why) | CommandError::NotStarted(why)) => Err(anyhow!(why)),
            Err(CommandError::TimedOut(_)) => Err(anyhow!(
                "`{}` ran past its timeout of {} ms and was killed",
                self.spec.program,
                self.spec.timeout_ms.unwrap_or_default()
            )),
        }
    }
}

/// What a command wrote and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Its exit code; `None` when a signal ended it.
    pub status: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Its standard output, up to 16 MiB.
    pub stdout: Vec<u8>,
    /// Its standard error, up to 16 MiB.
    pub stderr: Vec<u8>,
    /// Whether either was longer and was cut.
    pub truncated: bool,
}

impl Output {
    /// Whether it exited with 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// Its standard output as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Its standard error as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

impl From<commands::CommandOutput> for Output {
    fn from(output: commands::CommandOutput) -> Self {
        Self {
            status: output.exit_code,
            signal: output.signal,
            stdout: output.stdout,
            stderr: output.stderr,
            truncated: output.truncated,
        }
    }
}
