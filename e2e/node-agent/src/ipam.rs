//! Pod IP allocation on the bridge's subnet (pure). Addresses are handed out round-robin so that a just
//! released address is not reused at once while stale endpoints may still point at it.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// Errors of the allocator.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// The CIDR is not `a.b.c.d/n` with 8 <= n <= 30.
    #[error("bad pod CIDR {0:?}")]
    BadCidr(String),
    /// Every address is in use.
    #[error("no free pod IP left in {0}")]
    Exhausted(String),
}

/// Allocates host addresses of one IPv4 subnet, skipping the network, broadcast and gateway addresses.
#[derive(Debug, Clone)]
pub struct Ipam {
    cidr: String,
    first: u32,
    last: u32,
    gateway: u32,
    next: u32,
    used: BTreeSet<u32>,
}

impl Ipam {
    /// An allocator for `cidr` (e.g. `10.244.0.0/16`) where `gateway` (the bridge) is never handed out.
    pub fn new(cidr: &str, gateway: Ipv4Addr) -> Result<Self, IpamError> {
        let bad = || IpamError::BadCidr(cidr.to_string());
        let (addr, len) = cidr.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let len: u32 = len.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&len) {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - len);
        let network = u32::from(addr) & mask;
        let (first, last) = (network + 1, (network | !mask) - 1);
        Ok(Self {
            cidr: cidr.to_string(),
            first,
            last,
            gateway: gateway.into(),
            next: first,
            used: BTreeSet::new(),
        })
    }

    /// The prefix length, for `ip addr add <ip>/<len>`.
    pub fn prefix_len(&self) -> u32 {
        self.cidr
            .split_once('/')
            .and_then(|(_, l)| l.parse().ok())
            .unwrap_or(32)
    }

    /// Takes the next free address.
    pub fn allocate(&mut self) -> Result<Ipv4Addr, IpamError> {
        let size = self.last - self.first + 1;
        for _ in 0..size {
            let candidate = self.next;
            self.next = if self.next >= self.last {
                self.first
            } else {
                self.next + 1
            };
            if candidate != self.gateway && self.used.insert(candidate) {
                return Ok(candidate.into());
            }
        }
        Err(IpamError::Exhausted(self.cidr.clone()))
    }

    /// Takes a specific address (a pod's existing IP after an agent restart: pod IPs cannot change).
    /// Returns `false` if it is outside the range, the gateway, or already taken.
    pub fn reserve(&mut self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        let taken = (self.first..=self.last).contains(&ip) && ip != self.gateway && self.used.insert(ip);
        // New pods continue after the reserved ones, as they would have without the restart.
        if taken && ip >= self.next {
            self.next = if ip >= self.last { self.first } else { ip + 1 };
        }
        taken
    }

    /// Gives an address back.
    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&u32::from(ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_the_gateway_and_goes_round_robin() {
        let mut ipam = Ipam::new("10.244.0.0/29", Ipv4Addr::new(10, 244, 0, 1)).unwrap();
        let a = ipam.allocate().unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 244, 0, 2));
        ipam.release(a);
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(10, 244, 0, 3));
        assert_eq!(ipam.prefix_len(), 29);
    }

    #[test]
    fn reserves_specific_addresses_once() {
        let mut ipam = Ipam::new("10.244.0.0/29", Ipv4Addr::new(10, 244, 0, 1)).unwrap();
        assert!(ipam.reserve(Ipv4Addr::new(10, 244, 0, 2)));
        assert!(!ipam.reserve(Ipv4Addr::new(10, 244, 0, 2)));
        assert!(!ipam.reserve(Ipv4Addr::new(10, 244, 0, 1)));
        assert!(!ipam.reserve(Ipv4Addr::new(10, 9, 0, 2)));
        assert!(ipam.reserve(Ipv4Addr::new(10, 244, 0, 4)));
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(10, 244, 0, 5));
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(10, 244, 0, 6));
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(10, 244, 0, 3));
    }

    #[test]
    fn reports_exhaustion() {
        let mut ipam = Ipam::new("10.0.0.0/30", Ipv4Addr::new(10, 0, 0, 1)).unwrap();
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(10, 0, 0, 2));
        assert!(matches!(ipam.allocate(), Err(IpamError::Exhausted(_))));
    }

    #[test]
    fn rejects_bad_cidrs() {
        assert!(Ipam::new("10.0.0.0", Ipv4Addr::LOCALHOST).is_err());
        assert!(Ipam::new("10.0.0.0/31", Ipv4Addr::LOCALHOST).is_err());
    }
}
