//! The tenant's egress policy as data: deny by default, an allowlist of hosts,
//! explicitly opened private networks, size caps and the per-call timeout.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use url::{Host, Url};

use super::address::non_public_reason;

/// One allowlist entry: `example.com`, `*.example.com`, `*`, `api.example.com:8443`,
/// `10.1.2.3:8080`, `[fd00::5]:80`; a leading `http://` also allows plain HTTP to it
/// (entries without a scheme allow https only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    pattern: HostPattern,
    port: Option<u16>,
    allow_http: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    /// `*.example.com`: stored as `.example.com`; matches subdomains only.
    Suffix(String),
    Ip(IpAddr),
}

impl FromStr for HostRule {
    type Err = String;

    fn from_str(entry: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid allowlist entry `{entry}`: {why}");
        let (allow_http, rest) = match entry.split_once("://") {
            Some(("http", rest)) => (true, rest),
            Some(("https", rest)) => (false, rest),
            Some((other, _)) => return Err(bad(&format!("scheme `{other}` is not http or https"))),
            None => (false, entry),
        };
        if rest.is_empty() || rest.contains('/') {
            return Err(bad("expected HOST or HOST:PORT"));
        }
        let (host, port) = split_host_port(rest).map_err(&bad)?;
        let host = host.to_ascii_lowercase();
        let pattern = if host == "*" {
            HostPattern::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err(bad("a wildcard is `*.domain`"));
            }
            HostPattern::Suffix(format!(".{suffix}"))
        } else if host.contains('*') {
            return Err(bad("a wildcard is `*.domain`"));
        } else if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            HostPattern::Ip(ip)
        } else {
            HostPattern::Exact(host)
        };
        Ok(HostRule {
            pattern,
            port,
            allow_http,
        })
    }
}

fn split_host_port(s: &str) -> Result<(&str, Option<u16>), &'static str> {
    let (host, port) = if let Some(end) = s.strip_prefix('[').and_then(|r| r.find(']')) {
        let host = &s[..end + 2];
        match &s[end + 2..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or("expected `:PORT`")?)),
        }
    } else if s.matches(':').count() > 1 {
        (s, None) // a bare IPv6 address
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| "the port is not a number from 1 to 65535")
        })
        .transpose()?;
    if port == Some(0) {
        return Err("the port is not a number from 1 to 65535");
    }
    Ok((host, port))
}

impl HostRule {
    fn matches(&self, host: &Host<&str>, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match (&self.pattern, host) {
            (HostPattern::Any, _) => true,
            (HostPattern::Exact(e), Host::Domain(d)) => e.eq_ignore_ascii_case(d),
            (HostPattern::Suffix(s), Host::Domain(d)) => {
                d.len() > s.len() && d.to_ascii_lowercase().ends_with(s.as_str())
            }
            (HostPattern::Ip(ip), Host::Ipv4(v4)) => *ip == IpAddr::V4(*v4),
            (HostPattern::Ip(ip), Host::Ipv6(v6)) => *ip == IpAddr::V6(*v6),
            _ => false,
        }
    }

    /// An IP literal listed as such is the operator opening that address.
    fn is_explicit_ip(&self, ip: IpAddr) -> bool {
        self.pattern == HostPattern::Ip(ip)
    }
}

/// A tenant's egress policy. `EgressPolicy::default()` allows nothing.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    /// Hosts that may be called; empty means no egress at all.
    pub allow_hosts: Vec<HostRule>,
    /// Non-public networks the operator opened (`10.1.2.0/24`, `127.0.0.1/32`).
    pub allow_nets: Vec<IpNet>,
    /// Largest request body accepted from a guest.
    pub max_request_bytes: usize,
    /// Largest response body handed to a guest; the transfer stops past it.
    pub max_response_bytes: usize,
    /// Per-call timeout (further bounded by the invocation's remaining wall time).
    pub call_timeout: Duration,
    /// Redirect hops the host follows, each one checked like the first request.
    pub max_redirects: usize,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self {
            allow_hosts: Vec::new(),
            allow_nets: Vec::new(),
            max_request_bytes: 1 << 20,
            max_response_bytes: 5 << 20,
            call_timeout: Duration::from_secs(10),
            max_redirects: 5,
        }
    }
}

/// The policy refused a request; the text says which rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

impl EgressPolicy {
    /// Checks a URL before any connection: scheme, allowlist, and IP literals.
    /// Names are checked again once resolved (see [`EgressPolicy::check_ip`]).
    pub fn check_url(&self, url: &Url) -> Result<(), Denied> {
        let scheme = url.scheme();
        if scheme != "https" && scheme != "http" {
            return Err(Denied(format!("scheme `{scheme}` is not allowed")));
        }
        let host = url
            .host()
            .ok_or_else(|| Denied(format!("`{url}` has no host")))?;
        let port = url.port_or_known_default().unwrap_or(443);
        let rules: Vec<&HostRule> = self
            .allow_hosts
            .iter()
            .filter(|r| r.matches(&host, port))
            .collect();
        if rules.is_empty() {
            return Err(Denied(format!(
                "host `{}` is not on the tenant's allowlist",
                host_and_port(url)
            )));
        }
        if scheme == "http" && !rules.iter().any(|r| r.allow_http) {
            return Err(Denied(format!(
                "plain http to `{}` is not allowed (https only unless the allowlist entry starts with `http://`)",
                host_and_port(url)
            )));
        }
        let literal = match host {
            Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
            Host::Domain(_) => None,
        };
        match literal {
            Some(ip) if rules.iter().any(|r| r.is_explicit_ip(ip)) => Ok(()),
            Some(ip) => match self.refusal(ip) {
                None => Ok(()),
                Some(reason) => Err(Denied(format!("address {ip} is {reason}{OPENED_ONLY}"))),
            },
            None => Ok(()),
        }
    }

    /// Checks one address `host` resolved to: public, or inside a network the
    /// operator opened.
    pub fn check_ip(&self, ip: IpAddr, host: &str) -> Result<(), Denied> {
        match self.refusal(ip) {
            None => Ok(()),
            Some(reason) => Err(Denied(format!(
                "`{host}` resolves to {ip}, which is {reason}{OPENED_ONLY}"
            ))),
        }
    }

    /// Why `ip` is refused, or `None` when it is public or opened by the operator.
    fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        let reason = non_public_reason(ip)?;
        (!self.allow_nets.iter().any(|net| net.contains(&ip))).then_some(reason)
    }
}

const OPENED_ONLY: &str = "; only networks the operator lists are reachable";

fn host_and_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str], nets: &[&str]) -> EgressPolicy {
        EgressPolicy {
            allow_hosts: hosts.iter().map(|h| h.parse().unwrap()).collect(),
            allow_nets: nets.iter().map(|n| n.parse().unwrap()).collect(),
            ..EgressPolicy::default()
        }
    }

    fn check(p: &EgressPolicy, url: &str) -> Result<(), String> {
        p.check_url(&Url::parse(url).unwrap()).map_err(|d| d.0)
    }

    #[test]
    fn denies_everything_by_default() {
        let e = check(&EgressPolicy::default(), "https://example.com/").unwrap_err();
        assert_eq!(e, "host `example.com` is not on the tenant's allowlist");
    }

    #[test]
    fn matches_exact_suffix_and_port() {
        let p = policy(
            &["api.example.com", "*.example.org", "pay.example.net:8443"],
            &[],
        );
        assert!(check(&p, "https://api.example.com/x").is_ok());
        assert!(check(&p, "https://API.example.com/x").is_ok());
        assert!(check(&p, "https://evil-api.example.com/").is_err());
        assert!(check(&p, "https://a.b.example.org/").is_ok());
        assert!(
            check(&p, "https://example.org/").is_err(),
            "*.x matches subdomains only"
        );
        assert!(check(&p, "https://pay.example.net:8443/").is_ok());
        assert!(check(&p, "https://pay.example.net/").is_err());
    }

    #[test]
    fn https_only_unless_the_entry_says_http() {
        let p = policy(&["example.com", "http://plain.example.com"], &[]);
        let e = check(&p, "http://example.com/").unwrap_err();
        assert!(
            e.starts_with("plain http to `example.com` is not allowed"),
            "{e}"
        );
        assert!(check(&p, "http://plain.example.com/").is_ok());
        assert!(check(&p, "ftp://example.com/").is_err());
    }

    #[test]
    fn ip_literals_need_an_explicit_entry_or_net() {
        let p = policy(&["http://*"], &[]);
        for url in [
            "http://127.0.0.1/",
            "https://10.0.0.1/",
            "https://169.254.169.254/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::1]/",
        ] {
            let e = check(&p, url).unwrap_err();
            assert!(e.starts_with("address "), "{url}: {e}");
        }
        assert!(check(&p, "https://8.8.8.8/").is_ok());
        let p = policy(&["http://127.0.0.1:8080"], &[]);
        assert!(check(&p, "http://127.0.0.1:8080/").is_ok());
        assert!(check(&p, "http://127.0.0.1:8081/").is_err());
        let p = policy(&["*"], &["10.1.2.0/24"]);
        assert!(check(&p, "https://10.1.2.3/").is_ok());
        assert!(check(&p, "https://10.1.3.3/").is_err());
    }

    #[test]
    fn resolved_addresses_are_checked() {
        let p = policy(&["*"], &["10.1.2.0/24"]);
        let e = p
            .check_ip("127.0.0.1".parse().unwrap(), "localhost")
            .unwrap_err();
        assert_eq!(
            e.0,
            "`localhost` resolves to 127.0.0.1, which is loopback; only networks the operator lists are reachable"
        );
        assert!(
            p.check_ip("10.1.2.9".parse().unwrap(), "db.internal")
                .is_ok()
        );
        assert!(
            p.check_ip("93.184.216.34".parse().unwrap(), "example.com")
                .is_ok()
        );
    }

    #[test]
    fn parses_entries_and_rejects_nonsense() {
        for ok in [
            "example.com",
            "*.x.org",
            "*",
            "h:1",
            "[::1]:80",
            "::1",
            "http://10.0.0.1:8080",
        ] {
            assert!(ok.parse::<HostRule>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ex*ample.com",
            "*.",
            "h:0",
            "h:99999",
            "ftp://h",
            "h/path",
            "[::1]x",
        ] {
            assert!(bad.parse::<HostRule>().is_err(), "{bad}");
        }
    }
}
