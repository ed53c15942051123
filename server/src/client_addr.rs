//! The client's address as rate limits and logs see it.
//!
//! Without `trusted_proxies` it is the TCP peer. Behind a reverse proxy every request comes from
//! the proxy, so the proxy's `X-Forwarded-For` is read — but only when the TCP peer is one of the
//! configured proxies (anyone else can write that header). The header lists the hops left to
//! right, each proxy appending the address it received the request from; the client is the
//! rightmost entry that is not a trusted proxy itself (entries further left were written by
//! the client or by proxies we do not know and prove nothing).
//!
//! Limits key on [`net_key`]: an IPv4 address, or the /64 an IPv6 address is in (one host or
//! subscriber usually holds a whole /64).

use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use ipnet::IpNet;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// The parsed `trusted_proxies` setting.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses entries like `10.0.0.5`, `10.0.0.0/8`, `::1`, `fd00::/8`.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| {
                let e = e.trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| format!("{e:?} is not an IP address or CIDR range"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies (whose `X-Forwarded-*` headers are believed).
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request that came from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.trusts(client) {
            return client;
        }
        // Several X-Forwarded-For headers are one list, in order.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) => client = ip,
                // Garbage where an address should be: the last trusted hop is all we know.
                None => return client,
            }
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, optionally `[v6]:port` or `v4:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    hop.parse::<SocketAddr>().ok().map(|a| canonical(a.ip()))
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, from dual-stack sockets) as plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The key address limits count under: IPv4 as is, IPv6 cut to its /64.
pub fn net_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// Extractor: the request's client address (see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_of(parts, &state.proxies)))
    }
}

/// The client address of a request (also used for the request's log span).
pub fn client_of(parts: &Parts, proxies: &TrustedProxies) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    proxies.client(peer, &parts.headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_header_is_ignored() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            p.client(ip("203.0.113.9"), &xff(&["1.2.3.4"])),
            ip("203.0.113.9")
        );
        assert_eq!(
            proxies(&[]).client(ip("10.0.0.1"), &xff(&["1.2.3.4"])),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn rightmost_untrusted_hop_wins() {
        let p = proxies(&["10.0.0.0/8", "::1"]);
        // The client wrote "6.6.6.6" itself; 198.51.100.7 is what our proxy saw.
        let h = xff(&["6.6.6.6, 198.51.100.7", "10.1.1.1"]);
        assert_eq!(p.client(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        assert_eq!(
            p.client(ip("::1"), &xff(&["2001:db8::5"])),
            ip("2001:db8::5")
        );
        // Only proxies in the header: the leftmost one.
        assert_eq!(
            p.client(ip("10.0.0.1"), &xff(&["10.2.2.2"])),
            ip("10.2.2.2")
        );
        // No header: the proxy itself.
        assert_eq!(p.client(ip("10.0.0.1"), &HeaderMap::new()), ip("10.0.0.1"));
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            p.client(ip("10.0.0.1"), &xff(&["1.1.1.1, junk"])),
            ip("10.0.0.1")
        );
        // Ports and brackets.
        assert_eq!(
            p.client(ip("10.0.0.1"), &xff(&["[2001:db8::9]:443"])),
            ip("2001:db8::9")
        );
        assert_eq!(
            p.client(ip("::ffff:10.0.0.1"), &xff(&["192.0.2.1:80"])),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn rejects_bad_entries() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local".into()]).is_err());
    }

    #[test]
    fn ipv6_is_grouped_by_64() {
        assert_eq!(
            net_key(ip("2001:db8:1:2:aaaa::1")),
            net_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            net_key(ip("2001:db8:1:2::1")),
            net_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(net_key(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(net_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
