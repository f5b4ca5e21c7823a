//! A function's pods as the activator sees them: what the source last reported, which of them take
//! requests (ready, or answering direct probes) and which are still starting (worth probing).
//!
//! A ready pod that refused a connection is marked failed: it takes no requests and is probed like a
//! starting pod until a probe gets through or the source reports it anew (not ready, terminating or
//! gone), whichever comes first.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use http::uri::Authority;
use tokio_util::sync::CancellationToken;

use crate::settings::EndpointInfo;

/// One routable pod address and the requests in flight to it from this activator. Its keep-alive
/// connections live in [`crate::upstream`], keyed by [`Endpoint::id`], and close when it is retired.
#[derive(Debug)]
pub struct Endpoint {
    /// Pod IP and port.
    pub address: SocketAddr,
    /// `ip:port` as a URI authority, built once so requests can reuse it.
    pub authority: Authority,
    id: u64,
    in_flight: AtomicUsize,
    // Cancelled once the pod left the routable set (terminating, gone, not ready, or failed), or the
    // endpoint was dropped: whoever keeps state per endpoint waits on it to let that state go.
    retired: CancellationToken,
}

/// Source of [`Endpoint::id`]: an address that comes back into rotation is a new endpoint.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl Endpoint {
    /// A new endpoint with nothing in flight.
    pub fn new(address: SocketAddr) -> Self {
        let authority = Authority::try_from(address.to_string().as_str())
            .unwrap_or_else(|_| Authority::from_static("invalid.invalid"));
        Self {
            address,
            authority,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            in_flight: AtomicUsize::new(0),
            retired: CancellationToken::new(),
        }
    }

    /// Unique among the endpoints of this process, even for the same address.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The pod left the routable set: a request that picked it and has not been sent yet goes
    /// elsewhere, and its idle connections close now (a terminating pod closes them itself soon, and
    /// a request written onto one then would be lost).
    pub fn retire(&self) {
        self.retired.cancel();
    }

    /// Whether [`Endpoint::retire`] was called.
    pub fn is_retired(&self) -> bool {
        self.retired.is_cancelled()
    }

    /// Completes when the endpoint is retired or dropped.
    pub fn retirement(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.retired.clone().cancelled_owned()
    }

    /// Requests in flight to this endpoint.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request sent to it. Called with the function's lock held, so the check-then-increment
    /// in [`crate::balancer::pick`] is not racy.
    pub fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request finished.
    pub fn finish(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether one more request fits under `limit` (0 = unlimited).
    pub fn has_capacity(&self, limit: usize) -> bool {
        limit == 0 || self.in_flight() < limit
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // A dropped endpoint is gone for good: state kept for it elsewhere goes too.
        self.retired.cancel();
    }
}

/// The endpoint sets of one function.
#[derive(Debug, Default)]
pub struct EndpointSet {
    reported: Vec<EndpointInfo>,
    routable: Vec<Arc<Endpoint>>,
    starting: Vec<SocketAddr>,
    answering: Vec<SocketAddr>,
    failed: Vec<SocketAddr>,
}

impl EndpointSet {
    /// Endpoints that take new requests.
    pub fn routable(&self) -> &[Arc<Endpoint>] {
        &self.routable
    }

    /// Known endpoints that are neither ready nor terminating.
    pub fn starting(&self) -> &[SocketAddr] {
        &self.starting
    }

    /// Replaces what the source reports.
    pub fn replace(&mut self, reported: Vec<EndpointInfo>) {
        self.reported = reported;
        self.recompute();
    }

    /// Routable endpoints that refused a connection and are probed until they answer.
    pub fn failed(&self) -> &[SocketAddr] {
        &self.failed
    }

    /// A starting (or failed) endpoint answered a probe; returns whether it became routable.
    pub fn mark_answering(&mut self, address: SocketAddr) -> bool {
        if !self.starting.contains(&address) {
            return false;
        }
        if self.failed.contains(&address) {
            self.failed.retain(|a| *a != address);
        } else {
            self.answering.push(address);
        }
        self.recompute();
        true
    }

    /// A routable endpoint refused a connection: route around it until it answers a probe again.
    /// Returns whether it was routable.
    pub fn mark_failed(&mut self, address: SocketAddr) -> bool {
        if !self.routable.iter().any(|e| e.address == address) {
            return false;
        }
        if self.answering.contains(&address) {
            // Only a probe made it routable: it is starting again.
            self.answering.retain(|a| *a != address);
        } else {
            self.failed.push(address);
        }
        self.recompute();
        true
    }

    /// Rebuilds the routable and starting sets, keeping the in-flight counters of endpoints that stay.
    /// Terminating endpoints are dropped: they get no new requests, while requests already sent hold
    /// their own reference and finish.
    fn recompute(&mut self) {
        let reported = &self.reported;
        // A probe result matters only while the source still reports the pod as not ready.
        self.answering.retain(|a| {
            reported
                .iter()
                .any(|e| e.address == *a && !e.terminating && !e.ready)
        });
        // A failure mark lasts while the source keeps reporting the pod ready.
        self.failed.retain(|a| {
            reported
                .iter()
                .any(|e| e.address == *a && !e.terminating && e.ready)
        });
        let mut routable: Vec<Arc<Endpoint>> = Vec::with_capacity(reported.len());
        let mut starting = Vec::new();
        for e in reported {
            let seen = routable.iter().any(|x| x.address == e.address) || starting.contains(&e.address);
            if e.terminating || seen {
                continue;
            }
            let failed = self.failed.contains(&e.address);
            if (e.ready && !failed) || self.answering.contains(&e.address) {
                let existing = self.routable.iter().find(|x| x.address == e.address).cloned();
                routable.push(existing.unwrap_or_else(|| Arc::new(Endpoint::new(e.address))));
            } else {
                starting.push(e.address);
            }
        }
        // Endpoints leaving the routable set take no request that has not gone out yet, and keep no
        // idle connection.
        for gone in self
            .routable
            .iter()
            .filter(|e| !routable.iter().any(|r| Arc::ptr_eq(r, e)))
        {
            gone.retire();
        }
        self.routable = routable;
        self.starting = starting;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn ready_starting_and_terminating() {
        let mut set = EndpointSet::default();
        set.replace(vec![
            EndpointInfo::ready(addr(1)),
            EndpointInfo::starting(addr(2)),
            EndpointInfo::terminating(addr(3)),
            EndpointInfo::ready(addr(1)),
        ]);
        assert_eq!(
            set.routable().iter().map(|e| e.address).collect::<Vec<_>>(),
            vec![addr(1)]
        );
        assert_eq!(set.starting(), &[addr(2)]);
    }

    #[test]
    fn probe_results_route_until_the_pod_terminates() {
        let mut set = EndpointSet::default();
        set.replace(vec![EndpointInfo::starting(addr(2))]);
        assert!(!set.mark_answering(addr(9)), "unknown addresses are ignored");
        assert!(set.mark_answering(addr(2)));
        assert_eq!(set.routable().len(), 1);
        set.replace(vec![EndpointInfo::starting(addr(2))]);
        assert_eq!(set.routable().len(), 1, "still answering while the slice lags");
        set.replace(vec![EndpointInfo::terminating(addr(2))]);
        assert!(set.routable().is_empty());
    }

    #[test]
    fn a_refusing_pod_is_probed_until_it_answers() {
        let mut set = EndpointSet::default();
        set.replace(vec![EndpointInfo::ready(addr(1)), EndpointInfo::ready(addr(2))]);
        assert!(set.mark_failed(addr(1)));
        assert!(!set.mark_failed(addr(1)), "no longer routable");
        assert_eq!(set.routable().len(), 1);
        assert_eq!(set.starting(), &[addr(1)]);
        assert_eq!(set.failed(), &[addr(1)]);
        set.replace(vec![EndpointInfo::ready(addr(1)), EndpointInfo::ready(addr(2))]);
        assert_eq!(set.routable().len(), 1, "the same report does not clear the mark");
        assert!(set.mark_answering(addr(1)));
        assert_eq!(set.routable().len(), 2);
        assert!(set.failed().is_empty());
        assert!(set.mark_failed(addr(2)));
        set.replace(vec![EndpointInfo::starting(addr(2))]);
        set.replace(vec![EndpointInfo::ready(addr(2))]);
        assert_eq!(set.routable().len(), 1, "reported anew: routable again");
        assert!(set.failed().is_empty());
    }

    #[test]
    fn endpoints_leaving_rotation_are_retired() {
        let mut set = EndpointSet::default();
        set.replace(vec![EndpointInfo::ready(addr(1)), EndpointInfo::ready(addr(2))]);
        let (one, two) = (Arc::clone(&set.routable()[0]), Arc::clone(&set.routable()[1]));
        set.replace(vec![
            EndpointInfo::terminating(addr(1)),
            EndpointInfo::ready(addr(2)),
        ]);
        assert!(one.is_retired());
        assert!(!two.is_retired());
        assert!(set.mark_failed(addr(2)));
        assert!(two.is_retired(), "a failed pod is retired too");
        assert!(set.mark_answering(addr(2)));
        assert!(
            !set.routable()[0].is_retired(),
            "back in rotation as a new endpoint"
        );
    }

    #[test]
    fn in_flight_counters_survive_updates() {
        let mut set = EndpointSet::default();
        set.replace(vec![EndpointInfo::ready(addr(1))]);
        set.routable()[0].start();
        set.replace(vec![EndpointInfo::ready(addr(1)), EndpointInfo::ready(addr(2))]);
        assert_eq!(set.routable()[0].in_flight(), 1);
    }
}
