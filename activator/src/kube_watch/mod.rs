//! Function knowledge from the Kubernetes API: Functions (settings, startup failures, revisions and
//! routes) and the EndpointSlices of their private Services (label `zeroscale.dev/function`, and
//! `zeroscale.dev/revision` on a revision's), merged per revision and fed into the routing table,
//! together with the IPs of the function's pods that are starting (the pod watch,
//! [`pods`], learns them before the slices do).

mod pods;

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
};

use futures::{Stream, StreamExt};
use k8s_openapi::api::{core::v1::Pod, discovery::v1::EndpointSlice};
use kube::{
    Api, Client, ResourceExt,
    runtime::{WatchStreamExt, watcher},
};
use zeroscale_common::{admin::Readiness, signals::FunctionKey};
use zeroscale_crds::Function;
use zeroscale_crds::revision_runtime::RevisionRuntime;

use crate::{
    revision_settings,
    settings::{EndpointInfo, FunctionSettings},
    starting_pods::{self, StartingPods},
    table::RoutingTable,
};

/// Label the EndpointSlices of a function's private Service carry.
pub const FUNCTION_LABEL: &str = zeroscale_crds::function::FUNCTION_LABEL;
/// Label the EndpointSlices of a revision's private Service carry besides [`FUNCTION_LABEL`].
pub const REVISION_LABEL: &str = zeroscale_crds::revision::REVISION_LABEL;

/// Addresses of one EndpointSlice: IP, ready, terminating.
type SliceEndpoints = Vec<(IpAddr, bool, bool)>;

/// One EndpointSlice: the table entry it feeds, its port (when it names one), its addresses, and the
/// revision's own runtime settings (when its labels carry them).
type Slice = (FunctionKey, Option<u16>, SliceEndpoints, Option<RevisionRuntime>);

/// What the watches know, merged per table entry.
#[derive(Default)]
pub(crate) struct Cache {
    /// Settings by table entry (a revision, or a function without revisions).
    functions: HashMap<FunctionKey, FunctionSettings>,
    /// The table entries of each Function.
    owned: HashMap<FunctionKey, Vec<FunctionKey>>,
    slices: HashMap<(String, String), Slice>,
    /// Pod IPs by table entry, from the pod watch.
    pub(crate) pods: StartingPods,
    functions_synced: bool,
    slices_synced: bool,
}

impl Cache {
    /// Whether `key` is a table entry of a known Function.
    pub(crate) fn knows(&self, key: &FunctionKey) -> bool {
        self.functions.contains_key(key)
    }

    /// The slices' endpoints of `key`, plus its pods that no slice reports yet, as starting. A pod's
    /// port is its slice's (a revision may listen on another port than the spec's), else `port`.
    fn endpoints(&self, key: &FunctionKey, port: u16) -> Vec<EndpointInfo> {
        let pod_port = self
            .slices
            .values()
            .filter(|(k, _, _, _)| k == key)
            .find_map(|(_, slice_port, _, _)| *slice_port)
            .unwrap_or(port);
        starting_pods::merge(self.slice_endpoints(key, port), self.pods.ips(key), pod_port)
    }

    fn slice_endpoints(&self, key: &FunctionKey, port: u16) -> Vec<EndpointInfo> {
        self.slices
            .values()
            .filter(|(k, _, _, _)| k == key)
            // A revision's own port (an older revision may listen on another port than the spec's).
            .flat_map(|(_, slice_port, eps, _)| eps.iter().map(move |e| (slice_port.unwrap_or(port), e)))
            .map(|(port, &(ip, ready, terminating))| EndpointInfo {
                address: SocketAddr::new(ip, port),
                ready,
                terminating,
            })
            .collect()
    }

    /// The revision's own runtime settings, from any of its slices that carries them.
    fn runtime(&self, key: &FunctionKey) -> Option<&RevisionRuntime> {
        self.slices
            .values()
            .filter(|(k, _, _, _)| k == key)
            .find_map(|(_, _, _, runtime)| runtime.as_ref())
    }

    /// Feeds `key`'s settings and endpoints into the table (or removes it, once its Function is gone).
    pub(crate) fn push(&self, key: &FunctionKey, table: &RoutingTable) {
        match self.functions.get(key) {
            Some(settings) => {
                let settings = match self.runtime(key) {
                    Some(runtime) => revision_settings::with_runtime(settings, runtime),
                    None => settings.clone(),
                };
                let endpoints = self.endpoints(key, settings.port);
                table.apply(key, settings, endpoints);
            }
            None => table.remove(key),
        }
    }
}

fn slice_endpoints(slice: &EndpointSlice) -> SliceEndpoints {
    slice
        .endpoints
        .iter()
        .flat_map(|e| {
            let conditions = e.conditions.clone().unwrap_or_default();
            // Kubernetes: an unknown `ready` (or `serving`) is to be read as ready. A pod that is
            // terminating, or no longer serving, takes no new request even while it finishes old ones.
            let terminating = conditions.terminating.unwrap_or(false);
            let serving = conditions.serving.unwrap_or(true);
            let ready = conditions.ready.unwrap_or(true) && serving && !terminating;
            e.addresses
                .iter()
                .filter_map(move |a| a.parse::<IpAddr>().ok().map(|ip| (ip, ready, terminating)))
        })
        .collect()
}

/// The revision's runtime settings the slice's labels carry (copied from its private Service); a
/// malformed set is logged and left out (the Function's settings apply).
fn slice_runtime(slice: &EndpointSlice) -> Option<RevisionRuntime> {
    RevisionRuntime::from_labels(slice.labels()).unwrap_or_else(|error| {
        tracing::warn!(slice = %slice.name_any(), %error, "ignoring the revision's runtime labels");
        None
    })
}

fn slice_port(slice: &EndpointSlice) -> Option<u16> {
    let port = slice.ports.as_ref()?.first()?.port?;
    u16::try_from(port).ok()
}

/// The slice's identity and the table entry it feeds: its revision, or its function (from before
/// revisions).
fn slice_key(slice: &EndpointSlice) -> Option<(String, String, FunctionKey)> {
    let ns = slice.namespace()?;
    let labels = slice.labels();
    let entry = labels
        .get(REVISION_LABEL)
        .or_else(|| labels.get(FUNCTION_LABEL))?
        .clone();
    Some((ns.clone(), slice.name_any(), FunctionKey::new(ns, entry)))
}

/// Replaces the table entries of Function `key` with `entries` and its routes with `routes`.
fn apply_function(
    c: &mut Cache,
    table: &RoutingTable,
    key: &FunctionKey,
    entries: Vec<(FunctionKey, FunctionSettings)>,
    routes: Option<crate::split::Routes>,
) {
    let keys: Vec<FunctionKey> = entries.iter().map(|(k, _)| k.clone()).collect();
    let deleted = keys.is_empty();
    let old = c.owned.insert(key.clone(), keys.clone()).unwrap_or_default();
    // The new entries and routes go in first: a request an old entry hands back finds its new place.
    for (entry, settings) in entries {
        c.functions.insert(entry.clone(), settings);
        c.push(&entry, table);
    }
    table.set_routes(key, routes);
    for gone in old.iter().filter(|k| !keys.contains(k)) {
        c.functions.remove(gone);
        // Only a deleted Function's waiters get 404; an entry of a Function that still exists was
        // replaced (say, by its first revision), and its waiters are routed again.
        match deleted {
            true => table.remove(gone),
            false => table.supersede(gone),
        }
    }
}

/// Watches Functions, EndpointSlices and function pods until the streams end, keeping `table`
/// current and setting `synced` once Functions and EndpointSlices have listed everything (the
/// activator's `/ready` waits for it; the pods only add starting candidates, so it does not wait for
/// them).
pub async fn run(client: Client, table: Arc<RoutingTable>, synced: Readiness) {
    let cache = Arc::new(Mutex::new(Cache::default()));
    let functions =
        watcher(Api::<Function>::all(client.clone()), watcher::Config::default()).default_backoff();
    let slices = watcher(
        Api::<EndpointSlice>::all(client.clone()),
        watcher::Config::default().labels(FUNCTION_LABEL),
    )
    .default_backoff();
    let pods = watcher(
        Api::<Pod>::all(client),
        watcher::Config::default().labels(FUNCTION_LABEL),
    )
    .default_backoff();
    let f = watch_functions(functions, Arc::clone(&cache), Arc::clone(&table), synced.clone());
    let s = watch_slices(slices, Arc::clone(&cache), Arc::clone(&table), synced);
    let p = pods::watch_pods(pods, cache, table);
    tokio::join!(f, s, p);
}

/// Locks the cache, also after a panic elsewhere (every update leaves it consistent).
pub(crate) fn lock(cache: &Mutex<Cache>) -> std::sync::MutexGuard<'_, Cache> {
    cache.lock().unwrap_or_else(|e| e.into_inner())
}

fn mark_synced(cache: &mut Cache, synced: &Readiness) {
    if cache.functions_synced && cache.slices_synced && !synced.get() {
        tracing::info!(functions = cache.functions.len(), "function watches synced");
        synced.set(true);
    }
}

async fn watch_functions(
    stream: impl Stream<Item = Result<watcher::Event<Function>, watcher::Error>>,
    cache: Arc<Mutex<Cache>>,
    table: Arc<RoutingTable>,
    synced: Readiness,
) {
    let mut stream = std::pin::pin!(stream);
    let mut relisted: HashSet<FunctionKey> = HashSet::new();
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "function watch error");
                continue;
            }
        };
        let mut c = lock(&cache);
        match event {
            watcher::Event::Init => relisted.clear(),
            watcher::Event::Apply(f) | watcher::Event::InitApply(f) => {
                let Some(ns) = f.namespace() else { continue };
                let name = f.name_any();
                let key = FunctionKey::new(&ns, &name);
                relisted.insert(key.clone());
                let entries = revision_settings::entries(&f, &ns, &name);
                let routes = revision_settings::routes(&f, &ns, &name);
                apply_function(&mut c, &table, &key, entries, routes);
            }
            watcher::Event::Delete(f) => {
                let Some(ns) = f.namespace() else { continue };
                let key = FunctionKey::new(ns, f.name_any());
                apply_function(&mut c, &table, &key, Vec::new(), None);
                c.owned.remove(&key);
            }
            watcher::Event::InitDone => {
                // Functions deleted while the watch was down.
                let gone: Vec<FunctionKey> = c
                    .owned
                    .keys()
                    .filter(|k| !relisted.contains(*k))
                    .cloned()
                    .collect();
                for key in gone {
                    table.set_routes(&key, None);
                    c.owned.remove(&key);
                }
                let kept: HashSet<FunctionKey> = c.owned.values().flatten().cloned().collect();
                c.functions.retain(|k, _| kept.contains(k));
                table.retain(&kept);
                c.functions_synced = true;
                mark_synced(&mut c, &synced);
            }
        }
    }
}

async fn watch_slices(
    stream: impl Stream<Item = Result<watcher::Event<EndpointSlice>, watcher::Error>>,
    cache: Arc<Mutex<Cache>>,
    table: Arc<RoutingTable>,
    synced: Readiness,
) {
    let mut stream = std::pin::pin!(stream);
    let mut relisted: HashSet<(String, String)> = HashSet::new();
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "endpointslice watch error");
                continue;
            }
        };
        let mut c = lock(&cache);
        match event {
            watcher::Event::Init => relisted.clear(),
            watcher::Event::Apply(s) | watcher::Event::InitApply(s) => {
                let Some((ns, name, key)) = slice_key(&s) else {
                    continue;
                };
                relisted.insert((ns.clone(), name.clone()));
                let slice = (
                    key.clone(),
                    slice_port(&s),
                    slice_endpoints(&s),
                    slice_runtime(&s),
                );
                c.slices.insert((ns, name), slice);
                c.push(&key, &table);
            }
            watcher::Event::Delete(s) => {
                let Some((ns, name, key)) = slice_key(&s) else {
                    continue;
                };
                c.slices.remove(&(ns, name));
                c.push(&key, &table);
            }
            watcher::Event::InitDone => {
                let stale: Vec<FunctionKey> = c
                    .slices
                    .iter()
                    .filter(|(id, _)| !relisted.contains(*id))
                    .map(|(_, (k, _, _, _))| k.clone())
                    .collect();
                c.slices.retain(|id, _| relisted.contains(id));
                for key in stale {
                    c.push(&key, &table);
                }
                c.slices_synced = true;
                mark_synced(&mut c, &synced);
            }
        }
    }
}

#[cfg(test)]
mod tests;
