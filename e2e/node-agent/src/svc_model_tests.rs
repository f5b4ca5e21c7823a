use super::*;
use serde_json::json;

fn service(ns: &str, name: &str, spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({"metadata": {"namespace": ns, "name": name}, "spec": spec}))
        .expect("valid service")
}

fn slice(ns: &str, svc: &str, ports: serde_json::Value, endpoints: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"namespace": ns, "name": format!("{svc}-abc"),
                     "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4", "ports": ports, "endpoints": endpoints,
    }))
    .expect("valid slice")
}

fn sa(s: &str) -> SocketAddrV4 {
    s.parse().expect("socket address")
}

#[test]
fn ready_endpoints_by_port_name() {
    let services = [service(
        "a",
        "web",
        json!({"clusterIP": "10.96.0.10", "ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "admin", "port": 9090},
            {"name": "dns", "port": 53, "protocol": "UDP"}]}),
    )];
    let slices = [slice(
        "a",
        "web",
        json!([{"name": "http", "port": 8080}, {"name": "admin", "port": 9091}]),
        json!([
            {"addresses": ["10.244.0.5"], "conditions": {"ready": true}},
            {"addresses": ["10.244.0.6"], "conditions": {"ready": false}},
            {"addresses": ["10.244.0.7"], "conditions": {"ready": true, "terminating": true}},
            {"addresses": ["10.244.0.8"]},
        ]),
    )];
    let table = backends(&services, &slices);
    assert_eq!(table.len(), 2, "the UDP port gets no listener");
    assert_eq!(
        table[&sa("10.96.0.10:80")],
        vec![sa("10.244.0.5:8080"), sa("10.244.0.8:8080")]
    );
    assert_eq!(
        table[&sa("10.96.0.10:9090")],
        vec![sa("10.244.0.5:9091"), sa("10.244.0.8:9091")]
    );
}

#[test]
fn terminating_but_serving_endpoints_only_when_nothing_is_ready() {
    let services = [service(
        "a",
        "web",
        json!({"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}),
    )];
    let draining = json!([
        {"addresses": ["10.244.0.7"], "conditions": {"ready": false, "serving": true, "terminating": true}},
        {"addresses": ["10.244.0.9"], "conditions": {"ready": false, "serving": false, "terminating": true}},
    ]);
    let slices = [slice("a", "web", json!([{"port": 8080}]), draining)];
    assert_eq!(
        backends(&services, &slices)[&sa("10.96.0.10:80")],
        vec![sa("10.244.0.7:8080")]
    );
}

#[test]
fn services_without_slices_or_cluster_ip() {
    let services = [
        service(
            "a",
            "empty",
            json!({"clusterIP": "10.96.0.11", "ports": [{"port": 80}]}),
        ),
        service(
            "a",
            "headless",
            json!({"clusterIP": "None", "ports": [{"port": 80}]}),
        ),
        service(
            "a",
            "alias",
            json!({"type": "ExternalName", "externalName": "example.org"}),
        ),
    ];
    // A slice of another namespace's Service of the same name does not count.
    let slices = [slice(
        "b",
        "empty",
        json!([{"port": 80}]),
        json!([{"addresses": ["10.244.0.5"]}]),
    )];
    let table = backends(&services, &slices);
    assert_eq!(table.len(), 1);
    assert!(table[&sa("10.96.0.11:80")].is_empty());
}

#[test]
fn hosts_name_services_and_in_cluster_aliases() {
    let services = [
        service(
            "zs",
            "activator",
            json!({"clusterIP": "10.96.0.20", "ports": [{"port": 80}]}),
        ),
        service(
            "fns",
            "hello",
            json!({"type": "ExternalName", "externalName": "activator.zs.svc.cluster.local."}),
        ),
        service(
            "fns",
            "short",
            json!({"type": "ExternalName", "externalName": "hello.fns.svc"}),
        ),
        service(
            "fns",
            "outside",
            json!({"type": "ExternalName", "externalName": "example.org"}),
        ),
        service(
            "fns",
            "dangling",
            json!({"type": "ExternalName", "externalName": "nope.zs"}),
        ),
        service(
            "fns",
            "loop",
            json!({"type": "ExternalName", "externalName": "loop.fns"}),
        ),
    ];
    let hosts = hosts_file(&addresses(&services, "cluster.local"), "cluster.local");
    assert!(hosts.starts_with("# Written by"));
    assert!(hosts.contains("127.0.0.1\tlocalhost\n"));
    let entries: Vec<&str> = hosts.lines().filter(|l| l.starts_with("10.")).collect();
    assert_eq!(
        entries,
        vec![
            "10.96.0.20\thello.fns.svc.cluster.local hello.fns.svc hello.fns",
            "10.96.0.20\tshort.fns.svc.cluster.local short.fns.svc short.fns",
            "10.96.0.20\tactivator.zs.svc.cluster.local activator.zs.svc activator.zs",
        ]
    );
}

#[test]
fn in_cluster_targets() {
    let d = "cluster.local";
    assert_eq!(in_cluster_target("a.b.svc.cluster.local", d), Some(("a", "b")));
    assert_eq!(in_cluster_target("a.b.svc", d), Some(("a", "b")));
    assert_eq!(in_cluster_target("a.b", d), Some(("a", "b")));
    assert_eq!(in_cluster_target("a.b.c.com", d), None);
    assert_eq!(in_cluster_target("localhost", d), None);
}

#[test]
fn dns_names_are_fully_qualified() {
    let services = [service(
        "zs",
        "Activator",
        json!({"clusterIP": "10.96.0.20", "ports": [{"port": 80}]}),
    )];
    let names = dns_names(&addresses(&services, "cluster.local"), "cluster.local");
    assert_eq!(names.len(), 1);
    assert_eq!(
        names["activator.zs.svc.cluster.local"],
        Ipv4Addr::new(10, 96, 0, 20)
    );
}
