//! Service networking, the pure part: from Services and EndpointSlices, which ClusterIP:port forwards
//! to which pod addresses, and the hosts file that names every Service.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

/// Label linking an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// How many ExternalName hops are followed before giving up (guards against alias loops).
const MAX_ALIAS_HOPS: usize = 4;

/// Every TCP ClusterIP:port with the pod addresses it forwards to (empty: no endpoint yet).
pub type Backends = BTreeMap<SocketAddrV4, Vec<SocketAddrV4>>;

fn cluster_ip(svc: &Service) -> Option<Ipv4Addr> {
    let ip = svc.spec.as_ref()?.cluster_ip.as_deref()?;
    ip.parse().ok()
}

fn is_tcp(protocol: Option<&str>) -> bool {
    protocol.is_none_or(|p| p == "TCP")
}

/// Ready and not terminating; a missing condition counts as the API documents (ready unless said
/// otherwise, not terminating unless said so).
fn ready(ep: &Endpoint) -> bool {
    let c = ep.conditions.as_ref();
    c.and_then(|c| c.ready).unwrap_or(true) && !c.and_then(|c| c.terminating).unwrap_or(false)
}

/// Serving although terminating: used only when no endpoint is ready, as kube-proxy does, so a
/// Service whose every pod is draining still reaches them.
fn serving(ep: &Endpoint) -> bool {
    let c = ep.conditions.as_ref();
    c.and_then(|c| c.serving.or(c.ready)).unwrap_or(true)
}

/// The forwarding table: for each TCP port of each Service with a ClusterIP, the addresses of the
/// ready endpoints (port resolved by the EndpointSlice port of the same name), sorted and unique.
pub fn backends(services: &[impl Borrow<Service>], slices: &[impl Borrow<EndpointSlice>]) -> Backends {
    let mut by_service: HashMap<(&str, &str), Vec<&EndpointSlice>> = HashMap::new();
    for slice in slices.iter().map(Borrow::borrow) {
        let labels = slice.metadata.labels.as_ref();
        if let (Some(ns), Some(svc)) = (
            slice.metadata.namespace.as_deref(),
            labels.and_then(|l| l.get(SERVICE_NAME_LABEL)),
        ) && slice.address_type == "IPv4"
        {
            by_service.entry((ns, svc.as_str())).or_default().push(slice);
        }
    }
    let mut table = Backends::new();
    for svc in services.iter().map(Borrow::borrow) {
        let (Some(ip), Some(ns), Some(name)) = (
            cluster_ip(svc),
            svc.metadata.namespace.as_deref(),
            svc.metadata.name.as_deref(),
        ) else {
            continue;
        };
        let slices = by_service.get(&(ns, name)).map(Vec::as_slice).unwrap_or_default();
        let ports = svc.spec.as_ref().and_then(|s| s.ports.as_ref());
        for port in ports
            .into_iter()
            .flatten()
            .filter(|p| is_tcp(p.protocol.as_deref()))
        {
            let Ok(number) = u16::try_from(port.port) else {
                continue;
            };
            let name = port.name.as_deref().unwrap_or("");
            let addrs = |pick: fn(&Endpoint) -> bool| {
                let mut out = BTreeSet::new();
                for slice in slices {
                    let target =
                        slice.ports.iter().flatten().find(|p| {
                            p.name.as_deref().unwrap_or("") == name && is_tcp(p.protocol.as_deref())
                        });
                    let Some(target) = target.and_then(|p| p.port).and_then(|p| u16::try_from(p).ok()) else {
                        continue;
                    };
                    for ep in slice.endpoints.iter().filter(|ep| pick(ep)) {
                        for addr in ep.addresses.iter().filter_map(|a| a.parse::<Ipv4Addr>().ok()) {
                            out.insert(SocketAddrV4::new(addr, target));
                        }
                    }
                }
                out
            };
            let mut chosen = addrs(ready);
            if chosen.is_empty() {
                chosen = addrs(serving);
            }
            table.insert(SocketAddrV4::new(ip, number), chosen.into_iter().collect());
        }
    }
    table
}

/// `<svc>.<ns>[.svc[.<domain>]]` → (svc, ns); anything else (outside the cluster) → `None`.
fn in_cluster_target<'a>(host: &'a str, domain: &str) -> Option<(&'a str, &'a str)> {
    let host = host.trim_end_matches('.');
    let host = host
        .strip_suffix(domain)
        .and_then(|h| h.strip_suffix('.'))
        .unwrap_or(host);
    let host = host.strip_suffix(".svc").unwrap_or(host);
    match host.split('.').collect::<Vec<_>>().as_slice() {
        [svc, ns] if !svc.is_empty() && !ns.is_empty() => Some((svc, ns)),
        _ => None,
    }
}

/// The address a Service's names resolve to: its ClusterIP, or for an ExternalName that points at an
/// in-cluster Service, that Service's address (followed through a few aliases).
fn resolve(svc: &Service, by_name: &HashMap<(&str, &str), &Service>, domain: &str) -> Option<Ipv4Addr> {
    let mut current = svc;
    for _ in 0..=MAX_ALIAS_HOPS {
        if let Some(ip) = cluster_ip(current) {
            return Some(ip);
        }
        let spec = current.spec.as_ref()?;
        if spec.type_.as_deref() != Some("ExternalName") {
            return None;
        }
        let (name, ns) = in_cluster_target(spec.external_name.as_deref()?, domain)?;
        current = by_name.get(&(ns, name))?;
    }
    None
}

/// The address every Service's names resolve to, by (namespace, name); Services without one (headless,
/// ExternalName outside the cluster) are left out.
pub fn addresses(services: &[impl Borrow<Service>], domain: &str) -> BTreeMap<(String, String), Ipv4Addr> {
    let by_name: HashMap<(&str, &str), &Service> = services
        .iter()
        .map(Borrow::borrow)
        .filter_map(|s| Some(((s.metadata.namespace.as_deref()?, s.metadata.name.as_deref()?), s)))
        .collect();
    by_name
        .iter()
        .filter_map(|(&(ns, name), svc)| {
            Some((
                (ns.to_string(), name.to_string()),
                resolve(svc, &by_name, domain)?,
            ))
        })
        .collect()
}

/// The hosts file: localhost, then per Service `<ip> <svc>.<ns>.svc.<domain> <svc>.<ns>.svc <svc>.<ns>`,
/// sorted by name so equal inputs give equal bytes.
pub fn hosts_file(addresses: &BTreeMap<(String, String), Ipv4Addr>, domain: &str) -> String {
    let mut out = String::from(
        "# Written by zeroscale-node-agent: Services of the local cluster (see docs/local-cluster.md).\n\
         127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    for ((ns, name), ip) in addresses {
        out.push_str(&format!(
            "{ip}\t{name}.{ns}.svc.{domain} {name}.{ns}.svc {name}.{ns}\n"
        ));
    }
    out
}

/// The DNS names: `<svc>.<ns>.svc.<domain>` (shorter forms reach it through the search list).
pub fn dns_names(addresses: &BTreeMap<(String, String), Ipv4Addr>, domain: &str) -> crate::dns::Names {
    addresses
        .iter()
        .map(|((ns, name), ip)| (format!("{name}.{ns}.svc.{domain}").to_ascii_lowercase(), *ip))
        .collect()
}

#[cfg(test)]
#[path = "svc_model_tests.rs"]
mod tests;
