//! The restricted security context of function pods, with what `spec.securityContext` may change.
//!
//! Every pod passes the `restricted` Pod Security Standard: non-root, seccomp `RuntimeDefault`, no
//! privilege escalation, every capability dropped. The Function may set user and group ids and a
//! read-only root filesystem; admission rejects a root user (and [`crate::validate`] checks it again).

use k8s_openapi::api::core::v1::{Capabilities, PodSecurityContext, SeccompProfile, SecurityContext};
use zeroscale_crds::FunctionSpec;

/// The pod's security context: `runAsNonRoot`, seccomp `RuntimeDefault`, and the Function's ids.
pub fn pod_security_context(spec: &FunctionSpec) -> PodSecurityContext {
    let user = spec.security_context.clone().unwrap_or_default();
    PodSecurityContext {
        // Always true: admission refuses `runAsNonRoot: false`, and the kubelet refuses to start an
        // image whose user is root (CreateContainerConfigError) unless `runAsUser` gives another UID.
        run_as_non_root: Some(true),
        run_as_user: user.run_as_user,
        run_as_group: user.run_as_group,
        fs_group: user.fs_group,
        supplemental_groups: user.supplemental_groups,
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..PodSecurityContext::default()
    }
}

/// The container's security context: no privilege escalation, no capabilities, and the root
/// filesystem read-only when the Function asks for it (default writable, as in Knative).
pub fn container_security_context(spec: &FunctionSpec) -> SecurityContext {
    let read_only = spec
        .security_context
        .as_ref()
        .is_some_and(|s| s.read_only_root_filesystem());
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        read_only_root_filesystem: Some(read_only),
        privileged: Some(false),
        ..SecurityContext::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_objects::function;

    #[test]
    fn defaults_meet_the_restricted_standard() {
        let f = function("hello");
        let pod = pod_security_context(&f.spec);
        assert_eq!(pod.run_as_non_root, Some(true));
        assert_eq!(pod.run_as_user, None);
        assert_eq!(
            pod.seccomp_profile.map(|p| p.type_).as_deref(),
            Some("RuntimeDefault")
        );
        let c = container_security_context(&f.spec);
        assert_eq!(c.allow_privilege_escalation, Some(false));
        assert_eq!(c.privileged, Some(false));
        assert_eq!(c.capabilities.and_then(|c| c.drop), Some(vec!["ALL".to_string()]));
        assert_eq!(c.read_only_root_filesystem, Some(false));
    }

    #[test]
    fn the_function_sets_ids_and_a_read_only_root() {
        let mut f = function("hello");
        f.spec.security_context = Some(
            serde_json::from_value(json!({
                "runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000,
                "supplementalGroups": [4000], "readOnlyRootFilesystem": true
            }))
            .expect("ctx"),
        );
        let pod = pod_security_context(&f.spec);
        assert_eq!(
            (pod.run_as_user, pod.run_as_group, pod.fs_group),
            (Some(1000), Some(3000), Some(2000))
        );
        assert_eq!(pod.supplemental_groups, Some(vec![4000]));
        assert_eq!(pod.run_as_non_root, Some(true), "a user id never turns it off");
        let c = container_security_context(&f.spec);
        assert_eq!(c.read_only_root_filesystem, Some(true));
        assert_eq!(c.allow_privilege_escalation, Some(false));
    }
}
