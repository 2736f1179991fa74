//! A private Podman API service for the container tests: Podman, runc and
//! catatonit installed with apt when missing, `podman system service`
//! started on a socket in a fresh directory, stopped when dropped.
//!
//! crun fails on these machines' hybrid cgroups, and Podman picks it when it
//! is installed: a `containers.conf` of our own pins runc (and the file
//! limits that runc otherwise leaves too low).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

const PACKAGES: [&str; 3] = ["podman", "runc", "catatonit"];

const CONTAINERS_CONF: &str = "[containers]\n\
default_ulimits = [\"nofile=20000:20000\", \"nproc=20000:20000\"]\n\
[engine]\n\
runtime = \"runc\"\n";

pub struct Podman {
    dir: PathBuf,
    service: Child,
    /// The Docker Engine API address, `unix:///...`.
    pub host: String,
}

impl Podman {
    pub fn start() -> anyhow::Result<Self> {
        crate::apt_install_without_recommends("the container tests", &PACKAGES)?;
        let dir = std::env::temp_dir().join(format!("baton-test-podman-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)?;
        let conf = dir.join("containers.conf");
        std::fs::write(&conf, CONTAINERS_CONF)?;
        let socket = dir.join("podman.sock");
        let host = format!("unix://{}", socket.display());
        let log = std::fs::File::create(dir.join("service.log"))?;
        // Without --time=0 the service exits after 5 s idle.
        let service = Command::new("podman")
            .args(["system", "service", "--time=0", &host])
            .env("CONTAINERS_CONF", &conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting `podman system service`")?;
        let mut podman = Podman { dir, service, host };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !crate::answers_ping(&socket) {
            if let Some(status) = podman.service.try_wait()? {
                let log =
                    std::fs::read_to_string(podman.dir.join("service.log")).unwrap_or_default();
                bail!("`podman system service` exited ({status}): {log}");
            }
            if Instant::now() > deadline {
                bail!("`podman system service` did not answer on {} within 30 s", socket.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(podman)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.service.kill();
        let _ = self.service.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
