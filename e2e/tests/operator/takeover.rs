//! Operator restarts, objects it does not own, and leader hand-over.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use serde_json::json;
use zeroscale_crds::Function;
use zeroscale_e2e::{ECHO_IMAGE, Operator, TestNamespace, install_function_crd, try_kubectl, wait_for};

use super::support::*;

#[tokio::test]
async fn a_restarted_operator_converges_to_the_same_children_and_status() {
    let client = zeroscale_e2e::client().await;
    install_function_crd().await;
    let ns = TestNamespace::new(&client, "op-restart").await;
    let operator = Operator::start(ns.name()).await;
    let api: Api<Function> = Api::namespaced(client.clone(), ns.name());
    create(
        &api,
        "phoenix",
        json!({ "image": ECHO_IMAGE, "scale": { "initial": 2 } }),
    )
    .await;
    // Kill the operator (no graceful shutdown, no Lease release) as soon as it has started on the children.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    wait_for(SETTLE, "the Deployment to appear", || async {
        zeroscale_e2e::function_deployment(&deployments, "phoenix").await
    })
    .await;
    operator.process.signal("KILL");
    drop(operator);

    let _operator = Operator::start(ns.name()).await;
    let f = wait_ready(&api, "phoenix", "True", &["Ready"], SETTLE).await;
    let (d, public, private) = children(&client, ns.name(), "phoenix").await;
    let d = d.expect("deployment");
    assert_child_of(&d, &f);
    assert_child_of(&public.expect("public service"), &f);
    assert_child_of(&private.expect("private service"), &f);
    assert_eq!(replicas(&d), Some(2));
    assert!(
        !operator_owns_replicas(&d),
        "the operator kept spec.replicas after a restart"
    );
    let list = try_kubectl(&["get", "deploy,svc", "-n", ns.name(), "-o", "name"], None)
        .await
        .expect("listed");
    let mut names: Vec<_> = list.lines().collect();
    names.sort_unstable();
    let revision = d.metadata.name.clone().expect("the revision's name");
    assert_eq!(
        names,
        [
            format!("deployment.apps/{revision}"),
            "service/phoenix".to_string(),
            format!("service/{revision}")
        ]
    );
    let status = f.status.expect("status");
    assert_eq!(status.replicas_summary.as_deref(), Some("2/2"));
    assert!(
        status.conditions.iter().all(|c| c.status == "True"),
        "{:?}",
        status.conditions
    );
}

#[tokio::test]
async fn objects_the_function_does_not_control_are_not_taken_over() {
    let client = zeroscale_e2e::client().await;
    install_function_crd().await;
    let ns = TestNamespace::new(&client, "op-owned").await;
    let _operator = Operator::start(ns.name()).await;
    let services: Api<Service> = Api::namespaced(client.clone(), ns.name());
    let theirs: Service = serde_json::from_value(json!({
        "metadata": { "name": "taken" },
        "spec": { "type": "ExternalName", "externalName": "elsewhere.example.org" }
    }))
    .expect("service");
    services
        .create(&PostParams::default(), &theirs)
        .await
        .expect("their service");
    let api: Api<Function> = Api::namespaced(client.clone(), ns.name());
    create(&api, "taken", json!({ "image": ECHO_IMAGE })).await;
    let f = wait_ready(&api, "taken", "False", &["NotOwned"], SETTLE).await;
    let message = ready_condition(&f).map(|c| c.message).unwrap_or_default();
    assert!(message.contains("Service taken"), "{message}");
    let service = services.get("taken").await.expect("their service");
    assert!(
        service.owner_references().is_empty(),
        "the operator took the Service over"
    );
    let target = service.spec.and_then(|s| s.external_name);
    assert_eq!(target.as_deref(), Some("elsewhere.example.org"));
}

#[tokio::test]
async fn a_standby_takes_over_when_the_leader_shuts_down() {
    let client = zeroscale_e2e::client().await;
    install_function_crd().await;
    let ns = TestNamespace::new(&client, "op-leader").await;
    let mut leader = Operator::start(ns.name()).await;
    let standby = Operator::spawn(ns.name());
    wait_for(Duration::from_secs(30), "the standby to be ready", || async {
        (standby.ready().await && standby.leader_gauge().await == Some(0.0)).then_some(())
    })
    .await;
    let (a, b) = (leader.leader_gauge().await, standby.leader_gauge().await);
    assert_eq!((a, b), (Some(1.0), Some(0.0)), "exactly one leader expected");

    assert!(
        leader.process.terminate(Duration::from_secs(20)).await,
        "the leader did not stop on SIGTERM"
    );
    assert!(
        leader.process.log().contains("released lease"),
        "{}",
        leader.process.log()
    );
    standby.wait_leading().await;
    // The new leader reconciles.
    let api: Api<Function> = Api::namespaced(client.clone(), ns.name());
    create(&api, "next", json!({ "image": ECHO_IMAGE })).await;
    wait_ready(&api, "next", "True", &["Ready"], SETTLE).await;
}
