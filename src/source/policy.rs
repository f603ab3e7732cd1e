//! The per-URL source policy, run on the first URL and on every redirect hop: scheme, userinfo,
//! host allow-list, and the address check for hosts written as IP literals.
//!
//! Pure: it decides on the parsed `url::Host`, never on strings, and does no DNS. Names are
//! checked for addresses by the resolver in `resolve.rs`; literal IPs never reach a resolver
//! (hyper-util connects to them directly), which is why they are checked here.

use std::net::IpAddr;

use ipnet::IpNet;
use url::{Host, Url};

use super::ip;
use super::SourceError;

/// One `allow_hosts` entry, normalised once (lowercase, IDNA, trailing dot removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostPattern {
    /// `example.com`, or an IP literal such as `203.0.113.5` / `[2001:db8::1]`: that host only.
    Exact(Host<String>),
    /// `*.example.com`: any subdomain (any depth), but not `example.com` itself.
    Subdomains(String),
}

impl HostPattern {
    /// Parse an `allow_hosts` entry; `None` when it is not a host name or `*.` + host name.
    pub(crate) fn parse(entry: &str) -> Option<HostPattern> {
        let entry = entry.trim();
        let (wildcard, name) = match entry.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() || (name.contains(['*', '/', '@', ':']) && !name.starts_with('[')) {
            return None;
        }
        let host = Host::parse(name).ok()?;
        match (wildcard, host) {
            (true, Host::Domain(d)) => Some(HostPattern::Subdomains(d)),
            (true, _) => None,
            (false, host) => Some(HostPattern::Exact(host)),
        }
    }

    /// Whether a parsed URL host matches. A single trailing dot on the host is ignored.
    pub(crate) fn matches(&self, host: &Host<&str>) -> bool {
        match (self, host) {
            (HostPattern::Exact(Host::Domain(p)), Host::Domain(h)) => trim_dot(h) == p,
            (HostPattern::Exact(Host::Ipv4(p)), Host::Ipv4(h)) => p == h,
            (HostPattern::Exact(Host::Ipv6(p)), Host::Ipv6(h)) => p == h,
            (HostPattern::Subdomains(suffix), Host::Domain(h)) => {
                let h = trim_dot(h);
                h.len() > suffix.len() + 1
                    && h.ends_with(suffix.as_str())
                    && h[..h.len() - suffix.len()].ends_with('.')
            }
            _ => false,
        }
    }
}

/// One `source.allow_networks` entry: a network that origins may resolve to although it is
/// private, optionally only for one host pattern and one port:
/// `10.0.0.0/8`, `10.1.2.3` (one address), `10.1.2.3/32:8080`, `images.internal=10.0.0.0/8`,
/// `*.corp.example=10.0.0.0/8:443`. A port needs the `/prefix` form (so IPv6 stays readable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedNetwork {
    net: IpNet,
    host: Option<HostPattern>,
    port: Option<u16>,
}

impl std::str::FromStr for AllowedNetwork {
    type Err = String;

    fn from_str(entry: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{entry}` is not [host=]CIDR[:port], such as 10.0.0.0/8 or \
                 img.internal=10.1.2.3/32:8080"
            )
        };
        let (host, rest) = match entry.trim().split_once('=') {
            Some((h, rest)) => (Some(HostPattern::parse(h).ok_or_else(bad)?), rest),
            None => (None, entry.trim()),
        };
        let (net, port) = match rest.split_once('/') {
            Some((addr, tail)) => {
                let (len, port) = match tail.split_once(':') {
                    Some((len, port)) => (len, Some(port.parse::<u16>().map_err(|_| bad())?)),
                    None => (tail, None),
                };
                let net = format!("{addr}/{len}")
                    .parse::<IpNet>()
                    .map_err(|_| bad())?;
                (net, port)
            }
            None => (
                rest.parse::<std::net::IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| bad())?,
                None,
            ),
        };
        if port == Some(0) {
            return Err(bad());
        }
        Ok(AllowedNetwork { net, host, port })
    }
}

impl std::fmt::Display for AllowedNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.host {
            Some(HostPattern::Exact(h)) => write!(f, "{h}=")?,
            Some(HostPattern::Subdomains(d)) => write!(f, "*.{d}=")?,
            None => {}
        }
        write!(f, "{}", self.net)?;
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

impl AllowedNetwork {
    /// Whether this entry admits `ip` for a request to `host`:`port`. The resolver knows the
    /// name but not the port (`port` is `None`): a port-scoped entry then admits only when it
    /// is also host-scoped to that name, whose port [`check_url`] has already checked; a
    /// port-scoped entry without a host is for IP-literal URLs only. The peer check after
    /// connecting sees both and applies the whole scope again.
    fn admits(&self, ip: IpAddr, host: Option<&Host<&str>>, port: Option<u16>) -> bool {
        let in_net = ip::in_network(ip, &self.net);
        let host_ok = match (&self.host, host) {
            (None, _) => true,
            (Some(p), Some(h)) => p.matches(h),
            (Some(_), None) => false,
        };
        let port_ok = match (self.port, port) {
            (None, _) => true,
            (Some(want), Some(got)) => want == got,
            (Some(_), None) => self.host.is_some(),
        };
        in_net && host_ok && port_ok
    }
}

/// Whether the origin client may connect to `ip` for a request to `host`:`port`: the address
/// is public, or an `allow_networks` entry admits it for that host and port.
pub(crate) fn address_allowed(
    ip: IpAddr,
    allow: &[AllowedNetwork],
    host: Option<&Host<&str>>,
    port: Option<u16>,
) -> bool {
    ip::is_public(ip) || allow.iter().any(|n| n.admits(ip, host, port))
}

fn trim_dot(host: &str) -> &str {
    host.strip_suffix('.').unwrap_or(host)
}

/// The remote-source policy, parsed once from [`super::Settings`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    /// Empty = any host.
    pub allow_hosts: Vec<HostPattern>,
    /// Refused even when `allow_hosts` admits them.
    pub deny_hosts: Vec<HostPattern>,
    pub allow_networks: Vec<AllowedNetwork>,
    /// Plain `http://` origins (first URL and redirect hops) are allowed.
    pub allow_http: bool,
    /// Ports a remote URL may name (explicitly or by its scheme's default); empty = any.
    pub allow_ports: Vec<u16>,
}

impl Policy {
    /// Parse the host lists; `Err` names the first entry that is not a host pattern.
    pub(crate) fn new(settings: &super::Settings) -> Result<Policy, String> {
        let parse = |list: &[String]| {
            list.iter()
                .map(|e| HostPattern::parse(e).ok_or_else(|| e.clone()))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Policy {
            allow_hosts: parse(&settings.allow_hosts)?,
            deny_hosts: parse(&settings.deny_hosts)?,
            allow_networks: settings.allow_networks.clone(),
            allow_http: settings.allow_http,
            allow_ports: settings.allow_ports.clone(),
        })
    }
}

/// Check one URL against the policy. Every refusal is `Forbidden` with a short generic text.
pub(crate) fn check_url(url: &Url, policy: &Policy) -> Result<(), SourceError> {
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        _ => return Err(forbidden("scheme not allowed")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(forbidden("credentials in URL"));
    }
    // No cross-protocol requests or port scans through us (80 and 443 by default).
    let port = url.port_or_known_default().unwrap_or(0);
    if !policy.allow_ports.is_empty() && !policy.allow_ports.contains(&port) {
        return Err(forbidden("port not allowed"));
    }
    let Some(host) = url.host() else {
        return Err(forbidden("no host"));
    };
    // A host named by port-scoped `allow_networks` entries (and by none without a port) may
    // only be asked for on those ports: the resolver cannot see the port.
    let mut scoped = policy
        .allow_networks
        .iter()
        .filter(|n| n.host.as_ref().is_some_and(|p| p.matches(&host)))
        .peekable();
    if scoped.peek().is_some() && !scoped.any(|n| n.port.is_none() || n.port == Some(port)) {
        return Err(forbidden("port not allowed"));
    }
    if policy.deny_hosts.iter().any(|p| p.matches(&host)) {
        return Err(forbidden("host not allowed"));
    }
    if !policy.allow_hosts.is_empty() && !policy.allow_hosts.iter().any(|p| p.matches(&host)) {
        return Err(forbidden("host not allowed"));
    }
    let literal = match host {
        Host::Ipv4(v4) => Some(std::net::IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(std::net::IpAddr::V6(v6)),
        Host::Domain(_) => None,
    };
    if let Some(ip) = literal {
        if !address_allowed(ip, &policy.allow_networks, Some(&host), Some(port)) {
            return Err(forbidden("address not allowed"));
        }
    }
    Ok(())
}

fn forbidden(why: &str) -> SourceError {
    SourceError::Forbidden(why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap_or_else(|| panic!("pattern {s:?} rejected"))
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[track_caller]
    fn host_ok(p: &HostPattern, u: &str) -> bool {
        let u = url(u);
        let host = u.host().unwrap_or_else(|| panic!("{u} has no host"));
        p.matches(&host)
    }

    #[test]
    fn host_pattern_wildcard_matches_subdomains_not_bare_domain() {
        let p = pattern("*.example.com");
        assert!(host_ok(&p, "http://a.example.com/"));
        assert!(host_ok(&p, "http://a.b.example.com/"));
        assert!(host_ok(&p, "http://A.EXAMPLE.COM/"));
        assert!(host_ok(&p, "http://a.example.com./"));
        assert!(!host_ok(&p, "http://example.com/"));
        assert!(!host_ok(&p, "http://badexample.com/"));
        assert!(!host_ok(&p, "http://a.example.com.evil.test/"));
        assert!(!host_ok(&p, "http://1.2.3.4/"));
    }

    #[test]
    fn host_pattern_exact_matches_only_that_host() {
        let p = pattern("Example.COM");
        assert!(host_ok(&p, "http://example.com/x"));
        assert!(host_ok(&p, "https://EXAMPLE.com./x"));
        assert!(!host_ok(&p, "http://a.example.com/"));
        assert!(!host_ok(&p, "http://example.com.evil.test/"));
        assert!(!host_ok(&p, "http://evilexample.com/"));
        let ip = pattern("203.0.113.5");
        assert!(host_ok(&ip, "http://203.0.113.5/"));
        assert!(!host_ok(&ip, "http://203.0.113.6/"));
        let v6 = pattern("[2001:db8::1]");
        assert!(host_ok(&v6, "http://[2001:db8::1]/"));
    }

    #[test]
    fn host_pattern_idn_entry_normalised_to_punycode() {
        let p = pattern("bücher.example");
        assert!(host_ok(&p, "http://xn--bcher-kva.example/"));
        assert!(host_ok(&p, "http://BÜCHER.example/"));
    }

    #[test]
    fn host_pattern_malformed_entries_rejected() {
        for bad in [
            "",
            "*",
            "*.",
            "a.*.com",
            "*.1.2.3.4",
            "http://a.com",
            "a.com/x",
            "u@a.com",
        ] {
            assert_eq!(HostPattern::parse(bad), None, "{bad:?}");
        }
    }

    fn policy(allow: &[HostPattern], nets: &[AllowedNetwork]) -> Policy {
        Policy {
            allow_hosts: allow.to_vec(),
            deny_hosts: Vec::new(),
            allow_networks: nets.to_vec(),
            allow_http: true,
            allow_ports: Vec::new(),
        }
    }

    #[test]
    fn policy_ports_default_to_the_scheme_and_must_be_listed() {
        let mut p = policy(&[], &[]);
        p.allow_ports = vec![80, 443];
        for ok in [
            "http://a.test/",
            "https://a.test/",
            "https://a.test:443/",
            "http://a.test:80/",
        ] {
            assert!(check_url(&url(ok), &p).is_ok(), "{ok}");
        }
        for bad in [
            "http://a.test:8080/",
            "https://a.test:22/",
            "http://a.test:6379/",
        ] {
            assert!(check_url(&url(bad), &p).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn policy_deny_hosts_and_allow_http() {
        let mut p = policy(&[], &[]);
        p.deny_hosts = vec![pattern("*.evil.test"), pattern("bad.test")];
        for u in ["http://a.evil.test/", "https://bad.test/x"] {
            assert_eq!(
                check_url(&url(u), &p),
                Err(SourceError::Forbidden("host not allowed".into())),
                "{u}"
            );
        }
        assert_eq!(check_url(&url("http://good.test/"), &p), Ok(()));
        p.allow_http = false;
        assert!(check_url(&url("http://good.test/"), &p).is_err());
        assert_eq!(check_url(&url("https://good.test/"), &p), Ok(()));
    }

    #[test]
    fn policy_bad_urls_forbidden() {
        let none: &[HostPattern] = &[];
        for u in [
            "ftp://a.com/x",
            "http://a.com@127.0.0.1/",
            "http://user:pw@a.com/",
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://0/",
        ] {
            assert!(
                matches!(
                    check_url(&url(u), &policy(none, &[])),
                    Err(SourceError::Forbidden(_))
                ),
                "{u}"
            );
        }
        assert_eq!(
            check_url(&url("https://example.com/x.jpg"), &policy(none, &[])),
            Ok(())
        );
        assert_eq!(
            check_url(&url("http://8.8.8.8/x.jpg"), &policy(none, &[])),
            Ok(())
        );
    }

    #[test]
    fn policy_allow_hosts_applied_to_domains_and_literals() {
        let hosts = [pattern("*.example.com")];
        assert_eq!(
            check_url(&url("http://img.example.com/"), &policy(&hosts, &[])),
            Ok(())
        );
        for u in [
            "http://example.com/",
            "http://8.8.8.8/",
            "http://evil.test/",
        ] {
            assert_eq!(
                check_url(&url(u), &policy(&hosts, &[])),
                Err(SourceError::Forbidden("host not allowed".into())),
                "{u}"
            );
        }
    }

    #[test]
    fn policy_allow_networks_admit_literal() {
        let nets: Vec<AllowedNetwork> =
            vec!["127.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"))];
        assert_eq!(
            check_url(&url("http://127.0.0.1:8080/"), &policy(&[], &nets)),
            Ok(())
        );
        assert_eq!(
            check_url(&url("http://[::ffff:127.0.0.1]/"), &policy(&[], &nets)),
            Ok(())
        );
        assert!(check_url(&url("http://10.0.0.1/"), &policy(&[], &nets)).is_err());
    }

    #[test]
    fn policy_allow_networks_scoped_by_host_and_port() {
        let net = |s: &str| {
            s.parse::<AllowedNetwork>()
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let nets = [net("10.1.2.3/32:8080"), net("[fd00::1]=fd00::/8")];
        let ok = |u: &str| check_url(&url(u), &policy(&[], &nets)).is_ok();
        assert!(ok("http://10.1.2.3:8080/"));
        assert!(!ok("http://10.1.2.3/"), "other port of an allowed address");
        assert!(!ok("http://10.1.2.4:8080/"), "other address");
        assert!(ok("http://[fd00::1]/"));
        assert!(!ok("http://[fd00::2]/"), "host scope is the literal itself");
        // A name scoped to a port is refused on other ports before anything is resolved.
        let nets = [net("img.internal=10.0.0.0/8:8080")];
        let ok = |u: &str| check_url(&url(u), &policy(&[], &nets)).is_ok();
        assert!(ok("http://img.internal:8080/"));
        assert!(!ok("http://img.internal/"));
        assert!(ok("http://other.test/"), "public names are not affected");
    }

    #[test]
    fn policy_allowed_network_scope_at_the_resolver() {
        let net = |s: &str| {
            s.parse::<AllowedNetwork>()
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let ip: IpAddr = "10.1.2.3".parse().unwrap_or_else(|e| panic!("{e}"));
        let name = Host::Domain("img.internal");
        let other = Host::Domain("evil.test");
        // Port-scoped without a host: never through a name (the port is unknown there).
        assert!(!net("10.0.0.0/8:8080").admits(ip, Some(&other), None));
        assert!(net("10.0.0.0/8:8080").admits(ip, None, Some(8080)));
        // Host- and port-scoped: its name only; the port was checked by `check_url`.
        let scoped = net("img.internal=10.0.0.0/8:8080");
        assert!(scoped.admits(ip, Some(&name), None));
        assert!(!scoped.admits(ip, Some(&other), None));
        assert!(
            !scoped.admits(ip, Some(&name), Some(80)),
            "the peer check sees the port"
        );
        assert!(net("10.0.0.0/8").admits(ip, Some(&other), None));
    }

    #[test]
    fn policy_allowed_network_forms() {
        for good in [
            "10.0.0.0/8",
            "10.1.2.3",
            "::1",
            "10.1.2.3/32:8080",
            "fd00::/8:443",
            "img.internal=10.0.0.0/8",
            "*.corp.example=10.0.0.0/8:443",
        ] {
            let parsed = good.parse::<AllowedNetwork>();
            assert!(parsed.is_ok(), "{good}");
            // The display form reads back as the same entry.
            let shown = parsed.map(|n| n.to_string()).unwrap_or_default();
            assert_eq!(
                shown.parse::<AllowedNetwork>(),
                good.parse(),
                "{good} -> {shown}"
            );
        }
        for bad in [
            "",
            "10.0.0.0/99",
            "10.1.2.3:8080",
            "10.0.0.0/8:0",
            "10.0.0.0/8:http",
            "a b=10.0.0.0/8",
            "=10.0.0.0/8",
            "host",
        ] {
            assert!(bad.parse::<AllowedNetwork>().is_err(), "{bad}");
        }
    }
}
