//! Which forwarded address is trusted as the client's, and why.
//!
//! Azure's front end **appends** the peer it saw to whatever `X-Forwarded-For` the client sent, as
//! `ip:port` (`[v6]:port` for IPv6) (docs/platform.md §1; Azure/app-service-linux-docs
//! `Things_You_Should_Know/headers.md`). Every entry before the last one was written by the client
//! and can say anything, so only the **last** entry is trusted. Behind another proxy (Front Door,
//! Application Gateway) the last entry is that proxy's address, not the home connection's.

use std::net::{IpAddr, SocketAddr};

/// The client address from an `X-Forwarded-For` value: the last entry, in any of the forms `ip`,
/// `ip:port`, `[v6]`, `[v6]:port`. `None` when the header is absent or its last entry is not an
/// address.
pub(crate) fn trusted_client_ip(forwarded_for: Option<&str>) -> Option<IpAddr> {
    let last = forwarded_for?.rsplit(',').next()?.trim();
    parse_address(last)
}

fn parse_address(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = entry.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    // `[v6]` without a port.
    entry
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<String> {
        trusted_client_ip(Some(text)).map(|ip| ip.to_string())
    }

    /// Every form the platform writes is understood.
    #[test]
    fn platform_forms() {
        assert_eq!(ip("203.0.113.7").as_deref(), Some("203.0.113.7"));
        assert_eq!(ip("203.0.113.7:51234").as_deref(), Some("203.0.113.7"));
        assert_eq!(ip("[2001:db8::1]:443").as_deref(), Some("2001:db8::1"));
        assert_eq!(ip("[2001:db8::1]").as_deref(), Some("2001:db8::1"));
        assert_eq!(ip("2001:db8::1").as_deref(), Some("2001:db8::1"));
    }

    /// A client that sends its own X-Forwarded-For cannot choose the recorded address: the front
    /// end's appended entry wins.
    #[test]
    fn client_supplied_entries_are_ignored() {
        assert_eq!(
            ip("1.2.3.4, 203.0.113.7:5000").as_deref(),
            Some("203.0.113.7")
        );
        assert_eq!(ip("1.2.3.4,203.0.113.7").as_deref(), Some("203.0.113.7"));
    }

    /// Garbage in the trusted position gives no address rather than a wrong one.
    #[test]
    fn unparseable_is_none() {
        assert_eq!(ip("1.2.3.4, not-an-ip"), None);
        assert_eq!(ip(""), None);
        assert_eq!(ip("203.0.113.7, "), None);
        assert_eq!(trusted_client_ip(None), None);
    }
}
