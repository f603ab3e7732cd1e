//! `[[source.origins]]`: request headers (typically credentials) sent to one private origin.
//!
//! An entry names a host exactly — a name or an IP literal, with no wildcard — and optionally a
//! port. Without a port it matches only URLs on their scheme's default port (80 for http, 443
//! for https); with one, only that port. The fetcher applies it per request, so a redirect hop
//! gets the headers only when it stays on the same host and port, never on a redirect to
//! another origin. Values are secrets: marked sensitive (`Debug` prints `Sensitive`) and never
//! logged.
//!
//! It does not forward client headers or set anything else; hop-by-hop headers, `Host` and
//! `Content-Length` are refused at start-up because they would change how the request is
//! framed or routed rather than what it asks for.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::{Host, Url};

/// One `[[source.origins]]` entry, validated.
#[derive(Debug, Clone)]
pub struct OriginHeaders {
    host: Host<String>,
    /// `None`: the URL's scheme default port only.
    port: Option<u16>,
    headers: HeaderMap,
}

/// Headers that describe one connection or the framing of the message, not the request:
/// RFC 9110 §7.6.1 (hop-by-hop), plus the ones the client must set itself.
const REFUSED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

impl OriginHeaders {
    /// Validate one entry: `host` is `name`, `name:port`, an IPv4 literal or `[v6]` (each with
    /// an optional `:port`); `headers` are name/value pairs. `Err` says what is wrong without
    /// repeating any value.
    pub fn new(host: &str, headers: &[(String, String)]) -> Result<OriginHeaders, String> {
        let (host, port) = parse_host(host.trim())
            .ok_or_else(|| format!("host `{host}` is not a host name with an optional :port"))?;
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`{name}` is not a header name"))?;
            if REFUSED.contains(&name.as_str()) {
                return Err(format!("header `{name}` may not be set"));
            }
            if map.contains_key(&name) {
                return Err(format!("header `{name}` is given twice"));
            }
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| format!("the value of header `{name}` is not a valid header value"))?;
            value.set_sensitive(true);
            map.insert(name, value);
        }
        Ok(OriginHeaders {
            host,
            port,
            headers: map,
        })
    }

    /// Whether a request to `url` gets these headers.
    pub(crate) fn matches(&self, url: &Url) -> bool {
        let host_ok = match (&self.host, url.host()) {
            (Host::Domain(want), Some(Host::Domain(got))) => {
                got.strip_suffix('.').unwrap_or(got) == want.as_str()
            }
            (Host::Ipv4(want), Some(Host::Ipv4(got))) => *want == got,
            (Host::Ipv6(want), Some(Host::Ipv6(got))) => *want == got,
            _ => false,
        };
        let port_ok = match self.port {
            None => url.port().is_none(),
            Some(port) => url.port_or_known_default() == Some(port),
        };
        host_ok && port_ok
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The entry's `host[:port]` in canonical form, to refuse two entries for one origin.
    pub fn origin(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.to_string(),
        }
    }
}

/// `name`, `name:port`, `[v6]`, `[v6]:port` → normalised host and port.
fn parse_host(entry: &str) -> Option<(Host<String>, Option<u16>)> {
    let (name, port) = if entry.starts_with('[') {
        let end = entry.find(']')?;
        let (name, rest) = entry.split_at(end + 1);
        match rest {
            "" => (name, None),
            rest => (name, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match entry.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (entry, None),
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.contains(['*', '/', '@', '?', '#', '%', ' ']) {
        return None;
    }
    let host = Host::parse(name).ok()?;
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p != 0)?),
        None => None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(host: &str) -> OriginHeaders {
        let h = [("Authorization".to_owned(), "Bearer t".to_owned())];
        OriginHeaders::new(host, &h).unwrap_or_else(|e| panic!("{host}: {e}"))
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn origin_host_matches_exact_host_and_port() {
        let plain = entry("Images.Example.com");
        assert!(plain.matches(&url("https://images.example.com/x.jpg")));
        assert!(plain.matches(&url("http://images.example.com./x.jpg")));
        assert!(!plain.matches(&url("https://images.example.com:8443/x.jpg")));
        assert!(!plain.matches(&url("https://cdn.images.example.com/x.jpg")));
        assert!(!plain.matches(&url("https://example.com/x.jpg")));

        let ported = entry("127.0.0.1:8080");
        assert!(ported.matches(&url("http://127.0.0.1:8080/x")));
        assert!(!ported.matches(&url("http://127.0.0.1:8081/x")));
        assert!(!ported.matches(&url("http://localhost:8080/x")));

        let v6 = entry("[::1]:8080");
        assert!(v6.matches(&url("http://[::1]:8080/x")));
        assert!(entry("[::1]").matches(&url("https://[::1]/x")));
        assert_eq!(v6.origin(), "[::1]:8080");
    }

    #[test]
    fn origin_entries_malformed_refused() {
        let ok = [("X-Key".to_owned(), "v".to_owned())];
        for host in [
            "",
            "*.example.com",
            "a.com/x",
            "u@a.com",
            "a.com:0",
            "a.com:x",
            "::1",
        ] {
            assert!(OriginHeaders::new(host, &ok).is_err(), "{host}");
        }
        for (name, value) in [
            ("Host", "a"),
            ("connection", "close"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "1"),
            ("bad name", "v"),
            ("X-Key", "line\nbreak"),
        ] {
            let h = [(name.to_owned(), value.to_owned())];
            assert!(OriginHeaders::new("a.com", &h).is_err(), "{name}");
        }
        let twice = [
            ("X-Key".to_owned(), "1".to_owned()),
            ("x-key".to_owned(), "2".to_owned()),
        ];
        assert!(OriginHeaders::new("a.com", &twice).is_err());
    }

    #[test]
    fn origin_header_values_are_sensitive() {
        let e = entry("a.com");
        assert!(!format!("{e:?}").contains("Bearer"));
    }
}
