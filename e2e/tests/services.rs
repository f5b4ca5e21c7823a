//! Service networking of the local cluster (issues #6, #11): kube-proxy (iptables mode) routes every
//! ClusterIP in the kernel, from pods and from the host, and CoreDNS answers for `cluster.local`, so
//! pods reach Services by ClusterIP and by every name form (through the search list the kubelet writes
//! into their resolv.conf), ExternalName aliases of in-cluster Services resolve (a CNAME), and
//! endpoints that go away stop receiving connections.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Api;
use kube::api::DeleteParams;
use zeroscale_e2e::{
    BUSYBOX_IMAGE, ECHO_IMAGE, TestNamespace, apply_yaml, client, http_get, pod_is_ready, pod_logs, wait_for,
    wait_pod,
};

const MINUTE: Duration = Duration::from_secs(60);

/// An echo pod labelled `app: web`, readiness-probed every second.
fn web_pod(name: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: web}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: {ECHO_IMAGE}
    ports: [{{name: http, containerPort: 8080}}]
    readinessProbe: {{httpGet: {{path: /healthz, port: http}}, periodSeconds: 1}}
"#
    )
}

const WEB_SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"#;

async fn cluster_ip(services: &Api<Service>, name: &str) -> String {
    wait_for(MINUTE, &format!("service {name} to get a ClusterIP"), || async {
        let svc = services.get_opt(name).await.ok().flatten()?;
        svc.spec?.cluster_ip.filter(|ip| ip != "None")
    })
    .await
}

async fn wait_ready(pods: &Api<Pod>, name: &str) {
    wait_pod(pods, name, "Ready", pod_is_ready).await;
}

/// Runs a throw-away busybox pod with `script` (`sh -c`; busybox's `wget` and `nslookup`) and waits
/// until it has succeeded; returns its output. Panics with the output when it fails.
async fn run_in_pod(ns: &str, name: &str, script: &str) -> String {
    let client = client().await;
    let pods: Api<Pod> = Api::namespaced(client, ns);
    let yaml = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: {BUSYBOX_IMAGE}
    command: [sh, -c, {script:?}]
"#
    );
    apply_yaml(ns, &yaml).await;
    let finished = wait_pod(&pods, name, "finished", |p| {
        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
        matches!(phase, Some("Succeeded" | "Failed"))
    })
    .await;
    let phase = finished.status.and_then(|s| s.phase).unwrap_or_default();
    let log = pod_logs(ns, name, "main", false).await;
    assert_eq!(phase, "Succeeded", "pod {name} failed; its output:\n{log}");
    log
}

#[tokio::test]
async fn pods_reach_services_by_cluster_ip_and_by_name() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "svc").await;
    let n = ns.name().to_string();
    apply_yaml(&n, &format!("{}---{WEB_SERVICE}", web_pod("web-0"))).await;
    // An alias of the in-cluster Service, as every Function's `<fn>.<ns>.svc` is of the activator.
    let alias = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: alias}}\nspec:\n  type: ExternalName\n  \
         externalName: web.{n}.svc.cluster.local\n"
    );
    apply_yaml(&n, &alias).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &n);
    wait_ready(&pods, "web-0").await;
    let ip = cluster_ip(&Api::namespaced(client.clone(), &n), "web").await;

    // The host reaches the ClusterIP through kube-proxy's iptables rules.
    let answer = wait_for(MINUTE, "the ClusterIP to answer from the host", || async {
        http_get(&format!("http://{ip}/from-host"))
            .await
            .ok()
            .filter(|r| r.status == 200)
    })
    .await;
    assert_eq!(answer.json()["pod"], "web-0", "{}", answer.text());

    // From a pod: the ClusterIP, every name form (the short ones through the search list of the
    // resolv.conf the kubelet writes), the alias (a CNAME from CoreDNS), and the API server's
    // `kubernetes` Service (a TCP connection by name; busybox's wget has no TLS). `wget -T` crashes
    // Debian's static busybox, so `timeout` bounds each call.
    let script = format!(
        "set -e; for u in http://{ip}/ http://web.{n}.svc.cluster.local/ http://web.{n}.svc/ \
         http://web.{n}/ http://alias.{n}.svc/ http://web/ http://alias/; do timeout 10 wget -q -O - \"$u\"; echo; done; \
         nslookup alias.{n}.svc.cluster.local; nslookup kubernetes.default.svc.cluster.local; \
         nc -w 5 kubernetes.default.svc 443 </dev/null; echo api reached"
    );
    let log = run_in_pod(&n, "caller", &script).await;
    let answers: Vec<serde_json::Value> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert_eq!(answers.len(), 7, "seven answers through the Service:\n{log}");
    assert!(
        answers.iter().all(|a| a["pod"] == "web-0"),
        "all from web-0:\n{log}"
    );
    let cname = format!("canonical name = web.{n}.svc.cluster.local");
    assert!(
        log.lines().any(|l| l.contains(&cname)) && resolved(&log, &ip),
        "the alias resolves, through its CNAME, to the aliased Service's ClusterIP:\n{log}"
    );
    let api_ip = cluster_ip(&Api::namespaced(client.clone(), "default"), "kubernetes").await;
    assert!(
        resolved(&log, &api_ip) && log.contains("api reached"),
        "kubernetes.default resolves to {api_ip} and accepts a connection on 443:\n{log}"
    );
    ns.delete().await;
}

/// Whether busybox `nslookup` output has an answer `Address` line naming exactly `ip` (not the DNS
/// server's `Address: <ip>:53`, nor an IP that merely starts with it).
fn resolved(log: &str, ip: &str) -> bool {
    log.lines()
        .filter(|l| l.starts_with("Address"))
        .any(|l| l.split_whitespace().any(|word| word == ip))
}

/// The pods answering `rounds` fresh connections to `url` (from the host).
async fn answering_pods(url: &str, rounds: usize) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..rounds {
        if let Ok(r) = http_get(url).await {
            seen.push(r.json()["pod"].as_str().unwrap_or("?").to_string());
        } else {
            seen.push("error".to_string());
        }
    }
    seen
}

#[tokio::test]
async fn removed_endpoints_stop_receiving_connections() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "svc-ep").await;
    let n = ns.name().to_string();
    apply_yaml(
        &n,
        &format!("{}---{}---{WEB_SERVICE}", web_pod("web-a"), web_pod("web-b")),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &n);
    wait_ready(&pods, "web-a").await;
    wait_ready(&pods, "web-b").await;
    let url = format!(
        "http://{}/",
        cluster_ip(&Api::namespaced(client.clone(), &n), "web").await
    );

    // kube-proxy picks an endpoint per connection at random: both answer once it has seen them.
    wait_for(MINUTE, "connections to reach both pods", || async {
        let seen: BTreeSet<String> = answering_pods(&url, 6).await.into_iter().collect();
        (seen == BTreeSet::from(["web-a".to_string(), "web-b".to_string()])).then_some(())
    })
    .await;

    pods.delete("web-b", &DeleteParams::default())
        .await
        .expect("delete web-b");
    // The endpoint leaves as soon as the pod is terminating; from then on web-a gets everything.
    wait_for(MINUTE, "web-b to stop receiving connections", || async {
        answering_pods(&url, 10)
            .await
            .iter()
            .all(|p| p == "web-a")
            .then_some(())
    })
    .await;
    let after = answering_pods(&url, 40).await;
    assert!(
        after.iter().all(|p| p == "web-a"),
        "every connection after the removal reaches web-a: {after:?}"
    );
    ns.delete().await;
}
