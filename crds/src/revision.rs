//! Revision names: `<function>-<hash>`, where the hash covers only what reaches a pod.
//!
//! A revision is one Deployment (and its private Service) named after the runtime-relevant part of the
//! spec, so a name can be computed before applying (`zeroscale-revision-name < function.yaml`), and a
//! `git revert` brings back the same name and so the same Deployment. The hash is the first
//! [`HASH_LENGTH`] hex digits of the SHA-256 of the canonical JSON of [`RUNTIME_FIELDS`]: keys sorted,
//! `null`s, empty lists and empty objects dropped (a pod cannot tell them from an absent field), and
//! the API's defaults applied (a manifest without `port` hashes like one with `port: 8080`). Scaling,
//! traffic, rollout and history fields are left out: changing them never makes a new revision.

use serde_json::{Map, Value};

use crate::FunctionSpec;

/// Label on a revision's Deployment, pods, private Service and EndpointSlices: the revision's name.
pub const REVISION_LABEL: &str = "zeroscale.dev/revision";
/// Hex digits of the hash in a revision's name.
pub const HASH_LENGTH: usize = 10;
/// Longest Function name: `<function>-<hash>` must stay a 63-character DNS label.
pub const MAX_FUNCTION_NAME_LENGTH: usize = 63 - 1 - HASH_LENGTH;

/// The `spec` fields that reach the pod template (or the activator's per-revision behaviour) and so
/// make a revision. Anything else (`scale`, `traffic`, `rollout`, `revisionHistoryLimit`,
/// `visibility`) does not.
pub const RUNTIME_FIELDS: &[&str] = &[
    "image",
    "command",
    "args",
    "env",
    "envFrom",
    "resources",
    "port",
    "protocol",
    "readinessProbe",
    "securityContext",
    "serviceAccountName",
    "imagePullSecrets",
    "concurrency",
    "timeoutSeconds",
    "responseStartTimeoutSeconds",
    "idleTimeoutSeconds",
];

/// Why a revision name could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    /// The spec did not serialise (never the case for a deserialised spec).
    #[error("cannot serialise the spec: {0}")]
    Serialise(#[from] serde_json::Error),
}

/// The canonical JSON text of the runtime-relevant part of `spec`.
pub fn canonical_template(spec: &FunctionSpec) -> Result<String, RevisionError> {
    let Value::Object(all) = serde_json::to_value(spec)? else {
        return Ok("{}".into());
    };
    let template: Map<String, Value> = RUNTIME_FIELDS
        .iter()
        .filter_map(|field| Some((field.to_string(), canonical(all.get(*field)?.clone())?)))
        .collect();
    Ok(Value::Object(template).to_string())
}

/// `value` with object keys sorted and empty values dropped; `None` when nothing is left.
fn canonical(value: Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Array(items) => {
            let items: Vec<Value> = items.into_iter().filter_map(canonical).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map
                .into_iter()
                .filter_map(|(k, v)| Some((k, canonical(v)?)))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            (!entries.is_empty()).then(|| Value::Object(entries.into_iter().collect()))
        }
        other => Some(other),
    }
}

/// The hash part of a revision's name: [`HASH_LENGTH`] lowercase hex digits.
pub fn revision_hash(spec: &FunctionSpec) -> Result<String, RevisionError> {
    let text = canonical_template(spec)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Ok(hex[..HASH_LENGTH].to_string())
}

/// The name of the revision `spec` makes for the Function `function`: `<function>-<hash>`.
pub fn revision_name(function: &str, spec: &FunctionSpec) -> Result<String, RevisionError> {
    Ok(format!("{function}-{}", revision_hash(spec)?))
}

/// Whether `name` has the form of a revision of `function` (`<function>-<hash>`).
pub fn is_revision_of(name: &str, function: &str) -> bool {
    name.strip_prefix(function)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hash| hash.len() == HASH_LENGTH && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The Function and the revision a name stands for: `(function, Some(name))` when `name` has the form
/// of a revision (`<function>-<hash>`), else `(name, None)`: a Function without revisions. The
/// activator keys its routing entries this way, and labels metrics and records from it.
pub fn split_revision_name(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once('-') {
        Some((function, _)) if !function.is_empty() && is_revision_of(name, function) => {
            (function, Some(name))
        }
        _ => (name, None),
    }
}

#[cfg(test)]
#[path = "revision_tests.rs"]
mod tests;
