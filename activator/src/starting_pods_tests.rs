use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{Pod, PodStatus},
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::api::ObjectMeta;

use super::*;
use crate::endpoints::EndpointSet;

fn pod(name: &str, labels: &[(&str, &str)], ip: Option<&str>, phase: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        },
        status: Some(PodStatus {
            pod_ip: ip.map(str::to_string),
            phase: Some(phase.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

const REVISION: [(&str, &str); 2] = [(FUNCTION_LABEL, "hello"), (REVISION_LABEL, "hello-00001")];

#[test]
fn a_sighting_names_the_revision_or_the_function() {
    let seen = sighting(&pod("a", &REVISION, Some("10.0.0.1"), "Running")).expect("sighting");
    assert_eq!(seen.id, ("ns".to_string(), "a".to_string()));
    assert_eq!(seen.key, FunctionKey::new("ns", "hello-00001"));
    assert_eq!(seen.ip, Some(ip("10.0.0.1")));
    let plain = sighting(&pod(
        "b",
        &[(FUNCTION_LABEL, "hello")],
        Some("10.0.0.2"),
        "Pending",
    ));
    assert_eq!(plain.map(|s| s.key), Some(FunctionKey::new("ns", "hello")));
    assert_eq!(
        sighting(&pod("c", &[], Some("10.0.0.3"), "Running")),
        None,
        "not a function's pod"
    );
}

#[test]
fn only_a_live_pod_with_an_ip_is_a_candidate() {
    let ip_of = |p: &Pod| sighting(p).expect("sighting").ip;
    assert_eq!(ip_of(&pod("a", &REVISION, None, "Pending")), None, "no IP yet");
    assert_eq!(ip_of(&pod("a", &REVISION, Some("not-an-ip"), "Pending")), None);
    assert_eq!(ip_of(&pod("a", &REVISION, Some("10.0.0.1"), "Failed")), None);
    assert_eq!(ip_of(&pod("a", &REVISION, Some("10.0.0.1"), "Succeeded")), None);
    let mut deleting = pod("a", &REVISION, Some("10.0.0.1"), "Running");
    deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
    assert_eq!(ip_of(&deleting), None, "terminating");
    assert_eq!(
        ip_of(&pod("a", &REVISION, Some("fd00::1"), "Pending")),
        Some(ip("fd00::1"))
    );
}

#[test]
fn pods_are_kept_by_name_and_changes_are_reported() {
    let key = FunctionKey::new("ns", "hello-00001");
    let seen = |name: &str, addr: Option<&str>| PodSighting {
        id: ("ns".into(), name.into()),
        key: key.clone(),
        ip: addr.map(ip),
    };
    let mut pods = StartingPods::default();
    assert_eq!(
        pods.apply(seen("a", None)),
        None,
        "nothing known, nothing changes"
    );
    assert_eq!(pods.apply(seen("a", Some("10.0.0.1"))), Some(key.clone()));
    assert_eq!(pods.apply(seen("a", Some("10.0.0.1"))), None, "the same IP again");
    assert_eq!(pods.apply(seen("b", Some("10.0.0.2"))), Some(key.clone()));
    assert_eq!(
        pods.ips(&key).collect::<Vec<_>>(),
        vec![ip("10.0.0.1"), ip("10.0.0.2")]
    );
    assert_eq!(
        pods.apply(seen("a", None)),
        Some(key.clone()),
        "terminating: dropped"
    );
    assert_eq!(pods.ips(&key).collect::<Vec<_>>(), vec![ip("10.0.0.2")]);
    assert_eq!(pods.remove(&key, "a"), None, "already gone");
    assert_eq!(pods.remove(&key, "b"), Some(key.clone()));
    assert_eq!(pods.ips(&key).count(), 0);
    pods.apply(seen("c", Some("10.0.0.3")));
    pods.apply(seen("d", Some("10.0.0.4")));
    assert!(
        pods.retain(|_, _| true).is_empty(),
        "nothing dropped, nothing changed"
    );
    assert_eq!(pods.retain(|_, name| name == "d"), vec![key.clone()]);
    assert_eq!(pods.ips(&key).collect::<Vec<_>>(), vec![ip("10.0.0.4")]);
    assert_eq!(
        pods.ips(&FunctionKey::new("ns", "hello")).count(),
        0,
        "revision and function keys differ"
    );
}

#[test]
fn the_slices_decide_for_the_addresses_they_report() {
    let at = |s: &str, port: u16| SocketAddr::new(ip(s), port);
    let reported = vec![
        EndpointInfo::ready(at("10.0.0.1", 8080)),
        EndpointInfo::terminating(at("10.0.0.2", 8080)),
        EndpointInfo::starting(at("10.0.0.3", 8080)),
    ];
    let pods = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.4"].map(ip);
    let merged = merge(reported.clone(), pods, 8080);
    let mut expected = reported;
    expected.push(EndpointInfo::starting(at("10.0.0.4", 8080)));
    assert_eq!(merged, expected, "only the unreported pod is added, once");
}

#[test]
fn a_pod_learned_address_is_probed_and_the_slice_takes_over() {
    let at = |s: &str| SocketAddr::new(ip(s), 8080);
    let mut set = EndpointSet::default();
    set.replace(merge(Vec::new(), [ip("10.0.0.1")], 8080));
    assert_eq!(
        set.starting(),
        &[at("10.0.0.1")],
        "a candidate before the slice has it"
    );
    assert!(set.routable().is_empty());
    assert!(set.mark_answering(at("10.0.0.1")), "a probe answer routes to it");
    assert_eq!(set.routable().len(), 1);
    set.replace(merge(
        vec![EndpointInfo::starting(at("10.0.0.1"))],
        [ip("10.0.0.1")],
        8080,
    ));
    assert_eq!(set.routable().len(), 1, "the slice catching up changes nothing");
    set.replace(merge(
        vec![EndpointInfo::terminating(at("10.0.0.1"))],
        [ip("10.0.0.1")],
        8080,
    ));
    assert!(set.routable().is_empty(), "the slice says terminating: dropped");
    assert!(set.starting().is_empty());
}
