//! A private PostgreSQL server for the test suite: installed with apt when
//! missing, started on a free loopback port in a fresh data directory,
//! stopped when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    as_postgres_user: bool,
    pub url: String,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The directory holding `initdb` and `pg_ctl`.
fn find_bin() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    candidates.sort();
    candidates.pop()
}

impl Postgres {
    pub fn start() -> anyhow::Result<Self> {
        let bin = match find_bin() {
            Some(bin) => bin,
            None => {
                crate::apt_install("the store's tests on PostgreSQL", &["postgresql"])?;
                find_bin().context(
                    "PostgreSQL was installed but initdb is not under /usr/lib/postgresql",
                )?
            }
        };
        let as_postgres_user = is_root();
        let data = crate::fresh_dir("postgres")?;
        let mut server = Postgres { bin, data, as_postgres_user, url: String::new() };
        if as_postgres_user {
            // initdb refuses to run as root.
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.data)
                .status()?;
            if !status.success() {
                bail!("chown of {} to postgres failed", server.data.display());
            }
        }
        let data_arg =
            server.data.to_str().context("temporary directory path is not UTF-8")?.to_owned();
        server.pg(
            "initdb",
            &["-D", &data_arg, "-U", "baton", "-A", "trust", "-E", "UTF8", "--no-sync"],
        )?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={data_arg} -c fsync=off -c max_connections=400"
        );
        let log = format!("{data_arg}/server.log");
        server.pg("pg_ctl", &["-D", &data_arg, "-l", &log, "-o", &options, "-w", "start"])?;
        server.url = format!("postgres://baton@127.0.0.1:{port}/postgres");
        Ok(server)
    }

    fn pg(&self, tool: &str, args: &[&str]) -> anyhow::Result<()> {
        let program = self.bin.join(tool);
        let mut command = if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        let output = command
            .args(args)
            .current_dir(Path::new("/"))
            .output()
            .with_context(|| format!("running {tool}"))?;
        if !output.status.success() {
            bail!(
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(data) = self.data.to_str().filter(|d| !d.is_empty()).map(str::to_owned) {
            let _ = self.pg("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}
