//! Service networking (the agent's kube-proxy): watches Services and EndpointSlices, puts every
//! ClusterIP on the bridge as a `/32` (so the host owns it and pods reach it through their route to
//! the service CIDR via the bridge address), keeps the proxy's listeners and the hosts file current.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector};
use tokio::process::Command;

use crate::svc_model::{self, Backends};
use crate::svc_proxy::Proxy;

/// How often a reconcile is retried while something (an address, a listener) failed.
const RETRY: Duration = Duration::from_secs(1);

/// Settings of Service networking.
#[derive(Debug, Clone)]
pub struct ServiceNet {
    /// The bridge that carries the ClusterIPs.
    pub bridge: String,
    /// The service CIDR (`10.96.0.0/16`): addresses in it on the bridge are ours to remove.
    pub cidr: (Ipv4Addr, u32),
    /// The cluster domain of the hosts file names.
    pub domain: String,
    /// The hosts file bind-mounted as every pod's `/etc/hosts`.
    pub hosts_file: PathBuf,
    /// Where the DNS server reads the Service names from.
    pub dns_names: tokio::sync::watch::Sender<Arc<crate::dns::Names>>,
}

/// Parses `a.b.c.d/n`.
pub fn parse_cidr(cidr: &str) -> Option<(Ipv4Addr, u32)> {
    let (addr, len) = cidr.split_once('/')?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    Some((addr.parse().ok()?, len))
}

fn in_cidr(ip: Ipv4Addr, (net, len): (Ipv4Addr, u32)) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

async fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The service-CIDR addresses currently on the bridge.
async fn current_addresses(net: &ServiceNet) -> Result<BTreeSet<Ipv4Addr>, String> {
    let out = ip(&["-o", "-4", "addr", "show", "dev", &net.bridge]).await?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1))
        .filter_map(|a| a.split('/').next()?.parse::<Ipv4Addr>().ok())
        .filter(|a| in_cidr(*a, net.cidr))
        .collect())
}

/// Writes the hosts file in place: pods bind-mount this very inode, so a rename would never reach
/// them. The new bytes are written over the old ones in one call before the file is cut to length, so
/// a concurrent reader never sees an empty file.
pub fn write_hosts(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::{Seek, Write};
    if std::fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)?;
    file.seek(std::io::SeekFrom::Start(0))?;
    file.write_all(content.as_bytes())?;
    file.set_len(content.len() as u64)
}

/// What is applied: the proxy's listeners and the ClusterIPs known to be on the bridge (read from
/// the bridge once, then tracked; read again after a failure).
#[derive(Default)]
struct Applied {
    proxy: Proxy,
    addresses: Option<BTreeSet<Ipv4Addr>>,
}

/// Brings addresses, listeners and the hosts file in line; returns whether everything succeeded.
async fn reconcile(
    net: &ServiceNet,
    applied: &mut Applied,
    services: &[Arc<Service>],
    table: &Backends,
) -> bool {
    let mut ok = true;
    let wanted: BTreeSet<Ipv4Addr> = table
        .keys()
        .map(|a| *a.ip())
        .filter(|a| in_cidr(*a, net.cidr))
        .collect();
    let have = match applied.addresses.take() {
        Some(have) => have,
        None => match current_addresses(net).await {
            Ok(have) => have,
            Err(e) => {
                tracing::warn!("service addresses: {e}");
                return false;
            }
        },
    };
    for addr in wanted.difference(&have) {
        if let Err(e) = ip(&["addr", "add", &format!("{addr}/32"), "dev", &net.bridge]).await {
            tracing::warn!("service address: {e}");
            ok = false;
        }
    }
    for (addr, e) in applied.proxy.apply(table) {
        tracing::warn!(%addr, "service listener: {e}");
        ok = false;
    }
    // Listeners of removed Services are closed above, before their addresses go.
    for addr in have.difference(&wanted) {
        if let Err(e) = ip(&["addr", "del", &format!("{addr}/32"), "dev", &net.bridge]).await {
            tracing::warn!("service address: {e}");
            ok = false;
        }
    }
    if ok {
        applied.addresses = Some(wanted);
    }
    let addresses = svc_model::addresses(services, &net.domain);
    let names = svc_model::dns_names(&addresses, &net.domain);
    net.dns_names.send_if_modified(|current| {
        let changed = **current != names;
        if changed {
            *current = Arc::new(names);
        }
        changed
    });
    if let Err(e) = write_hosts(&net.hosts_file, &svc_model::hosts_file(&addresses, &net.domain)) {
        tracing::warn!("hosts file {}: {e}", net.hosts_file.display());
        ok = false;
    }
    ok
}

/// Runs Service networking forever with `client` (which may list and watch Services and
/// EndpointSlices cluster-wide: the agent uses a `system:kube-proxy` identity for it). `synced` is
/// sent once the first complete state is applied, so the agent can start pods that find their
/// Services from their first lookup.
pub async fn run(client: kube::Client, net: ServiceNet, synced: tokio::sync::oneshot::Sender<()>) {
    let mut synced = Some(synced);
    let (services, svc_writer) = reflector::store::<Service>();
    let (slices, slice_writer) = reflector::store::<EndpointSlice>();
    let svc_events = reflector(
        svc_writer,
        watcher::watcher(Api::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .map(|e| e.map(|_| ()).map_err(|e| e.to_string()))
    .boxed();
    let slice_events = reflector(
        slice_writer,
        watcher::watcher(Api::all(client), watcher::Config::default()),
    )
    .default_backoff()
    .map(|e: Result<Event<EndpointSlice>, _>| e.map(|_| ()).map_err(|e| e.to_string()))
    .boxed();
    let mut events = futures::stream::select(svc_events, slice_events);
    let mut applied = Applied::default();
    let mut retry = false;
    loop {
        let event = if retry {
            tokio::time::timeout(RETRY, events.next())
                .await
                .unwrap_or(Some(Ok(())))
        } else {
            events.next().await
        };
        match event {
            None => break,
            Some(Err(e)) => tracing::warn!("service watch: {e}"),
            Some(Ok(())) => {}
        }
        // Until both lists are complete, an absent Service may just not be listed yet.
        if services.wait_until_ready().now_or_never().is_none()
            || slices.wait_until_ready().now_or_never().is_none()
        {
            continue;
        }
        let (svc_list, slice_list) = (services.state(), slices.state());
        let table = svc_model::backends(&svc_list, &slice_list);
        retry = !reconcile(&net, &mut applied, &svc_list, &table).await;
        if let Some(tx) = synced.take() {
            let _ = tx.send(());
        }
    }
    applied.proxy.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let cidr = parse_cidr("10.96.0.0/16").unwrap();
        assert!(in_cidr("10.96.3.4".parse().unwrap(), cidr));
        assert!(!in_cidr("10.244.0.1".parse().unwrap(), cidr));
        assert!(in_cidr(
            "1.2.3.4".parse().unwrap(),
            parse_cidr("0.0.0.0/0").unwrap()
        ));
        assert_eq!(parse_cidr("10.96.0.0/33"), None);
        assert_eq!(parse_cidr("nonsense"), None);
    }

    #[test]
    fn hosts_file_is_rewritten_in_place() {
        let dir = std::env::temp_dir().join(format!("zs-hosts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hosts");
        write_hosts(&path, "a long first version\n").unwrap();
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let before = inode(&path);
        write_hosts(&path, "short\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "short\n");
        assert_eq!(inode(&path), before, "bind mounts keep seeing the same file");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
