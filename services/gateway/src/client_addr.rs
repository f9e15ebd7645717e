//! Which address a request is counted against (the rate limit, login throttling): the TCP peer,
//! or — only when that peer is a trusted proxy (`[gateway] trusted_proxies`) — the client the
//! proxies name in `X-Forwarded-For`. Behind an ingress every connection comes from the ingress,
//! so without this one client's failed logins would lock everyone out together; believing the
//! header from anyone else would let a client pick a fresh address per request.
//!
//! The header is read from the right: each trusted proxy appends the address it was connected
//! from, so the rightmost entry that is not itself a trusted proxy is the client. Entries to its
//! left were written by the client and are ignored. IPv6 clients are keyed by their /64 (one
//! host holds a whole /64 and can pick any address in it).

use std::net::{IpAddr, Ipv6Addr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The key a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The peers whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        TrustedProxies(nets)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client key of a request that came from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> ClientAddr {
        let mut client = canonical(peer);
        if self.trusts(client) {
            // Entries one by one from raw bytes: a client's own junk to the left (not UTF-8,
            // say) must not spoil the entries the proxies appended to its right.
            let hops = headers
                .get_all("x-forwarded-for")
                .iter()
                .flat_map(|v| v.as_bytes().split(|b| *b == b','))
                .collect::<Vec<_>>();
            for hop in hops.into_iter().rev() {
                // A proxy writes addresses; anything else means the header is not a proxy's, so
                // the last hop known good stands.
                let Some(ip) = std::str::from_utf8(hop).ok().and_then(parse_hop) else {
                    break;
                };
                client = canonical(ip);
                if !self.trusts(client) {
                    break;
                }
            }
        }
        ClientAddr(key(client))
    }
}

/// An `X-Forwarded-For` entry: an address, IPv6 possibly in brackets, possibly with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(addr) = hop.parse::<std::net::SocketAddr>() {
        return Some(addr.ip());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse().ok())
}

/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// IPv4 as is; IPv6 by its /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    #[test]
    fn an_untrusted_peers_header_is_ignored() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&["203.0.113.7"]);
        assert_eq!(
            p.client(ip("198.51.100.1"), &h),
            ClientAddr(ip("198.51.100.1"))
        );
        // No proxies configured: nobody's header counts.
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("10.1.2.3"), &h), ClientAddr(ip("10.1.2.3")));
    }

    #[test]
    fn the_rightmost_untrusted_hop_from_a_trusted_peer_is_the_client() {
        let p = proxies(&["10.0.0.0/8", "192.168.1.0/24"]);
        // The client forged the first entry; the ingress (10.0.0.5) appended the real one, and
        // a second proxy (192.168.1.9) appended the ingress.
        let h = headers(&["1.2.3.4, 203.0.113.7", "10.0.0.5"]);
        assert_eq!(
            p.client(ip("192.168.1.9"), &h),
            ClientAddr(ip("203.0.113.7"))
        );
        // Several headers are one list, in order.
        let h = headers(&["1.2.3.4", "203.0.113.8, 10.0.0.5"]);
        assert_eq!(p.client(ip("10.0.0.1"), &h), ClientAddr(ip("203.0.113.8")));
        // A client's junk left of the proxy's entry (here, bytes that are not UTF-8) changes
        // nothing.
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"\xff\xfe, 203.0.113.7").unwrap(),
        );
        assert_eq!(p.client(ip("10.0.0.1"), &h), ClientAddr(ip("203.0.113.7")));
        // Ports and brackets are tolerated.
        let h = headers(&["[2001:db8::1]:4431"]);
        assert_eq!(p.client(ip("10.0.0.1"), &h), ClientAddr(ip("2001:db8::")));
        let h = headers(&["203.0.113.9:5555"]);
        assert_eq!(p.client(ip("10.0.0.1"), &h), ClientAddr(ip("203.0.113.9")));
    }

    #[test]
    fn a_trusted_peer_without_a_usable_header_is_its_own_client() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            p.client(ip("10.0.0.1"), &HeaderMap::new()),
            ClientAddr(ip("10.0.0.1"))
        );
        // Garbage in the rightmost entry: not a proxy's writing; the peer stands.
        let h = headers(&["203.0.113.7, not-an-address"]);
        assert_eq!(p.client(ip("10.0.0.1"), &h), ClientAddr(ip("10.0.0.1")));
        // Every hop trusted: the leftmost one.
        let h = headers(&["10.9.9.9, 10.0.0.5"]);
        assert_eq!(p.client(ip("10.0.0.1"), &h), ClientAddr(ip("10.9.9.9")));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_slash_64_and_mapped_ipv4_is_ipv4() {
        let none = TrustedProxies::default();
        let a = none.client(ip("2001:db8:1:2:aaaa::1"), &HeaderMap::new());
        let b = none.client(ip("2001:db8:1:2:ffff:1:2:3"), &HeaderMap::new());
        let c = none.client(ip("2001:db8:1:3::1"), &HeaderMap::new());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, ClientAddr(ip("2001:db8:1:2::")));
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&["203.0.113.7"]);
        assert_eq!(
            p.client(ip("::ffff:10.0.0.1"), &h),
            ClientAddr(ip("203.0.113.7"))
        );
        assert_eq!(
            none.client(ip("::ffff:198.51.100.1"), &HeaderMap::new()),
            ClientAddr(ip("198.51.100.1"))
        );
    }
}
