//! Which IP addresses are public. Everything else (loopback, private, link-local,
//! CGNAT, multicast, reserved, IPv4 embedded in IPv6, ...) is refused unless an
//! operator listed it explicitly.

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
        0x2001 if seg[1] == 0 => "Teredo (IPv4 embedded in IPv6)",
        0x2001 if seg[1] == 0x0db8 => "documentation",
        0x2001 if seg[1] == 0x0002 && seg[2] == 0 => "benchmarking (2001:2::/48)",
        s if s & 0xfff0 == 0x3ff0 => "documentation (3fff::/20)",
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
            "2001:3::1",
            "2003::1",
            "4000::1",
        ] {
            assert_eq!(reason(ip), None, "{ip} is public");
        }
    }
}
