//! A private Podman API service for the container tests: Podman, runc and
//! catatonit installed with apt when missing, `podman system service`
//! started on a socket in a fresh directory, stopped when dropped.
//!
//! crun fails on these machines' hybrid cgroups, and Podman picks it when it
//! is installed: a `containers.conf` of our own pins runc (and the file
//! limits that runc otherwise leaves too low).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::Context;

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
        let dir = crate::fresh_dir("podman")?;
        let conf = dir.join("containers.conf");
        std::fs::write(&conf, CONTAINERS_CONF)?;
        let socket = dir.join("podman.sock");
        let host = format!("unix://{}", socket.display());
        let log = std::fs::File::create(dir.join("service.log"))?;
        // Without --time=0 the service exits after 5 s idle.
        let service = Command::new("podman")
            .args(["system", "service", "--time=0", &host])
            .env("CONTAINERS_CONF", &conf)
            // conmon writes files (an `oom` marker) where it runs.
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting `podman system service`")?;
        let mut podman = Podman { dir, service, host };
        let log = podman.dir.join("service.log");
        crate::wait_for_api("`podman system service`", &mut podman.service, &socket, &log)?;
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
