//! Revisions, traffic, garbage collection and migration through the reconciler.

use super::*;

/// `function("hello")` with another image: another revision.
fn with_image(image: &str) -> Function {
    let mut f = function("hello");
    f.spec.image = image.into();
    f
}

/// A stored revision Deployment of `f`, created at `second`, with `ready` ready pods.
fn revision_deployment(f: &Function, second: i64, ready: i32) -> Value {
    let mut d = live_deployment(f);
    d["metadata"]["creationTimestamp"] =
        json!(jiff::Timestamp::from_second(second).expect("time").to_string());
    d["status"]["readyReplicas"] = json!(ready);
    d["status"]["availableReplicas"] = json!(ready);
    d
}

fn name_of(f: &Function) -> String {
    validated(f).revision
}

/// A Function whose status says `old` is ready and takes all traffic.
fn serving(mut f: Function, old: &str) -> Function {
    f.status = Some(
        serde_json::from_value(json!({
            "latestCreatedRevisionName": old, "latestReadyRevisionName": old,
            "traffic": [{ "revisionName": old, "percent": 100, "latestRevision": true }],
            "revisions": [{ "name": old, "ready": true, "replicas": 1, "percent": 100 }],
        }))
        .expect("status"),
    );
    f
}

/// A context over `f`'s Services and `deployments` (with the current one among them) and no pods.
fn context_over(client: Client, f: &Function, deployments: Vec<Value>) -> Arc<Context> {
    context_with(client, existing(f, deployments, vec![]).0)
}

#[tokio::test]
async fn a_new_image_makes_a_second_revision_and_traffic_waits_until_it_is_ready() {
    let old = with_image("echo:1");
    let old_name = name_of(&old);
    let f = serving(with_image("echo:2"), &old_name);
    let new_name = name_of(&f);
    assert_ne!(old_name, new_name);
    let starting = revision_deployment(&f, 20, 0);
    let deployments = vec![revision_deployment(&old, 10, 1), starting.clone()];
    let mut script = apply_existing(&f, starting);
    script.extend([apply_status(&f), Step::event("ns")]);
    let (client, server) = ApiServer::new(script);
    reconcile(Arc::new(f.clone()), context_over(client, &f, deployments))
        .await
        .expect("reconciled");
    let seen = server.finish();
    assert!(
        seen.iter().all(|s| s.method != http::Method::DELETE),
        "nothing is collected"
    );
    let status = &requests_to(&seen, STATUS)[0].body["status"];
    assert_eq!(status["latestCreatedRevisionName"], new_name.as_str());
    assert_eq!(status["latestReadyRevisionName"], old_name.as_str());
    assert_eq!(
        status["traffic"][0]["revisionName"],
        old_name.as_str(),
        "not ready: no traffic"
    );
    let revisions: Vec<(&str, bool, i64)> = status["revisions"]
        .as_array()
        .expect("revisions")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default(),
                r["ready"] == true,
                r["percent"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        revisions,
        [(new_name.as_str(), false, 0), (old_name.as_str(), true, 100)]
    );
    // REPLICAS counts every revision's pods: the old one's ready pod, not only the new one's none.
    assert_eq!(status["readyReplicas"], 1);
    let desired = status["desiredReplicas"].as_i64().expect("desired");
    assert_eq!(status["replicasSummary"], format!("1/{desired}").as_str());
}

#[tokio::test]
async fn a_ready_new_revision_takes_the_latest_traffic() {
    let old = with_image("echo:1");
    let f = serving(with_image("echo:2"), &name_of(&old));
    let ready = revision_deployment(&f, 20, 1);
    let deployments = vec![revision_deployment(&old, 10, 0), ready.clone()];
    let mut script = apply_existing(&f, ready);
    script.extend([apply_status(&f), Step::event("ns")]);
    let (client, server) = ApiServer::new(script);
    reconcile(Arc::new(f.clone()), context_over(client, &f, deployments))
        .await
        .expect("reconciled");
    let seen = server.finish();
    let status = &requests_to(&seen, STATUS)[0].body["status"];
    assert_eq!(status["latestReadyRevisionName"], name_of(&f).as_str());
    assert_eq!(status["traffic"][0]["revisionName"], name_of(&f).as_str());
    assert_eq!(status["traffic"][0]["percent"], 100);
    assert_eq!(
        status["revisions"][1]["ready"], true,
        "the old one scaled to zero stays ready"
    );
}

#[tokio::test]
async fn an_unknown_revision_in_traffic_keeps_the_routes_and_says_revision_missing() {
    let mut f = serving(function("hello"), &revision());
    f.spec.traffic = Some(vec![
        serde_json::from_value(json!({ "revisionName": "hello-0000000000", "percent": 100 }))
            .expect("target"),
    ]);
    let live = revision_deployment(&f, 10, 1);
    let mut script = apply_existing(&f, live.clone());
    script.extend([apply_status(&f), Step::event("ns")]);
    let (client, server) = ApiServer::new(script);
    reconcile(Arc::new(f.clone()), context_over(client, &f, vec![live]))
        .await
        .expect("reconciled");
    let seen = server.finish();
    let status = requests_to(&seen, STATUS)[0];
    assert_eq!(condition(status, "Ready"), pair("False", "RevisionMissing"));
    assert_eq!(
        status.body["status"]["traffic"][0]["revisionName"],
        revision().as_str()
    );
    assert_eq!(events(&seen), [pair("Warning", "RevisionMissing")]);
}

#[tokio::test]
async fn revisions_past_the_history_limit_are_deleted_but_never_a_routed_or_tagged_one() {
    let olds: Vec<Function> = (1..=4).map(|i| with_image(&format!("echo:{i}"))).collect();
    let mut f = function("hello");
    f.spec.revision_history_limit = 1;
    f.spec.traffic = Some(vec![
        serde_json::from_value(json!({ "latestRevision": true, "percent": 100 })).expect("target"),
        serde_json::from_value(json!({ "revisionName": name_of(&olds[0]), "percent": 0, "tag": "first" }))
            .expect("target"),
    ]);
    let mut script = Vec::new();
    let live = revision_deployment(&f, 100, 1);
    let mut deployments: Vec<Value> = olds
        .iter()
        .zip(1..)
        .map(|(old, i)| revision_deployment(old, i * 10, 0))
        .collect();
    deployments.push(live.clone());
    script.extend(apply_existing(&f, live));
    for old in [&olds[2], &olds[1]] {
        let name = name_of(old);
        script.push(Step::new(http::Method::DELETE, format!("{DEPLOYMENTS}/{name}")));
        script.push(Step::new(
            http::Method::DELETE,
            format!("/api/v1/namespaces/ns/services/{name}"),
        ));
    }
    script.extend([apply_status(&f), Step::event("ns")]);
    let (client, server) = ApiServer::new(script);
    reconcile(Arc::new(f.clone()), context_over(client, &f, deployments))
        .await
        .expect("reconciled");
    let seen = server.finish();
    let status = &requests_to(&seen, STATUS)[0].body["status"];
    let kept: Vec<&str> = status["revisions"]
        .as_array()
        .expect("revisions")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(kept, [name_of(&f), name_of(&olds[3]), name_of(&olds[0])]);
    assert_eq!(status["revisions"][2]["tag"], "first");
    assert_eq!(status["revisions"][2]["url"], "http://first-hello.ns.example.com");
}

#[tokio::test]
async fn the_deployment_from_before_revisions_is_deleted_on_upgrade() {
    let f = function("hello");
    let live = revision_deployment(&f, 100, 1);
    let mut legacy = live_deployment(&f);
    legacy["metadata"]["name"] = json!("hello");
    legacy["metadata"]["labels"]
        .as_object_mut()
        .expect("labels")
        .remove("zeroscale.dev/revision");
    let mut script = apply_existing(&f, live.clone());
    script.extend([
        Step::new(http::Method::DELETE, LEGACY_DEPLOYMENT),
        Step::new(
            http::Method::DELETE,
            "/api/v1/namespaces/ns/services/hello-private",
        )
        .not_found(),
        apply_status(&f),
        Step::event("ns"),
    ]);
    let (client, server) = ApiServer::new(script);
    reconcile(Arc::new(f.clone()), context_over(client, &f, vec![legacy, live]))
        .await
        .expect("reconciled");
    let seen = server.finish();
    let status = &requests_to(&seen, STATUS)[0].body["status"];
    assert_eq!(status["traffic"][0]["revisionName"], revision().as_str());
}
