//! Kubernetes Events on Functions and Triggers: which transitions and failures deserve one (pure), and
//! publishing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use zeroscale_crds::function::{
    CONDITION_CONTAINER_HEALTHY, CONDITION_READY, REASON_PROGRESSING, REASON_READY,
};

/// An event to publish: type, reason, note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Warning for failures, Normal otherwise.
    pub warning: bool,
    /// CamelCase reason.
    pub reason: String,
    /// Message for people.
    pub note: String,
    /// What the operator did, for the event's `action`.
    pub action: &'static str,
}

fn ready(conditions: &[Condition]) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == CONDITION_READY)
}

/// The event for a change of the `Ready` condition's status or reason; `None` when it did not change.
pub fn ready_transition(previous: &[Condition], next: &[Condition]) -> Option<Note> {
    let next = ready(next)?;
    let before = ready(previous);
    if before.is_some_and(|b| b.status == next.status && b.reason == next.reason) {
        return None;
    }
    let note = if next.status == "True" {
        "the function is ready".to_string()
    } else if next.message.is_empty() {
        format!("the function is not ready: {}", next.reason)
    } else {
        format!("the function is not ready: {}", next.message)
    };
    let healthy = next.status == "True" || next.reason == REASON_PROGRESSING;
    let reason = if next.status == "True" {
        REASON_READY.to_string()
    } else {
        next.reason.clone()
    };
    Some(Note {
        warning: !healthy,
        reason,
        note,
        action: "Reconcile",
    })
}

/// A warning for each new OOM kill: `ContainerHealthy` turned `False`, or its message (which carries the
/// kill's time) changed; `None` otherwise (also when it turns `True`: a pod going away is no news).
pub fn container_health_transition(previous: &[Condition], next: &[Condition]) -> Option<Note> {
    let find = |c: &[Condition]| c.iter().find(|c| c.type_ == CONDITION_CONTAINER_HEALTHY).cloned();
    let next = find(next)?;
    if next.status != "False" {
        return None;
    }
    let before = find(previous);
    if before.is_some_and(|b| b.status == next.status && b.reason == next.reason && b.message == next.message)
    {
        return None;
    }
    Some(Note {
        warning: true,
        reason: next.reason,
        note: next.message,
        action: "Observe",
    })
}

/// The event for a change of a Trigger's `Ready` condition's status or reason; `None` when it did not
/// change. Every `False` is a warning: unlike a Function, a Trigger has no state that is merely under way.
pub fn trigger_ready_transition(previous: &[Condition], next: &[Condition]) -> Option<Note> {
    let next = ready(next)?;
    let before = ready(previous);
    if before.is_some_and(|b| b.status == next.status && b.reason == next.reason) {
        return None;
    }
    let ready = next.status == "True";
    let note = if ready {
        format!("the trigger is ready: {}", next.message)
    } else {
        format!("the trigger is not ready: {}", next.message)
    };
    Some(Note {
        warning: !ready,
        reason: next.reason.clone(),
        note,
        action: "Reconcile",
    })
}

/// Publishes `note` on `object` (a Function or a Trigger); failures to publish are logged, never fatal.
pub async fn publish<K>(recorder: &Recorder, object: &K, note: Note)
where
    K: Resource<DynamicType = ()>,
{
    let event = Event {
        type_: if note.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: note.reason,
        note: Some(note.note),
        action: note.action.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(kind = %K::kind(&()), name = %object.name_any(), error = %e, "cannot publish event");
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn cond(status: &str, reason: &str, message: &str) -> Vec<Condition> {
        vec![Condition {
            type_: "Ready".into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation: None,
            last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
        }]
    }

    #[test]
    fn failures_are_warnings_and_recovery_is_normal() {
        let failing = cond("False", "ImagePullBackOff", "pod p: image not mapped");
        let note = ready_transition(&cond("False", "Progressing", ""), &failing).expect("changed");
        assert!(note.warning);
        assert_eq!(note.reason, "ImagePullBackOff");
        assert!(note.note.contains("image not mapped"));
        let note = ready_transition(&failing, &cond("True", "Ready", "")).expect("changed");
        assert!(!note.warning);
        assert_eq!(note.reason, "Ready");
    }

    #[test]
    fn no_event_without_a_change() {
        let a = cond("False", "CrashLoopBackOff", "one");
        assert_eq!(
            ready_transition(&a, &cond("False", "CrashLoopBackOff", "two")),
            None
        );
        assert!(ready_transition(&[], &cond("False", "Progressing", "")).is_some_and(|n| !n.warning));
    }

    fn health(status: &str, reason: &str, message: &str) -> Vec<Condition> {
        let mut c = cond(status, reason, message);
        c[0].type_ = "ContainerHealthy".into();
        c
    }

    #[test]
    fn every_new_oom_kill_is_a_warning() {
        let first = health(
            "False",
            "OOMKilled",
            "pod p: container function was OOMKilled at t1",
        );
        let note = container_health_transition(&health("True", "Healthy", ""), &first).expect("kill");
        assert!(note.warning);
        assert_eq!(note.reason, "OOMKilled");
        assert!(note.note.contains("at t1"));
        assert_eq!(container_health_transition(&first, &first), None, "the same kill");
        let second = health(
            "False",
            "OOMKilled",
            "pod p: container function was OOMKilled at t2",
        );
        assert!(container_health_transition(&first, &second).is_some());
        assert_eq!(
            container_health_transition(&second, &health("True", "Healthy", "")),
            None
        );
    }

    #[test]
    fn trigger_failures_are_warnings_named_by_their_reason() {
        let missing = cond(
            "False",
            "FunctionNotFound",
            "spec.subscriber: function f not found",
        );
        let note = trigger_ready_transition(&[], &missing).expect("first status");
        assert!(note.warning);
        assert_eq!(note.reason, "FunctionNotFound");
        assert!(note.note.contains("function f not found"));
        assert_eq!(trigger_ready_transition(&missing, &missing), None);
        let note =
            trigger_ready_transition(&missing, &cond("True", "Ready", "events go to x")).expect("flip");
        assert!(!note.warning);
        assert_eq!(note.reason, "Ready");
    }
}
