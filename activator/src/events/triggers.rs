//! Triggers → routes and source jobs. [`Triggers`] turns watch events (or a static list) into the
//! broker's [`RoutingTable`] and the [`Supervisor`]'s wanted jobs; [`watch`] feeds it from the API
//! server and tells it whether this replica leads.

use std::{collections::HashSet, sync::Arc};

use futures::StreamExt;
use kube::{
    Api, Client, ResourceExt,
    runtime::{WatchStreamExt, watcher},
};
use tokio::sync::watch as state;
use zeroscale_crds::trigger::Trigger;
use zeroscale_eventing::{
    delivery::DeliveryDefaults,
    kubernetes::WatchTarget,
    router::{Route, RoutingTable, SourceKind},
};

use super::supervisor::{SourceJob, SourceSpec, Supervisor, TriggerKey};

/// The routes and source jobs of every Trigger seen.
pub struct Triggers {
    routes: RoutingTable,
    defaults: DeliveryDefaults,
    supervisor: Supervisor,
    known: HashSet<TriggerKey>,
    /// Keys seen since a re-list started; `Some` while one runs.
    relisted: Option<HashSet<TriggerKey>>,
}

impl Triggers {
    /// Starts empty, writing routes into `routes` and jobs into `supervisor`.
    pub fn new(routes: RoutingTable, defaults: DeliveryDefaults, supervisor: Supervisor) -> Self {
        Self {
            routes,
            defaults,
            supervisor,
            known: HashSet::new(),
            relisted: None,
        }
    }

    /// Adds or updates one Trigger. One that does not compile is removed (the operator reports why
    /// in its status; here it is logged).
    pub fn apply(&mut self, trigger: &Trigger) {
        let key = (trigger.namespace().unwrap_or_default(), trigger.name_any());
        if let Some(seen) = &mut self.relisted {
            seen.insert(key.clone());
        }
        let route = match Route::compile(trigger, &self.defaults) {
            Ok(route) => route,
            Err(error) => {
                tracing::warn!(namespace = %key.0, trigger = %key.1, %error, "trigger not routed");
                self.delete(&key);
                return;
            }
        };
        let source = &trigger.spec.source;
        let spec = match route.source {
            SourceKind::Broker => None,
            SourceKind::Schedule => source.schedule.clone().map(SourceSpec::Schedule),
            SourceKind::Kubernetes => match source
                .kubernetes
                .as_ref()
                .map(|k| WatchTarget::resolve(&key.0, k))
            {
                Some(Ok(target)) => Some(SourceSpec::Kubernetes(target)),
                Some(Err(error)) => {
                    tracing::warn!(namespace = %key.0, trigger = %key.1, %error, "kubernetes source not started");
                    None
                }
                None => None,
            },
        };
        tracing::debug!(namespace = %key.0, trigger = %key.1, source = ?route.source, "trigger routed");
        let route = Arc::new(route);
        self.routes.upsert(Route::clone(&route));
        self.supervisor
            .set(key.clone(), spec.map(|spec| SourceJob { route, spec }));
        self.known.insert(key);
    }

    /// Removes one Trigger.
    pub fn delete(&mut self, key: &TriggerKey) {
        self.routes.remove(&key.0, &key.1);
        self.supervisor.set(key.clone(), None);
        self.known.remove(key);
    }

    /// Applies one watch event; a re-list ends by removing Triggers it did not see.
    pub fn observe(&mut self, event: watcher::Event<Trigger>) {
        match event {
            watcher::Event::Apply(t) | watcher::Event::InitApply(t) => self.apply(&t),
            watcher::Event::Delete(t) => self.delete(&(t.namespace().unwrap_or_default(), t.name_any())),
            watcher::Event::Init => self.relisted = Some(HashSet::new()),
            watcher::Event::InitDone => {
                if let Some(seen) = self.relisted.take() {
                    let gone: Vec<_> = self.known.difference(&seen).cloned().collect();
                    for key in gone {
                        self.delete(&key);
                    }
                }
            }
        }
    }

    /// Records whether this replica leads (runs the sources).
    pub fn set_leader(&mut self, leader: bool) {
        self.supervisor.set_leader(leader);
    }

    /// Keys of the running source tasks.
    pub fn running_sources(&self) -> Vec<TriggerKey> {
        self.supervisor.running()
    }

    /// Stops every source task.
    pub fn stop_sources(&mut self) {
        self.supervisor.stop_all();
    }
}

/// Watches Triggers (in `namespace`, or all) and keeps `triggers` current, switching its sources on
/// and off with `leader`. Runs until the caller drops it.
pub async fn watch(
    client: Client,
    namespace: Option<String>,
    mut triggers: Triggers,
    mut leader: state::Receiver<bool>,
) {
    let api: Api<Trigger> = match &namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
    let mut leading = *leader.borrow_and_update();
    let mut electing = true;
    triggers.set_leader(leading);
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(event)) => triggers.observe(event),
                Some(Err(error)) => tracing::warn!(%error, "trigger watch failed; retrying"),
                None => break,
            },
            changed = leader.changed(), if electing => {
                // A closed channel means the election ended (released at shutdown): no sources.
                let now = changed.is_ok() && *leader.borrow_and_update();
                electing = changed.is_ok();
                if now != leading {
                    leading = now;
                    tracing::info!(leader = now, "event sources {}", if now { "started" } else { "stopped" });
                    triggers.set_leader(now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn trigger(name: &str, source: serde_json::Value) -> Trigger {
        serde_json::from_value(json!({
            "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Trigger",
            "metadata": {"namespace": "ns", "name": name},
            "spec": {"source": source, "subscriber": {"function": "f"}},
        }))
        .unwrap()
    }

    fn triggers(routes: &RoutingTable) -> Triggers {
        let supervisor = Supervisor::new(Box::new(|_| tokio::spawn(std::future::pending())));
        let mut t = Triggers::new(routes.clone(), DeliveryDefaults::default(), supervisor);
        t.set_leader(true);
        t
    }

    #[tokio::test]
    async fn broker_triggers_route_and_source_triggers_run_a_task() {
        let routes = RoutingTable::default();
        let mut t = triggers(&routes);
        t.apply(&trigger("b", json!({"broker": {}})));
        t.apply(&trigger("s", json!({"schedule": {"cron": "* * * * *"}})));
        t.apply(&trigger(
            "k",
            json!({"kubernetes": {"apiVersion": "v1", "kind": "ConfigMap"}}),
        ));
        t.apply(&trigger(
            "secret",
            json!({"kubernetes": {"apiVersion": "v1", "kind": "Secret"}}),
        ));
        assert!(routes.get("ns", "b").is_some());
        assert_eq!(
            t.running_sources(),
            [("ns".into(), "k".into()), ("ns".into(), "s".into())]
        );
    }

    #[tokio::test]
    async fn an_invalid_update_removes_the_route_and_a_relist_drops_the_missing() {
        let routes = RoutingTable::default();
        let mut t = triggers(&routes);
        t.apply(&trigger("s", json!({"schedule": {"cron": "* * * * *"}})));
        t.apply(&trigger("b", json!({"broker": {}})));
        t.apply(&trigger("s", json!({})));
        assert!(routes.get("ns", "s").is_none());
        assert!(t.running_sources().is_empty());
        t.apply(&trigger("s", json!({"schedule": {"cron": "* * * * *"}})));
        t.observe(watcher::Event::Init);
        t.observe(watcher::Event::InitApply(trigger("b", json!({"broker": {}}))));
        t.observe(watcher::Event::InitDone);
        assert!(routes.get("ns", "s").is_none(), "not in the re-list");
        assert!(routes.get("ns", "b").is_some());
        assert!(t.running_sources().is_empty());
        t.observe(watcher::Event::Delete(trigger("b", json!({"broker": {}}))));
        assert!(routes.get("ns", "b").is_none());
    }
}
