//! The metering families (`zeroscale_faas_*`) and one function's meter: its label handles, resolved
//! once per revision, and the usage not yet flushed as a usage record.

use std::sync::Arc;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use zeroscale_common::signals::FunctionKey;
use zeroscale_crds::revision::split_revision_name;

use super::{
    resources::{Resources, billed_millis},
    usage::{OUTCOMES, UsageTotals},
};

/// Labels of the per-function metering series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RevisionLabels {
    /// Namespace of the function.
    pub namespace: String,
    /// Name of the function.
    pub function: String,
    /// Revision that served (empty for a Function without revisions).
    pub revision: String,
}

/// Labels of the invocation counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Namespace of the function.
    pub namespace: String,
    /// Name of the function.
    pub function: String,
    /// Revision that served (empty for a Function without revisions).
    pub revision: String,
    /// See [`crate::function::record::RequestOutcome::label`].
    pub outcome: &'static str,
}

/// Labels of the instance-seconds counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// Namespace of the function.
    pub namespace: String,
    /// Name of the function.
    pub function: String,
    /// Revision of the pods (empty for a Function without revisions).
    pub revision: String,
    /// `busy` (≥ 1 request in flight) or `idle` (ready, none in flight).
    pub state: &'static str,
}

type FloatCounter = Counter<f64, std::sync::atomic::AtomicU64>;

fn outcome_index(label: &str) -> usize {
    OUTCOMES.iter().position(|o| *o == label).unwrap_or(2)
}

/// Every metering family.
#[derive(Clone, Debug)]
pub struct MeterFamilies {
    invocations: Family<OutcomeLabels, Counter>,
    duration: Family<RevisionLabels, Histogram, fn() -> Histogram>,
    billed: Family<RevisionLabels, FloatCounter>,
    memory: Family<RevisionLabels, FloatCounter>,
    cpu: Family<RevisionLabels, FloatCounter>,
    coldstarts: Family<RevisionLabels, Counter>,
    instances: Family<StateLabels, FloatCounter>,
}

impl Default for MeterFamilies {
    fn default() -> Self {
        Self {
            invocations: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            billed: Family::default(),
            memory: Family::default(),
            cpu: Family::default(),
            coldstarts: Family::default(),
            instances: Family::default(),
        }
    }
}

fn duration_histogram() -> Histogram {
    // 1 ms to ~15 min.
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

impl MeterFamilies {
    /// Creates the families and registers them in `registry` under `zeroscale_faas_*`.
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let f = Self::default();
        let r = registry.sub_registry_with_prefix("zeroscale_faas");
        r.register(
            "invocations",
            "Requests served by this activator, by outcome (faas.invocations)",
            f.invocations.clone(),
        );
        r.register(
            "invoke_duration_seconds",
            "Time from handing a request to a pod to the end of its response (faas.invoke_duration)",
            f.duration.clone(),
        );
        r.register(
            "billed_duration_seconds",
            "Invocation time, each invocation rounded up to 1 ms",
            f.billed.clone(),
        );
        r.register(
            "memory_byte_seconds",
            "Billed duration times the container's memory limit",
            f.memory.clone(),
        );
        r.register(
            "cpu_seconds",
            "Billed duration times the container's CPU limit in cores (CPU allocated, not used)",
            f.cpu.clone(),
        );
        r.register(
            "coldstarts",
            "Invocations that waited through a cold start (faas.coldstarts)",
            f.coldstarts.clone(),
        );
        r.register(
            "instance_seconds",
            "Time ready pods spent busy (a request in flight) or idle, seen by the function's owning activator",
            f.instances.clone(),
        );
        Arc::new(f)
    }
}

/// The handles of one revision of one function.
#[derive(Debug)]
struct RevisionMeter {
    revision: Option<Arc<str>>,
    invocations: [Counter; 5],
    duration: Histogram,
    billed: FloatCounter,
    memory: FloatCounter,
    cpu: FloatCounter,
    coldstarts: Counter,
    busy: FloatCounter,
    idle: FloatCounter,
    pending: UsageTotals,
}

/// One function's meter: handles per revision and the usage not flushed yet.
#[derive(Debug)]
pub struct FunctionMeter {
    key: FunctionKey,
    families: Arc<MeterFamilies>,
    revisions: Vec<RevisionMeter>,
    /// What one pod is allocated, as of the function's latest spec.
    pub resources: Resources,
    /// Whether usage is kept for usage records (a sink is configured).
    pub keep_usage: bool,
}

impl FunctionMeter {
    /// A meter for `key` on `families` billing `resources` per pod.
    pub fn new(
        key: &FunctionKey,
        families: Arc<MeterFamilies>,
        resources: Resources,
        keep_usage: bool,
    ) -> Self {
        Self {
            key: key.clone(),
            families,
            revisions: Vec::new(),
            resources,
            keep_usage,
        }
    }

    /// A meter registered nowhere (tests, functions fed by hand).
    pub fn detached(key: &FunctionKey) -> Self {
        Self::new(
            key,
            Arc::default(),
            super::resources::ResourceDefaults::default().into(),
            false,
        )
    }

    fn revision(&mut self, revision: Option<&str>) -> &mut RevisionMeter {
        // A function has few revisions live at once: a short scan beats hashing.
        let i = match self
            .revisions
            .iter()
            .position(|r| r.revision.as_deref() == revision)
        {
            Some(i) => i,
            None => {
                // A routing entry per revision: its name is the revision's, its Function the prefix.
                let (function, own) = split_revision_name(&self.key.name);
                let labels = RevisionLabels {
                    namespace: self.key.namespace.clone(),
                    function: function.to_string(),
                    revision: revision.or(own).unwrap_or_default().to_string(),
                };
                let f = &self.families;
                let outcome = |outcome| {
                    f.invocations
                        .get_or_create(&OutcomeLabels {
                            namespace: labels.namespace.clone(),
                            function: labels.function.clone(),
                            revision: labels.revision.clone(),
                            outcome,
                        })
                        .clone()
                };
                let state = |state| {
                    f.instances
                        .get_or_create(&StateLabels {
                            namespace: labels.namespace.clone(),
                            function: labels.function.clone(),
                            revision: labels.revision.clone(),
                            state,
                        })
                        .clone()
                };
                self.revisions.push(RevisionMeter {
                    revision: revision.map(Arc::from),
                    invocations: OUTCOMES.map(outcome),
                    duration: f.duration.get_or_create(&labels).clone(),
                    billed: f.billed.get_or_create(&labels).clone(),
                    memory: f.memory.get_or_create(&labels).clone(),
                    cpu: f.cpu.get_or_create(&labels).clone(),
                    coldstarts: f.coldstarts.get_or_create(&labels).clone(),
                    busy: state("busy"),
                    idle: state("idle"),
                    pending: UsageTotals::default(),
                });
                self.revisions.len() - 1
            }
        };
        &mut self.revisions[i]
    }

    /// Meters one finished request of `revision` with outcome label `outcome`; `invocation` is the
    /// time a pod worked on it (`None`: it never reached one, nothing is billed).
    pub fn record(
        &mut self,
        revision: Option<&str>,
        outcome: &str,
        cold: bool,
        invocation: Option<std::time::Duration>,
    ) {
        let resources = self.resources;
        let keep = self.keep_usage;
        let m = self.revision(revision);
        let outcome = outcome_index(outcome);
        m.invocations[outcome].inc();
        if cold {
            m.coldstarts.inc();
        }
        let billed = invocation.map(billed_millis);
        if let (Some(billed), Some(invocation)) = (billed, invocation) {
            m.duration.observe(invocation.as_secs_f64());
            let seconds = billed as f64 / 1000.0;
            m.billed.inc_by(seconds);
            m.memory.inc_by(seconds * resources.memory_bytes as f64);
            m.cpu.inc_by(seconds * resources.cpu_millis as f64 / 1000.0);
        }
        if keep {
            m.pending.add(outcome, cold, billed.unwrap_or(0), resources);
        }
    }

    /// Adds `busy` and `idle` pod-milliseconds of `revision`.
    pub fn instances(&mut self, revision: Option<&str>, busy_ms: u64, idle_ms: u64) {
        let keep = self.keep_usage;
        let m = self.revision(revision);
        m.busy.inc_by(busy_ms as f64 / 1000.0);
        m.idle.inc_by(idle_ms as f64 / 1000.0);
        if keep {
            m.pending.busy_instance_ms += busy_ms;
            m.pending.idle_instance_ms += idle_ms;
        }
    }

    /// Takes the usage not flushed yet, per revision (only revisions with some).
    pub fn take_usage(&mut self) -> Vec<(Option<Arc<str>>, UsageTotals)> {
        self.revisions
            .iter_mut()
            .filter(|r| !r.pending.is_empty())
            .map(|r| (r.revision.clone(), std::mem::take(&mut r.pending)))
            .collect()
    }
}

#[cfg(test)]
#[path = "meter_tests.rs"]
mod tests;
