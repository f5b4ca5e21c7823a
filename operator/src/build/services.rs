//! The two Services of a function: the private headless one that lists its pods, and the public
//! `ExternalName` one that makes `<name>.<namespace>.svc` reach the activator.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use zeroscale_crds::function::Protocol;

use super::{BuildSettings, ValidatedFunction, child_meta, port_name, revision_meta, revision_selector};

/// The current revision's private Service, named like the revision: headless, selecting the revision's
/// pods. Its EndpointSlices (which carry its labels, the revision's included) are how the activator
/// finds a revision's ready pods, and the revision's own runtime settings
/// (`RevisionRuntime` labels), which stay with it when the spec moves on.
pub fn build_private_service(function: &ValidatedFunction<'_>) -> Service {
    let spec = function.spec;
    Service {
        metadata: revision_meta(function),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(revision_selector(function.name, &function.revision)),
            ports: Some(vec![ServicePort {
                name: Some(port_name(spec.protocol).into()),
                port: spec.port,
                target_port: Some(IntOrString::Int(spec.port)),
                protocol: Some("TCP".into()),
                app_protocol: match spec.protocol {
                    Protocol::Http1 => None,
                    Protocol::H2c => Some("kubernetes.io/h2c".into()),
                },
                ..ServicePort::default()
            }]),
            publish_not_ready_addresses: Some(false),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The public Service `<name>`: an `ExternalName` alias of the activator's Service, so in-cluster
/// clients calling `http://<name>.<namespace>.svc` reach the activator, which routes by `Host`.
pub fn build_public_service(function: &ValidatedFunction<'_>, settings: &BuildSettings) -> Service {
    Service {
        metadata: child_meta(function, function.name),
        spec: Some(ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some(settings.activator_service.clone()),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use kube::ResourceExt;

    use super::*;
    use crate::build::tests::{function, validated};
    use zeroscale_crds::revision_runtime::RevisionRuntime;

    #[test]
    fn private_service_is_headless_and_selects_the_pods() {
        let f = function("hello");
        let revision = validated(&f).revision;
        let s = build_private_service(&validated(&f));
        assert_eq!(s.metadata.name.as_deref(), Some(revision.as_str()));
        assert_eq!(
            s.labels().get("zeroscale.dev/function").map(String::as_str),
            Some("hello")
        );
        assert_eq!(s.labels().get("zeroscale.dev/revision"), Some(&revision));
        // The revision's runtime settings travel on its Service (and so on its EndpointSlices).
        let runtime = RevisionRuntime::from_labels(s.labels()).expect("valid labels");
        assert_eq!(runtime, Some(RevisionRuntime::of(&f.spec)));
        assert_eq!(s.owner_references()[0].name, "hello");
        let spec = s.spec.expect("spec");
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.selector, Some(revision_selector("hello", &revision)));
        let port = &spec.ports.expect("ports")[0];
        assert_eq!((port.name.as_deref(), port.port), (Some("http"), 8080));
    }

    #[test]
    fn public_service_points_at_the_activator() {
        let settings = BuildSettings {
            activator_service: "act.sys.svc.cluster.local".into(),
            ..Default::default()
        };
        let s = build_public_service(&validated(&function("hello")), &settings);
        assert_eq!(s.metadata.name.as_deref(), Some("hello"));
        assert!(
            s.labels().get("zeroscale.dev/revision").is_none(),
            "one per function"
        );
        assert_eq!(s.owner_references()[0].controller, Some(true));
        let spec = s.spec.expect("spec");
        assert_eq!(spec.type_.as_deref(), Some("ExternalName"));
        assert_eq!(spec.external_name.as_deref(), Some("act.sys.svc.cluster.local"));
    }
}
