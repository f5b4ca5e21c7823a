//! The watch on function pods (label `zeroscale.dev/function`, all namespaces, like the
//! EndpointSlice watch) that feeds each pod's IP into the starting addresses as soon as kubelet
//! writes it ([`crate::starting_pods`] has the rules). Each event is reduced to the pod's name, table
//! entry and IP at once; no pod object is kept.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use zeroscale_common::signals::FunctionKey;

use crate::{
    kube_watch::{Cache, lock},
    starting_pods::{self, PodSighting},
    table::RoutingTable,
};

/// Applies pod events to `cache` until the stream ends, pushing the table entries whose starting
/// addresses changed. A Function not known yet is skipped: its own event pushes the pods with it.
pub(crate) async fn watch_pods(
    stream: impl Stream<Item = Result<kube::runtime::watcher::Event<Pod>, kube::runtime::watcher::Error>>,
    cache: Arc<Mutex<Cache>>,
    table: Arc<RoutingTable>,
) {
    use kube::runtime::watcher::Event;
    let mut stream = std::pin::pin!(stream);
    let mut relisted: HashSet<(FunctionKey, String)> = HashSet::new();
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "pod watch error");
                continue;
            }
        };
        // Only the sighting outlives this statement: the pod object is dropped here.
        let (sighting, deleted) = match event {
            Event::Init => {
                relisted.clear();
                continue;
            }
            Event::InitDone => {
                let mut c = lock(&cache);
                let changed = c
                    .pods
                    .retain(|key, name| relisted.contains(&(key.clone(), name.to_string())));
                relisted.clear();
                for key in changed {
                    push_known(&c, &key, &table);
                }
                continue;
            }
            Event::Apply(pod) => (starting_pods::sighting(&pod), false),
            Event::InitApply(pod) => {
                let sighting = starting_pods::sighting(&pod);
                if let Some(PodSighting {
                    id: (_, name), key, ..
                }) = &sighting
                {
                    relisted.insert((key.clone(), name.clone()));
                }
                (sighting, false)
            }
            Event::Delete(pod) => (starting_pods::sighting(&pod), true),
        };
        let Some(sighting) = sighting else { continue };
        let mut c = lock(&cache);
        let changed = if deleted {
            c.pods.remove(&sighting.key, &sighting.id.1)
        } else {
            c.pods.apply(sighting)
        };
        if let Some(key) = changed {
            push_known(&c, &key, &table);
        }
    }
}

fn push_known(c: &Cache, key: &FunctionKey, table: &RoutingTable) {
    if c.knows(key) {
        c.push(key, table);
    }
}
