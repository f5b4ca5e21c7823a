//! Acceptance of issue #11 on Zeroscale as users install it (`scripts/install.sh`, the chart's images
//! from the local registry): the components and a function run as real containers from their
//! `localhost:5000/zeroscale/*` images, as containerd lists them (`crictl ps`), and functions written
//! in other languages (Python, Node.js), each from its own image, scale from zero, answer through the
//! activator and go back to zero.
//!
//! Needs the install, like the scenario suite: `scripts/e2e.sh` runs it after `scripts/install.sh`.

// The scenario suite's fixture; this binary uses only part of it.
#[allow(dead_code)]
#[path = "scenarios/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{COLD_REQUEST_TIMEOUT, Scenario};
use zeroscale_e2e::installed::SYSTEM_NAMESPACE;
use zeroscale_e2e::{
    ECHO_IMAGE, ECHO_NODE_IMAGE, ECHO_PYTHON_IMAGE, component_image, record_timing, repo_root,
    running_containers, wait_for,
};

/// How long an idle function may take to go back to zero: its 6 s window, the autoscaler's grace
/// period, and a busy machine.
const TO_ZERO: Duration = Duration::from_secs(120);

#[tokio::test]
async fn components_and_hello_run_as_containers_from_the_registry() {
    let s = Scenario::new("crictl").await;
    // The user's first function, as examples/functions/hello.yaml has it.
    let hello =
        std::fs::read_to_string(repo_root().join("examples/functions/hello.yaml")).expect("hello.yaml");
    let spec: serde_yaml::Value = serde_yaml::from_str(&hello).expect("hello.yaml parses");
    let spec: serde_json::Value = serde_json::to_value(&spec["spec"]).expect("spec as JSON");
    assert_eq!(
        spec["image"], ECHO_IMAGE,
        "hello.yaml runs the registry's echo image"
    );
    s.apply("hello", spec).await;
    let host = s.host("hello").await;

    // From zero: the first request is a cold start through the activator.
    let begun = Instant::now();
    let (status, body) = s.get_ok(&host, "/", COLD_REQUEST_TIMEOUT).await;
    record_timing(
        "images: hello cold start through the activator → 200",
        begun.elapsed(),
    );
    assert_eq!(status, 200, "{body}");
    assert!(!support::echo_pod(&body).is_empty(), "echo's JSON answer: {body}");

    // containerd runs each component and hello from its image in the local registry.
    let system = running_containers(SYSTEM_NAMESPACE).await;
    let images: BTreeMap<&str, Vec<&str>> = system.iter().fold(BTreeMap::new(), |mut m, c| {
        m.entry(c.name.as_str()).or_default().push(c.image.as_str());
        m
    });
    for component in ["operator", "activator", "autoscaler"] {
        let seen = images.get(component).cloned().unwrap_or_default();
        assert!(
            !seen.is_empty() && seen.iter().all(|i| *i == component_image(component)),
            "crictl ps lists {component} running {}: {system:?}",
            component_image(component)
        );
    }
    let functions = running_containers(s.namespace()).await;
    assert!(
        functions
            .iter()
            .any(|c| c.pod.starts_with("hello-") && c.image == ECHO_IMAGE),
        "crictl ps lists hello running {ECHO_IMAGE}: {functions:?}"
    );
}

/// Scales a Function of `image` from zero by one request through the activator, checks the answer
/// came from its pod, and waits until it is back at zero with no container left.
async fn from_zero_and_back(prefix: &str, image: &str) {
    let s = Scenario::new(prefix).await;
    s.apply(
        "fn",
        json!({"image": image, "scale": {"initial": 0, "window": "6s"}}),
    )
    .await;
    s.wait_zero("fn", TO_ZERO).await;
    let host = s.host("fn").await;

    let begun = Instant::now();
    let (status, body) = s.get_ok(&host, "/hello?lang=1", COLD_REQUEST_TIMEOUT).await;
    record_timing(&format!("images: {prefix} cold start → 200"), begun.elapsed());
    assert_eq!(status, 200, "{image}: {body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(answer["path"], "/hello", "{image} echoes the request: {body}");
    let pod = answer["pod"].as_str().unwrap_or_default();
    assert!(
        pod.starts_with("fn-"),
        "{image} answered from the function's pod: {body}"
    );
    let running = running_containers(s.namespace()).await;
    assert!(
        running.iter().any(|c| c.pod == pod && c.image == image),
        "containerd runs {image} in {pod}: {running:?}"
    );

    let idle = s.wait_zero("fn", TO_ZERO).await;
    record_timing(&format!("images: {prefix} back to zero after the request"), idle);
    wait_for(
        Duration::from_secs(60),
        "the function's containers to be gone",
        || async { running_containers(s.namespace()).await.is_empty().then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn python_function_scales_from_zero_and_back() {
    from_zero_and_back("python", ECHO_PYTHON_IMAGE).await;
}

#[tokio::test]
async fn node_function_scales_from_zero_and_back() {
    from_zero_and_back("node", ECHO_NODE_IMAGE).await;
}
