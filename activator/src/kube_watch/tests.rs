//! Unit tests of the merge of Functions, EndpointSlices and pod IPs, and of how entries replace one
//! another in the routing table.

use std::collections::BTreeMap;

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};

use super::*;
use crate::error::ProxyError;

#[test]
fn slice_conditions_map_to_endpoints() {
    let endpoint = |ip: &str, ready: Option<bool>, terminating: Option<bool>| Endpoint {
        addresses: vec![ip.to_string()],
        conditions: Some(EndpointConditions {
            ready,
            serving: None,
            terminating,
        }),
        ..Default::default()
    };
    let slice = EndpointSlice {
        endpoints: vec![
            endpoint("10.0.0.1", Some(true), None),
            endpoint("10.0.0.2", Some(false), None),
            endpoint("10.0.0.3", Some(false), Some(true)),
            endpoint("10.0.0.4", None, None),
        ],
        ..Default::default()
    };
    let mut not_serving = endpoint("10.0.0.5", Some(true), None);
    if let Some(c) = not_serving.conditions.as_mut() {
        c.serving = Some(false);
    }
    let slice = EndpointSlice {
        endpoints: [
            slice.endpoints,
            vec![not_serving, endpoint("10.0.0.6", Some(true), Some(true))],
        ]
        .concat(),
        ..Default::default()
    };
    let got = slice_endpoints(&slice);
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        got,
        vec![
            (ip("10.0.0.1"), true, false),
            (ip("10.0.0.2"), false, false),
            (ip("10.0.0.3"), false, true),
            (ip("10.0.0.4"), true, false),
            (ip("10.0.0.5"), false, false),
            (ip("10.0.0.6"), false, true)
        ]
    );
}

#[test]
fn a_revisions_slices_carry_its_runtime_settings() {
    let old: zeroscale_crds::FunctionSpec = serde_json::from_value(serde_json::json!({
        "image": "echo:1", "concurrency": 1, "timeoutSeconds": 20,
    }))
    .expect("spec");
    let mut labels = RevisionRuntime::of(&old).labels();
    labels.insert(REVISION_LABEL.into(), "hello-0123456789".into());
    labels.insert(FUNCTION_LABEL.into(), "hello".into());
    let slice = |name: &str, labels: BTreeMap<String, String>| EndpointSlice {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            labels: Some(labels),
            ..Default::default()
        },
        ..Default::default()
    };
    let labelled = slice("a", labels.clone());
    let mut bad = labels.clone();
    bad.insert(zeroscale_crds::revision_runtime::PORT_LABEL.into(), "none".into());
    assert_eq!(slice_runtime(&slice("b", bad)), None, "malformed: left out");
    let runtime = slice_runtime(&labelled).expect("runtime");
    assert_eq!(runtime.concurrency, 1);
    let (ns, name, key) = slice_key(&labelled).expect("key");
    assert_eq!(key, FunctionKey::new("ns", "hello-0123456789"));
    let mut cache = Cache::default();
    cache
        .slices
        .insert((ns, name), (key.clone(), None, Vec::new(), Some(runtime)));
    cache
        .slices
        .insert(("ns".into(), "c".into()), (key.clone(), None, Vec::new(), None));
    assert_eq!(cache.runtime(&key), Some(&runtime));
    assert_eq!(cache.runtime(&FunctionKey::new("ns", "hello")), None);
}

#[test]
fn starting_pods_join_the_slices_at_the_slices_port() {
    let key = FunctionKey::new("ns", "hello-0123456789");
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let mut cache = Cache::default();
    cache.slices.insert(
        ("ns".into(), "a".into()),
        (key.clone(), Some(8081), vec![(ip("10.0.0.1"), true, false)], None),
    );
    for (name, addr) in [("p1", "10.0.0.1"), ("p2", "10.0.0.2")] {
        cache.pods.apply(starting_pods::PodSighting {
            id: ("ns".into(), name.into()),
            key: key.clone(),
            ip: Some(ip(addr)),
        });
    }
    assert_eq!(
        cache.endpoints(&key, 8080),
        vec![
            EndpointInfo::ready(SocketAddr::new(ip("10.0.0.1"), 8081)),
            EndpointInfo::starting(SocketAddr::new(ip("10.0.0.2"), 8081)),
        ]
    );
    let other = FunctionKey::new("ns", "other");
    cache.pods.apply(starting_pods::PodSighting {
        id: ("ns".into(), "p3".into()),
        key: other.clone(),
        ip: Some(ip("10.0.0.3")),
    });
    assert_eq!(
        cache.endpoints(&other, 8080),
        vec![EndpointInfo::starting(SocketAddr::new(ip("10.0.0.3"), 8080))],
        "no slice yet: the function's port"
    );
}

fn function_with(status: serde_json::Value) -> Function {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Function",
        "metadata": { "name": "hello", "namespace": "ns" },
        "spec": { "image": "echo" },
        "status": status,
    }))
    .expect("function")
}

fn table() -> RoutingTable {
    let metrics = Arc::new(crate::metrics::Metrics::register(
        &mut prometheus_client::registry::Registry::default(),
    ));
    RoutingTable::new(
        crate::queue::QueueLimits {
            max_requests: 10,
            max_bytes: 1 << 20,
        },
        crate::queue::BufferBudget::new(1 << 20),
        metrics,
        Arc::new(crate::function::NoWakeups),
    )
}

/// Feeds `f` to the table as the Function watch does.
fn apply(c: &mut Cache, table: &RoutingTable, f: Option<&Function>) {
    let key = FunctionKey::new("ns", "hello");
    match f {
        Some(f) => {
            let entries = revision_settings::entries(f, "ns", "hello");
            let routes = revision_settings::routes(f, "ns", "hello");
            apply_function(c, table, &key, entries, routes);
        }
        None => apply_function(c, table, &key, Vec::new(), None),
    }
}

/// A request parked in `table`'s state for `hello.ns` (routed as the proxy routes it).
fn park(table: &RoutingTable) -> crate::lease::Ticket {
    let state = table.lookup("hello.ns").expect("routed");
    match state.admit(
        crate::settings::Port::Internal,
        || 100,
        tokio::time::Instant::now(),
    ) {
        Ok(crate::lease::Admission::Wait(ticket)) => ticket,
        other => panic!("expected to wait, got {other:?}"),
    }
}

#[tokio::test]
async fn a_functions_first_revision_takes_over_its_waiters_and_only_a_delete_fails_them() {
    let (table, mut c) = (table(), Cache::default());
    apply(&mut c, &table, Some(&function_with(serde_json::json!({}))));
    let mut waiting = park(&table);
    assert_eq!(waiting.function.key(), &FunctionKey::new("ns", "hello"));

    // The operator names the first revision: the Function's own entry gives way to it.
    let revised = function_with(serde_json::json!({
        "traffic": [{ "revisionName": "hello-aaaaaaaaaa", "percent": 100 }],
        "revisions": [{ "name": "hello-aaaaaaaaaa" }],
    }));
    apply(&mut c, &table, Some(&revised));
    let handed = waiting.wait().await;
    assert!(matches!(handed, Err(ProxyError::Rerouted(_))), "{handed:?}");
    // Routing again finds the revision, which is in place by the time the waiter hears of it.
    let mut waiting = park(&table);
    assert_eq!(
        waiting.function.key(),
        &FunctionKey::new("ns", "hello-aaaaaaaaaa")
    );
    assert!(table.lookup_exact("hello.ns").is_none(), "the own entry is gone");

    apply(&mut c, &table, None);
    let handed = waiting.wait().await;
    assert!(
        matches!(handed, Err(ProxyError::FunctionDeleted(_))),
        "{handed:?}"
    );
    assert!(table.lookup("hello.ns").is_none());
}
