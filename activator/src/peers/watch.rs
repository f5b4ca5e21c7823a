//! The peer activators from the Kubernetes API: the EndpointSlices of the activator's in-cluster
//! Service (label `kubernetes.io/service-name=<peers service>`, own namespace). A peer is a ready,
//! non-terminating address, on the slice's port for the in-cluster data port.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
};

use futures::{Stream, StreamExt};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::{
    Api, Client, ResourceExt,
    runtime::{WatchStreamExt, watcher},
};

use zeroscale_common::admin::Readiness;

use super::{Peering, ring::PeerSet};

/// The label Kubernetes puts on a Service's EndpointSlices.
const SERVICE_LABEL: &str = "kubernetes.io/service-name";
/// The name of the in-cluster data port on the activator's Service (the chart's).
const INTERNAL_PORT_NAME: &str = "internal";

/// What one slice says: ready peers and addresses that are known but not ready.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SlicePeers {
    ready: Vec<SocketAddr>,
    others: Vec<IpAddr>,
}

/// Reads a slice: addresses on the port named `internal`, else on `internal_port` (the number this
/// activator listens on, which every replica shares). A slice without such a port has no peers.
pub(crate) fn slice_peers(slice: &EndpointSlice, internal_port: u16) -> SlicePeers {
    let ports = slice.ports.iter().flatten();
    let port = ports
        .clone()
        .find(|p| p.name.as_deref() == Some(INTERNAL_PORT_NAME))
        .or_else(|| ports.clone().find(|p| p.port == Some(i32::from(internal_port))))
        .and_then(|p| p.port)
        .and_then(|p| u16::try_from(p).ok());
    let mut peers = SlicePeers::default();
    for endpoint in &slice.endpoints {
        let conditions = endpoint.conditions.clone().unwrap_or_default();
        // Kubernetes: an unknown `ready` is to be read as ready.
        let ready = conditions.ready.unwrap_or(true) && !conditions.terminating.unwrap_or(false);
        for ip in endpoint.addresses.iter().filter_map(|a| a.parse::<IpAddr>().ok()) {
            match port {
                Some(port) if ready => peers.ready.push(SocketAddr::new(ip, port)),
                _ => peers.others.push(ip),
            }
        }
    }
    peers
}

/// Merges every slice's peers into one set.
pub(crate) fn merge<'a>(slices: impl Iterator<Item = &'a SlicePeers> + Clone) -> PeerSet {
    PeerSet::new(
        slices.clone().flat_map(|s| s.ready.iter().copied()),
        slices.flat_map(|s| s.others.iter().copied()),
    )
}

/// Watches the peers service's EndpointSlices until the stream ends, keeping `peering` current;
/// `synced` turns true once the first full list has arrived.
pub async fn run(
    client: Client,
    service: String,
    internal_port: u16,
    peering: std::sync::Arc<Peering>,
    synced: Readiness,
) {
    let api: Api<EndpointSlice> = Api::default_namespaced(client);
    let config = watcher::Config::default().labels(&format!("{SERVICE_LABEL}={service}"));
    let stream = watcher(api, config).default_backoff();
    follow(stream, internal_port, &peering, &synced).await;
}

async fn follow(
    stream: impl Stream<Item = Result<watcher::Event<EndpointSlice>, watcher::Error>>,
    internal_port: u16,
    peering: &Peering,
    synced: &Readiness,
) {
    let mut stream = std::pin::pin!(stream);
    let mut slices: HashMap<String, SlicePeers> = HashMap::new();
    let mut relisted: HashMap<String, SlicePeers> = HashMap::new();
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "peer endpointslice watch error");
                continue;
            }
        };
        match event {
            watcher::Event::Init => relisted.clear(),
            watcher::Event::InitApply(s) => {
                relisted.insert(s.name_any(), slice_peers(&s, internal_port));
                continue;
            }
            watcher::Event::InitDone => {
                slices = std::mem::take(&mut relisted);
                peering.set(merge(slices.values()));
                synced.set(true);
                continue;
            }
            watcher::Event::Apply(s) => {
                slices.insert(s.name_any(), slice_peers(&s, internal_port));
            }
            watcher::Event::Delete(s) => {
                slices.remove(&s.name_any());
            }
        }
        peering.set(merge(slices.values()));
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};

    use super::*;

    fn endpoint(ip: &str, ready: Option<bool>, terminating: Option<bool>) -> Endpoint {
        Endpoint {
            addresses: vec![ip.to_string()],
            conditions: Some(EndpointConditions {
                ready,
                serving: None,
                terminating,
            }),
            ..Default::default()
        }
    }

    fn port(name: &str, port: i32) -> EndpointPort {
        EndpointPort {
            name: Some(name.into()),
            port: Some(port),
            ..Default::default()
        }
    }

    #[test]
    fn ready_addresses_on_the_internal_port_are_peers() {
        let slice = EndpointSlice {
            endpoints: vec![
                endpoint("10.244.0.1", Some(true), None),
                endpoint("10.244.0.2", Some(false), None),
                endpoint("10.244.0.3", Some(true), Some(true)),
                endpoint("10.244.0.4", None, None),
            ],
            ports: Some(vec![
                port("http", 8081),
                port("admin", 9090),
                port("internal", 9081),
            ]),
            ..Default::default()
        };
        let peers = slice_peers(&slice, 8081);
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(peers.ready, vec![a("10.244.0.1:9081"), a("10.244.0.4:9081")]);
        assert_eq!(peers.others.len(), 2);
        let set = merge([peers].iter());
        assert!(set.is_known("10.244.0.2".parse().unwrap()));
        assert_eq!(set.ready().count(), 2);
    }

    #[test]
    fn the_port_falls_back_to_the_own_number_and_none_means_no_peer() {
        let mut slice = EndpointSlice {
            endpoints: vec![endpoint("10.244.0.1", Some(true), None)],
            ports: Some(vec![port("data", 8081)]),
            ..Default::default()
        };
        assert_eq!(
            slice_peers(&slice, 8081).ready,
            vec!["10.244.0.1:8081".parse().unwrap()]
        );
        slice.ports = Some(vec![port("admin", 9090)]);
        let peers = slice_peers(&slice, 8081);
        assert!(peers.ready.is_empty());
        assert_eq!(peers.others.len(), 1);
    }
}
