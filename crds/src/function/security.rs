//! `spec.securityContext`: what a Function may change of the restricted security context its pods run
//! with, and nothing the `restricted` Pod Security Standard forbids.
//!
//! Every pod of a Function runs with `runAsNonRoot: true` and `seccompProfile: RuntimeDefault`, and its
//! container with `allowPrivilegeEscalation: false` and `capabilities.drop: [ALL]`, so Functions run in
//! namespaces that enforce the `restricted` standard. These fields cannot change that: the CEL rules
//! below reject, at admission, a value that would (`runAsNonRoot: false`, `runAsUser: 0`).

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::scale::rule;

/// What a Function may set of its pods' security context, within the restricted Pod Security Standard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = security_rules)]
pub struct FunctionSecurityContext {
    /// UID the container runs as (1–2147483647); by default the image's user. Set it to run an image whose
    /// user is root (the restricted standard forbids UID 0, so 0 is rejected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 2_147_483_647))]
    pub run_as_user: Option<i64>,
    /// GID the container's processes run as (0–2147483647); by default the image's group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 2_147_483_647))]
    pub run_as_group: Option<i64>,
    /// Supplemental group that owns the pod's volumes (0–2147483647), as the pod's `fsGroup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 2_147_483_647))]
    pub fs_group: Option<i64>,
    /// Further groups of the container's processes (each 0–2147483647), as the pod's
    /// `supplementalGroups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), inner(range(min = 0, max = 2_147_483_647)))]
    pub supplemental_groups: Option<Vec<i64>>,
    /// Must be `true` when set (the default): the restricted standard forbids running as root. It is
    /// here so that a manifest saying `false` is rejected rather than silently ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,
    /// Mount the container's root filesystem read-only (default `false`, as in Knative). With `true`
    /// nothing can write to the image's filesystem; the function must write nowhere or to a volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,
}

/// Message when `runAsNonRoot` is `false`.
pub const RUN_AS_NON_ROOT_MESSAGE: &str = "spec.securityContext.runAsNonRoot must be true: the restricted Pod Security Standard forbids running as root (set runAsUser to a non-zero UID to run an image whose user is root)";
/// Message when `runAsUser` is 0 or negative.
pub const RUN_AS_USER_MESSAGE: &str = "spec.securityContext.runAsUser must be a non-zero UID: the restricted Pod Security Standard forbids running as root";

/// Adds the rules that keep the security context within the restricted standard.
fn security_rules(schema: &mut Schema) {
    let rules = vec![
        rule(
            "!has(self.runAsNonRoot) || self.runAsNonRoot",
            RUN_AS_NON_ROOT_MESSAGE,
        ),
        rule("!has(self.runAsUser) || self.runAsUser > 0", RUN_AS_USER_MESSAGE),
    ];
    schema.insert("x-kubernetes-validations".into(), Value::Array(rules));
}

impl FunctionSecurityContext {
    /// The first way this context leaves the restricted standard, as the admission message; `None` when
    /// it stays within. The operator checks it too, for Functions stored before the rules existed.
    pub fn violation(&self) -> Option<&'static str> {
        if self.run_as_non_root == Some(false) {
            return Some(RUN_AS_NON_ROOT_MESSAGE);
        }
        if self.run_as_user.is_some_and(|uid| uid <= 0) {
            return Some(RUN_AS_USER_MESSAGE);
        }
        None
    }

    /// Whether the root filesystem is mounted read-only (default `false`).
    pub fn read_only_root_filesystem(&self) -> bool {
        self.read_only_root_filesystem.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn root_is_a_violation_and_everything_else_is_not() {
        let parse = |v: Value| -> FunctionSecurityContext { serde_json::from_value(v).expect("parses") };
        assert_eq!(parse(json!({})).violation(), None);
        assert_eq!(
            parse(json!({ "runAsUser": 1000, "runAsGroup": 0, "fsGroup": 2000, "runAsNonRoot": true, "readOnlyRootFilesystem": true }))
                .violation(),
            None
        );
        assert_eq!(
            parse(json!({ "runAsNonRoot": false })).violation(),
            Some(RUN_AS_NON_ROOT_MESSAGE)
        );
        assert_eq!(
            parse(json!({ "runAsUser": 0 })).violation(),
            Some(RUN_AS_USER_MESSAGE)
        );
        assert_eq!(
            parse(json!({ "runAsUser": -1 })).violation(),
            Some(RUN_AS_USER_MESSAGE)
        );
    }

    #[test]
    fn read_only_root_filesystem_defaults_to_false() {
        assert!(!FunctionSecurityContext::default().read_only_root_filesystem());
        let ro = FunctionSecurityContext {
            read_only_root_filesystem: Some(true),
            ..FunctionSecurityContext::default()
        };
        assert!(ro.read_only_root_filesystem());
    }
}
