//! Where the agent reaches its cores: one or more `HOST:PORT` addresses,
//! names resolved anew at every dial (a DNS name may stand for several
//! cores). A connection that fails or goes silent sends the agent to the
//! next address, so it fails over to another core of the same database
//! within seconds, its runs going on meanwhile.

use std::fmt;
use std::net::SocketAddr;

/// One core's address, and how people know it: as given, with what a name
/// resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Core {
    pub(crate) address: SocketAddr,
    pub(crate) name: String,
}

/// The cores an agent may connect to, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreAddresses(Vec<String>);

impl CoreAddresses {
    /// `HOST:PORT`, or several separated by commas; a host is a name, an
    /// IPv4 address or a bracketed IPv6 one (`[::1]:4201`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let entries: Vec<String> =
            text.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect();
        if entries.is_empty() {
            return Err("no core address: give HOST:PORT, or several separated by commas".into());
        }
        for entry in &entries {
            let Some((host, port)) = entry.rsplit_once(':') else {
                return Err(format!("`{entry}` is not HOST:PORT"));
            };
            if host.is_empty() || host == "[]" {
                return Err(format!("`{entry}` names no host"));
            }
            if port.parse::<u16>().is_err() {
                return Err(format!("`{entry}`: `{port}` is not a port"));
            }
        }
        Ok(Self(entries))
    }

    /// Every address the entries stand for now, in their order, each
    /// once; an entry that does not resolve is logged and left out.
    pub(crate) async fn resolve(&self) -> Vec<Core> {
        let mut cores: Vec<Core> = Vec::new();
        for entry in &self.0 {
            match tokio::net::lookup_host(entry.as_str()).await {
                Ok(found) => {
                    for address in found {
                        if cores.iter().all(|core| core.address != address) {
                            let name = if address.to_string() == *entry {
                                entry.clone()
                            } else {
                                format!("{entry} ({address})")
                            };
                            cores.push(Core { address, name });
                        }
                    }
                }
                Err(error) => tracing::warn!(core = %entry, "could not resolve: {error}"),
            }
        }
        cores
    }
}

impl From<SocketAddr> for CoreAddresses {
    fn from(address: SocketAddr) -> Self {
        Self(vec![address.to_string()])
    }
}

impl fmt::Display for CoreAddresses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_and_wrong_ones_named() {
        let cores = CoreAddresses::parse("a.example:4201, 10.0.0.2:4201,[::1]:4201").unwrap();
        assert_eq!(cores.to_string(), "a.example:4201,10.0.0.2:4201,[::1]:4201");
        for (text, error) in [
            ("", "no core address"),
            ("a.example", "is not HOST:PORT"),
            (":4201", "names no host"),
            ("a:http", "is not a port"),
        ] {
            let found = CoreAddresses::parse(text).unwrap_err();
            assert!(found.contains(error), "{text}: {found}");
        }
    }

    #[tokio::test]
    async fn a_name_stands_for_every_address_it_resolves_to_once() {
        let cores = CoreAddresses::parse("127.0.0.1:4201,localhost:4201,127.0.0.1:4201").unwrap();
        let resolved = cores.resolve().await;
        let first: SocketAddr = "127.0.0.1:4201".parse().unwrap();
        assert_eq!(resolved.first(), Some(&Core { address: first, name: "127.0.0.1:4201".into() }));
        assert_eq!(resolved.iter().filter(|c| c.address == first).count(), 1, "{resolved:?}");
    }
}
