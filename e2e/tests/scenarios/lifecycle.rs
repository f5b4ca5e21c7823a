//! A Function's life under traffic: updated, deleted, and called from another function in the cluster.

use std::time::{Duration, Instant};

use serde_json::json;
use zeroscale_e2e::{BUSYBOX_IMAGE, ECHO_IMAGE, deployment_image, ensure_tag, record_timing, wait_for};

use crate::load::{Traffic, first_failures};
use crate::support::{COLD_REQUEST_TIMEOUT, Scenario, echo_spec};

/// Knative `TestRouteCreation`-style prober across an update: changing a Function's image (and env)
/// under steady traffic rolls its pods over without losing a request.
#[tokio::test]
async fn update_under_traffic_loses_no_request() {
    let s = Scenario::new("update").await;
    s.apply(
        "rolling",
        echo_spec(json!({"scale": {"initial": 1, "min": 1, "max": 3}})),
    )
    .await;
    s.wait_ready("rolling").await;
    let host = s.host("rolling").await;
    let url = format!("{}/?sleep=50", s.installed.activator_url);
    let traffic = Traffic::start(&url, &host, 3, Duration::from_millis(10));
    wait_for(Duration::from_secs(30), "traffic to flow", || async {
        (traffic.sent() >= 10).then_some(())
    })
    .await;

    // A second tag of the echo image in the registry: a new image reference, as a user's v2 would be.
    let v2 = ensure_tag(ECHO_IMAGE, "v2").await;
    let begun = Instant::now();
    let update = echo_spec(json!({
        "image": v2,
        "env": [{"name": "ECHO_VERSION", "value": "2"}],
        "scale": {"initial": 1, "min": 1, "max": 3},
    }));
    s.apply("rolling", update).await;
    wait_for(
        Duration::from_secs(120),
        "the rollout to v2 to finish",
        || async {
            let d = zeroscale_e2e::function_deployment(&s.deployments, "rolling").await?;
            let image = deployment_image(&d)?;
            let st = d.status.as_ref()?;
            let done = image == v2
                && st.observed_generation >= d.metadata.generation
                && st.updated_replicas.unwrap_or(0) == st.replicas.unwrap_or(-1)
                && st.ready_replicas.unwrap_or(0) == st.replicas.unwrap_or(-1);
            done.then_some(())
        },
    )
    .await;
    record_timing(
        "scenarios: image update rolled out under traffic",
        begun.elapsed(),
    );
    let (status, body) = s.get_ok(&host, "/", COLD_REQUEST_TIMEOUT).await;
    assert_eq!(status, 200, "{body}");
    let new_pod = crate::support::echo_pod(&body);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let tally = traffic.stop().await;

    assert!(
        tally.failures.is_empty(),
        "{} request(s) lost across the update (of {}):\n  {}",
        tally.failures.len(),
        tally.ok + tally.failures.len() as u64,
        first_failures(&tally)
    );
    assert!(
        tally.pods.contains(&new_pod),
        "traffic reached the new pod {new_pod}: {:?}",
        tally.pods
    );
    assert!(
        tally.pods.len() >= 2,
        "traffic saw old and new pods: {:?}",
        tally.pods
    );
}

/// Deleting a Function makes its host unknown (404), and a request waiting for it when it is deleted
/// is answered 404 as well rather than left to time out.
#[tokio::test]
async fn deleted_function_answers_404() {
    let s = Scenario::new("delete").await;
    s.apply("gone", echo_spec(json!({"scale": {"initial": 1}}))).await;
    // Never listens, so never ready: a request to it waits in the activator's queue.
    let stuck = json!({
        "image": BUSYBOX_IMAGE, "command": ["sh", "-c", "exec sleep 3600"],
            // The busybox image's user is root; Functions run as non-root.
            "securityContext": {"runAsUser": 65532},
        "timeoutSeconds": 300, "scale": {"initial": 0},
    });
    s.apply("stuck", stuck).await;
    s.wait_ready("gone").await;
    let (gone, stuck) = (s.host("gone").await, s.host("stuck").await);
    assert_eq!(s.get_ok(&gone, "/", COLD_REQUEST_TIMEOUT).await.0, 200);

    s.delete("gone").await;
    let what = "404 for the deleted function";
    let body = wait_for(Duration::from_secs(60), what, || async {
        let r = s.get(&gone, "/", Duration::from_secs(10)).await.ok()?;
        (r.status == 404).then(|| r.text())
    })
    .await;
    assert!(body.contains("no function") || body.contains("deleted"), "{body}");

    let waiting = tokio::spawn({
        let (url, host) = (s.installed.activator_url.clone(), stuck.clone());
        async move {
            let headers = [("host", host.as_str())];
            let r = zeroscale_e2e::http_request(http::Method::GET, &url, &headers, "", COLD_REQUEST_TIMEOUT);
            r.await.map(|r| (r.status, r.text()))
        }
    });
    // The request has woken the function (demand reached the autoscaler), so it is parked.
    s.wait_replicas(
        "stuck",
        "woken by the waiting request",
        Duration::from_secs(30),
        |d, _| d >= 1,
    )
    .await;
    s.delete("stuck").await;
    let begun = Instant::now();
    let answer = waiting
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    record_timing(
        "scenarios: waiting request answered after its function's deletion",
        begun.elapsed(),
    );
    match answer {
        Ok((status, body)) => assert_eq!(status, 404, "waiting request: {body}"),
        Err(e) => panic!("waiting request failed: {e}"),
    }
}

/// Knative `TestSvcToSvcViaActivator`: from inside a pod (an echo function's `/call`), the in-cluster
/// names `http://<fn>.<ns>.svc` (through the pod's DNS search list) and `<fn>.<ns>.svc.cluster.local`
/// resolve through CoreDNS and reach the other function through the activator, waking it from zero.
#[tokio::test]
async fn svc_to_svc_via_activator() {
    let s = Scenario::new("svc-to-svc").await;
    s.apply("caller", echo_spec(json!({"scale": {"initial": 1}})))
        .await;
    s.apply("callee", echo_spec(json!({"visibility": "cluster-local"})))
        .await;
    s.wait_ready("caller").await;
    s.wait_ready("callee").await;
    let ns = s.namespace();
    let caller = s.host("caller").await;

    let path = format!("/call?url=http%3A%2F%2Fcallee.{ns}.svc%2Finner%3Fx%3D1");
    let begun = Instant::now();
    let (status, body) = s.get_ok(&caller, &path, Duration::from_secs(90)).await;
    record_timing(
        "scenarios: pod → <fn>.<ns>.svc (callee at zero) → 200",
        begun.elapsed(),
    );
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(doc["status"], 200, "{body}");
    let inner = &doc["body"];
    assert_eq!(inner["function"], "callee", "{body}");
    assert_eq!(inner["path"], "/inner");
    assert_eq!(inner["headers"]["host"], format!("callee.{ns}.svc"), "{body}");
    assert!(
        inner["headers"]["forwarded"].is_string(),
        "went through the activator: {body}"
    );

    // The fully qualified name, resolved by CoreDNS inside the caller's pod (the callee's ExternalName
    // Service is a CNAME of the activator's Service), reaches the callee through the activator too.
    let fqdn = format!("callee.{ns}.svc.cluster.local");
    let path = format!("/call?url=http%3A%2F%2F{fqdn}%2Ffqdn");
    let (status, body) = s.get_ok(&caller, &path, Duration::from_secs(90)).await;
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(doc["status"], 200, "{body}");
    assert_eq!(doc["body"]["function"], "callee", "{body}");
    assert_eq!(doc["body"]["path"], "/fqdn", "{body}");
    assert_eq!(doc["body"]["headers"]["host"], fqdn, "{body}");

    // Cluster-local: not routed on the external port.
    let callee = s.host("callee").await;
    let (status, _) = s.get_ok(&callee, "/", COLD_REQUEST_TIMEOUT).await;
    assert_eq!(
        status, 404,
        "a cluster-local function is not reachable from outside"
    );
}
