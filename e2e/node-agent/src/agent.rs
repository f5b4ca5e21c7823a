//! The agent-wide context: API client, settings, image map, IP allocator.

use std::sync::Mutex;

use crate::args::Args;
use crate::backoff::BackoffPolicy;
use crate::images::ImageMap;
use crate::ipam::Ipam;

/// Everything pod workers share.
pub struct Agent {
    /// Client with the node's credentials.
    pub client: kube::Client,
    /// Settings.
    pub args: Args,
    /// Image → executable mapping.
    pub images: ImageMap,
    /// Pod IPs.
    pub ipam: Mutex<Ipam>,
    /// The cluster CA (PEM), written into pods' service-account directories.
    pub ca_pem: Vec<u8>,
    /// The cluster DNS server's address, when it runs (pods then get a resolv.conf naming it).
    pub dns: Option<std::net::Ipv4Addr>,
    /// Crash-loop back-off.
    pub backoff: BackoffPolicy,
}

impl Agent {
    /// Locks the IP allocator (a poisoned lock is still usable: the allocator has no invariants a
    /// panic could break halfway).
    pub fn ipam(&self) -> std::sync::MutexGuard<'_, Ipam> {
        self.ipam.lock().unwrap_or_else(|e| e.into_inner())
    }
}
