//! What the operator reports for bad input: admission errors, images that cannot run, crashes.

use std::time::Duration;

use kube::Api;
use serde_json::json;
use zeroscale_crds::Function;
use zeroscale_e2e::{
    BUSYBOX_IMAGE, Operator, TestNamespace, install_function_crd, kubectl, kubectl_ok, repo_root,
};

use super::support::*;

#[tokio::test]
async fn invalid_manifests_are_rejected_at_admission_naming_the_field() {
    let client = zeroscale_e2e::client().await;
    install_function_crd().await;
    let ns = TestNamespace::new(&client, "op-invalid").await;
    let dir = repo_root().join("examples/invalid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/invalid")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(files.len() >= 12, "only {} invalid examples", files.len());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        let expected: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# error: ")).collect();
        assert!(
            !expected.is_empty(),
            "{} has no `# error:` comment",
            file.display()
        );
        assert!(
            expected
                .iter()
                .any(|l| l.contains("spec.") || l.contains("metadata.name")),
            "{}: the message names no field",
            file.display()
        );
        let path = file.to_str().expect("utf-8 path");
        let out = kubectl(&["apply", "-n", ns.name(), "-f", path]).await;
        assert!(!out.status.success(), "{} was accepted", file.display());
        let stderr = String::from_utf8_lossy(&out.stderr);
        for line in expected {
            assert!(
                stderr.contains(line.trim()),
                "{}: expected {line:?} in {stderr}",
                file.display()
            );
        }
    }
}

#[tokio::test]
async fn an_image_that_cannot_run_reports_the_reason_within_30s() {
    let client = zeroscale_e2e::client().await;
    install_function_crd().await;
    let ns = TestNamespace::new(&client, "op-pull").await;
    let _operator = Operator::start(ns.name()).await;
    let api: Api<Function> = Api::namespaced(client.clone(), ns.name());
    create(&api, "nope", json!({ "image": "registry.invalid/nope:1" })).await;
    let reasons = ["ErrImagePull", "ImagePullBackOff"];
    let f = wait_ready(&api, "nope", "False", &reasons, Duration::from_secs(30)).await;
    assert!(
        f.startup_failure().is_some(),
        "the activator would not see a startup failure"
    );
    let events = kubectl_ok(&[
        "get",
        "events",
        "-n",
        ns.name(),
        "--field-selector",
        "involvedObject.name=nope",
    ])
    .await;
    assert!(events.contains("Warning"), "no warning event: {events}");
}

#[tokio::test]
async fn a_crashing_container_reports_the_crash() {
    let client = zeroscale_e2e::client().await;
    install_function_crd().await;
    let ns = TestNamespace::new(&client, "op-crash").await;
    let _operator = Operator::start(ns.name()).await;
    let api: Api<Function> = Api::namespaced(client.clone(), ns.name());
    create(
        &api,
        "crash",
        json!({
            "image": BUSYBOX_IMAGE,
            "command": ["sh", "-c", "exit 3"],
            // The busybox image's user is root; Functions run as non-root.
            "securityContext": {"runAsUser": 65532},
        }),
    )
    .await;
    let f = wait_ready(&api, "crash", "False", &["CrashLoopBackOff"], SETTLE).await;
    let message = ready_condition(&f).map(|c| c.message).unwrap_or_default();
    assert!(message.contains("exit code 3"), "{message}");
}
