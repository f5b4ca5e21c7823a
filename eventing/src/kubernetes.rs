//! The `kubernetes` source: object changes of one kind as CloudEvents.
//!
//! A watch only says "applied" or "deleted", and restarts with a full re-list after errors.
//! [`ChangeTracker`] turns that into added / updated / deleted exactly once per change it can see:
//! objects present when the watch first starts are the baseline (no events), a re-list reports what
//! changed while the watch was down (including deletions it missed), and a re-delivered object with an
//! unchanged `resourceVersion` is not reported again.

use std::collections::{HashMap, HashSet};

use cloudevents::{Event, EventBuilder, EventBuilderV10};
use jiff::Timestamp;
use kube::{
    ResourceExt,
    api::{DynamicObject, GroupVersionKind},
    runtime::watcher,
};
use zeroscale_crds::trigger::KubernetesSource;

use crate::schedule::trigger_source;

/// Type of the event for an object that appeared.
pub const ADDED_TYPE: &str = "dev.zeroscale.kubernetes.added";
/// Type of the event for an object that changed.
pub const UPDATED_TYPE: &str = "dev.zeroscale.kubernetes.updated";
/// Type of the event for an object that was deleted.
pub const DELETED_TYPE: &str = "dev.zeroscale.kubernetes.deleted";
/// Kinds a Trigger may not watch: the events would hand their contents to whoever can create a
/// Trigger, bypassing the RBAC that protects them.
pub const FORBIDDEN_KINDS: &[(&str, &str)] = &[("", "Secret")];

/// A `kubernetes` source that may not or cannot be watched.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KubernetesSourceError {
    /// The source names another namespace than the Trigger's.
    #[error("spec.source.kubernetes.namespace {0:?}: a trigger can only watch its own namespace")]
    OtherNamespace(String),
    /// The kind is one that may not be watched.
    #[error("spec.source.kubernetes.kind {0:?} may not be watched by a trigger")]
    ForbiddenKind(String),
    /// `apiVersion` is not `version` or `group/version`.
    #[error("spec.source.kubernetes.apiVersion {0:?} is not of the form version or group/version")]
    ApiVersion(String),
    /// The event could not be built.
    #[error("cannot build the event: {0}")]
    Event(String),
}

/// What to watch, resolved and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchTarget {
    /// Group, version and kind.
    pub gvk: GroupVersionKind,
    /// Namespace to watch (the Trigger's).
    pub namespace: String,
    /// Label selector, if any.
    pub label_selector: Option<String>,
}

impl WatchTarget {
    /// Checks the source of a Trigger in `trigger_namespace`.
    pub fn resolve(
        trigger_namespace: &str,
        source: &KubernetesSource,
    ) -> Result<Self, KubernetesSourceError> {
        let namespace = match source.namespace.as_deref().map(str::trim) {
            None | Some("") => trigger_namespace.to_string(),
            Some(ns) if ns == trigger_namespace => ns.to_string(),
            Some(other) => return Err(KubernetesSourceError::OtherNamespace(other.to_string())),
        };
        let (group, version) = match source.api_version.trim().split_once('/') {
            Some((g, v)) if !g.is_empty() && !v.is_empty() && !v.contains('/') => (g, v),
            None if !source.api_version.trim().is_empty() => ("", source.api_version.trim()),
            _ => return Err(KubernetesSourceError::ApiVersion(source.api_version.clone())),
        };
        if FORBIDDEN_KINDS
            .iter()
            .any(|(g, k)| *g == group && *k == source.kind)
        {
            return Err(KubernetesSourceError::ForbiddenKind(source.kind.clone()));
        }
        let label_selector = source
            .label_selector
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        Ok(Self {
            gvk: GroupVersionKind::gvk(group, version, &source.kind),
            namespace,
            label_selector: label_selector.map(Into::into),
        })
    }
}

/// A change of one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The object appeared.
    Added,
    /// The object changed.
    Updated,
    /// The object was deleted.
    Deleted,
}

impl Change {
    /// The CloudEvents `type` for this change.
    pub fn event_type(self) -> &'static str {
        match self {
            Change::Added => ADDED_TYPE,
            Change::Updated => UPDATED_TYPE,
            Change::Deleted => DELETED_TYPE,
        }
    }
}

/// Turns watch events into changes (see the module docs).
#[derive(Debug, Default)]
pub struct ChangeTracker {
    known: HashMap<String, DynamicObject>,
    relist: Option<HashSet<String>>,
    started: bool,
}

impl ChangeTracker {
    /// The changes `event` reveals, in order.
    pub fn observe(&mut self, event: watcher::Event<DynamicObject>) -> Vec<(Change, DynamicObject)> {
        match event {
            watcher::Event::Init => {
                self.relist = Some(HashSet::new());
                Vec::new()
            }
            watcher::Event::InitApply(obj) => {
                if let Some(seen) = &mut self.relist {
                    seen.insert(key(&obj));
                }
                let change = self.apply(obj);
                if self.started {
                    change.into_iter().collect()
                } else {
                    Vec::new()
                }
            }
            watcher::Event::InitDone => {
                let seen = self.relist.take().unwrap_or_default();
                let started = std::mem::replace(&mut self.started, true);
                let gone: Vec<String> = self
                    .known
                    .keys()
                    .filter(|k| !seen.contains(*k))
                    .cloned()
                    .collect();
                let removed = gone.into_iter().filter_map(|k| self.known.remove(&k));
                if started {
                    removed.map(|obj| (Change::Deleted, obj)).collect()
                } else {
                    Vec::new()
                }
            }
            watcher::Event::Apply(obj) => self.apply(obj).into_iter().collect(),
            watcher::Event::Delete(obj) => {
                self.known.remove(&key(&obj));
                vec![(Change::Deleted, obj)]
            }
        }
    }

    fn apply(&mut self, obj: DynamicObject) -> Option<(Change, DynamicObject)> {
        let change = match self.known.get(&key(&obj)) {
            None => Change::Added,
            Some(old) if old.resource_version() == obj.resource_version() => return None,
            Some(_) => Change::Updated,
        };
        self.known.insert(key(&obj), obj.clone());
        Some((change, obj))
    }
}

/// Objects are told apart by UID (a deleted and re-created object is a new object), by name when the
/// UID is missing.
fn key(obj: &DynamicObject) -> String {
    obj.uid().unwrap_or_else(|| obj.name_any())
}

/// The event Trigger `name` in `namespace` emits for `change` of `obj`: `subject` is
/// `<object namespace>/<object name>`, data is the object as JSON, and `id` is
/// `<uid>/<resourceVersion>/<change>` so the same change seen twice can be de-duplicated.
pub fn object_event(
    namespace: &str,
    name: &str,
    change: Change,
    obj: &DynamicObject,
    now: Timestamp,
) -> Result<Event, KubernetesSourceError> {
    let id = format!(
        "{}/{}/{}",
        obj.uid().unwrap_or_default(),
        obj.resource_version().unwrap_or_default(),
        change.event_type().rsplit('.').next().unwrap_or_default()
    );
    let subject = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
    let data = serde_json::to_value(obj).map_err(|e| KubernetesSourceError::Event(e.to_string()))?;
    EventBuilderV10::new()
        .id(id)
        .ty(change.event_type())
        .source(trigger_source(namespace, name))
        .subject(subject)
        .time(now.to_string())
        .data("application/json", data)
        .build()
        .map_err(|e| KubernetesSourceError::Event(e.to_string()))
}

#[cfg(test)]
#[path = "kubernetes_tests.rs"]
mod tests;
