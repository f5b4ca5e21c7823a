//! Acceptance tests of the local cluster itself (issues #2, #11): real controllers, a real kubelet and
//! containerd running pods from the local registry's images, probes, restarts, image errors,
//! service-account RBAC from inside a pod. What only the node knows (which containers run, their
//! processes) is read with crictl; everything else from the API.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::ListParams;
use zeroscale_e2e::{
    BUSYBOX_IMAGE, ECHO_IMAGE, KUBECTL_IMAGE, MISSING_IMAGE, TestNamespace, apply_yaml, client,
    container_pid, http_get, kubectl_ok, last_terminated, pod_ip, pod_is_ready, pod_logs, process_alive,
    record_timing, restart_count, running_containers, wait_for, wait_pod, waiting_reason,
};

const MINUTE: Duration = Duration::from_secs(60);

fn echo_deployment(replicas: u32) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: echo}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: echo}}}}
  template:
    metadata:
      labels: {{app: echo}}
      annotations: {{zeroscale.dev/probe-period-ms: "100"}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: echo
        image: {ECHO_IMAGE}
        env: [{{name: PORT, value: "8080"}}]
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe: {{httpGet: {{path: /healthz, port: http}}, periodSeconds: 1}}
        livenessProbe: {{tcpSocket: {{port: http}}, periodSeconds: 5}}
---
apiVersion: v1
kind: Service
metadata: {{name: echo}}
spec:
  selector: {{app: echo}}
  ports: [{{port: 80, targetPort: http}}]
"#
    )
}

/// Waits until exactly `n` echo pods exist, all Ready, and the runtime runs exactly `n` containers in
/// the namespace; returns `(pod name, pod IP)` pairs.
async fn wait_ready_echo(pods: &Api<Pod>, ns: &str, n: usize) -> Vec<(String, String)> {
    wait_for(
        2 * MINUTE,
        &format!("{n} ready echo pods with {n} running containers"),
        || async {
            let list = pods.list(&ListParams::default().labels("app=echo")).await.ok()?;
            let ready: Vec<(String, String)> = list
                .items
                .iter()
                .filter(|p| pod_is_ready(p) && p.metadata.deletion_timestamp.is_none())
                .filter_map(|p| Some((p.metadata.name.clone()?, pod_ip(p)?)))
                .collect();
            let running = running_containers(ns).await;
            (list.items.len() == n && ready.len() == n && running.len() == n).then_some(ready)
        },
    )
    .await
}

#[tokio::test]
async fn deployment_pods_get_endpoints_answer_and_scale() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "cluster").await;
    apply_yaml(ns.name(), &echo_deployment(2)).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());

    let ready = wait_ready_echo(&pods, ns.name(), 2).await;
    let ips: BTreeSet<String> = ready.iter().map(|(_, ip)| ip.clone()).collect();
    assert_eq!(ips.len(), 2, "each pod has its own IP: {ready:?}");

    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns.name());
    wait_for(
        MINUTE,
        "the EndpointSlice of service echo to list both pod IPs",
        || async {
            let list = slices
                .list(&ListParams::default().labels("kubernetes.io/service-name=echo"))
                .await
                .ok()?;
            let listed: BTreeSet<String> = list
                .items
                .iter()
                .flat_map(|s| s.endpoints.iter())
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false))
                .flat_map(|e| e.addresses.iter().cloned())
                .collect();
            (listed == ips).then_some(())
        },
    )
    .await;

    for (name, ip) in &ready {
        let response = http_get(&format!("http://{ip}:8080/hello?x=1"))
            .await
            .expect("echo answers on its pod IP");
        assert_eq!(response.status, 200);
        assert_eq!(
            response.json()["pod"],
            name.as_str(),
            "the answer comes from that pod: {}",
            response.text()
        );
    }

    kubectl_ok(&["scale", "deployment/echo", "--replicas=0", "-n", ns.name()]).await;
    wait_ready_echo(&pods, ns.name(), 0).await;
    kubectl_ok(&["scale", "deployment/echo", "--replicas=3", "-n", ns.name()]).await;
    let three = wait_ready_echo(&pods, ns.name(), 3).await;
    let running = running_containers(ns.name()).await;
    let ids: BTreeSet<&str> = running.iter().map(|c| c.id.as_str()).collect();
    let in_pods: BTreeSet<&str> = running.iter().map(|c| c.pod.as_str()).collect();
    assert_eq!((three.len(), ids.len(), in_pods.len()), (3, 3, 3), "{running:?}");
    assert!(
        running.iter().all(|c| c.image == ECHO_IMAGE),
        "every container runs the registry's echo image: {running:?}"
    );

    // Time from `kubectl scale` 0 → 1 to a Ready pod (reported, not asserted: speed is `make bench`'s job).
    kubectl_ok(&["scale", "deployment/echo", "--replicas=0", "-n", ns.name()]).await;
    wait_ready_echo(&pods, ns.name(), 0).await;
    let start = Instant::now();
    kubectl_ok(&["scale", "deployment/echo", "--replicas=1", "-n", ns.name()]).await;
    wait_ready_echo(&pods, ns.name(), 1).await;
    record_timing("kubectl scale 0 -> 1 to pod Ready (echo)", start.elapsed());
    ns.delete().await;
}

fn single_pod(name: &str, image: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: {image}
{extra}
"#
    )
}

#[tokio::test]
async fn missing_image_and_crash_loop_show_their_reasons() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "failures").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
    apply_yaml(ns.name(), &single_pod("unpullable", MISSING_IMAGE, "")).await;
    apply_yaml(
        ns.name(),
        &single_pod(
            "crasher",
            BUSYBOX_IMAGE,
            "    command: [sh, -c, 'echo boom; exit 3']",
        ),
    )
    .await;

    let p = wait_pod(&pods, "unpullable", "waiting with ImagePullBackOff", |p| {
        waiting_reason(p, "main").as_deref() == Some("ImagePullBackOff")
    })
    .await;
    assert_eq!(p.status.and_then(|s| s.phase).as_deref(), Some("Pending"));

    let p = wait_pod(&pods, "crasher", "restarted and in CrashLoopBackOff", |p| {
        restart_count(p, "main") >= 1 && waiting_reason(p, "main").as_deref() == Some("CrashLoopBackOff")
    })
    .await;
    let last = p
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|cs| cs.into_iter().next())
        .and_then(|c| c.last_state)
        .and_then(|s| s.terminated)
        .expect("last state is terminated");
    assert_eq!(last.exit_code, 3);
    // The last run's output, as the kubelet serves it from containerd's log file.
    let served = kubectl_ok(&["logs", "crasher", "-n", ns.name(), "--tail=1"]).await;
    assert_eq!(
        served.trim(),
        "boom",
        "kubectl logs serves the container's output"
    );
    ns.delete().await;
}

#[tokio::test]
async fn env_sources_and_graceful_deletion() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "env").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
    apply_yaml(
        ns.name(),
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {GREETING: hello, COLOR: blue}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {password: hunter2}
"#,
    )
    .await;
    let extra = r#"    command: [sh, -c, 'echo "G=$GREETING C=$CFG_COLOR P=$PW N=$POD_NAME IP=$POD_IP X=$X"; trap "" TERM; while true; do sleep 1; done']
    workingDir: /tmp
    envFrom: [{prefix: CFG_, configMapRef: {name: cfg}}]
    env:
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: cfg, key: GREETING}}}
    - {name: PW, valueFrom: {secretKeyRef: {name: sec, key: password}}}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: X, value: "$(GREETING)-x"}"#;
    apply_yaml(ns.name(), &single_pod("envy", BUSYBOX_IMAGE, extra)).await;
    let p = wait_pod(&pods, "envy", "running", pod_is_ready).await;
    let ip = pod_ip(&p).unwrap_or_default();
    let expected = format!("G=hello C=blue P=hunter2 N=envy IP={ip} X=hello-x");
    wait_for(MINUTE, "the pod's environment in its log", || async {
        Some(pod_logs(ns.name(), "envy", "main", false).await).filter(|l| l.contains(&expected))
    })
    .await;
    let container = running_containers(ns.name()).await;
    assert_eq!(container.len(), 1, "{container:?}");
    let pid = container_pid(&container[0].id)
        .await
        .expect("the running container has a pid");

    // It ignores SIGTERM, so deletion takes the 2 s grace period and then SIGKILL.
    let start = Instant::now();
    kubectl_ok(&["delete", "pod", "envy", "-n", ns.name(), "--wait=false"]).await;
    wait_for(MINUTE, "pod envy to be gone with its container", || async {
        let gone = matches!(pods.get_opt("envy").await, Ok(None));
        (gone && running_containers(ns.name()).await.is_empty() && !process_alive(pid)).then_some(())
    })
    .await;
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "SIGTERM was ignored, so the grace period was used"
    );
    ns.delete().await;
}

#[tokio::test]
async fn service_account_rbac_is_enforced_inside_the_pod() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "rbac").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
    apply_yaml(
        ns.name(),
        &format!(
            r#"
apiVersion: v1
kind: ServiceAccount
metadata: {{name: reader}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: configmap-reader}}
rules: [{{apiGroups: [""], resources: [configmaps], verbs: [get, list]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: reader}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: configmap-reader}}
subjects: [{{kind: ServiceAccount, name: reader, namespace: {ns}}}]
"#,
            ns = ns.name()
        ),
    )
    .await;
    // The pinned kubectl as an image: with no kubeconfig it uses the in-cluster config, i.e. the token,
    // CA and namespace mounted at /var/run/secrets/kubernetes.io/serviceaccount, and the `kubernetes`
    // Service's ClusterIP (KUBERNETES_SERVICE_HOST), which kube-proxy routes to the API server.
    for (name, resource) in [("allowed", "configmaps"), ("denied", "secrets")] {
        let extra =
            format!("    args: [get, {resource}]\n  serviceAccountName: reader\n  restartPolicy: Never");
        apply_yaml(ns.name(), &single_pod(name, KUBECTL_IMAGE, &extra)).await;
    }
    let finished = |p: &Pod| {
        matches!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
    };
    let allowed = wait_pod(&pods, "allowed", "finished", finished).await;
    let denied = wait_pod(&pods, "denied", "finished", finished).await;
    let (allowed_log, denied_log) = (
        pod_logs(ns.name(), "allowed", "main", false).await,
        pod_logs(ns.name(), "denied", "main", false).await,
    );
    let log = |name| {
        if name == "allowed" {
            &allowed_log
        } else {
            &denied_log
        }
    };
    let phase = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        phase(&allowed),
        "Succeeded",
        "listing configmaps is allowed: {}",
        log("allowed")
    );
    assert!(log("allowed").contains("kube-root-ca.crt"), "{}", log("allowed"));
    assert_eq!(
        phase(&denied),
        "Failed",
        "listing secrets is forbidden: {}",
        log("denied")
    );
    let who = format!("system:serviceaccount:{}:reader", ns.name());
    assert!(
        log("denied").contains("Forbidden") && log("denied").contains(&who),
        "403 for the pod's own service account: {}",
        log("denied")
    );
    ns.delete().await;
}

#[tokio::test]
async fn a_killed_container_is_restarted_in_its_pod() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "kill").await;
    apply_yaml(ns.name(), &echo_deployment(1)).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
    let before = wait_ready_echo(&pods, ns.name(), 1).await;
    let running = running_containers(ns.name()).await;
    let old = running.first().expect("one running container").clone();
    let old_pid = container_pid(&old.id).await.expect("the container's pid");

    // A crash as the kernel delivers it: SIGKILL to the container's process from the host. The echo
    // image has no shell, so `kubectl exec ... kill` is not available; crictl names the host pid.
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &old_pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success(), "killed the container's process {old_pid}");

    let after = wait_for(
        2 * MINUTE,
        "the container restarted by the kubelet, the pod Ready again",
        || async {
            let pod = pods.get_opt(&before[0].0).await.ok().flatten()?;
            (pod_is_ready(&pod) && restart_count(&pod, "echo") == 1).then_some(pod)
        },
    )
    .await;
    assert_eq!(pod_ip(&after), Some(before[0].1.clone()), "a pod keeps its IP");
    let last = after
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|cs| cs.into_iter().next())
        .and_then(|c| c.last_state)
        .and_then(|s| s.terminated)
        .expect("the killed run is reported as terminated");
    assert_eq!(last.exit_code, 137, "128 + SIGKILL: {last:?}");
    assert!(!process_alive(old_pid), "the old container process is gone");
    let now = running_containers(ns.name()).await;
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now[0].id, old.id, "a new container in the same pod");
    assert_eq!(now[0].pod, old.pod);
    let response = http_get(&format!("http://{}:8080/", before[0].1))
        .await
        .expect("echo answers again");
    assert_eq!(response.status, 200);
    ns.delete().await;
}

#[tokio::test]
async fn probes_drive_endpoints_and_liveness_restarts() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "probes").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
    // Readiness fails (the echo answers 503 on that path): the pod runs, but is published as not ready.
    apply_yaml(
        ns.name(),
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: unready, labels: {{app: unready}}}}
spec:
  containers:
  - name: main
    image: {ECHO_IMAGE}
    readinessProbe: {{httpGet: {{path: "/?status=503", port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: unready}}
spec:
  selector: {{app: unready}}
  ports: [{{port: 80, targetPort: 8080}}]
"#
        ),
    )
    .await;
    // Liveness fails (nothing listens on 9999): the container is stopped and started again.
    let extra = "    livenessProbe: {tcpSocket: {port: 9999}, periodSeconds: 1, failureThreshold: 1}";
    apply_yaml(ns.name(), &single_pod("unlive", ECHO_IMAGE, extra)).await;

    let unready = wait_pod(&pods, "unready", "running", |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") && pod_ip(p).is_some()
    })
    .await;
    let ip = pod_ip(&unready).unwrap_or_default();
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns.name());
    wait_for(
        MINUTE,
        "the EndpointSlice to list the unready pod as not ready",
        || async {
            let list = slices
                .list(&ListParams::default().labels("kubernetes.io/service-name=unready"))
                .await
                .ok()?;
            list.items
                .iter()
                .flat_map(|s| s.endpoints.iter())
                .any(|e| {
                    e.addresses.contains(&ip) && e.conditions.as_ref().and_then(|c| c.ready) == Some(false)
                })
                .then_some(())
        },
    )
    .await;
    assert!(
        !pod_is_ready(&pods.get("unready").await.expect("pod")),
        "a failing readiness probe keeps it unready"
    );

    // The echo never exits on its own: every restart was the kubelet acting on the failing probe, and
    // the previous run is reported as terminated. The kubelet may publish the restart count before
    // that last state, so both are one condition (a timeout fails the test).
    wait_pod(
        &pods,
        "unlive",
        "restarted twice by its liveness probe, the previous run reported as terminated",
        |p| restart_count(p, "main") >= 2 && last_terminated(p, "main"),
    )
    .await;
    ns.delete().await;
}
