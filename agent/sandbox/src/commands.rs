//! The `baton:flow/commands` interface: native programs run next to the
//! flow, where its infrastructure gives it a process of its own (a process,
//! container or Kubernetes pool's runner) and its deployment lists them.
//!
//! A command runs in a process group of its own, so that a timeout, the
//! run's cancellation or its deadline (which drop the call) kill it and
//! everything it started; so does the command's own end, for background
//! processes it leaves behind. Its output goes to the run log line by line
//! as it is written, and back to the flow, each stream up to
//! [`MAX_COMMAND_OUTPUT_BYTES`].

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use baton_proto::v1::LogLevel;
use baton_proto::v1::limits::cut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::bindings::{Command, CommandError, CommandOutput};
use crate::host::RunLog;
use crate::stdio::GuestOutput;

/// What a command's stdout or stderr returns to the flow at most; the rest
/// still reaches the run log (within its budget).
pub const MAX_COMMAND_OUTPUT_BYTES: usize = 16 << 20;

/// How long the output of a command that has ended is still read: a process
/// that left its group (`setsid`) may hold the pipes open for ever.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Environment variables of the runner that a command does not inherit
/// (the runner's own, such as the API token a pod fetches its component
/// with).
const PRIVATE_ENV_PREFIX: &str = "BATON_";

/// Which native commands a run may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandGrant {
    /// None, and why: said to the flow and in the run log.
    Refused(String),
    /// The programs its deployment lists, matched exactly.
    Allowed(Vec<String>),
}

impl Default for CommandGrant {
    fn default() -> Self {
        Self::Refused(
            "native commands never run in the agent's shared wasm sandbox; \
             run the deployment on a process, container or kubernetes pool"
                .to_owned(),
        )
    }
}

impl CommandGrant {
    /// Why `program` may not run, if it may not.
    fn refusal(&self, program: &str) -> Option<String> {
        match self {
            Self::Refused(why) => Some(why.clone()),
            Self::Allowed(programs) if programs.iter().any(|p| p == program) => None,
            Self::Allowed(programs) if programs.is_empty() => {
                Some("the deployment's capabilities.commands lists no programs".to_owned())
            }
            Self::Allowed(programs) => Some(format!(
                "it is not in the deployment's capabilities.commands ({})",
                programs.join(", ")
            )),
        }
    }
}

/// Runs `command` if `grant` allows it, streaming its output into `log`;
/// `scratch` is where it runs unless it names a working directory.
pub(crate) async fn run(
    grant: &CommandGrant,
    log: &Arc<RunLog>,
    scratch: Option<&std::path::Path>,
    command: Command,
) -> Result<CommandOutput, CommandError> {
    let shown = log.redact(&cut(&shell_words(&command), 300));
    if let Some(why) = grant.refusal(&command.program) {
        log.log(LogLevel::Warn, &format!("command `{shown}` refused: {why}"));
        return Err(CommandError::NotGranted(format!("`{}` refused: {why}", command.program)));
    }
    let mut child = spawn(&command, scratch).map_err(|error| {
        let message = format!("starting `{}`: {error}", command.program);
        log.log(LogLevel::Error, &message);
        CommandError::NotStarted(message)
    })?;
    log.log(LogLevel::Info, &format!("running `{shown}`"));
    // Killed on every way out of here, the call's being dropped included.
    let group = child.id().map(ProcessGroup);

    let stdin = child.stdin.take();
    let input = command.stdin.unwrap_or_default();
    let feed = async move {
        if let Some(mut stdin) = stdin {
            // A command that does not read its input is not an error.
            let _ = stdin.write_all(&input).await;
        }
    };
    let exited = CancellationToken::new();
    let lines = |level| GuestOutput::new(Arc::clone(log), level);
    let stdout = capture(child.stdout.take(), lines(LogLevel::Info), &exited);
    let stderr = capture(child.stderr.take(), lines(LogLevel::Warn), &exited);
    let timeout = command.timeout_ms.map_or(Duration::MAX, Duration::from_millis);
    let wait = async {
        let status = tokio::time::timeout(timeout, child.wait()).await;
        // Its background processes end with it; its pipes close.
        drop(group);
        exited.cancel();
        status
    };
    let (status, (stdout, stdout_cut), (stderr, stderr_cut), ()) =
        tokio::join!(wait, stdout, stderr, feed);
    let mut output = CommandOutput {
        exit_code: None,
        signal: None,
        stdout,
        stderr,
        truncated: stdout_cut || stderr_cut,
    };
    match status {
        Ok(Ok(status)) => {
            output.exit_code = status.code();
            output.signal = status.signal();
            log.log(LogLevel::Info, &format!("`{}` {}", command.program, ended(&output)));
            Ok(output)
        }
        Ok(Err(error)) => {
            let message = format!("waiting for `{}`: {error}", command.program);
            log.log(LogLevel::Error, &message);
            Err(CommandError::NotStarted(message))
        }
        Err(_) => {
            let ms = command.timeout_ms.unwrap_or_default();
            log.log(
                LogLevel::Warn,
                &format!("`{}` ran past its timeout of {ms} ms and was killed", command.program),
            );
            Err(CommandError::TimedOut(output))
        }
    }
}

fn spawn(
    command: &Command,
    scratch: Option<&std::path::Path>,
) -> std::io::Result<tokio::process::Child> {
    let mut process = tokio::process::Command::new(&command.program);
    process
        .args(&command.args)
        .stdin(if command.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with(PRIVATE_ENV_PREFIX) {
            process.env_remove(name);
        }
    }
    process.envs(command.env.iter().map(|(name, value)| (name, value)));
    match (&command.working_dir, scratch) {
        (Some(dir), _) => {
            process.current_dir(dir);
        }
        (None, Some(dir)) => {
            process.current_dir(dir);
        }
        (None, None) => {}
    }
    // A runner killed outright (SIGKILL) cannot kill the group: the kernel
    // kills the command with it instead.
    #[allow(unsafe_code, reason = "prctl(PR_SET_PDEATHSIG) between fork and exec, see SAFETY")]
    // SAFETY: the closure runs in the forked child before exec and makes
    // one async-signal-safe system call; it allocates nothing.
    unsafe {
        process.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
    process.spawn()
}

/// Reads one of the command's streams to its end, or [`DRAIN_GRACE`] after
/// the command `exited`: every line to the log, the first
/// [`MAX_COMMAND_OUTPUT_BYTES`] to the flow.
async fn capture(
    stream: Option<impl AsyncRead + Unpin>,
    lines: GuestOutput,
    exited: &CancellationToken,
) -> (Vec<u8>, bool) {
    let Some(mut stream) = stream else { return (Vec::new(), false) };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buffer = vec![0_u8; 64 << 10];
    let drained = async {
        exited.cancelled().await;
        tokio::time::sleep(DRAIN_GRACE).await;
    };
    tokio::pin!(drained);
    loop {
        let read = tokio::select! {
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            },
            () = &mut drained => break,
        };
        let chunk = buffer.get(..read).unwrap_or_default();
        lines.accept(chunk);
        let room = MAX_COMMAND_OUTPUT_BYTES.saturating_sub(kept.len());
        truncated |= chunk.len() > room;
        kept.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
    }
    lines.finish();
    (kept, truncated)
}

/// How a command ended, for the log.
fn ended(output: &CommandOutput) -> String {
    match (output.exit_code, output.signal) {
        (Some(code), _) => format!("exited with {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended".to_owned(),
    }
}

/// The command as a person would type it.
fn shell_words(command: &Command) -> String {
    std::iter::once(&command.program)
        .chain(&command.args)
        .map(|word| {
            if !word.is_empty()
                && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
            {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A command's process group, killed when this is dropped.
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let group = i32::try_from(self.0).ok().and_then(rustix::process::Pid::from_raw);
        if let Some(group) = group {
            // Gone already is fine.
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_programs_are_granted() {
        let grant = CommandGrant::Allowed(vec!["sh".into(), "/usr/bin/env".into()]);
        assert_eq!(grant.refusal("sh"), None);
        assert_eq!(grant.refusal("/usr/bin/env"), None);
        let why = grant.refusal("/bin/sh").unwrap_or_default();
        assert!(
            why.contains("not in the deployment's capabilities.commands (sh, /usr/bin/env)"),
            "{why}"
        );
        assert!(CommandGrant::default().refusal("sh").is_some_and(|why| why.contains("wasm")));
    }

    #[test]
    fn commands_are_shown_as_typed() {
        let command = Command {
            program: "sh".into(),
            args: vec!["-c".into(), "echo 'hi' there".into()],
            env: Vec::new(),
            stdin: None,
            working_dir: None,
            timeout_ms: None,
        };
        assert_eq!(shell_words(&command), r"sh -c 'echo '\''hi'\'' there'");
    }
}
