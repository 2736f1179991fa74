//! Outgoing HTTP a deployment grants: the entries of its
//! `capabilities.outgoing_hosts`, parsed once (at deploy, where a bad one
//! is refused by name) and matched against every request its runs make,
//! redirects included.
//!
//! An entry is a host with an optional scheme, port and path prefix:
//! `api.example.com` (http on 80, https on 443), `*.example.com` (its
//! subdomains), `example.com:8443`, `example.com:*` (any port),
//! `https://api.example.com/v2/` (https only, under `/v2/`),
//! `127.0.0.1:8080`, `[::1]:8080`, or `*` (any host). A request that
//! reaches a loopback, link-local, unspecified or cloud-metadata address
//! is allowed only by an entry that names its host exactly: wildcards
//! never open the agent's own machine.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A deployment's outgoing-host grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutgoingHosts(Vec<HostPattern>);

/// One entry of `outgoing_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// As written, for messages.
    entry: String,
    /// `http` or `https`; `None`: either.
    scheme: Option<String>,
    host: HostMatch,
    port: PortMatch,
    /// The request's path must start with this (`/v2/`).
    path_prefix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    /// This host (lower-case; an IPv6 literal without brackets).
    Exact(String),
    /// Subdomains of this one (`*.example.com`), not itself.
    Subdomains(String),
    /// `*`.
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortMatch {
    /// 80 for http, 443 for https.
    SchemeDefault,
    Exact(u16),
    Any,
}

/// Where a request goes: what a grant is matched against.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The host, as in the URL (an IPv6 literal with or without brackets).
    pub host: &'a str,
    pub port: u16,
    pub path: &'a str,
}

impl OutgoingHosts {
    /// Parses every entry; `Err` names the first bad one and why.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| {
                HostPattern::parse(entry)
                    .map_err(|why| format!("outgoing host `{entry}` is not valid: {why}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether nothing is granted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first entry that allows `target`, if any.
    pub fn allowing(&self, target: &Target<'_>) -> Option<&HostPattern> {
        self.0.iter().find(|pattern| pattern.allows(target))
    }
}

impl HostPattern {
    fn parse(entry: &str) -> Result<Self, String> {
        let trimmed = entry.trim();
        if trimmed.is_empty() {
            return Err("it is empty".to_owned());
        }
        let (scheme, rest) = match trimmed.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = scheme.to_ascii_lowercase();
                if scheme != "http" && scheme != "https" {
                    return Err(format!("the scheme `{scheme}` is not http or https"));
                }
                (Some(scheme), rest)
            }
            None => (None, trimmed),
        };
        let (authority, path_prefix) = match rest.find('/') {
            Some(slash) => (&rest[..slash], Some(rest[slash..].to_owned())),
            None => (rest, None),
        };
        if authority.contains('@') {
            return Err("user information (`user@`) is not allowed".to_owned());
        }
        let (host, port) = split_port(authority)?;
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostMatch::Any
        } else if let Some(parent) = host.strip_prefix("*.") {
            check_host_name(parent)?;
            HostMatch::Subdomains(parent.to_owned())
        } else if host.contains('*') {
            return Err(
                "`*` may only be the whole host or its first label (`*.example.com`)".to_owned()
            );
        } else {
            if host.parse::<IpAddr>().is_err() {
                check_host_name(&host)?;
            }
            HostMatch::Exact(host)
        };
        Ok(Self { entry: trimmed.to_owned(), scheme, host, port, path_prefix })
    }

    /// The entry as written.
    pub fn entry(&self) -> &str {
        &self.entry
    }

    /// Whether this entry names one host exactly, and so may reach it even
    /// at a loopback, link-local or metadata address.
    pub fn names_one_host(&self) -> bool {
        matches!(self.host, HostMatch::Exact(_))
    }

    fn allows(&self, target: &Target<'_>) -> bool {
        let scheme = target.scheme.to_ascii_lowercase();
        if self.scheme.as_deref().is_some_and(|wanted| wanted != scheme) {
            return false;
        }
        let host = target.host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let host = host.trim_end_matches('.');
        let host_matches = match &self.host {
            HostMatch::Any => true,
            HostMatch::Exact(exact) => host == exact,
            HostMatch::Subdomains(parent) => host
                .strip_suffix(parent.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        };
        let port_matches = match self.port {
            PortMatch::Any => true,
            PortMatch::Exact(port) => port == target.port,
            PortMatch::SchemeDefault => {
                (scheme == "http" && target.port == 80) || (scheme == "https" && target.port == 443)
            }
        };
        let path_matches = self.path_prefix.as_deref().is_none_or(|prefix| {
            target.path.starts_with(prefix)
                && (prefix.ends_with('/')
                    || target.path.len() == prefix.len()
                    || target.path[prefix.len()..].starts_with(['/', '?']))
        });
        host_matches && port_matches && path_matches
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.entry)
    }
}

/// `host[:port]`, `[v6][:port]`; the port may be `*`.
fn split_port(authority: &str) -> Result<(&str, PortMatch), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) =
            rest.split_once(']').ok_or_else(|| "an IPv6 address misses its `]`".to_owned())?;
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err(format!("`{inside}` is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            port => Some(port.strip_prefix(':').ok_or_else(|| format!("`{after}` after `]`"))?),
        };
        (inside, port)
    } else if authority.matches(':').count() > 1 {
        return Err("an IPv6 address must be in brackets (`[::1]:8080`)".to_owned());
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => PortMatch::SchemeDefault,
        Some("*") => PortMatch::Any,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => PortMatch::Exact(port),
            _ => return Err(format!("`{port}` is not a port")),
        },
    };
    if host.is_empty() {
        return Err("it names no host".to_owned());
    }
    Ok((host, port))
}

fn check_host_name(host: &str) -> Result<(), String> {
    let valid = host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if valid { Ok(()) } else { Err(format!("`{host}` is not a host name")) }
}

/// Whether `address` is the agent's own machine or its cloud's metadata
/// service: loopback, link-local (which holds 169.254.169.254),
/// unspecified, or the IPv6 metadata address. Only an entry that names
/// the host exactly may reach one.
pub fn is_guarded_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => guarded_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return guarded_v4(v4);
            }
            let segments = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                // fe80::/10, link-local.
                || (segments[0] & 0xffc0) == 0xfe80
                // AWS's IPv6 metadata service, fd00:ec2::254.
                || v6 == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)
        }
    }
}

fn guarded_v4(v4: Ipv4Addr) -> bool {
    v4.is_loopback() || v4.is_link_local() || v4.is_unspecified()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> OutgoingHosts {
        OutgoingHosts::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    fn allowed(hosts: &OutgoingHosts, url: &str) -> Option<String> {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(':') && port.parse::<u16>().is_ok() => {
                (host, port.parse().unwrap())
            }
            _ => (authority, if scheme == "https" { 443 } else { 80 }),
        };
        hosts.allowing(&Target { scheme, host, port, path }).map(|p| p.entry().to_owned())
    }

    #[test]
    fn entries_grant_hosts_ports_schemes_and_paths() {
        let granted = hosts(&[
            "api.example.com",
            "*.data.example.org",
            "127.0.0.1:8080",
            "[::1]:9000",
            "https://files.example.net/v2/",
            "internal.example:*",
        ]);
        for (url, entry) in [
            ("https://api.example.com/anything", Some("api.example.com")),
            ("http://API.Example.com/", Some("api.example.com")),
            ("https://api.example.com:8443/", None),
            ("https://eu.data.example.org/x", Some("*.data.example.org")),
            ("https://data.example.org/x", None),
            ("https://evil-data.example.org/x", None),
            ("http://127.0.0.1:8080/health", Some("127.0.0.1:8080")),
            ("http://127.0.0.1:8081/health", None),
            ("http://[::1]:9000/", Some("[::1]:9000")),
            ("https://files.example.net/v2/report.csv", Some("https://files.example.net/v2/")),
            ("https://files.example.net/v3/report.csv", None),
            ("http://files.example.net/v2/report.csv", None),
            ("http://internal.example:31337/", Some("internal.example:*")),
            ("https://example.com/", None),
        ] {
            assert_eq!(allowed(&granted, url).as_deref(), entry, "{url}");
        }
        let prefix = hosts(&["https://a.example/v2"]);
        assert!(allowed(&prefix, "https://a.example/v2/x").is_some());
        assert!(allowed(&prefix, "https://a.example/v2?q=1").is_some());
        assert!(allowed(&prefix, "https://a.example/v20").is_none());
        assert!(allowed(&hosts(&["*"]), "https://anywhere.example/").is_some());
        assert!(allowed(&OutgoingHosts::default(), "https://anywhere.example/").is_none());
    }

    #[test]
    fn only_entries_naming_one_host_reach_guarded_addresses() {
        assert!(hosts(&["localhost:8080"]).0[0].names_one_host());
        assert!(!hosts(&["*"]).0[0].names_one_host());
        assert!(!hosts(&["*.example.com"]).0[0].names_one_host());
        for guarded in [
            "127.0.0.1",
            "127.8.9.1",
            "169.254.169.254",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "fd00:ec2::254",
        ] {
            assert!(is_guarded_address(guarded.parse().unwrap()), "{guarded}");
        }
        for open in ["10.0.0.5", "192.168.1.1", "93.184.216.34", "2606:2800:220:1::1"] {
            assert!(!is_guarded_address(open.parse().unwrap()), "{open}");
        }
    }

    #[test]
    fn a_bad_entry_is_refused_by_name() {
        for (entry, why) in [
            ("", "empty"),
            ("ftp://example.com", "not http or https"),
            ("example.com:99999", "not a port"),
            ("exa*mple.com", "first label"),
            ("::1", "in brackets"),
            ("user@example.com", "user information"),
            ("bad_host!", "not a host name"),
            ("[nope]:80", "not an IPv6 address"),
        ] {
            let error = OutgoingHosts::parse(&[entry.to_owned()]).unwrap_err();
            assert!(
                error.contains(&format!("`{entry}`")) && error.contains(why),
                "{entry}: {error}"
            );
        }
    }
}
