//! Which IP addresses are public. Everything else (loopback, private, link-local,
//! CGNAT, multicast, reserved, IPv4 embedded in IPv6, ...) is refused unless an
//! operator listed it explicitly: every range of IANA's IPv4 and IPv6
//! Special-Purpose Address Registries (also the anycast services they list
//! as globally reachable: no action needs them), multicast, and the
//! reserved and deprecated blocks. The tests walk the registries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `ip` is not a public unicast address, or `None` when it is.
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified (0.0.0.0/8)",
        (127, _, _) => "loopback",
        (10, _, _) => "private (RFC 1918)",
        (172, 16..=31, _) => "private (RFC 1918)",
        (192, 168, _) => "private (RFC 1918)",
        (169, 254, _) => "link-local (incl. cloud metadata)",
        (100, 64..=127, _) => "shared address space (CGNAT)",
        (192, 0, 0) => "IETF protocol assignments",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "deprecated 6to4 relay anycast",
        (192, 31, 196) | (192, 175, 48) => "AS112 DNS service",
        (192, 52, 193) => "AMT (automatic multicast tunneling)",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved or broadcast",
        _ => return None,
    })
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // ::ffff:a.b.c.d and the deprecated ::a.b.c.d: IPv4 in disguise, refused outright.
    if seg[..5] == [0; 5] && (seg[5] == 0xffff || seg[5] == 0) {
        return Some("IPv4-mapped or IPv4-compatible IPv6");
    }
    // ::ffff:0:a.b.c.d (RFC 6145/2765 "IPv4-translated"): IPv4 in disguise too.
    if seg[..4] == [0; 4] && seg[4] == 0xffff && seg[5] == 0 {
        return Some("IPv4-translated IPv6 (::ffff:0:0/96)");
    }
    Some(match seg[0] {
        0x0064 if seg[1] == 0xff9b => "NAT64 (IPv4 embedded in IPv6)",
        s if s & 0xff00 == 0 => "reserved (::/8, incl. IPv4 embeddings)",
        0x0100 if seg[1..4] == [0, 0, 0] => "discard-only (100::/64)",
        0x0100 if seg[1..4] == [0, 0, 1] => "dummy prefix (100:0:0:1::/64)",
        0x2001 if seg[1] == 0 => "Teredo (IPv4 embedded in IPv6)",
        0x2001 if seg[1] == 0x0002 && seg[2] == 0 => "benchmarking (2001:2::/48)",
        0x2001 if seg[1] < 0x0200 => "IETF protocol assignments (2001::/23)",
        0x2001 if seg[1] == 0x0db8 => "documentation",
        0x2620 if seg[1] == 0x004f && seg[2] == 0x8000 => "AS112 DNS service",
        0x3fff if seg[1] & 0xf000 == 0 => "documentation (3fff::/20)",
        0x5f00 => "SRv6 SIDs (5f00::/16)",
        0x2002 => "6to4 (IPv4 embedded in IPv6)",
        s if s & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        s if s & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        s if s & 0xffc0 == 0xfec0 => "site-local (fec0::/10)",
        s if s & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &str) -> Option<&'static str> {
        non_public_reason(s.parse().unwrap())
    }

    #[test]
    fn refuses_internal_addresses() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "64:ff9b::a00:1",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::1",
            "::ffff:0:127.0.0.1",
            "::ffff:0:8.8.8.8",
            "::ffff:0:7f00:1",
            "2001:2::1",
            "3fff::1",
            "::fffe:0:8.8.8.8",
            "2001:3::1",
            "192.88.99.1",
        ] {
            assert!(reason(ip).is_some(), "{ip} must be refused");
        }
    }

    #[test]
    fn accepts_public_addresses() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            // Near the refused ranges, but public.
            "2001:200::1",
            "2003::1",
            "3ffe::1",
            "3fff:1000::1",
            "4000::1",
        ] {
            assert_eq!(reason(ip), None, "{ip} is public");
        }
    }

    /// IANA's IPv4 and IPv6 Special-Purpose Address Registries (2025), the
    /// multicast blocks, and the reserved and deprecated blocks refused too.
    const REFUSED: &[&str] = &[
        // IPv4 Special-Purpose Address Registry.
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.31.196.0/24",
        "192.52.193.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "192.175.48.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
        "255.255.255.255/32",
        // IPv4 multicast.
        "224.0.0.0/4",
        // IPv6 Special-Purpose Address Registry.
        "::1/128",
        "::/128",
        "::ffff:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "100:0:0:1::/64",
        "2001::/23",
        "2001::/32",
        "2001:1::1/128",
        "2001:1::2/128",
        "2001:1::3/128",
        "2001:2::/48",
        "2001:3::/32",
        "2001:4:112::/48",
        "2001:10::/28",
        "2001:20::/28",
        "2001:30::/28",
        "2001:db8::/32",
        "2002::/16",
        "2620:4f:8000::/48",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        // Also refused: ::/8 (IPv4-compatible and other embeddings), the
        // deprecated site-local fec0::/10, multicast ff00::/8, and all of
        // 64:ff9b::/32 (NAT64 prefixes).
        "::/8",
        "fec0::/10",
        "ff00::/8",
        "64:ff9b::/32",
    ];

    fn refused() -> Vec<ipnet::IpNet> {
        REFUSED.iter().map(|r| r.parse().unwrap()).collect()
    }

    /// A deterministic stream of pseudo-random numbers (xorshift).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn v6(&mut self) -> u128 {
            (self.next() as u128) << 64 | self.next() as u128
        }
    }

    /// An address of `net`: its host bits from `bits`.
    fn inside(net: &ipnet::IpNet, bits: u128) -> IpAddr {
        match net {
            ipnet::IpNet::V4(n) => {
                let host = u32::from(n.hostmask()) & bits as u32;
                IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) | host))
            }
            ipnet::IpNet::V6(n) => {
                let host = u128::from(n.hostmask()) & bits;
                IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) | host))
            }
        }
    }

    /// Every range of the registries, walked: its first and last address
    /// and 200 inside it are refused; the address just outside each end is
    /// public unless another listed range holds it.
    #[test]
    fn every_registry_range_is_refused_and_its_neighbours_are_not() {
        let refused = refused();
        let listed = |ip: IpAddr| refused.iter().any(|n| n.contains(&ip));
        let mut rng = Rng(0x9e3779b97f4a7c15);
        for net in &refused {
            let mut samples = vec![net.network(), net.broadcast()];
            samples.extend((0..200).map(|_| inside(net, rng.v6())));
            for ip in samples {
                assert!(
                    non_public_reason(ip).is_some(),
                    "{ip} in {net} must be refused"
                );
            }
            let (first, last) = match net {
                ipnet::IpNet::V4(n) => (
                    u32::from(n.network())
                        .checked_sub(1)
                        .map(|x| IpAddr::V4(x.into())),
                    u32::from(n.broadcast())
                        .checked_add(1)
                        .map(|x| IpAddr::V4(x.into())),
                ),
                ipnet::IpNet::V6(n) => (
                    u128::from(n.network())
                        .checked_sub(1)
                        .map(|x| IpAddr::V6(x.into())),
                    u128::from(n.broadcast())
                        .checked_add(1)
                        .map(|x| IpAddr::V6(x.into())),
                ),
            };
            for ip in [first, last].into_iter().flatten() {
                assert_eq!(
                    non_public_reason(ip).is_some(),
                    listed(ip),
                    "{ip}, next to {net}"
                );
            }
        }
    }

    /// Addresses drawn at random over the whole IPv4 space and over IPv6
    /// (all of it, and its low /8 and the 2000::/3 global unicast block
    /// where the registries' ranges sit): refused exactly when a listed
    /// range holds them.
    #[test]
    fn random_addresses_are_refused_exactly_when_the_registries_list_them() {
        let refused = refused();
        let listed = |ip: IpAddr| refused.iter().any(|n| n.contains(&ip));
        let mut rng = Rng(0x2545f4914f6cdd1d);
        for _ in 0..200_000 {
            let v4 = IpAddr::V4(Ipv4Addr::from(rng.next() as u32));
            let any = IpAddr::V6(Ipv6Addr::from(rng.v6()));
            let low = IpAddr::V6(Ipv6Addr::from(rng.v6() >> 8));
            let global = IpAddr::V6(Ipv6Addr::from(rng.v6() >> 3 | 1 << 125));
            let dense = IpAddr::V6(Ipv6Addr::from(0x2001_0000u128 << 96 | rng.v6() >> 24));
            for ip in [v4, any, low, global, dense] {
                assert_eq!(non_public_reason(ip).is_some(), listed(ip), "{ip}");
            }
        }
    }
}
