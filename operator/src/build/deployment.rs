//! The Deployment that runs a function's pods.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, Lifecycle, LifecycleHandler, PodSpec, PodTemplateSpec, Probe,
    SleepAction, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use zeroscale_crds::FunctionSpec;
use zeroscale_crds::function::Protocol;

use super::{
    BuildSettings, ValidatedFunction, container_resources, container_security_context, pod_security_context,
    revision_labels, revision_meta, revision_selector,
};

/// Name of the function's container in every pod.
pub const CONTAINER_NAME: &str = "function";
/// Old ReplicaSets kept for rollback; few, because every function has its own Deployment.
const REVISION_HISTORY_LIMIT: i32 = 2;

/// Name of the container port (and of the private Service's port): `http` or `h2c`.
pub fn port_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Http1 => "http",
        Protocol::H2c => "h2c",
    }
}

/// The readiness probe used when the Function sets none: TCP on the port, probed every second, so a
/// pod that listens is ready (and published in the EndpointSlices) as soon as possible.
pub fn default_readiness_probe(port: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(port),
            host: None,
        }),
        initial_delay_seconds: Some(0),
        period_seconds: Some(1),
        timeout_seconds: Some(1),
        success_threshold: Some(1),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

fn readiness_probe(spec: &FunctionSpec) -> Probe {
    match &spec.readiness_probe {
        None => default_readiness_probe(spec.port),
        Some(probe) => {
            let has_handler = probe.tcp_socket.is_some()
                || probe.http_get.is_some()
                || probe.exec.is_some()
                || probe.grpc.is_some();
            let mut probe = probe.clone();
            if !has_handler {
                // Timings without a handler: probe the port with the user's timings.
                probe.tcp_socket = default_readiness_probe(spec.port).tcp_socket;
            }
            probe
        }
    }
}

fn env(function: &ValidatedFunction<'_>) -> Vec<EnvVar> {
    let value = |name: &str, value: String| EnvVar {
        name: name.into(),
        value: Some(value),
        value_from: None,
    };
    let mut env = function.spec.env.clone().unwrap_or_default();
    env.push(value("PORT", function.spec.port.to_string()));
    env.push(value("ZEROSCALE_FUNCTION", function.name.to_string()));
    env.push(value("ZEROSCALE_NAMESPACE", function.namespace.to_string()));
    env.push(value("ZEROSCALE_REVISION", function.revision.clone()));
    env
}

/// The shutdown contract's `preStop` hook: a native sleep (function images need no shell), during which
/// the pod keeps serving while the activator learns that it is terminating; `None` for no sleep.
fn lifecycle(settings: &BuildSettings) -> Option<Lifecycle> {
    (settings.pre_stop_sleep_seconds > 0).then(|| Lifecycle {
        pre_stop: Some(LifecycleHandler {
            sleep: Some(SleepAction {
                seconds: settings.pre_stop_sleep_seconds,
            }),
            ..LifecycleHandler::default()
        }),
        ..Lifecycle::default()
    })
}

/// Seconds from the start of a pod's termination to SIGKILL: the `preStop` sleep, then up to
/// `timeoutSeconds` for the requests in flight (none lasts longer) after SIGTERM.
pub fn termination_grace_period_seconds(spec: &FunctionSpec, settings: &BuildSettings) -> i64 {
    settings.pre_stop_sleep_seconds.max(0) + spec.timeout_seconds
}

/// The Deployment of a Function's current revision, named like the revision. `replicas` is `Some` only when the Deployment is created: afterwards
/// the autoscaler owns `spec.replicas` (through `/scale`) and the operator leaves it out of every apply.
pub fn build_deployment(
    function: &ValidatedFunction<'_>,
    settings: &BuildSettings,
    replicas: Option<i32>,
) -> Deployment {
    let spec = function.spec;
    let container = Container {
        name: CONTAINER_NAME.into(),
        image: Some(spec.image.clone()),
        command: spec.command.clone(),
        args: spec.args.clone(),
        env: Some(env(function)),
        env_from: spec.env_from.clone(),
        resources: container_resources(spec.resources.as_ref(), settings.default_cpu_request.as_ref()),
        ports: Some(vec![ContainerPort {
            name: Some(port_name(spec.protocol).into()),
            container_port: spec.port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(readiness_probe(spec)),
        lifecycle: lifecycle(settings),
        security_context: Some(container_security_context(spec)),
        ..Container::default()
    };
    let pod = PodSpec {
        containers: vec![container],
        enable_service_links: Some(false),
        service_account_name: spec.service_account_name.clone(),
        // A function that names no ServiceAccount gets no API token: the namespace's `default`
        // account is no identity it asked for, and without the projected token volume the kubelet
        // has one API request and one mount less to do before the container starts
        // (docs/benchmarks.md, "P4"). A named account decides for itself.
        automount_service_account_token: spec.service_account_name.is_none().then_some(false),
        image_pull_secrets: spec.image_pull_secrets.clone(),
        // In-flight requests may take up to timeoutSeconds; let them finish on scale-down.
        termination_grace_period_seconds: Some(termination_grace_period_seconds(spec, settings)),
        security_context: Some(pod_security_context(spec)),
        ..PodSpec::default()
    };
    Deployment {
        metadata: revision_meta(function),
        spec: Some(DeploymentSpec {
            replicas,
            selector: LabelSelector {
                match_labels: Some(revision_selector(function.name, &function.revision)),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(revision_labels(function.name, &function.revision)),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            progress_deadline_seconds: Some(settings.progress_deadline_seconds),
            revision_history_limit: Some(REVISION_HISTORY_LIMIT),
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use kube::ResourceExt;

    use super::*;
    use crate::build::tests::{function, validated};

    fn container(d: &Deployment) -> &Container {
        &d.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .expect("pod spec")
            .containers[0]
    }

    #[test]
    fn deployment_has_name_labels_owner_and_env() {
        let f = function("hello");
        let revision = validated(&f).revision;
        let d = build_deployment(&validated(&f), &BuildSettings::default(), None);
        assert_eq!(d.metadata.name.as_deref(), Some(revision.as_str()));
        assert_eq!(d.labels().get("zeroscale.dev/revision"), Some(&revision));
        assert_eq!(d.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(
            d.labels().get("zeroscale.dev/function").map(String::as_str),
            Some("hello")
        );
        assert_eq!(
            d.labels().get("app.kubernetes.io/managed-by").map(String::as_str),
            Some("zeroscale")
        );
        assert_eq!(d.owner_references()[0].controller, Some(true));
        assert_eq!(
            zeroscale_crds::revision_runtime::RevisionRuntime::from_labels(d.labels()).expect("valid labels"),
            Some(zeroscale_crds::revision_runtime::RevisionRuntime::of(&f.spec)),
            "the autoscaler reads the revision's concurrency from its Deployment"
        );
        let spec = d.spec.as_ref().expect("spec");
        let pod_labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref())
            .expect("labels");
        assert_eq!(
            pod_labels.get("zeroscale.dev/function").map(String::as_str),
            Some("hello")
        );
        assert_eq!(pod_labels.get("zeroscale.dev/revision"), Some(&revision));
        assert_eq!(
            spec.selector.match_labels.as_ref(),
            Some(&revision_selector("hello", &revision))
        );
        let pod = spec.template.spec.as_ref().expect("pod");
        assert_eq!(pod.enable_service_links, Some(false));
        assert_eq!(
            pod.automount_service_account_token,
            Some(false),
            "no account named, no token"
        );
        assert_eq!(
            pod.termination_grace_period_seconds,
            Some(305),
            "preStop 5 s + timeout 300 s"
        );
        let env: Vec<_> = container(&d)
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.as_str(), e.value.as_deref().unwrap_or_default()))
            .collect();
        assert_eq!(
            env,
            [
                ("PORT", "8080"),
                ("ZEROSCALE_FUNCTION", "hello"),
                ("ZEROSCALE_NAMESPACE", "ns"),
                ("ZEROSCALE_REVISION", revision.as_str())
            ]
        );
        assert_eq!(container(&d).image.as_deref(), Some("zeroscale/echo"));
    }

    #[test]
    fn pods_sleep_before_sigterm_and_get_the_timeout_after_it() {
        let mut f = function("hello");
        f.spec.timeout_seconds = 30;
        let d = build_deployment(&validated(&f), &BuildSettings::default(), None);
        let pre_stop = container(&d)
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref())
            .expect("preStop");
        assert_eq!(pre_stop.sleep.as_ref().map(|s| s.seconds), Some(5));
        assert!(pre_stop.exec.is_none(), "images have no shell");
        let pod = d.spec.and_then(|s| s.template.spec).expect("pod");
        assert_eq!(pod.termination_grace_period_seconds, Some(35));

        let settings = BuildSettings {
            pre_stop_sleep_seconds: 0,
            ..BuildSettings::default()
        };
        let d = build_deployment(&validated(&f), &settings, None);
        assert!(container(&d).lifecycle.is_none(), "no sleep, no hook");
        let pod = d.spec.and_then(|s| s.template.spec).expect("pod");
        assert_eq!(pod.termination_grace_period_seconds, Some(30));
    }

    #[test]
    fn a_function_asking_for_no_cpu_gets_the_operators_default_request() {
        let f = function("hello");
        assert!(f.spec.resources.is_none());
        let d = build_deployment(&validated(&f), &BuildSettings::default(), None);
        let requests = container(&d).resources.as_ref().and_then(|r| r.requests.clone());
        assert_eq!(
            requests
                .and_then(|r| r.get("cpu").cloned())
                .map(|q| q.0)
                .as_deref(),
            Some("25m")
        );

        let settings = BuildSettings {
            default_cpu_request: None,
            ..BuildSettings::default()
        };
        let d = build_deployment(&validated(&f), &settings, None);
        assert!(
            container(&d).resources.is_none(),
            "no default: BestEffort as the user wrote it"
        );
    }

    #[test]
    fn pods_are_restricted_by_default_and_read_only_on_request() {
        let mut f = function("hello");
        let d = build_deployment(&validated(&f), &BuildSettings::default(), None);
        let json = serde_json::to_value(&d).expect("json");
        let pod = &json["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
        let c = &pod["containers"][0]["securityContext"];
        assert_eq!(c["allowPrivilegeEscalation"], false);
        assert_eq!(c["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert_eq!(c["readOnlyRootFilesystem"], false);

        f.spec.security_context = Some(
            serde_json::from_value(serde_json::json!({ "runAsUser": 65532, "readOnlyRootFilesystem": true }))
                .expect("ctx"),
        );
        let d = build_deployment(&validated(&f), &BuildSettings::default(), None);
        let c = container(&d).security_context.clone().expect("ctx");
        assert_eq!(c.read_only_root_filesystem, Some(true));
        let pod = d.spec.and_then(|s| s.template.spec).expect("pod");
        let p = pod.security_context.expect("pod ctx");
        assert_eq!((p.run_as_user, p.run_as_non_root), (Some(65532), Some(true)));
    }

    #[test]
    fn replicas_only_when_asked() {
        let f = function("hello");
        assert_eq!(
            build_deployment(&validated(&f), &BuildSettings::default(), None)
                .spec
                .and_then(|s| s.replicas),
            None
        );
        let created = build_deployment(&validated(&f), &BuildSettings::default(), Some(3));
        assert_eq!(created.spec.and_then(|s| s.replicas), Some(3));
        // Serialised for server-side apply, an absent `replicas` is absent, not null.
        let json = serde_json::to_value(build_deployment(&validated(&f), &BuildSettings::default(), None))
            .expect("json");
        assert!(json["spec"].get("replicas").is_none());
    }

    #[test]
    fn default_probe_is_tcp_on_the_port_every_second() {
        let mut f = function("hello");
        f.spec.port = 9000;
        let probe = build_deployment(&validated(&f), &BuildSettings::default(), None);
        let probe = container(&probe).readiness_probe.clone().expect("probe");
        assert_eq!(probe.tcp_socket.map(|t| t.port), Some(IntOrString::Int(9000)));
        assert_eq!(probe.period_seconds, Some(1));
    }

    #[test]
    fn user_probe_is_kept_and_completed() {
        let mut f = function("hello");
        f.spec.readiness_probe = Some(Probe {
            period_seconds: Some(5),
            ..Probe::default()
        });
        let d = build_deployment(&validated(&f), &BuildSettings::default(), None);
        let probe = container(&d).readiness_probe.clone().expect("probe");
        assert_eq!(probe.period_seconds, Some(5));
        assert!(probe.tcp_socket.is_some());
    }

    #[test]
    fn user_settings_reach_the_pod() {
        let mut f = function("hello");
        f.spec.command = Some(vec!["serve".into()]);
        f.spec.args = Some(vec!["--fast".into()]);
        f.spec.service_account_name = Some("runner".into());
        f.spec.protocol = Protocol::H2c;
        f.spec.env = Some(vec![EnvVar {
            name: "A".into(),
            value: Some("1".into()),
            value_from: None,
        }]);
        let d = build_deployment(&validated(&f), &BuildSettings::default(), None);
        let c = container(&d);
        assert_eq!(c.command.as_deref(), Some(&["serve".to_string()][..]));
        assert_eq!(c.args.as_deref(), Some(&["--fast".to_string()][..]));
        assert_eq!(c.env.as_ref().map(|e| e[0].name.as_str()), Some("A"));
        assert_eq!(c.ports.as_ref().and_then(|p| p[0].name.as_deref()), Some("h2c"));
        let pod = d.spec.and_then(|s| s.template.spec).expect("pod");
        assert_eq!(pod.service_account_name.as_deref(), Some("runner"));
        assert_eq!(
            pod.automount_service_account_token, None,
            "the named account decides"
        );
    }
}
