//! The allow-list: IPv4/IPv6 addresses and CIDR ranges, looked up by binary search over
//! merged intervals, so 10,000 entries cost about as little as ten.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry:?} is not an IP address or CIDR range: {reason}")]
pub struct AllowEntryError {
    pub entry: String,
    pub reason: String,
}

/// Disjoint, sorted, inclusive intervals per address family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
    entries: usize,
}

impl AllowList {
    /// Parses entries given one per item; an item may itself hold several entries separated
    /// by commas or white space (as `--allow` and the legacy `IP` variable do).
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, AllowEntryError> {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let mut entries = 0;
        for entry in items
            .iter()
            .flat_map(|i| split_list(i.as_ref()).collect::<Vec<_>>())
        {
            entries += 1;
            match parse_entry(entry)? {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        Ok(AllowList {
            v4: merge(v4),
            v6: merge(v6),
            entries,
        })
    }

    /// How many entries were given (before merging overlaps).
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Whether `ip` is covered. IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match canonical(ip) {
            IpAddr::V4(a) => covered(&self.v4, u32::from(a)),
            IpAddr::V6(a) => covered(&self.v6, u128::from(a)),
        }
    }
}

/// Splits a list on commas and white space, dropping empty items.
pub fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
}

fn parse_entry(entry: &str) -> Result<IpNet, AllowEntryError> {
    let err = |reason: &str| AllowEntryError {
        entry: entry.to_owned(),
        reason: reason.to_owned(),
    };
    let net = if entry.contains('/') {
        entry
            .parse::<IpNet>()
            .map_err(|e| err(&e.to_string()))?
            .trunc()
    } else {
        let ip = entry
            .parse::<IpAddr>()
            .map_err(|_| err("expected an address such as 192.0.2.7 or 2001:db8::1, or a range such as 10.0.0.0/8"))?;
        IpNet::from(ip)
    };
    // A range of IPv4-mapped addresses is the IPv4 range it maps.
    if let IpNet::V6(n) = net {
        if let (Some(v4), true) = (n.network().to_ipv4_mapped(), n.prefix_len() >= 96) {
            return ipnet::Ipv4Net::new(v4, n.prefix_len() - 96)
                .map(IpNet::V4)
                .map_err(|e| err(&e.to_string()));
        }
    }
    Ok(net)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4),
        v4 => v4,
    }
}

fn merge<T: Ord + Copy + Successor>(mut v: Vec<(T, T)>) -> Vec<(T, T)> {
    v.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(v.len());
    for (lo, hi) in v {
        match out.last_mut() {
            // Overlapping or adjacent intervals become one.
            Some(last) if last.1.succ().is_none_or(|next| lo <= next) => {
                if hi > last.1 {
                    last.1 = hi;
                }
            }
            _ => out.push((lo, hi)),
        }
    }
    out
}

fn covered<T: Ord + Copy>(v: &[(T, T)], x: T) -> bool {
    // The last interval starting at or before x is the only candidate.
    let i = v.partition_point(|&(lo, _)| lo <= x);
    i > 0 && x <= v[i - 1].1
}

trait Successor: Sized {
    fn succ(self) -> Option<Self>;
}
impl Successor for u32 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}
impl Successor for u128 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}

/// A `source_ip` as found in traces, read liberally: surrounding spaces, brackets, an IPv6
/// zone (`%eth0`) or a port are tolerated. `None` when no address can be read.
pub fn parse_source_ip(raw: &str) -> Option<IpAddr> {
    let s = raw.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    let s = s.trim_start_matches('[').trim_end_matches(']');
    let s = s.split_once('%').map_or(s, |(a, _)| a);
    s.parse::<Ipv6Addr>()
        .map(IpAddr::V6)
        .or_else(|_| s.parse::<Ipv4Addr>().map(IpAddr::V4))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &str) -> AllowList {
        AllowList::parse(&[s]).unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn exact_addresses_are_not_substrings() {
        let a = list("192.168.1.1");
        assert!(a.contains(ip("192.168.1.1")));
        assert!(!a.contains(ip("192.168.1.10")));
        assert!(!a.contains(ip("92.168.1.1")));
    }

    #[test]
    fn cidr_v4_v6_and_mapped() {
        let a = list("10.0.0.0/8, 2001:db8::/32\n192.0.2.7");
        assert!(a.contains(ip("10.255.255.255")));
        assert!(!a.contains(ip("11.0.0.0")));
        assert!(a.contains(ip("2001:db8:ffff::1")));
        assert!(!a.contains(ip("2001:db9::1")));
        assert!(a.contains(ip("::ffff:10.1.2.3")));
        assert!(a.contains(ip("::ffff:192.0.2.7")));
        assert!(!a.contains(ip("::ffff:192.0.2.8")));
        assert_eq!(a.len(), 3);
    }

    #[test]
    fn mapped_ranges_become_v4_ranges() {
        let a = list("::ffff:172.16.0.0/108");
        assert!(a.contains(ip("172.16.3.4")));
        assert!(!a.contains(ip("172.32.0.1")));
    }

    #[test]
    fn overlapping_and_adjacent_ranges_merge() {
        let a = list("10.0.0.0/9,10.128.0.0/9,10.1.0.0/16,0.0.0.0/0");
        assert_eq!(a.v4, vec![(0, u32::MAX)]);
        let b = list("10.0.0.0/9,10.128.0.0/9");
        assert_eq!(b.v4.len(), 1);
        assert!(b.contains(ip("10.200.0.1")));
    }

    #[test]
    fn empty_list_allows_nothing() {
        let a = AllowList::parse::<&str>(&[]).unwrap();
        assert!(a.is_empty());
        assert!(!a.contains(ip("127.0.0.1")));
    }

    #[test]
    fn bad_entries_are_named() {
        let e = AllowList::parse(&["10.0.0.0/8,10.0.0.300"]).unwrap_err();
        assert_eq!(e.entry, "10.0.0.300");
        assert!(AllowList::parse(&["10.0.0.0/33"]).is_err());
        assert!(AllowList::parse(&["example.com"]).is_err());
    }

    #[test]
    fn source_ips_are_read_liberally() {
        assert_eq!(parse_source_ip(" 203.0.113.5 "), Some(ip("203.0.113.5")));
        assert_eq!(parse_source_ip("203.0.113.5:443"), Some(ip("203.0.113.5")));
        assert_eq!(
            parse_source_ip("[2001:db8::1]:443"),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(parse_source_ip("fe80::1%eth0"), Some(ip("fe80::1")));
        assert_eq!(parse_source_ip("not-an-ip"), None);
        assert_eq!(parse_source_ip(""), None);
    }
}
