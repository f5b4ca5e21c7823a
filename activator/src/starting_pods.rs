//! Starting pods learned from the pods themselves, merged with what the EndpointSlices report.
//!
//! A starting pod's EndpointSlice entry (a not-ready endpoint) appears only after kubelet wrote the
//! pod's IP to its status and the EndpointSlice controller copied it into the slice; a pod often
//! serves before then. The pod watch ([`crate::kube_watch`]'s pod watch) reads `status.podIP` as soon as kubelet
//! writes it, so the probe (every [`crate::probe::PROBE_INTERVAL`] while requests wait) can find the
//! pod that much earlier.
//!
//! The EndpointSlices stay the authority on ready and terminating: a pod-learned address only adds
//! a starting candidate for an address no slice of the same table entry reports, and a pod that is
//! being deleted, has finished or failed, or has no IP yet adds nothing.

use std::{
    collections::{BTreeMap, HashMap},
    net::{IpAddr, SocketAddr},
};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use zeroscale_common::signals::FunctionKey;

use zeroscale_crds::{function::FUNCTION_LABEL, revision::REVISION_LABEL};

use crate::settings::EndpointInfo;

/// What one pod event says about the pod: its identity, the table entry it belongs to, and its IP
/// while it is a candidate (running or pending with an IP, not being deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSighting {
    /// The pod's namespace and name.
    pub id: (String, String),
    /// Its revision (label `zeroscale.dev/revision`) or, without one, its function.
    pub key: FunctionKey,
    /// Its IP while it may serve; `None` once it is deleted, terminating, finished or failed.
    pub ip: Option<IpAddr>,
}

/// Reads the few fields a pod event needs; the rest of the object is dropped by the caller at once.
/// `None` for a pod without a namespace or without the function label.
pub fn sighting(pod: &Pod) -> Option<PodSighting> {
    let ns = pod.namespace()?;
    let labels = pod.labels();
    let entry = labels
        .get(REVISION_LABEL)
        .or_else(|| labels.get(FUNCTION_LABEL))?
        .clone();
    let status = pod.status.as_ref();
    let over = matches!(
        status.and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    let ip = status
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .filter(|_| pod.metadata.deletion_timestamp.is_none() && !over);
    Some(PodSighting {
        id: (ns.clone(), pod.name_any()),
        key: FunctionKey::new(ns, entry),
        ip,
    })
}

/// Pod IPs by table entry: only the pod's name and IP are kept, never the pod.
#[derive(Debug, Default)]
pub struct StartingPods {
    by_key: HashMap<FunctionKey, BTreeMap<String, IpAddr>>,
}

impl StartingPods {
    /// Records a sighting (an address, or its removal); returns the table entry whose addresses
    /// changed, if any.
    pub fn apply(&mut self, sighting: PodSighting) -> Option<FunctionKey> {
        let PodSighting {
            id: (_, name),
            key,
            ip,
        } = sighting;
        let changed = match ip {
            Some(ip) => {
                let pods = self.by_key.entry(key.clone()).or_default();
                pods.insert(name, ip) != Some(ip)
            }
            None => self.forget(&key, &name),
        };
        changed.then_some(key)
    }

    /// Forgets a deleted pod; returns the table entry whose addresses changed, if any.
    pub fn remove(&mut self, key: &FunctionKey, name: &str) -> Option<FunctionKey> {
        self.forget(key, name).then(|| key.clone())
    }

    /// Keeps only the pods `keep` accepts (after a relist: the pods still there); returns the table
    /// entries whose addresses changed.
    pub fn retain(&mut self, mut keep: impl FnMut(&FunctionKey, &str) -> bool) -> Vec<FunctionKey> {
        let mut changed = Vec::new();
        self.by_key.retain(|key, pods| {
            let before = pods.len();
            pods.retain(|name, _| keep(key, name));
            if pods.len() != before {
                changed.push(key.clone());
            }
            !pods.is_empty()
        });
        changed
    }

    /// The IPs of `key`'s pods.
    pub fn ips(&self, key: &FunctionKey) -> impl Iterator<Item = IpAddr> + '_ {
        self.by_key
            .get(key)
            .into_iter()
            .flat_map(|pods| pods.values().copied())
    }

    fn forget(&mut self, key: &FunctionKey, name: &str) -> bool {
        let Some(pods) = self.by_key.get_mut(key) else {
            return false;
        };
        let removed = pods.remove(name).is_some();
        if pods.is_empty() {
            self.by_key.remove(key);
        }
        removed
    }
}

/// The slices' endpoints plus a starting endpoint at `port` for every pod IP no slice endpoint has
/// (in any state: a slice that reports the address ready or terminating decides alone).
pub fn merge(
    mut reported: Vec<EndpointInfo>,
    pod_ips: impl IntoIterator<Item = IpAddr>,
    port: u16,
) -> Vec<EndpointInfo> {
    for ip in pod_ips {
        // By IP alone: a slice's port for the pod is the one that counts.
        if !reported.iter().any(|e| e.address.ip() == ip) {
            reported.push(EndpointInfo::starting(SocketAddr::new(ip, port)));
        }
    }
    reported
}

#[cfg(test)]
#[path = "starting_pods_tests.rs"]
mod tests;
