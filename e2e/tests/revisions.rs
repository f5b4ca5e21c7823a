//! Revisions, traffic splitting, tags and garbage collection (issue #14) on Zeroscale as installed:
//! revision names predicted before applying, traffic that moves only to a ready revision, a 90/10
//! split, tags at 0 %, each revision scaling from and to zero, reverts that reuse a revision, the
//! history limit, applies that change nothing, and a new revision at `scale.initial: 0` that must
//! prove itself with a pod (a broken one never takes traffic). Echo answers name their pod, and a
//! pod's name starts with its revision's, which tells the revisions apart.
//!
//! Installed suite (`scripts/e2e.sh` `installed_suites`); run it one test at a time.

#[allow(dead_code)] // shared with scenarios.rs; this suite uses part of it
#[path = "scenarios/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use zeroscale_crds::FunctionSpec;
use zeroscale_crds::revision::revision_name;
use zeroscale_e2e::installed::{pod_metrics, ready_component_pods};
use zeroscale_e2e::{counter_value, deployment_replicas, kubectl, wait_for};

use support::{COLD_REQUEST_TIMEOUT, READY_TIMEOUT, Scenario, echo_pod, echo_spec};

/// An echo spec told apart by `$VERSION` (a different env makes a different revision), scaling to
/// zero within seconds of its last request.
fn versioned(version: &str, extra: Value) -> Value {
    let mut spec = echo_spec(json!({
        "env": [{ "name": "VERSION", "value": version }],
        "scale": { "initial": 1, "window": "6s", "scaleToZeroGracePeriod": "1s" },
    }));
    if let (Value::Object(spec), Value::Object(extra)) = (&mut spec, extra) {
        spec.extend(extra);
    }
    spec
}

/// The revision name CI would compute before applying (what `zeroscale-revision-name` prints).
fn predicted(name: &str, spec: &Value) -> String {
    let spec: FunctionSpec = serde_json::from_value(spec.clone()).expect("a valid spec");
    revision_name(name, &spec).expect("a name")
}

/// The Function's status field at `pointer` (JSON pointer), once it is there.
async fn status_at(s: &Scenario, name: &str, pointer: &str) -> Option<Value> {
    let f = s.functions.get_opt(name).await.ok().flatten()?;
    let status = serde_json::to_value(f.status?).ok()?;
    status.pointer(pointer).cloned()
}

/// Waits until `status.<pointer>` is `want`.
async fn wait_status(s: &Scenario, name: &str, pointer: &str, want: Value) {
    let what = format!("{name}: status{pointer} = {want}");
    wait_for(READY_TIMEOUT, &what, || async {
        (status_at(s, name, pointer).await? == want).then_some(())
    })
    .await;
}

/// Names of the revision Deployments of `name`.
/// Waits until the revision `revision` of `name` reports a reason in `status.revisions` (a broken
/// image's pull failure), and returns it.
async fn wait_revision_reason(s: &Scenario, name: &str, revision: &str) -> String {
    wait_for(
        READY_TIMEOUT,
        "the broken revision to report its pull failure",
        || async {
            let revisions = status_at(s, name, "/revisions").await?;
            let found = revisions.as_array()?.iter().find(|r| r["name"] == revision)?;
            found["reason"].as_str().map(str::to_string)
        },
    )
    .await
}

async fn revision_deployments(s: &Scenario, name: &str) -> Vec<String> {
    let params = kube::api::ListParams::default().labels(&format!("zeroscale.dev/function={name}"));
    let mut names: Vec<String> = s
        .deployments
        .list(&params)
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|d| d.metadata.name)
        .collect();
    names.sort();
    names
}

/// `n` requests to `host`, `parallel` at a time: how many each revision answered (by pod name prefix).
async fn tally(
    s: &Scenario,
    host: &str,
    n: usize,
    parallel: usize,
    revisions: &[&str],
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut done = 0;
    while done < n {
        let batch = parallel.min(n - done);
        let answers =
            futures::future::join_all((0..batch).map(|_| s.get_ok(host, "/", COLD_REQUEST_TIMEOUT))).await;
        for (status, body) in answers {
            assert_eq!(status, 200, "{body}");
            let pod = echo_pod(&body);
            let revision = revisions
                .iter()
                .find(|r| pod.starts_with(&format!("{r}-")))
                .map_or_else(|| format!("other:{pod}"), |r| r.to_string());
            *counts.entry(revision).or_insert(0) += 1;
        }
        done += batch;
    }
    counts
}

#[tokio::test]
async fn updates_make_predicted_revisions_that_take_traffic_only_when_ready_and_reverts_reuse_them() {
    let s = Scenario::new("rev-update").await;
    let v1 = versioned("1", json!({}));
    let rev1 = predicted("shop", &v1);
    s.apply("shop", v1.clone()).await;
    s.wait_ready("shop").await;
    wait_status(&s, "shop", "/latestReadyRevisionName", json!(rev1)).await;
    let host = s.host("shop").await;
    let counts = tally(&s, &host, 10, 2, &[&rev1]).await;
    assert_eq!(counts.get(&rev1), Some(&10), "{counts:?}");

    // A broken image: a second revision, predicted, that never becomes ready and never gets a request.
    let broken = versioned(
        "1",
        json!({ "image": "localhost:5000/zeroscale/does-not-exist:0.0.0" }),
    );
    let rev_broken = predicted("shop", &broken);
    s.apply("shop", broken).await;
    wait_status(&s, "shop", "/latestCreatedRevisionName", json!(rev_broken)).await;
    wait_revision_reason(&s, "shop", &rev_broken).await;
    let counts = tally(&s, &host, 40, 4, &[&rev1, &rev_broken]).await;
    assert_eq!(
        counts.get(&rev1),
        Some(&40),
        "the broken revision got requests: {counts:?}"
    );
    assert_eq!(
        status_at(&s, "shop", "/traffic/0/revisionName").await,
        Some(json!(rev1))
    );

    // A good second version: traffic moves once it is ready; the first revision stays.
    let v2 = versioned("2", json!({}));
    let rev2 = predicted("shop", &v2);
    s.apply("shop", v2).await;
    wait_status(&s, "shop", "/traffic/0/revisionName", json!(rev2)).await;
    let counts = tally(&s, &host, 10, 2, &[&rev1, &rev2]).await;
    assert_eq!(counts.get(&rev2), Some(&10), "{counts:?}");
    let before = revision_deployments(&s, "shop").await;
    assert!(before.contains(&rev1) && before.contains(&rev2), "{before:?}");

    // Revert: the same name, no new Deployment, traffic back at once (it was ready before).
    s.apply("shop", v1.clone()).await;
    wait_status(&s, "shop", "/latestCreatedRevisionName", json!(rev1)).await;
    wait_status(&s, "shop", "/traffic/0/revisionName", json!(rev1)).await;
    assert_eq!(
        revision_deployments(&s, "shop").await,
        before,
        "a revert creates nothing"
    );

    // Applying the same manifest again changes nothing: server-side ...
    let generation = |f: Option<zeroscale_crds::Function>| f.and_then(|f| f.metadata.generation);
    let g0 = generation(s.functions.get_opt("shop").await.ok().flatten());
    s.apply("shop", v1.clone()).await;
    assert_eq!(generation(s.functions.get_opt("shop").await.ok().flatten()), g0);
    assert_eq!(revision_deployments(&s, "shop").await, before);
    // ... and client-side (the second `kubectl apply` says `unchanged`).
    let manifest = json!({
        "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Function",
        "metadata": { "name": "client", "namespace": s.namespace() }, "spec": v1,
    });
    let file = std::env::temp_dir().join(format!("{}-client.json", s.namespace()));
    std::fs::write(&file, manifest.to_string()).expect("manifest written");
    let path = file.to_str().expect("utf-8");
    let first = kubectl(&["apply", "-f", path]).await;
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = kubectl(&["apply", "-f", path]).await;
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(out.contains("unchanged"), "second client-side apply: {out}");
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn a_ninety_ten_split_holds_tags_reach_their_revision_at_zero_percent_and_each_scales_alone() {
    let s = Scenario::new("rev-split").await;
    let v1 = versioned("1", json!({}));
    let v2 = versioned("2", json!({}));
    let (rev1, rev2) = (predicted("split", &v1), predicted("split", &v2));
    s.apply("split", v1).await;
    wait_status(&s, "split", "/latestReadyRevisionName", json!(rev1)).await;
    // The second version, reachable only by its tag (0 %).
    let mut tagged = v2.clone();
    tagged["traffic"] = json!([
        { "revisionName": rev1, "percent": 100 },
        { "latestRevision": true, "percent": 0, "tag": "next" },
    ]);
    s.apply("split", tagged).await;
    wait_status(&s, "split", "/latestReadyRevisionName", json!(rev2)).await;
    wait_status(
        &s,
        "split",
        "/traffic/1/url",
        json!(format!("http://next-{}", s.host("split").await)),
    )
    .await;

    // Both at zero, each on its own; then the tag's address wakes only its revision.
    for rev in [&rev1, &rev2] {
        s.wait_replicas(rev, "zero replicas", Duration::from_secs(120), |d, r| {
            d == 0 && r == 0
        })
        .await;
    }
    let host = s.host("split").await;
    let tag_host = format!("next-{host}");
    let counts = tally(&s, &tag_host, 3, 1, &[&rev1, &rev2]).await;
    assert_eq!(
        counts.get(&rev2),
        Some(&3),
        "the tag reaches its revision at 0 %: {counts:?}"
    );
    assert_eq!(
        deployment_replicas(&s.deployments, &rev1).await.map(|r| r.0),
        Some(0)
    );

    // 90/10 over 2,000 requests.
    let mut split = v2;
    split["traffic"] = json!([
        { "revisionName": rev1, "percent": 90 },
        { "revisionName": rev2, "percent": 10, "tag": "next" },
    ]);
    s.apply("split", split).await;
    wait_status(&s, "split", "/traffic/0/percent", json!(90)).await;
    let counts = tally(&s, &host, 2000, 8, &[&rev1, &rev2]).await;
    let share = |r: &str| counts.get(r).copied().unwrap_or(0) as f64 * 100.0 / 2000.0;
    eprintln!("90/10 split over 2000 requests: {counts:?}");
    assert!((87.0..=93.0).contains(&share(&rev1)), "{counts:?}");
    assert!((7.0..=13.0).contains(&share(&rev2)), "{counts:?}");
    // The activators' metrics name the Function and the revision apart, and agree with the tally.
    let mut counted = BTreeMap::new();
    for pod in ready_component_pods("activator").await {
        let text = pod_metrics(&pod).await.unwrap_or_default();
        for rev in [&rev1, &rev2] {
            let series = format!(
                "zeroscale_activator_requests_total{{namespace=\"{}\",function=\"split\",revision=\"{rev}\",code=\"200\"}}",
                s.namespace()
            );
            *counted.entry(rev.clone()).or_insert(0) += counter_value(&text, &series);
        }
    }
    for rev in [&rev1, &rev2] {
        let seen = counts.get(rev.as_str()).copied().unwrap_or(0) as u64;
        assert!(
            counted[rev] >= seen,
            "{rev}: metrics {counted:?} < answers {counts:?}"
        );
    }
    for rev in [&rev1, &rev2] {
        s.wait_replicas(rev, "back to zero", Duration::from_secs(120), |d, r| {
            d == 0 && r == 0
        })
        .await;
    }
}

#[tokio::test]
async fn the_history_limit_collects_old_revisions_but_never_a_routed_or_tagged_one() {
    let s = Scenario::new("rev-gc").await;
    let spec = |v: &str| {
        let mut spec = versioned(v, json!({ "revisionHistoryLimit": 1 }));
        spec["scale"]["initial"] = json!(0);
        spec
    };
    let rev1 = predicted("gc", &spec("1"));
    s.apply("gc", spec("1")).await;
    wait_status(&s, "gc", "/latestCreatedRevisionName", json!(rev1)).await;
    let mut names = vec![rev1.clone()];
    for v in ["2", "3", "4"] {
        let mut next = spec(v);
        next["traffic"] = json!([
            { "latestRevision": true, "percent": 100 },
            { "revisionName": rev1, "percent": 0, "tag": "first" },
        ]);
        let rev = predicted("gc", &next);
        // Revisions are ordered by creation time, in whole seconds.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        s.apply("gc", next).await;
        wait_status(&s, "gc", "/latestReadyRevisionName", json!(rev)).await;
        names.push(rev);
    }
    // Kept: the latest (4), the tagged first, and one more (3, the newest of the rest); 2 is gone.
    let mut want = vec![names[0].clone(), names[2].clone(), names[3].clone()];
    want.sort();
    wait_for(READY_TIMEOUT, "revision 2 to be collected", || async {
        (revision_deployments(&s, "gc").await == want).then_some(())
    })
    .await;
    let first = format!("first-{}", s.host("gc").await);
    let counts = tally(&s, &first, 1, 1, &[&names[0]]).await;
    assert_eq!(
        counts.get(&names[0]),
        Some(&1),
        "the tagged revision still answers: {counts:?}"
    );
}

#[tokio::test]
async fn with_initial_zero_a_new_revision_proves_itself_with_a_pod_and_a_broken_one_never_takes_traffic() {
    let s = Scenario::new("rev-zero").await;
    // A 30 s window: a new revision's first pod is kept long enough to show what it is (scale fields
    // make no revision).
    let spec = |version: &str, extra: Value| {
        let mut spec = versioned(version, extra);
        spec["scale"]["initial"] = json!(0);
        spec["scale"]["window"] = json!("30s");
        spec
    };
    // The first revision at `initial: 0` is ready without a pod (nothing else could serve).
    let v1 = spec("1", json!({}));
    let rev1 = predicted("zero", &v1);
    s.apply("zero", v1).await;
    wait_status(&s, "zero", "/latestReadyRevisionName", json!(rev1)).await;
    let host = s.host("zero").await;
    let counts = tally(&s, &host, 5, 1, &[&rev1]).await;
    assert_eq!(counts.get(&rev1), Some(&5), "{counts:?}");

    // A broken image at `initial: 0`: its Deployment still starts one pod, whose pull failure shows;
    // it never counts as ready and never takes a request, even once it is back at zero.
    let broken = spec(
        "1",
        json!({ "image": "localhost:5000/zeroscale/does-not-exist:0.0.0" }),
    );
    let rev_broken = predicted("zero", &broken);
    s.apply("zero", broken).await;
    wait_status(&s, "zero", "/latestCreatedRevisionName", json!(rev_broken)).await;
    let (desired, _) = s
        .replicas(&rev_broken)
        .await
        .expect("the broken revision's Deployment");
    assert_eq!(desired, 1, "a new revision starts with one pod to prove itself");
    wait_revision_reason(&s, "zero", &rev_broken).await;
    let counts = tally(&s, &host, 20, 4, &[&rev1, &rev_broken]).await;
    assert_eq!(
        counts.get(&rev1),
        Some(&20),
        "the broken revision got requests: {counts:?}"
    );
    s.wait_replicas(
        &rev_broken,
        "the autoscaler gives up on it",
        Duration::from_secs(180),
        |d, _| d == 0,
    )
    .await;
    let counts = tally(&s, &host, 10, 2, &[&rev1, &rev_broken]).await;
    assert_eq!(
        counts.get(&rev1),
        Some(&10),
        "at zero it is still not ready: {counts:?}"
    );
    assert_eq!(
        status_at(&s, "zero", "/latestReadyRevisionName").await,
        Some(json!(rev1))
    );
    let broken_ready = status_at(&s, "zero", "/revisions").await.and_then(|r| {
        r.as_array()?
            .iter()
            .find(|r| r["name"] == rev_broken.as_str())
            .map(|r| r["ready"].clone())
    });
    assert_eq!(broken_ready, Some(json!(false)));

    // A good new revision at `initial: 0` proves itself with its pod, takes the traffic, and then
    // scales to zero on its own while staying ready.
    let v2 = spec("2", json!({}));
    let rev2 = predicted("zero", &v2);
    s.apply("zero", v2).await;
    wait_status(&s, "zero", "/latestReadyRevisionName", json!(rev2)).await;
    wait_status(&s, "zero", "/traffic/0/revisionName", json!(rev2)).await;
    s.wait_replicas(&rev2, "zero replicas", Duration::from_secs(180), |d, r| {
        d == 0 && r == 0
    })
    .await;
    assert_eq!(
        status_at(&s, "zero", "/latestReadyRevisionName").await,
        Some(json!(rev2))
    );
    let counts = tally(&s, &host, 3, 1, &[&rev1, &rev2]).await;
    assert_eq!(counts.get(&rev2), Some(&3), "{counts:?}");
}
