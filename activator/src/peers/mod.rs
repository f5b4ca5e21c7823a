//! Peering between activator replicas, so a pod's `concurrency` holds across all of them (SPEC §4):
//! every function has one owner among the ready activators (rendezvous hashing, [`ring`]); a replica
//! that gets a request for a function it does not own forwards it, one hop, to the owner's in-cluster
//! data port ([`forward`]), and only the owner admits it into the function's queue and balancer.
//!
//! The peer set comes from the activator Service's EndpointSlices ([`watch`]) or, in tests, from a
//! static list. Peering never fails a request: no peers, an unknown function, a hop from a known peer
//! (the loop guard) or an owner that cannot be connected to all mean handling it here, and so does an
//! owner that breaks the connection before answering a request safe to send again.

pub mod forward;
pub mod ring;
pub mod watch;

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, RwLock},
    time::Duration,
};

use http::{HeaderMap, HeaderName, HeaderValue};
use prometheus_client::{metrics::counter::Counter, metrics::family::Family, registry::Registry};

pub use forward::PeerClient;
pub use ring::PeerSet;

use crate::{
    function::FunctionState,
    settings::{Limits, Port},
    upstream::UpstreamConfig,
};

/// The header a forwarding activator adds (its pod name); the owner handles such a request itself
/// when it comes from a known peer.
pub static PEER_HOP: HeaderName = HeaderName::from_static("zeroscale-peer-hop");

/// The header a forwarding activator adds with the routing key (`<revision>.<namespace>`) of the
/// revision it picked, so the owner serves the request with that revision instead of picking again
/// (the pick is per request, wherever the request is admitted). Honoured only with the hop marker
/// from a known peer; always removed before the request goes on.
pub static PEER_REVISION: HeaderName = HeaderName::from_static("zeroscale-peer-revision");

/// Where the peer set comes from.
#[derive(Clone, Debug)]
pub enum PeerSource {
    /// The EndpointSlices of this Service (in the activator's own namespace).
    Kubernetes {
        /// The activator's in-cluster Service.
        service: String,
    },
    /// A fixed list of ready peers' in-cluster data ports (tests); change it with [`Peering::set`].
    Static(Vec<SocketAddr>),
}

/// Peering settings.
#[derive(Clone, Debug)]
pub struct PeersConfig {
    /// Where the peers come from.
    pub source: PeerSource,
    /// This activator's own address as its peers see it (the pod IP); its in-cluster data port is
    /// added once bound.
    pub pod_ip: IpAddr,
}

/// How a forward ended, for `zeroscale_activator_peer_forwards_total{outcome}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The owner answered (whatever its status).
    Forwarded,
    /// The owner could not be connected to: handled here instead.
    Local,
    /// The exchange with the owner failed after the request went out, or timed out.
    Failed,
    /// The owner broke the connection before answering a request that is safe to send again
    /// (idempotent, its whole body in hand): handled here instead.
    Replayed,
}

impl Outcome {
    /// Every outcome, in the order of [`Outcome::index`].
    const ALL: [Self; 4] = [Self::Forwarded, Self::Local, Self::Failed, Self::Replayed];

    /// Where this outcome's counter is in [`Peering`]'s.
    fn index(self) -> usize {
        match self {
            Self::Forwarded => 0,
            Self::Local => 1,
            Self::Failed => 2,
            Self::Replayed => 3,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Forwarded => "forwarded",
            Self::Local => "local",
            Self::Failed => "failed",
            Self::Replayed => "replayed",
        }
    }
}

/// A decision to forward: the owner and the function's limits as known here.
#[derive(Debug)]
pub struct Target {
    /// The owner's in-cluster data port.
    pub owner: SocketAddr,
    /// The function (for messages).
    pub function: Arc<FunctionState>,
    /// Its timeouts and protocol.
    pub limits: Limits,
}

type ForwardCounter = Family<[(&'static str, &'static str); 1], Counter>;

/// This activator's view of its peers and the client it forwards with.
#[derive(Debug)]
pub struct Peering {
    self_addr: SocketAddr,
    marker: HeaderValue,
    peers: RwLock<PeerSet>,
    client: PeerClient,
    /// `zeroscale_activator_peer_forwards_total`'s counter for each outcome, looked up in the family
    /// once (a lookup hashes the labels under a lock, on every forward).
    forwards: [Counter; 4],
}

impl Peering {
    /// Peering as `self_addr` (its in-cluster data port as peers reach it), marking hops with
    /// `pod_name`; registers `zeroscale_activator_peer_forwards_total` in `registry`. The peers close
    /// an idle connection after `peer_header_read` (every replica runs with the same limits).
    pub fn new(
        self_addr: SocketAddr,
        pod_name: &str,
        peers: PeerSet,
        upstream: UpstreamConfig,
        peer_header_read: Duration,
        registry: &mut Registry,
    ) -> Self {
        let forwards = ForwardCounter::default();
        registry.register(
            "zeroscale_activator_peer_forwards",
            "Requests for functions another activator owns, by how forwarding them ended; the owner \
             counts them in the request metrics",
            forwards.clone(),
        );
        Self {
            self_addr,
            marker: HeaderValue::from_str(pod_name).unwrap_or(HeaderValue::from_static("activator")),
            peers: RwLock::new(peers),
            client: PeerClient::new(upstream, peer_header_read),
            forwards: Outcome::ALL.map(|o| forwards.get_or_create(&[("outcome", o.label())]).clone()),
        }
    }

    /// This activator's own peer address.
    pub fn self_addr(&self) -> SocketAddr {
        self.self_addr
    }

    /// Replaces the peer set.
    pub fn set(&self, peers: PeerSet) {
        let mut current = self.peers.write().unwrap_or_else(|e| e.into_inner());
        if !current.ready().eq(peers.ready()) {
            tracing::info!(peers = ?peers.ready().collect::<Vec<_>>(), "ready peer activators changed");
        }
        *current = peers;
    }

    /// Forwards counted with `outcome` so far.
    pub fn forwards(&self, outcome: Outcome) -> u64 {
        self.forwards[outcome.index()].get()
    }

    fn count(&self, outcome: Outcome) {
        self.forwards[outcome.index()].inc();
    }

    /// Whether a request on `port` for `function` (the revision picked for it) goes to another
    /// activator. `hop_from` is the client's address when the request carries the hop marker (from a
    /// known peer it is handled here: the loop guard). Functions not served on `port` stay here (and
    /// get their 404).
    pub fn target(
        &self,
        function: &Arc<FunctionState>,
        port: Port,
        hop_from: Option<SocketAddr>,
    ) -> Option<Target> {
        let owner = {
            let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
            if peers.is_empty() || hop_from.is_some_and(|r| peers.is_known(r.ip())) {
                return None;
            }
            peers.owner(function.display())?
        };
        if owner == self.self_addr {
            return None;
        }
        let limits = function.limits_on(port)?;
        Some(Target {
            owner,
            function: Arc::clone(function),
            limits,
        })
    }

    /// Whether this activator owns the function `display` (`<namespace>/<name>`): it is the one
    /// serving its requests, or no peer is known.
    pub fn owns(&self, display: &str) -> bool {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        peers.is_empty() || peers.owner(display).is_none_or(|owner| owner == self.self_addr)
    }

    /// Removes the hop marker (pods never see it) and says whether it came from a known peer, whose
    /// forwarding headers are already there.
    pub fn take_hop(&self, headers: &mut HeaderMap, remote: SocketAddr) -> bool {
        headers.remove(&PEER_HOP).is_some()
            && self
                .peers
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .is_known(remote.ip())
    }
}

/// Removes the pinned revision ([`PEER_REVISION`]) from `headers` and returns it when `peers` trusts
/// it: the request carries the hop marker and comes from a known peer. A client cannot choose a
/// revision this way: its header is dropped.
pub fn take_pin(peers: Option<&Peering>, headers: &mut HeaderMap, remote: SocketAddr) -> Option<String> {
    // Nearly every request has none: a walk over its few names (cheap comparisons) costs less than
    // the hashed removal.
    if !headers.keys().any(|name| name == PEER_REVISION) {
        return None;
    }
    let pin = headers.remove(&PEER_REVISION)?;
    let trusted = has_hop(headers)
        && peers.is_some_and(|p| {
            p.peers
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .is_known(remote.ip())
        });
    trusted.then(|| pin.to_str().ok().map(str::to_string)).flatten()
}

/// Whether the request carries the hop marker.
pub fn has_hop(headers: &HeaderMap) -> bool {
    headers.contains_key(&PEER_HOP)
}
