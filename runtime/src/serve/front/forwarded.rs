//! The client address behind a reverse proxy. Only a proxy the operator
//! trusts (`http.trustedProxies`) may say who its client is, with
//! `X-Forwarded-For`; from anyone else the header is ignored, so a stranger
//! cannot pick the address that rate limits, failed-auth throttling and
//! `/metrics`' "this machine only" count against.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The address a request counts as coming from: the TCP peer, or, when the
/// peer is a trusted proxy, the nearest address in `X-Forwarded-For` (read
/// from the right) that is not a trusted proxy itself. An entry that is not
/// an address stops the walk at the last trusted hop: nothing further left
/// can be believed.
pub fn client(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> SocketAddr {
    let is_trusted = |ip: IpAddr| {
        let ip = ip.to_canonical();
        trusted.iter().any(|net| net.contains(&ip))
    };
    if !is_trusted(peer.ip()) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse(hop) else { break };
        client = SocketAddr::new(ip, 0);
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// `http.trustedProxies`: addresses (`127.0.0.1`) or networks (`10.0.0.0/8`).
pub fn networks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let list = <Vec<String> as serde::Deserialize>::deserialize(d)?;
    list.iter()
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "trustedProxies: `{s}` is not an address or a network (`10.0.0.0/8`)"
                    ))
                })
        })
        .collect()
}

/// `203.0.113.5`, `2001:db8::1`, `[2001:db8::1]:443` or `203.0.113.5:80`.
fn parse(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40000)
    }

    #[test]
    fn a_peer_that_is_not_trusted_cannot_name_its_client() {
        let h = headers(&["203.0.113.5"]);
        assert_eq!(client(peer("198.51.100.7"), &h, &[]), peer("198.51.100.7"));
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client(peer("198.51.100.7"), &h, &trusted),
            peer("198.51.100.7")
        );
    }

    #[test]
    fn a_trusted_proxy_names_its_client() {
        let trusted = nets(&["127.0.0.1/32"]);
        let h = headers(&["203.0.113.5"]);
        assert_eq!(
            client(peer("127.0.0.1"), &h, &trusted).ip(),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        // No header: the proxy itself.
        assert_eq!(
            client(peer("127.0.0.1"), &headers(&[]), &trusted),
            peer("127.0.0.1")
        );
    }

    #[test]
    fn what_the_client_wrote_itself_is_not_believed() {
        // The client sent "X-Forwarded-For: 192.0.2.1" to look like someone
        // else; the proxies appended the real address after it.
        let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
        let h = headers(&["192.0.2.1, 203.0.113.5", "10.1.2.3"]);
        assert_eq!(
            client(peer("127.0.0.1"), &h, &trusted).ip(),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn a_hop_that_is_not_an_address_stops_the_walk() {
        let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
        let h = headers(&["203.0.113.5, unknown, 10.1.2.3"]);
        assert_eq!(
            client(peer("127.0.0.1"), &h, &trusted).ip(),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
        let h = headers(&["[2001:db8::1]:443"]);
        assert_eq!(
            client(peer("127.0.0.1"), &h, &trusted).ip(),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_proxies() {
        let trusted = nets(&["127.0.0.1/32"]);
        let h = headers(&["203.0.113.5"]);
        assert_eq!(
            client(peer("::ffff:127.0.0.1"), &h, &trusted).ip(),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
    }
}
