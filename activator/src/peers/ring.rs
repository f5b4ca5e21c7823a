//! Who owns a function among the ready activators: rendezvous (highest-random-weight) hashing over
//! the ready peers' addresses. Pure: the same peer set and function key give the same owner in every
//! process, and a peer joining or leaving moves only the functions it gains or held.

use std::{collections::HashSet, net::IpAddr, net::SocketAddr};

/// The activators this one knows of, as of the last update of its peer source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerSet {
    // Ready, non-terminating peers with their hash seeds, sorted by address so ties break the same
    // way everywhere.
    ready: Vec<(SocketAddr, u64)>,
    // Every address seen (ready or not): whose hop marker is trusted.
    known: HashSet<IpAddr>,
}

impl PeerSet {
    /// A set of `ready` peers, which are also `known`, plus `others` known but not ready.
    pub fn new(
        ready: impl IntoIterator<Item = SocketAddr>,
        others: impl IntoIterator<Item = IpAddr>,
    ) -> Self {
        let mut ready: Vec<(SocketAddr, u64)> = ready.into_iter().map(|a| (a, seed(&a))).collect();
        ready.sort_unstable();
        ready.dedup();
        let known = ready.iter().map(|(a, _)| a.ip()).chain(others).collect();
        Self { ready, known }
    }

    /// Whether no peer is ready (peering does nothing then).
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
    }

    /// The ready peers' addresses.
    pub fn ready(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.ready.iter().map(|(a, _)| *a)
    }

    /// Whether `ip` belongs to a known peer (ready or not).
    pub fn is_known(&self, ip: IpAddr) -> bool {
        self.known.contains(&ip)
    }

    /// The ready peer owning `function` (`<namespace>/<name>`): the one with the highest weight, the
    /// lowest address on a tie. `None` without ready peers.
    pub fn owner(&self, function: &str) -> Option<SocketAddr> {
        let key = fnv1a(FNV_OFFSET, function.as_bytes());
        let mut best: Option<(u64, SocketAddr)> = None;
        for &(address, seed) in &self.ready {
            let w = weight(seed, key);
            if best.is_none_or(|(b, _)| w > b) {
                best = Some((w, address));
            }
        }
        best.map(|(_, a)| a)
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a: fixed constants, so every process computes the same value (unlike `RandomState`).
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// A peer's hash seed, from its address as text (`ip:port`), computed once per peer-set update.
fn seed(address: &SocketAddr) -> u64 {
    fnv1a(FNV_OFFSET, address.to_string().as_bytes())
}

/// Combines a peer seed and a key hash and mixes the bits (the splitmix64 finaliser), so that
/// similar addresses and keys still give independent weights.
fn weight(seed: u64, key: u64) -> u64 {
    let mut z = seed ^ key.rotate_left(32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from(([10, 244, 0, i], 8081))
    }

    fn keys() -> Vec<String> {
        (0..2000).map(|i| format!("ns{}/fn-{i}", i % 7)).collect()
    }

    #[test]
    fn the_owner_does_not_depend_on_order_or_process() {
        let a = PeerSet::new([addr(1), addr(2), addr(3)], []);
        let b = PeerSet::new([addr(3), addr(1), addr(2), addr(1)], []);
        assert_eq!(a, b);
        for k in keys() {
            assert_eq!(a.owner(&k), b.owner(&k));
        }
        // Pinned values: a change of hash would split ownership between old and new activators
        // during a rollout.
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(a.owner("default/echo"), a.owner("default/echo"));
    }

    #[test]
    fn functions_spread_over_peers() {
        let set = PeerSet::new([addr(1), addr(2), addr(3)], []);
        let mut counts = std::collections::HashMap::new();
        for k in keys() {
            *counts.entry(set.owner(&k).unwrap()).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 3);
        for (peer, n) in counts {
            assert!((500..=830).contains(&n), "{peer} owns {n} of 2000");
        }
    }

    #[test]
    fn only_the_functions_of_a_joining_or_leaving_peer_move() {
        let two = PeerSet::new([addr(1), addr(2)], []);
        let three = PeerSet::new([addr(1), addr(2), addr(3)], []);
        let mut moved = 0;
        for k in keys() {
            let (before, after) = (two.owner(&k).unwrap(), three.owner(&k).unwrap());
            if before != after {
                // Joining: a function only ever moves to the new peer.
                assert_eq!(after, addr(3), "{k}");
                moved += 1;
            }
        }
        assert!((500..=830).contains(&moved), "{moved} moved");
        let without_1 = PeerSet::new([addr(2), addr(3)], []);
        for k in keys() {
            let (before, after) = (three.owner(&k).unwrap(), without_1.owner(&k).unwrap());
            if before != addr(1) {
                // Leaving: only the leaver's functions move.
                assert_eq!(before, after, "{k}");
            }
        }
    }

    #[test]
    fn no_ready_peer_owns_nothing_and_known_includes_unready() {
        let set = PeerSet::new([], ["10.244.0.9".parse().unwrap()]);
        assert!(set.is_empty());
        assert_eq!(set.owner("default/echo"), None);
        assert!(set.is_known("10.244.0.9".parse().unwrap()));
        let set = PeerSet::new([addr(1)], []);
        assert!(set.is_known(addr(1).ip()));
        assert!(!set.is_known(addr(2).ip()));
        assert_eq!(set.owner("default/echo"), Some(addr(1)));
    }
}
