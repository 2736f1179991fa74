//! Helpers for the end-to-end tests: build the real `baton` binary once and
//! run it as a user would.

pub mod bench;
pub mod browser;
pub mod faults;
pub mod http;
pub mod measure;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Checks `done` every 100 ms until it holds; after `within`, fails the
/// test saying `what` did not happen.
#[allow(clippy::panic, reason = "test support: a wait that times out fails the test")]
pub fn wait_until(what: &str, within: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !done() {
        if std::time::Instant::now() >= deadline {
            panic!("{what}: not within {within:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Like [`wait_until`], for a value: checks `found` every 100 ms until it
/// gives one, and returns it.
#[allow(clippy::panic, reason = "test support: a wait that times out fails the test")]
pub fn wait_until_some<T>(
    what: &str,
    within: std::time::Duration,
    mut found: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(value) = found() {
            return value;
        }
        if std::time::Instant::now() >= deadline {
            panic!("{what}: not within {within:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The cargo that runs these tests, without the variables cargo set for
/// this test (see [`clear_package_env`]).
pub fn cargo() -> Command {
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    clear_package_env(&mut cargo);
    cargo
}

/// Removes from `command`'s environment what cargo sets for the package
/// it runs (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, `OUT_DIR`...). Build
/// scripts such as ring's rerun when those change, so a build started
/// from a test (or from the xtask) would otherwise rebuild everything
/// that depends on them, and the next build from elsewhere again.
pub fn clear_package_env(command: &mut Command) {
    const SET_PER_PACKAGE: [&str; 6] = [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
        "CARGO_PRIMARY_",
        "CARGO_TARGET_TMPDIR",
    ];
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text == "OUT_DIR" || SET_PER_PACKAGE.iter().any(|p| name_text.starts_with(p)) {
            command.env_remove(&name);
        }
    }
}

/// Where cargo puts build output.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from)
}

/// The Python tools the tests run, pinned so that a new release's checks
/// cannot fail a build that passed: Schemathesis for the API fuzzing test,
/// kubernetes-validate for the Kubernetes manifests, componentize-py for
/// Python flows, the official Prometheus client's parser for the metrics.
pub const PYTHON_TOOLS: [&str; 4] = [
    "schemathesis==4.32.5",
    "kubernetes-validate==1.37.0",
    "componentize-py==0.25.1",
    "prometheus-client==0.21.1",
];

/// The Python virtual environment `cargo xtask setup` installs
/// [`PYTHON_TOOLS`] into.
pub fn python_tools() -> PathBuf {
    target_dir().join("python-tools")
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
    quiet(&mut command);
    // Python flows build with the componentize-py `cargo xtask setup`
    // installed, not one per test's home.
    let componentize_py = python_tools().join("bin/componentize-py");
    if componentize_py.is_file() {
        command.env("BATON_COMPONENTIZE_PY", componentize_py);
    }
    command
}

/// The component of the Python flow project at `dir` (relative to the
/// repository), built with `baton flow build` once per test process.
#[allow(clippy::panic, reason = "test support: a failed build fails the test")]
pub fn python_flow(dir: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, path)) = built.iter().find(|(d, _)| d == dir) {
        return path.clone();
    }
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("a home for the build: {e}"));
    let output = finish(baton(home.path()).args(["flow", "build", dir]));
    if output.status != Some(0) {
        panic!("baton flow build {dir} failed:\n{}", output.stderr);
    }
    let path = PathBuf::from(output.stdout.lines().last().unwrap_or_default());
    built.push((dir.to_owned(), path.clone()));
    path
}

/// Cores, agents and `serve` say a line per run; in tests (thousands of
/// runs, their stderr the test's own) only warnings, unless `BATON_LOG`
/// asks for more.
fn quiet(command: &mut Command) {
    if std::env::var_os("BATON_LOG").is_none() {
        command.env("BATON_LOG", "warn");
    }
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

/// Processes whose command line contains `marker`, as `PID: COMMAND LINE`.
pub fn processes_with(marker: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(marker).then(|| format!("{}: {cmdline}", entry.file_name().display()))
        })
        .collect()
}

/// A `sleep` argument no other process has: `1000.<this process id><n>`,
/// to find the command that sleeps it.
pub fn unique_sleep(n: u32) -> String {
    format!("1000.{}{n}", std::process::id())
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
    "chain",
    "ticks",
    "hostile-sizes",
    "hostile-describe",
    "hostile-describe-loop",
    "hostile-describe-hog",
    "hostile-name",
    "hostile-secrets",
    "hostile-recursion",
    "env-echo",
    "fetch",
    "command",
    "contract-0-1-0",
    "scratch",
    "report",
    "subflow",
    "cached",
    "stages",
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

/// A `baton server start` process on a free loopback port, killed on drop.
pub struct CoreProcess {
    child: std::process::Child,
    command: Vec<std::ffi::OsString>,
    pub url: String,
    /// Where agents connect (`127.0.0.1:PORT`).
    pub quic: String,
    _data: TempDir,
}

pub use tempfile::TempDir;

/// The secret key of the test cores on PostgreSQL: cores sharing a database
/// must be given one key (it seals their secrets and their shared CA).
const SHARED_SECRET_KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

impl CoreProcess {
    /// The address of the core's HTTP API.
    #[allow(clippy::panic, reason = "test support: the core's own URL")]
    pub fn api_address(&self) -> std::net::SocketAddr {
        self.url
            .strip_prefix("http://")
            .and_then(|address| address.parse().ok())
            .unwrap_or_else(|| panic!("the core's URL {} is http://ADDRESS", self.url))
    }

    /// Starts a core on SQLite in a fresh directory, or on `database_url`.
    #[allow(clippy::panic, reason = "test support: a core that does not start fails the test")]
    pub fn start(database_url: Option<&str>) -> Self {
        Self::start_with(database_url, &[])
    }

    /// Starts a core with more `baton server start` arguments.
    #[allow(clippy::panic, reason = "test support: a core that does not start fails the test")]
    pub fn start_with(database_url: Option<&str>, args: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("finding a free port: {e}"));
        let quic_port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("finding a free UDP port: {e}"));
        let quic = format!("127.0.0.1:{quic_port}");
        let mut command: Vec<std::ffi::OsString> = ["server", "start", "--http"]
            .into_iter()
            .map(Into::into)
            .chain([format!("127.0.0.1:{port}").into(), "--quic".into(), quic.clone().into()])
            .chain(args.iter().map(Into::into))
            .collect();
        // A `--data-dir` among `args` (on a file system of the test's own,
        // say) stands in for the temporary one.
        if !args.contains(&"--data-dir") {
            command.extend(["--data-dir".into(), data.path().as_os_str().to_owned()]);
        }
        if let Some(url) = database_url {
            command.extend(["--database-url".into(), url.into()]);
            // Cores sharing a database share its secret key.
            if !args.contains(&"--secret-key") {
                command.extend(["--secret-key".into(), SHARED_SECRET_KEY.into()]);
            }
        }
        let child = Self::spawn(&command);
        let core =
            Self { child, command, url: format!("http://127.0.0.1:{port}"), quic, _data: data };
        core.wait_healthy();
        core
    }

    #[allow(clippy::panic, reason = "test support: a core that does not start fails the test")]
    fn spawn(command: &[std::ffi::OsString]) -> std::process::Child {
        let mut process = Command::new(baton_binary());
        quiet(&mut process);
        process
            .args(command)
            .env_remove("BATON_API_TOKEN")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the core: {e}"))
    }

    /// Kills the core (SIGKILL: no chance to tidy up) and starts it again on
    /// the same data, database and addresses.
    pub fn restart(&mut self) {
        self.restart_after(std::time::Duration::ZERO);
    }

    /// The same, with the core down for `down` in between.
    #[allow(clippy::panic, reason = "test support: a core that does not start fails the test")]
    pub fn restart_after(&mut self, down: std::time::Duration) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down);
        self.child = Self::spawn(&self.command);
        self.wait_healthy();
    }

    #[allow(clippy::panic, reason = "test support: a core that does not start fails the test")]
    fn wait_healthy(&self) {
        for _ in 0..200 {
            if self.healthy() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the core did not answer /api/health within 10 s");
    }

    fn healthy(&self) -> bool {
        use std::io::{Read, Write};
        let Some(address) = self.url.strip_prefix("http://") else { return false };
        let Ok(mut stream) = std::net::TcpStream::connect(address) else { return false };
        let request =
            format!("GET /api/health HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        let mut response = String::new();
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_to_string(&mut response).is_ok()
            && response.starts_with("HTTP/1.1 200")
    }

    /// The core's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new agent token for pool `default` (`baton agent token create`).
    pub fn agent_token(&self, home: &Path) -> String {
        self.agent_token_for(home, "default")
    }

    /// A token for agents of `pool`.
    #[allow(clippy::panic, reason = "test support: a failed command fails the test")]
    pub fn agent_token_for(&self, home: &Path, pool: &str) -> String {
        let made = finish(self.baton(home).args(["agent", "token", "create", "--pool", pool]));
        if made.status != Some(0) {
            panic!("baton agent token create failed: {}", made.stderr);
        }
        made.stdout.lines().last().unwrap_or_default().to_owned()
    }

    /// Deploys the flow package `flow` as `FLOW/NAME` with `baton deploy`;
    /// `extra` is more YAML for the deployment (each line indented four
    /// spaces, e.g. `    parameters: {a: 1}\n`).
    pub fn deploy(&self, home: &Path, flow: &str, name: &str, extra: &str) {
        self.deploy_component(home, flow, name, &flow_wasm(flow), extra);
    }

    /// Deploys `component` (the flow `flow`) as `flow/name`.
    #[allow(clippy::panic, reason = "test support: a failed deploy fails the test")]
    pub fn deploy_component(
        &self,
        home: &Path,
        flow: &str,
        name: &str,
        component: &[u8],
        extra: &str,
    ) {
        let project = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let file = project.path().join("baton.yaml");
        let written = std::fs::write(project.path().join("flow.wasm"), component).and_then(|()| {
            std::fs::write(
                &file,
                format!(
                    "name: {flow}\nbuild:\n  component: flow.wasm\ndeployments:\n  - name: {name}\n{extra}"
                ),
            )
        });
        if let Err(e) = written {
            panic!("writing the project of {flow}: {e}");
        }
        let deployed = finish(self.baton(home).args(["deploy", "--file"]).arg(&file));
        if deployed.status != Some(0) {
            panic!("deploying {flow}/{name} failed: {}", deployed.stderr);
        }
    }

    /// Runs `baton ARGS` against this core and returns its stdout; the test
    /// fails unless it succeeds.
    #[allow(clippy::panic, reason = "test support: a failed command fails the test")]
    pub fn ok(&self, home: &Path, args: &[&str]) -> String {
        let done = finish(self.baton(home).args(args));
        if done.status != Some(0) {
            panic!("baton {args:?} failed: {}", done.stderr);
        }
        done.stdout
    }

    /// Runs of `FLOW/DEPLOYMENT`, newest first (`baton run ls --json`).
    #[allow(clippy::panic, reason = "test support: unreadable output fails the test")]
    pub fn runs(&self, home: &Path, deployment: &str) -> Vec<serde_json::Value> {
        let args = ["run", "ls", "--all", "--deployment", deployment, "--limit", "500", "--json"];
        self.json_list(home, &args)
    }

    /// Events whose name matches `pattern`, newest first (`baton event ls`).
    pub fn events(&self, home: &Path, pattern: &str) -> Vec<serde_json::Value> {
        self.json_list(home, &["event", "ls", "--json", "--name", pattern])
    }

    #[allow(clippy::panic, reason = "test support: unreadable output fails the test")]
    fn json_list(&self, home: &Path, args: &[&str]) -> Vec<serde_json::Value> {
        let listed = self.ok(home, args);
        match serde_json::from_str(&listed) {
            Ok(serde_json::Value::Array(items)) => items,
            _ => panic!("baton {args:?} did not print a JSON list: {listed}"),
        }
    }

    /// A `baton` command that talks to this core.
    pub fn baton(&self, home: &Path) -> Command {
        let mut command = baton(home);
        command.env("BATON_API_URL", &self.url).env_remove("BATON_API_TOKEN");
        command
    }
}

/// A core with one agent of pool `default`, and a home for the CLI.
pub struct System {
    pub core: CoreProcess,
    pub home: TempDir,
    _data: TempDir,
    agent: AgentProcess,
}

impl System {
    /// Starts both, the agent with `slots` slots.
    #[allow(clippy::panic, reason = "test support: a system that cannot start fails the test")]
    pub fn start(slots: u32) -> Self {
        let core = CoreProcess::start(None);
        let dir = || tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let (home, data) = (dir(), dir());
        let token = core.agent_token(home.path());
        let agent = AgentProcess::start_with_slots(&core, home.path(), &token, data.path(), slots);
        Self { core, home, _data: data, agent }
    }

    /// Runs `baton ARGS` that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.core.ok(self.home.path(), args)
    }

    /// The agent's process id.
    pub fn agent_pid(&self) -> u32 {
        self.agent.pid()
    }

    pub fn runs(&self, deployment: &str) -> Vec<serde_json::Value> {
        self.core.runs(self.home.path(), deployment)
    }

    pub fn events(&self, pattern: &str) -> Vec<serde_json::Value> {
        self.core.events(self.home.path(), pattern)
    }
}

/// An agent process (`baton agent start`, pool `default`), killed when
/// dropped.
pub struct AgentProcess(std::process::Child);

impl AgentProcess {
    /// Starts an agent of `core` with `token`, keeping its data in `data`.
    #[allow(clippy::panic, reason = "test support: an agent that cannot start fails the test")]
    pub fn start(core: &CoreProcess, home: &Path, token: &str, data: &Path) -> Self {
        Self::start_with_slots(core, home, token, data, 4)
    }

    /// Starts such an agent with `slots` slots.
    #[allow(clippy::panic, reason = "test support: an agent that cannot start fails the test")]
    pub fn start_with_slots(
        core: &CoreProcess,
        home: &Path,
        token: &str,
        data: &Path,
        slots: u32,
    ) -> Self {
        Self::start_in_pool(core, home, token, data, "default", slots)
    }

    /// Starts an agent of `pool` with `slots` slots.
    #[allow(clippy::panic, reason = "test support: an agent that cannot start fails the test")]
    pub fn start_in_pool(
        core: &CoreProcess,
        home: &Path,
        token: &str,
        data: &Path,
        pool: &str,
        slots: u32,
    ) -> Self {
        Self::start_in_pool_with(core, home, token, data, pool, &["--slots", &slots.to_string()])
    }

    /// Starts an agent of `pool` with more arguments (`--docker-host URL`).
    #[allow(clippy::panic, reason = "test support: an agent that cannot start fails the test")]
    pub fn start_in_pool_with(
        core: &CoreProcess,
        home: &Path,
        token: &str,
        data: &Path,
        pool: &str,
        args: &[&str],
    ) -> Self {
        let child = Self::command_in_pool(core, home, token, data, pool)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting an agent: {e}"));
        Self(child)
    }

    /// Starts an agent of pool `default` with `slots` slots that dials
    /// `address` (a relay, say) instead of the core's own.
    #[allow(clippy::panic, reason = "test support: an agent that cannot start fails the test")]
    pub fn start_via(
        core: &CoreProcess,
        home: &Path,
        token: &str,
        data: &Path,
        address: &str,
        slots: u32,
    ) -> Self {
        let child = core
            .baton(home)
            .args(["agent", "start", "--core", address, "--pool", "default", "--token", token])
            .args(["--slots", &slots.to_string()])
            .arg("--data-dir")
            .arg(data)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting an agent: {e}"));
        Self(child)
    }

    /// The command that starts such an agent.
    pub fn command(core: &CoreProcess, home: &Path, token: &str, data: &Path) -> Command {
        Self::command_in_pool(core, home, token, data, "default")
    }

    /// The command that starts an agent of `pool`.
    pub fn command_in_pool(
        core: &CoreProcess,
        home: &Path,
        token: &str,
        data: &Path,
        pool: &str,
    ) -> Command {
        let mut command = core.baton(home);
        command
            .args(["agent", "start", "--core", &core.quic, "--pool", pool, "--token", token])
            .arg("--data-dir")
            .arg(data);
        command
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL: no goodbye to the core.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Drop for CoreProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh database on the test PostgreSQL server (`BATON_TEST_POSTGRES_URL`,
/// which `cargo xtask test` sets), as a URL.
#[allow(clippy::panic, reason = "test support: no PostgreSQL fails the test")]
pub fn fresh_postgres_database() -> String {
    let server = test_service("BATON_TEST_POSTGRES_URL");
    let name = format!(
        "baton_e2e_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let status = Command::new("psql")
        .arg(&server)
        .args(["-q", "-c", &format!("CREATE DATABASE {name}")])
        .status();
    if !status.is_ok_and(|s| s.success()) {
        panic!("creating database {name} with psql failed");
    }
    let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The address of a service `cargo xtask test` (or `cargo xtask
/// with-services`) starts for the tests, from its variable `name`.
#[allow(clippy::panic, reason = "test support: a missing service fails the test")]
fn test_service(name: &str) -> String {
    match std::env::var(name) {
        Ok(address) => address,
        Err(_) => panic!(
            "{name} is not set: run the tests with `cargo xtask test` (or `cargo xtask with-services`)"
        ),
    }
}

/// The test container engine's Docker API address (`BATON_TEST_DOCKER_HOST`,
/// a Podman service that `cargo xtask test` starts).
pub fn docker_host() -> String {
    test_service("BATON_TEST_DOCKER_HOST")
}

/// The second test container engine, Docker's own daemon
/// (`BATON_TEST_DOCKERD_HOST`, which `cargo xtask test` starts).
pub fn dockerd_host() -> String {
    test_service("BATON_TEST_DOCKERD_HOST")
}

/// Sends `method path` to the Docker API of the engine at `host`
/// (`unix:///PATH`); its answer as JSON (`null` when it has no body).
#[allow(clippy::panic, reason = "test support: an engine that cannot be asked fails the test")]
pub fn docker_api(host: &str, method: &str, path: &str) -> serde_json::Value {
    use std::io::{Read as _, Write as _};
    let socket = host.strip_prefix("unix://").unwrap_or(host);
    let mut stream = std::os::unix::net::UnixStream::connect(socket)
        .unwrap_or_else(|e| panic!("connecting to the engine at {host}: {e}"));
    let request = format!("{method} {path} HTTP/1.0\r\nHost: engine\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap_or_else(|e| panic!("asking {host}: {e}"));
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap_or_else(|e| panic!("reading {host}'s answer: {e}"));
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer.as_str(), ""));
    if !head.split_whitespace().nth(1).is_some_and(|status| status.starts_with('2')) {
        panic!("{host} answered {method} {path} with {answer}");
    }
    if body.trim().is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{host} answered {method} {path} with {answer}: {e}"))
}

/// The containers (running or not) that carry `label` (`KEY=VALUE`).
pub fn containers_labelled(host: &str, label: &str) -> Vec<serde_json::Value> {
    let filters = serde_json::json!({ "label": [label] }).to_string();
    let mut encoded = String::new();
    for byte in filters.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    match docker_api(host, "GET", &format!("/containers/json?all=1&filters={encoded}")) {
        serde_json::Value::Array(containers) => containers,
        _ => Vec::new(),
    }
}
