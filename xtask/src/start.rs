//! `cargo xtask start`: the whole system on this machine, the way
//! `prefect server start` plus a worker plus deployed examples would be: a
//! core (SQLite in the data directory), one agent in pool `default`, the
//! example flows deployed and run once each, then both kept running until
//! Ctrl-C.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How often children and the Ctrl-C flag are looked at.
const POLL: Duration = Duration::from_millis(200);
/// How long the core has to answer its health check, and the agent to
/// connect.
const STARTUP: Duration = Duration::from_secs(30);
/// How long a child has to stop after SIGINT before it is killed.
const GRACE: Duration = Duration::from_secs(10);

/// The pool the agent serves and the example deployments name.
const POOL: &str = "default";

/// The example projects, deployed in this order (paths from the repository).
const PROJECTS: [&str; 4] = [
    "examples/hello.baton.yaml",
    "examples/etl.baton.yaml",
    "examples/hello-py.baton.yaml",
    "examples/etl-py.baton.yaml",
];

pub fn start(root: &Path) -> anyhow::Result<()> {
    let home = std::env::var_os("BATON_HOME")
        .map_or_else(|| root.join("target/baton-home"), PathBuf::from);
    let http = address("BATON_HTTP", "127.0.0.1:4200")?;
    let quic = address("BATON_QUIC", "127.0.0.1:4201")?;
    let api_url = format!("http://{http}");
    if healthy(http) {
        bail!(
            "a Baton core already answers on {api_url} (a `cargo xtask start` still running?); \
             stop it first, or choose other ports: BATON_HTTP=127.0.0.1:4300 \
             BATON_QUIC=127.0.0.1:4301 cargo xtask start"
        );
    }

    crate::setup()?;
    // The UI (the core serves it) and what `cargo run -p baton-desktop` needs.
    crate::desktop::prepare(root)?;
    crate::run(root, "cargo", &["build", "--release", "-p", "baton"])?;
    let baton = root.join("target/release/baton");
    // Python flows build with the componentize-py `setup` installed.
    let componentize_py = crate::python_tools_bin("componentize-py")?;
    let python_env = [("BATON_COMPONENTIZE_PY", componentize_py.as_str())];
    for flow in [
        "examples/flows/hello",
        "examples/flows/etl",
        "examples/flows/hello-py",
        "examples/flows/etl-py",
    ] {
        let built = output_with_env(root, &baton, &["flow", "build", flow], &python_env)?;
        let component = built.lines().last().context("`baton flow build` printed no path")?;
        eprintln!("built {component}");
    }

    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    let mut system = System { children: Vec::new(), interrupted };

    let core_dir = home.join("core");
    let agent_dir = home.join("agent");
    for dir in [&core_dir, &agent_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut core = Command::new(&baton);
    core.args(["server", "start", "--data-dir"]).arg(&core_dir).args([
        "--http",
        &http.to_string(),
        "--quic",
        &quic.to_string(),
    ]);
    system.spawn("core", core, None)?;
    system.wait_healthy(http).with_context(|| {
        format!(
            "starting the core (API on {http}, QUIC on {quic}); if the port is taken by another \
             process (`Address already in use` above; `ss -ltnup | grep -E ':{}|:{}'`), stop it \
             or choose others with BATON_HTTP and BATON_QUIC",
            http.port(),
            quic.port()
        )
    })?;

    let env = [("BATON_API_URL", api_url.as_str()), python_env[0]];
    let created =
        output_with_env(root, &baton, &["agent", "token", "create", "--pool", POOL], &env)?;
    let token = created.lines().last().context("`baton agent token create` printed no token")?;
    let mut agent = Command::new(&baton);
    // The token through the environment, so that `ps` does not show it.
    agent
        .args(["agent", "start", "--core", &quic.to_string(), "--pool", POOL, "--data-dir"])
        .arg(&agent_dir)
        .env("BATON_AGENT_TOKEN", token);
    let (lines, agent_lines) = mpsc::channel();
    system.spawn("agent", agent, Some(lines))?;
    system.wait_for_agent(&agent_lines).context("starting the agent")?;

    for project in PROJECTS {
        system.run(root, &baton, &["deploy", "--file", project], &env)?;
    }
    for run in [
        &["hello/default", "--param", "b=41"][..],
        &["etl/nightly"][..],
        &["hello-py/default", "--param", "b=41"][..],
        &["etl-py/nightly"][..],
    ] {
        let mut args = vec!["deployment", "run"];
        args.extend_from_slice(run);
        args.push("--watch");
        system.run(root, &baton, &args, &env)?;
    }

    eprintln!(
        "\nBaton is running (Ctrl-C stops it):\n\
         \x20 API          {api_url}/api (OpenAPI: {api_url}/api/openapi.json)\n\
         \x20 web UI       {api_url}/ (the same UI in the desktop app: cargo run -p baton-desktop)\n\
         \x20 agents       QUIC on {quic}; one agent here, pool `{POOL}`\n\
         \x20 data         {home} (SQLite in core/, the agent in agent/)\n\
         \x20 deployments  hello/default, etl/nightly (cron `0 2 * * *`), and their Python\n\
         \x20              twins hello-py/default, etl-py/nightly (cron `0 3 * * *`)\n\
         \nTry, in another shell:\n\
         \x20 export BATON_API_URL={api_url}\n\
         \x20 {baton} deployment ls\n\
         \x20 {baton} deployment run hello/default --param b=2 --watch\n\
         \x20 {baton} run ls\n",
        home = home.display(),
        baton = baton.display(),
    );
    system.wait_for_ctrl_c()
}

/// `name`'s value from the environment, else `default`, as an address.
fn address(name: &str, default: &str) -> anyhow::Result<SocketAddr> {
    let text = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    text.parse().with_context(|| format!("{name}={text} is not an address like {default}"))
}

/// Whether a core answers `GET /api/health` with 200 at `address` (a plain
/// HTTP/1.1 request, as the end-to-end tests make).
fn healthy(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) else {
        return false;
    };
    let request =
        format!("GET /api/health HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    let mut response = String::new();
    stream.set_read_timeout(Some(Duration::from_secs(2))).is_ok()
        && stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut response).is_ok()
        && response.starts_with("HTTP/1.1 200")
}

/// Runs `baton` with `env` and returns its stdout (stderr is shown).
fn output_with_env(
    dir: &Path,
    baton: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<String> {
    eprintln!("$ {} {}", baton.display(), args.join(" "));
    let output = Command::new(baton)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting {}", baton.display()))?;
    if !output.status.success() {
        bail!("`baton {}` failed ({})", args.join(" "), output.status);
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A long-running child: its name, the process, and the threads copying
/// its output to our stderr.
struct Running {
    name: &'static str,
    child: Child,
    pumps: Vec<JoinHandle<()>>,
}

/// The core and the agent. Dropping it (on an error midway, say) stops
/// them, the agent first.
struct System {
    children: Vec<Running>,
    interrupted: Arc<AtomicBool>,
}

impl System {
    /// Starts `command` as `name`, in a process group of its own (so that
    /// Ctrl-C reaches only us, and we stop the children in order), with each
    /// line of its output shown after `name |`. Lines of its stdout also go
    /// to `lines`.
    fn spawn(
        &mut self,
        name: &'static str,
        mut command: Command,
        lines: Option<Sender<String>>,
    ) -> anyhow::Result<()> {
        // As a shell would run it, secrets hidden.
        let env = command.get_envs().filter_map(|(key, value)| {
            let key = key.to_string_lossy();
            let value =
                if key.ends_with("TOKEN") { "...".into() } else { value?.to_string_lossy() };
            Some(format!("{key}={value}"))
        });
        let program = std::iter::once(command.get_program().to_string_lossy().into_owned());
        let args = command.get_args().map(|a| a.to_string_lossy().into_owned());
        eprintln!("$ {} &", env.chain(program).chain(args).collect::<Vec<_>>().join(" "));
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().with_context(|| format!("starting the {name}"))?;
        let mut pumps = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            pumps.push(pump(name, stdout, lines));
        }
        if let Some(stderr) = child.stderr.take() {
            pumps.push(pump(name, stderr, None));
        }
        self.children.push(Running { name, child, pumps });
        Ok(())
    }

    /// Fails if Ctrl-C was pressed or a child has exited.
    fn check(&mut self) -> anyhow::Result<()> {
        if self.interrupted.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        for running in &mut self.children {
            if let Some(status) = running.child.try_wait()? {
                bail!(
                    "the {} exited ({status}); its output is above, after `{} |`",
                    running.name,
                    running.name
                );
            }
        }
        Ok(())
    }

    fn wait_healthy(&mut self, http: SocketAddr) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP;
        loop {
            self.check()?;
            if healthy(http) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the core did not answer GET http://{http}/api/health within {} s; its \
                     output is above, after `core |`",
                    STARTUP.as_secs()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits for the agent's "agent ID connected to ..." line.
    fn wait_for_agent(&mut self, lines: &Receiver<String>) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP;
        loop {
            self.check()?;
            match lines.recv_timeout(POLL) {
                Ok(line) if line.starts_with("agent ") && line.contains(" connected to ") => {
                    return Ok(());
                }
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Its stdout closed: it is exiting; `check` will say so.
                    std::thread::sleep(POLL);
                }
            }
            if Instant::now() > deadline {
                bail!("the agent did not connect within {} s", STARTUP.as_secs());
            }
        }
    }

    /// Runs `baton` to the end while watching the core and the agent.
    fn run(
        &mut self,
        dir: &Path,
        baton: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        eprintln!("\n$ {} {}", baton.display(), args.join(" "));
        let mut child = Command::new(baton)
            .args(args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", baton.display()))?;
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    bail!("`baton {}` failed ({status})", args.join(" "));
                }
                return Ok(());
            }
            if let Err(error) = self.check() {
                let _ = child.kill();
                let _ = child.wait();
                return Err(error);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Keeps running until Ctrl-C (then stops the children) or until a
    /// child exits (an error).
    fn wait_for_ctrl_c(mut self) -> anyhow::Result<()> {
        loop {
            if self.interrupted.load(Ordering::SeqCst) {
                eprintln!();
                self.stop();
                eprintln!("stopped; the data stays in place for the next start");
                return Ok(());
            }
            self.check()?;
            std::thread::sleep(POLL);
        }
    }

    /// Stops the children, last started first: SIGINT, then a kill if one
    /// is still running after the grace period.
    fn stop(&mut self) {
        while let Some(mut running) = self.children.pop() {
            let name = running.name;
            if let Ok(Some(_)) = running.child.try_wait() {
                join(running.pumps);
                continue;
            }
            eprintln!("stopping the {name}");
            let interrupted = Command::new("kill")
                .args(["-INT", &running.child.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            let deadline = Instant::now() + GRACE;
            let status = loop {
                match running.child.try_wait() {
                    Ok(Some(status)) => break Some(status),
                    Ok(None) if interrupted && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    _ => {
                        eprintln!("killing the {name}");
                        let _ = running.child.kill();
                        break running.child.wait().ok();
                    }
                }
            };
            join(running.pumps);
            match status {
                Some(status) if status.success() => eprintln!("the {name} stopped"),
                Some(status) => eprintln!("the {name} stopped ({status})"),
                None => eprintln!("the {name} could not be waited for"),
            }
        }
    }
}

impl Drop for System {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Copies `stream` to our stderr line by line after `name |`, and each line
/// to `lines` too if given.
fn pump(
    name: &'static str,
    stream: impl Read + Send + 'static,
    lines: Option<Sender<String>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            eprintln!("{name:>5} | {line}");
            if let Some(lines) = &lines {
                let _ = lines.send(line);
            }
        }
    })
}

fn join(pumps: Vec<JoinHandle<()>>) {
    for pump in pumps {
        let _ = pump.join();
    }
}
