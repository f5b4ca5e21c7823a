//! What the operator last applied to each child, and what the API server stored from it. A
//! reconcile skips an apply that would change nothing: the same child as applied last time, over an
//! object nobody has changed since.
//!
//! Why: a Function is reconciled on every change of its pods and Deployments, several times a
//! second while pods start. A server-side apply that changes nothing still costs the API server a
//! decode, a merge of managed fields and a comparison. Skipping it leaves a settled reconcile with no
//! request at all.
//!
//! What counts as a change of the stored object: its labels, annotations, owner references and spec,
//! apart from `spec.replicas`, which the autoscaler owns. Any change there by anyone (a `kubectl edit`,
//! another controller) makes the next reconcile apply again, so drift is still put right. The
//! status and `resourceVersion` are left out: they move with every pod that starts.
//!
//! The records live in memory. A restarted operator has none and applies every child once. The
//! records of a deleted Function's children stay until the operator restarts (a few dozen bytes
//! each): the controller is not told of deletions, and a leftover record only ever causes an apply.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

/// A 64-bit FNV-1a hash of `value`'s JSON. Stable across processes and Rust versions, unlike the
/// standard library's hasher; a collision would only skip one apply until the next change.
pub fn fingerprint<T: Serialize + ?Sized>(value: &T) -> u64 {
    // Serializing a Kubernetes object into memory cannot fail (its maps have string keys).
    fnv1a(&serde_json::to_vec(value).unwrap_or_default())
}

/// FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(PRIME))
}

/// The fingerprint of a stored child: its labels, annotations, owner references and `spec`.
fn stored_fingerprint<S: Serialize>(meta: &ObjectMeta, spec: &S) -> u64 {
    fingerprint(&(&meta.labels, &meta.annotations, &meta.owner_references, spec))
}

/// The fingerprint of a stored Service.
pub fn stored_service(service: &Service) -> u64 {
    stored_fingerprint(&service.metadata, &service.spec)
}

/// The fingerprint of a stored Deployment, without `spec.replicas`, which the autoscaler owns.
pub fn stored_deployment(deployment: &Deployment) -> u64 {
    let spec = deployment.spec.as_ref().map(|spec| DeploymentSpec {
        replicas: None,
        ..spec.clone()
    });
    stored_fingerprint(&deployment.metadata, &spec)
}

/// What was applied to one child, and what the API server answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Record {
    desired: u64,
    stored: u64,
}

/// The last apply of each child, by `kind/namespace/name`. The lock is never held across `.await`.
#[derive(Debug, Default)]
pub struct LastApplied(Mutex<HashMap<String, Record>>);

/// The key of a child in [`LastApplied`].
pub fn child_key(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind}/{namespace}/{name}")
}

impl LastApplied {
    /// Whether applying `desired` (a [`fingerprint`]) to the child `key`, stored now as `stored` (a
    /// [`stored_service`] or [`stored_deployment`]), would change nothing: the last apply was the same, and the object
    /// has not changed since.
    pub fn unchanged(&self, key: &str, desired: u64, stored: u64) -> bool {
        let records = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        records.get(key) == Some(&Record { desired, stored })
    }

    /// Records that `desired` was applied to `key` and the API server stored `stored`.
    pub fn record(&self, key: String, desired: u64, stored: u64) {
        let mut records = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        records.insert(key, Record { desired, stored });
    }

    /// Forgets `key`, so the next reconcile applies it (after a failed apply, or when it is deleted).
    pub fn forget(&self, key: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn meta(labels: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn the_fingerprint_is_fnv_1a_of_the_json() {
        // The published FNV-1a 64 test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(fingerprint("a"), fnv1a(b"\"a\""));
        assert_ne!(
            stored_fingerprint(&meta(&[("a", "1")]), &1),
            stored_fingerprint(&meta(&[("a", "2")]), &1),
            "a label is part of the stored object"
        );
        assert_ne!(
            stored_fingerprint(&meta(&[]), &1),
            stored_fingerprint(&meta(&[]), &2),
            "so is the spec"
        );
    }

    #[test]
    fn a_deployments_replicas_are_not_part_of_its_fingerprint() {
        let deployment = |replicas: i32, image: &str| -> Deployment {
            serde_json::from_value(serde_json::json!({
                "metadata": { "name": "d" },
                "spec": { "replicas": replicas, "selector": {}, "template": { "spec": {
                    "containers": [{ "name": "function", "image": image }] } } }
            }))
            .expect("deployment")
        };
        assert_eq!(
            stored_deployment(&deployment(1, "echo:1")),
            stored_deployment(&deployment(5, "echo:1")),
            "the autoscaler's writes are not drift"
        );
        assert_ne!(
            stored_deployment(&deployment(1, "echo:1")),
            stored_deployment(&deployment(1, "echo:2"))
        );
    }

    #[test]
    fn an_apply_is_skipped_only_when_both_sides_are_as_recorded() {
        let applied = LastApplied::default();
        let key = child_key("Service", "ns", "hello");
        assert!(!applied.unchanged(&key, 1, 2), "never applied");
        applied.record(key.clone(), 1, 2);
        assert!(applied.unchanged(&key, 1, 2));
        assert!(
            !applied.unchanged(&key, 3, 2),
            "the Function asks for something else"
        );
        assert!(!applied.unchanged(&key, 1, 4), "someone changed the object");
        applied.forget(&key);
        assert!(!applied.unchanged(&key, 1, 2), "forgotten after a failure");
    }
}
