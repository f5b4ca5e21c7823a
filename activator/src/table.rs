//! The routing table: function states by routing key (`<name>.<namespace>`). It is also the feed
//! through which function knowledge arrives — from the Kubernetes watches, from a static file, or
//! directly from tests.
//!
//! With revisions, each revision is a state of its own (key `<revision>.<namespace>`: its own queue,
//! concurrency limits, failure, peering owner, metrics and autoscaler signals), and a function's
//! [`Routes`] send each request for `<function>.<namespace>` to one of them by weight, and a tag's
//! address `<tag>-<function>.<namespace>` to its revision.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
};

use zeroscale_common::signals::FunctionKey;

use crate::{
    function::record::Recorder,
    function::{FunctionState, Hooks, Wakeups},
    host::key_of,
    metering::{MeterConfig, ResourceDefaults},
    metrics::Metrics,
    queue::{BufferBudget, QueueLimits},
    settings::{EndpointInfo, FunctionSettings},
    split::Routes,
};

/// Every known function.
pub struct RoutingTable {
    functions: RwLock<HashMap<Box<str>, Arc<FunctionState>>>,
    routes: RwLock<RouteMap>,
    queue_limits: QueueLimits,
    budget: BufferBudget,
    metrics: Arc<Metrics>,
    wakeups: Arc<dyn Wakeups>,
    hooks: Hooks,
}

/// Function routes and tag addresses, by routing key.
#[derive(Default)]
struct RouteMap {
    /// Routes by the function's routing key.
    functions: HashMap<Box<str>, Routes>,
    /// Revision routing key by tag address routing key.
    tags: HashMap<Box<str>, Box<str>>,
}

impl std::fmt::Debug for RoutingTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingTable").finish_non_exhaustive()
    }
}

impl RoutingTable {
    /// An empty table; new functions get `queue_limits` and share `budget`.
    pub fn new(
        queue_limits: QueueLimits,
        budget: BufferBudget,
        metrics: Arc<Metrics>,
        wakeups: Arc<dyn Wakeups>,
    ) -> Self {
        Self {
            functions: RwLock::new(HashMap::new()),
            routes: RwLock::new(RouteMap::default()),
            queue_limits,
            budget,
            metrics,
            wakeups,
            hooks: Hooks {
                recorder: Recorder::default(),
                meter: MeterConfig {
                    families: Arc::default(),
                    defaults: ResourceDefaults::default(),
                    keep_usage: false,
                },
            },
        }
    }

    /// This table with the records of every request going to `hooks.recorder` (see
    /// [`crate::function::record`]) and functions metered per `hooks.meter` (see [`crate::metering`]).
    #[must_use]
    pub fn with_hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }

    /// Where request records go.
    pub fn recorder(&self) -> &Recorder {
        &self.hooks.recorder
    }

    /// The state a request for routing key `key` goes to: a revision picked by weight when `key` is a
    /// function with routes, the tagged revision when `key` is a tag's address, else the state of
    /// that key itself (a revision, or a function without routes).
    pub fn lookup(&self, key: &str) -> Option<Arc<FunctionState>> {
        let routed = {
            let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
            match routes.functions.get(key) {
                Some(r) => r.split.pick(&mut rand::rng()).map(str::to_string),
                None => routes.tags.get(key).map(|r| r.to_string()),
            }
        };
        match routed {
            Some(revision) => self.lookup_exact(&revision),
            None => self.lookup_exact(key),
        }
    }

    /// The state a request for routing key `key` goes to when a peer activator already picked
    /// `revision` (a routing key) for it: that revision while `key` still routes to it (by weight or
    /// as a tag), so a forwarded request is not picked a second time; else [`Self::lookup`].
    pub fn lookup_pinned(&self, key: &str, revision: &str) -> Option<Arc<FunctionState>> {
        let routed = {
            let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
            match routes.functions.get(key) {
                Some(r) => r.split.contains(revision),
                None => routes.tags.get(key).is_some_and(|r| &**r == revision),
            }
        };
        match routed {
            true => self.lookup_exact(revision),
            false => self.lookup(key),
        }
    }

    /// Sets the routes of the function `key` (its revisions by weight and its tags); `None` removes
    /// them, and the function's own key then names its state directly.
    pub fn set_routes(&self, key: &FunctionKey, routes: Option<Routes>) {
        let route = key_of(&key.namespace, &key.name);
        let mut map = self.routes.write().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = map.functions.remove(route.as_str()) {
            for (tag, _) in old.tags {
                map.tags.remove(tag.as_str());
            }
        }
        if let Some(routes) = routes {
            for (tag, revision) in &routes.tags {
                map.tags.insert(tag.as_str().into(), revision.as_str().into());
            }
            map.functions.insert(route.into_boxed_str(), routes);
        }
    }

    /// The state of exactly this routing key (no weighted pick).
    pub fn lookup_exact(&self, key: &str) -> Option<Arc<FunctionState>> {
        self.functions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// The function with this namespace and name.
    pub fn get(&self, key: &FunctionKey) -> Option<Arc<FunctionState>> {
        self.lookup_exact(&key_of(&key.namespace, &key.name))
    }

    /// Creates or updates a function with its current settings and endpoints.
    pub fn apply(&self, key: &FunctionKey, settings: FunctionSettings, endpoints: Vec<EndpointInfo>) {
        let route = key_of(&key.namespace, &key.name);
        let existing = self.lookup_exact(&route);
        let function = match existing {
            Some(f) => f,
            None => {
                let mut map = self.functions.write().unwrap_or_else(|e| e.into_inner());
                Arc::clone(map.entry(route.into_boxed_str()).or_insert_with(|| {
                    FunctionState::hooked(
                        key.clone(),
                        settings.clone(),
                        self.queue_limits,
                        self.budget.for_namespace(&key.namespace),
                        self.metrics.for_function(key),
                        Arc::clone(&self.wakeups),
                        &self.hooks,
                    )
                }))
            }
        };
        function.update(settings, endpoints);
    }

    /// Forgets a function; its waiting requests get 404.
    pub fn remove(&self, key: &FunctionKey) {
        if let Some(function) = self.take(key) {
            function.remove();
        }
    }

    /// Forgets an entry that another entry of the same Function replaced (its first revision took
    /// over from the Function's own entry, or a revision is no longer routed to): its waiting
    /// requests are routed again, to whatever the Function's routes now name. Call it after the
    /// replacing entries and routes are in place.
    pub fn supersede(&self, key: &FunctionKey) {
        if let Some(function) = self.take(key) {
            function.supersede();
        }
    }

    fn take(&self, key: &FunctionKey) -> Option<Arc<FunctionState>> {
        self.functions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key_of(&key.namespace, &key.name).as_str())
    }

    /// Removes every function not in `keep` (after a full resync of the source).
    pub fn retain(&self, keep: &HashSet<FunctionKey>) {
        let gone: Vec<FunctionKey> = self
            .all()
            .into_iter()
            .map(|f| f.key().clone())
            .filter(|k| !keep.contains(k))
            .collect();
        for key in gone {
            self.remove(&key);
        }
    }

    /// Every function, for the stats reporter.
    pub fn all(&self) -> Vec<Arc<FunctionState>> {
        self.functions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Bytes accounted to parked requests over all functions.
    pub fn buffered_bytes(&self) -> usize {
        self.budget.used()
    }
}
