//! The address classifier behind the SSRF policy: is an IP address one the origin client may
//! connect to?
//!
//! Pure and table-driven: IPv4 and IPv6 special-purpose ranges (RFC 6890 and the IANA registries),
//! with every IPv6 form that embeds an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo,
//! ISATAP) judged by the IPv4 address inside it. It does no DNS, no I/O, and knows nothing of
//! URLs or host names; callers apply it to literal hosts and to every resolved address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// IPv4 ranges that are never public: (network, prefix length).
const BLOCKED_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8), // "this network"; 0.0.0.0 reaches localhost on Linux
    (Ipv4Addr::new(10, 0, 0, 0), 8), // private (RFC 1918)
    (Ipv4Addr::new(100, 64, 0, 0), 10), // shared address space / CGNAT (RFC 6598)
    (Ipv4Addr::new(127, 0, 0, 0), 8), // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16), // link-local, cloud metadata
    (Ipv4Addr::new(168, 63, 129, 16), 32), // Azure WireServer (public range, VM-reachable)
    (Ipv4Addr::new(172, 16, 0, 0), 12), // private (RFC 1918)
    (Ipv4Addr::new(192, 0, 0, 0), 24), // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24), // TEST-NET-1
    (Ipv4Addr::new(192, 88, 99, 0), 24), // 6to4 relay anycast (deprecated)
    (Ipv4Addr::new(192, 168, 0, 0), 16), // private (RFC 1918)
    (Ipv4Addr::new(198, 18, 0, 0), 15), // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // TEST-NET-2
    (Ipv4Addr::new(203, 0, 113, 0), 24), // TEST-NET-3
    (Ipv4Addr::new(224, 0, 0, 0), 4), // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4), // reserved, including broadcast 255.255.255.255
];

/// IPv6 ranges that are never public, checked after the embedded-IPv4 forms are unwrapped.
/// Anything outside 2000::/3 (global unicast) is refused as well, so this table mostly documents
/// intent; the entries inside 2000::/3 are the ones that do work.
const BLOCKED_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 128), // unspecified
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1), 128), // loopback
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64), // discard-only
    (Ipv6Addr::new(0x2001, 0x2, 0, 0, 0, 0, 0, 0), 48), // benchmarking
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation (RFC 9637)
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7), // unique local, incl. AWS fd00:ec2::254
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), // link-local
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10), // site-local (deprecated)
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8), // multicast
    // NAT64 local-use (RFC 8215). Not globally reachable, and the position of the embedded IPv4
    // address depends on the operator's prefix length, so no single inner address can be trusted.
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48),
];

/// Whether the address is a public unicast address: outside every special-purpose range, and,
/// for IPv6 forms that embed an IPv4 address, with a public IPv4 address inside.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// Whether the address, or the IPv4 address embedded in it, lies in `net`.
pub fn in_network(ip: IpAddr, net: &IpNet) -> bool {
    let inner = match ip {
        IpAddr::V4(_) => None,
        IpAddr::V6(v6) => embedded_ipv4(v6).map(IpAddr::V4),
    };
    net.contains(&ip) || inner.is_some_and(|v4| net.contains(&v4))
}

/// Public, or in one of `allow_networks` (unscoped): the classification the scoped
/// `policy::address_allowed` builds on.
#[cfg(test)]
fn is_allowed(ip: IpAddr, allow_networks: &[IpNet]) -> bool {
    is_public(ip) || allow_networks.iter().any(|net| in_network(ip, net))
}

/// The IPv4 address an IPv6 address carries, for the forms that route to it: IPv4-mapped
/// `::ffff:0:0/96`, IPv4-translated `::ffff:0:0:0/96`, IPv4-compatible `::/96`, NAT64 well-known
/// `64:ff9b::/96`, 6to4 `2002::/16` (bits 16..48), Teredo `2001::/32` (client address, the last
/// 32 bits inverted) and ISATAP (interface id `0000:5efe` or `0200:5efe`, then the IPv4 address).
pub fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let last32 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _]
        | [0, 0, 0, 0, 0xffff, 0, _, _]
        | [0, 0, 0, 0, 0, 0, _, _]
        | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(last32),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        [0x2001, 0, ..] => Some(Ipv4Addr::from(u32::from(last32) ^ 0xffff_ffff)),
        [_, _, _, _, iid, 0x5efe, _, _] if iid & 0xfdff == 0 => Some(last32),
        _ => None,
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    !BLOCKED_V4.iter().any(|&(net, len)| in_v4(v4, net, len))
}

fn is_public_v6(v6: Ipv6Addr) -> bool {
    if let Some(inner) = embedded_ipv4(v6) {
        if !is_public_v4(inner) {
            return false;
        }
    }
    // Mapped, translated, compatible and NAT64 addresses lie outside 2000::/3 but route to
    // their inner IPv4 address, which was judged above.
    let routes_to_inner = matches!(
        v6.segments(),
        [0, 0, 0, 0, 0, 0xffff, _, _]
            | [0, 0, 0, 0, 0xffff, 0, _, _]
            | [0, 0, 0, 0, 0, 0, _, _]
            | [0x64, 0xff9b, 0, 0, 0, 0, _, _]
    );
    if routes_to_inner {
        // `::` and `::1` are IPv4-compatible in form, but the table refuses them below.
        return !BLOCKED_V6.iter().any(|&(net, len)| in_v6(v6, net, len));
    }
    let global_unicast = v6.segments()[0] & 0xe000 == 0x2000;
    global_unicast && !BLOCKED_V6.iter().any(|&(net, len)| in_v6(v6, net, len))
}

fn in_v4(addr: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(addr) & mask == u32::from(net) & mask
}

fn in_v6(addr: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(addr) & mask == u128::from(net) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn public(addr: &str, expected: bool) {
        let ip: IpAddr = match addr.parse() {
            Ok(ip) => ip,
            Err(e) => panic!("{addr}: {e}"),
        };
        assert_eq!(is_public(ip), expected, "is_public({addr})");
    }

    #[test]
    fn classifier_special_addresses_blocked() {
        for addr in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "::",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "100.100.100.200",
            "192.0.0.192",
            "192.0.2.1",
            "192.88.99.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "fd00:ec2::254",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
            "2001:db8::1",
            "2001:2::1",
            "3fff::1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1:7f00:0:100::",
            "64:ff9b:1::808:808",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::",
            "2002:a00:403::",
            "::ffff:7f00:1",
            "::ffff:169.254.169.254",
            "::ffff:0:127.0.0.1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "2001:4860::5efe:7f00:1",
            "2001:4860::200:5efe:a00:1",
            "5f00::1",
            "4000::1",
        ] {
            public(addr, false);
        }
    }

    #[test]
    fn classifier_public_addresses_allowed() {
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "172.15.255.255",
            "192.0.3.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
        ] {
            public(addr, true);
        }
    }

    #[test]
    fn classifier_boundaries_exact() {
        public("9.255.255.255", true);
        public("11.0.0.0", true);
        public("126.255.255.255", true);
        public("128.0.0.0", true);
        public("169.253.255.255", true);
        public("169.255.0.0", true);
        public("192.167.255.255", true);
        public("192.169.0.0", true);
        public("198.17.255.255", true);
        public("223.255.255.254", true);
        public("2001:db7:ffff::1", true);
        public("2001:db9::1", true);
    }

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn classifier_embedded_forms_unwrapped() {
        let cases = [
            ("::ffff:1.2.3.4", Some("1.2.3.4")),
            ("::1.2.3.4", Some("1.2.3.4")),
            ("64:ff9b::1.2.3.4", Some("1.2.3.4")),
            ("2002:102:304::", Some("1.2.3.4")),
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", Some("127.0.0.1")),
            ("2001:4860::5efe:102:304", Some("1.2.3.4")),
            ("2606:4700::1111", None),
        ];
        for (outer, inner) in cases {
            assert_eq!(embedded_ipv4(v6(outer)), inner.map(v4), "{outer}");
        }
    }

    #[test]
    fn classifier_allow_networks_admit_inner_and_outer() {
        let allow: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        let ok = |s: &str| is_allowed(s.parse().unwrap(), &allow);
        assert!(ok("127.0.0.1"));
        assert!(ok("127.0.0.2"));
        assert!(ok("::ffff:127.0.0.1"));
        assert!(ok("8.8.8.8"));
        assert!(!ok("::1"));
        assert!(!ok("10.0.0.1"));
        assert!(!ok("169.254.169.254"));
        assert!(!is_allowed(IpAddr::V4(v4("127.0.0.1")), &[]));
        let ula: Vec<IpNet> = vec!["fd00::/8".parse().unwrap()];
        assert!(is_allowed(IpAddr::V6(v6("fd00:ec2::254")), &ula));
    }

    /// Every way of wrapping an IPv4 address in IPv6 that `embedded_ipv4` knows.
    fn wrappings(inner: Ipv4Addr) -> Vec<Ipv6Addr> {
        let [a, b, c, d] = inner.octets();
        let hi = u16::from_be_bytes([a, b]);
        let lo = u16::from_be_bytes([c, d]);
        let [ta, tb, tc, td] = (u32::from(inner) ^ 0xffff_ffff).to_be_bytes();
        vec![
            inner.to_ipv6_mapped(),
            inner.to_ipv6_compatible(),
            Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, hi, lo),
            Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo),
            Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 1),
            Ipv6Addr::new(
                0x2001,
                0,
                0x4136,
                0xe378,
                0x8000,
                0x63bf,
                u16::from_be_bytes([ta, tb]),
                u16::from_be_bytes([tc, td]),
            ),
            Ipv6Addr::new(0x2001, 0x4860, 0, 0, 0, 0x5efe, hi, lo),
        ]
    }

    proptest::proptest! {
        #[test]
        fn classifier_wrapped_address_public_only_if_inner_public(raw: u32) {
            let inner = Ipv4Addr::from(raw);
            for outer in wrappings(inner) {
                proptest::prop_assert_eq!(embedded_ipv4(outer), Some(inner), "{}", outer);
                if is_public(IpAddr::V6(outer)) {
                    let inner_public = is_public(IpAddr::V4(inner));
                    proptest::prop_assert!(inner_public, "{} wraps {}", outer, inner);
                }
            }
        }

        #[test]
        fn classifier_allowed_network_admits_every_wrapping(raw: u32) {
            let inner = Ipv4Addr::from(raw);
            let allow = [IpNet::from(IpAddr::V4(inner))];
            for outer in wrappings(inner) {
                proptest::prop_assert!(is_allowed(IpAddr::V6(outer), &allow), "{}", outer);
            }
        }
    }
}
