//! A private Docker daemon for the container tests (the same Docker Engine
//! API as Podman's service, from Docker itself): Debian's docker.io
//! installed with apt when missing, `dockerd` started with its data, state
//! and socket in a fresh directory, without the default bridge (whose
//! iptables chains would outlive it), stopped when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

pub struct Dockerd {
    dir: PathBuf,
    daemon: Child,
    /// The Docker Engine API address, `unix:///...`.
    pub host: String,
}

impl Dockerd {
    pub fn start() -> anyhow::Result<Self> {
        crate::apt_install_without_recommends("the container tests on Docker", &["docker.io"])?;
        let dir = crate::fresh_dir("dockerd")?;
        let socket = dir.join("docker.sock");
        let host = format!("unix://{}", socket.display());
        let log = std::fs::File::create(dir.join("dockerd.log"))?;
        let daemon = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .args(["--host", &host, "--bridge=none", "--iptables=false", "--ip6tables=false"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting dockerd")?;
        let mut dockerd = Dockerd { dir, daemon, host };
        let log = dockerd.dir.join("dockerd.log");
        crate::wait_for_api("dockerd", &mut dockerd.daemon, &socket, &log)?;
        Ok(dockerd)
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM: dockerd stops its containers and its containerd, and
        // unmounts what it mounted, before it exits.
        let _ = Command::new("kill").arg(self.daemon.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && matches!(self.daemon.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
