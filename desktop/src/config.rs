//! What the app connects to, remembered between starts in `desktop.json`.

use std::path::Path;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// A remote core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteCore {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesktopConfig {
    /// `None`: the embedded core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<RemoteCore>,
    /// Deployments (`FLOW/NAME`, `*` anywhere) whose failed runs raise a
    /// notification.
    #[serde(default = "everything")]
    pub watch: Vec<String>,
}

fn everything() -> Vec<String> {
    vec!["*".to_owned()]
}

impl Default for DesktopConfig {
    fn default() -> Self {
        Self { core: None, watch: everything() }
    }
}

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    /// What `desktop.json` says (the embedded core if nothing).
    Remembered,
    Embedded,
    Remote(RemoteCore),
}

impl Choice {
    pub fn from_args(args: impl Iterator<Item = String>) -> anyhow::Result<Self> {
        let mut choice = Choice::Remembered;
        let mut token = None;
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--embedded" => choice = Choice::Embedded,
                "--core" => {
                    let url = args.next().context("--core needs a URL (http://host:4200)")?;
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        bail!("--core {url}: not an http:// or https:// URL");
                    }
                    choice = Choice::Remote(RemoteCore {
                        url: url.trim_end_matches('/').to_owned(),
                        token: None,
                    });
                }
                "--token" => {
                    token = Some(args.next().context("--token needs the core's API token")?)
                }
                other => bail!(
                    "unknown argument {other}; usage: baton-desktop [--core URL [--token TOKEN] | --embedded]"
                ),
            }
        }
        match (&mut choice, token) {
            (Choice::Remote(remote), token) => remote.token = token,
            (_, Some(_)) => bail!("--token goes with --core URL"),
            _ => {}
        }
        Ok(choice)
    }
}

const FILE: &str = "desktop.json";

impl DesktopConfig {
    pub fn load(data: &Path) -> anyhow::Result<Self> {
        let path = data.join(FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} does not read; fix or delete it", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn choose(self, choice: Choice) -> Self {
        match choice {
            Choice::Remembered => self,
            Choice::Embedded => Self { core: None, ..self },
            Choice::Remote(remote) => Self { core: Some(remote), ..self },
        }
    }

    pub fn save(&self, data: &Path) -> anyhow::Result<()> {
        let path = data.join(FILE);
        std::fs::write(&path, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> anyhow::Result<Choice> {
        Choice::from_args(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn the_command_line_chooses_and_the_choice_is_remembered() {
        assert_eq!(args(&[]).unwrap(), Choice::Remembered);
        let remote = args(&["--core", "https://core.example:4200/", "--token", "t"]).unwrap();
        assert_eq!(
            remote,
            Choice::Remote(RemoteCore {
                url: "https://core.example:4200".into(),
                token: Some("t".into())
            })
        );
        assert!(args(&["--core", "core.example"]).is_err());
        assert!(args(&["--token", "t"]).is_err());
        assert!(args(&["--verbose"]).is_err());

        let dir = tempfile::tempdir().unwrap();
        assert_eq!(DesktopConfig::load(dir.path()).unwrap(), DesktopConfig::default());
        let chosen = DesktopConfig::load(dir.path()).unwrap().choose(remote);
        chosen.save(dir.path()).unwrap();
        let again = DesktopConfig::load(dir.path()).unwrap().choose(Choice::Remembered);
        assert_eq!(again.core.unwrap().url, "https://core.example:4200");
        let back = again_embedded(dir.path());
        assert!(back.core.is_none());
        assert_eq!(back.watch, ["*"]);

        std::fs::write(dir.path().join(FILE), "{not json").unwrap();
        let error = DesktopConfig::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("desktop.json does not read"), "{error}");
    }

    fn again_embedded(dir: &Path) -> DesktopConfig {
        DesktopConfig::load(dir).unwrap().choose(Choice::Embedded)
    }
}
