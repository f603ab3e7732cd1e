//! The DNS resolver installed in the origin client: resolves with `tokio::net::lookup_host` and
//! drops every address the policy refuses, so the client can only connect to allowed addresses.
//!
//! Because the connector connects only to what this returns, a name cannot resolve to a public
//! address at check time and a private one at connect time (DNS rebinding). It does not see
//! literal IP hosts (hyper-util connects to those without asking a resolver; `policy.rs` checks
//! them), and it does no caching of its own.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Host;

use super::policy::{address_allowed, AllowedNetwork};

/// Every address a name resolved to was refused by the policy. `fetch` finds this in the
/// `source()` chain of the client error and answers `Forbidden`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("address not allowed")]
pub(crate) struct BlockedAddress;

/// The name did not resolve (no answer, NXDOMAIN, resolver failure). Deliberately carries no
/// resolver output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("name did not resolve")]
pub(crate) struct Unresolved;

/// Name → addresses; the system resolver in production, a scripted one in tests.
pub(crate) type Lookup = Arc<
    dyn Fn(String) -> futures_util::future::BoxFuture<'static, std::io::Result<Vec<SocketAddr>>>
        + Send
        + Sync,
>;

/// A resolver that keeps only addresses `policy::address_allowed` admits for the name.
#[derive(Clone)]
pub(crate) struct PolicyResolver {
    allow_networks: Arc<[AllowedNetwork]>,
    lookup: Lookup,
}

impl PolicyResolver {
    pub(crate) fn new(allow_networks: &[AllowedNetwork]) -> Self {
        let lookup: Lookup = Arc::new(|host: String| {
            Box::pin(async move {
                // Port 0: reqwest puts the URL's (or the scheme's default) port on every address.
                Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.collect())
            })
        });
        Self::with_lookup(allow_networks, lookup)
    }

    pub(crate) fn with_lookup(allow_networks: &[AllowedNetwork], lookup: Lookup) -> Self {
        PolicyResolver {
            allow_networks: allow_networks.into(),
            lookup,
        }
    }
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = Arc::clone(&self.allow_networks);
        let host = name.as_str().to_owned();
        let lookup = (self.lookup)(host.clone());
        Box::pin(async move {
            let found = lookup.await.map_err(|_| Box::new(Unresolved) as BoxError)?;
            let kept = filter(found, &allow, &host)?;
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Keep the addresses allowed for `host` (the port is not known here: the peer check after
/// connecting applies an entry's port scope); error when none is left.
fn filter(
    found: Vec<SocketAddr>,
    allow: &[AllowedNetwork],
    host: &str,
) -> Result<Vec<SocketAddr>, BoxError> {
    let host = Host::Domain(host);
    if found.is_empty() {
        return Err(Box::new(Unresolved));
    }
    let kept: Vec<SocketAddr> = found
        .into_iter()
        .filter(|a| address_allowed(a.ip(), allow, Some(&host), None))
        .collect();
    if kept.is_empty() {
        return Err(Box::new(BlockedAddress));
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn resolver_filter_mixed_answer_keeps_public_only() {
        let kept = filter(vec![addr("10.0.0.5:0"), addr("8.8.8.8:0")], &[], "a.test");
        assert_eq!(kept.ok(), Some(vec![addr("8.8.8.8:0")]));
    }

    #[test]
    fn resolver_filter_all_private_blocked() {
        let err = filter(vec![addr("127.0.0.1:0"), addr("[::1]:0")], &[], "a.test");
        let err = err.err().unwrap_or_else(|| panic!("expected an error"));
        assert!(err.downcast_ref::<BlockedAddress>().is_some());
    }

    #[test]
    fn resolver_filter_empty_answer_unresolved() {
        let err = filter(Vec::new(), &[], "a.test").err();
        assert!(err.is_some_and(|e| e.downcast_ref::<Unresolved>().is_some()));
    }

    #[test]
    fn resolver_filter_allow_networks_admit_loopback() {
        let nets: Vec<AllowedNetwork> =
            vec!["127.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"))];
        let kept = filter(vec![addr("127.0.0.1:0"), addr("[::1]:0")], &nets, "a.test");
        assert_eq!(kept.ok(), Some(vec![addr("127.0.0.1:0")]));
    }

    #[test]
    fn resolver_filter_host_scoped_network_admits_only_its_host() {
        let nets: Vec<AllowedNetwork> = vec!["*.internal=10.0.0.0/8:8080"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"))];
        let found = || vec![addr("10.1.2.3:0")];
        assert!(filter(found(), &nets, "img.internal").is_ok());
        assert!(filter(found(), &nets, "evil.test").is_err());
    }

    /// DNS rebinding: a name that answers a public address once and loopback the next time.
    /// Every connection resolves through this filter, so the second answer is refused; there is
    /// no earlier "check" resolution whose answer could go stale.
    #[tokio::test]
    async fn resolver_rebinding_name_is_refused_when_it_turns_private() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = calls.clone();
        let lookup: Lookup = Arc::new(move |_host: String| {
            let n = c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move {
                Ok(vec![if n == 0 {
                    addr("93.184.216.34:0")
                } else {
                    addr("127.0.0.1:0")
                }])
            })
        });
        let r = PolicyResolver::with_lookup(&[], lookup);
        let name = || {
            "rebind.test"
                .parse::<Name>()
                .unwrap_or_else(|_| panic!("name"))
        };
        let first: Vec<SocketAddr> = r
            .resolve(name())
            .await
            .map(|a| a.collect())
            .unwrap_or_default();
        assert_eq!(first, vec![addr("93.184.216.34:0")]);
        let second = r.resolve(name()).await.err();
        assert!(second.is_some_and(|e| e.downcast_ref::<BlockedAddress>().is_some()));
    }

    #[tokio::test]
    async fn resolver_localhost_without_allow_blocked() {
        let r = PolicyResolver::new(&[]);
        let name: Name = "localhost".parse().unwrap_or_else(|_| panic!("name"));
        let err = r.resolve(name).await.err();
        assert!(err.is_some_and(|e| e.downcast_ref::<BlockedAddress>().is_some()));
    }
}
