//! The routing table: function states by routing key (`<name>.<namespace>`). It is also the feed
//! through which function knowledge arrives — from the Kubernetes watches, from a static file, or
//! directly from tests.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
};

use zeroscale_common::signals::FunctionKey;

use crate::{
    function::{FunctionState, Wakeups},
    host::key_of,
    metrics::Metrics,
    queue::{BufferBudget, QueueLimits},
    record::Recorder,
    settings::{EndpointInfo, FunctionSettings},
};

/// Every known function.
pub struct RoutingTable {
    functions: RwLock<HashMap<Box<str>, Arc<FunctionState>>>,
    queue_limits: QueueLimits,
    budget: BufferBudget,
    metrics: Arc<Metrics>,
    wakeups: Arc<dyn Wakeups>,
    recorder: Recorder,
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
            queue_limits,
            budget,
            metrics,
            wakeups,
            recorder: Recorder::default(),
        }
    }

    /// This table with the records of every request going to `recorder` (see [`crate::record`]).
    #[must_use]
    pub fn with_recorder(mut self, recorder: Recorder) -> Self {
        self.recorder = recorder;
        self
    }

    /// Where request records go.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The function for a routing key.
    pub fn lookup(&self, key: &str) -> Option<Arc<FunctionState>> {
        self.functions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// The function with this namespace and name.
    pub fn get(&self, key: &FunctionKey) -> Option<Arc<FunctionState>> {
        self.lookup(&key_of(&key.namespace, &key.name))
    }

    /// Creates or updates a function with its current settings and endpoints.
    pub fn apply(&self, key: &FunctionKey, settings: FunctionSettings, endpoints: Vec<EndpointInfo>) {
        let route = key_of(&key.namespace, &key.name);
        let existing = self.lookup(&route);
        let function = match existing {
            Some(f) => f,
            None => {
                let mut map = self.functions.write().unwrap_or_else(|e| e.into_inner());
                Arc::clone(map.entry(route.into_boxed_str()).or_insert_with(|| {
                    FunctionState::recorded(
                        key.clone(),
                        settings.clone(),
                        self.queue_limits,
                        self.budget.clone(),
                        self.metrics.for_function(key),
                        Arc::clone(&self.wakeups),
                        self.recorder.clone(),
                    )
                }))
            }
        };
        function.update(settings, endpoints);
    }

    /// Forgets a function; its waiting requests get 404.
    pub fn remove(&self, key: &FunctionKey) {
        let removed = self
            .functions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key_of(&key.namespace, &key.name).as_str());
        if let Some(function) = removed {
            function.remove();
        }
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
