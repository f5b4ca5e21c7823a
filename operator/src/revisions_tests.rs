use serde_json::json;

use super::*;

fn rev(name: &str, created: i64, ready_replicas: i32) -> Observed {
    Observed {
        name: name.into(),
        created,
        desired: 1,
        replicas: 1,
        ready_replicas,
        failure: None,
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn target(value: serde_json::Value) -> TrafficTarget {
    serde_json::from_value(value).expect("target")
}

fn url(tag: &str) -> String {
    format!("http://{tag}-f.ns.example.com")
}

#[test]
fn a_revision_is_read_from_its_deployment_and_its_own_pods() {
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "f-aaaaaaaaaa", "labels": { "zeroscale.dev/revision": "f-aaaaaaaaaa" },
                      "creationTimestamp": "2026-01-01T00:00:10Z" },
        "spec": { "replicas": 2, "selector": {}, "template": {} },
        "status": { "replicas": 2, "readyReplicas": 0 }
    }))
    .expect("deployment");
    let pod = |revision: &str| -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": format!("{revision}-1"), "labels": { "zeroscale.dev/revision": revision } },
            "status": { "containerStatuses": [{ "name": "function", "image": "x", "imageID": "", "ready": false,
                "restartCount": 0, "state": { "waiting": { "reason": "ImagePullBackOff", "message": "no" } } }] }
        }))
        .expect("pod")
    };
    let seen = Observed::from_deployment(&deployment, &[pod("f-bbbbbbbbbb")]).expect("a revision");
    assert_eq!(
        (seen.name.as_str(), seen.desired, seen.replicas),
        ("f-aaaaaaaaaa", 2, 2)
    );
    assert_eq!(seen.created, 1_767_225_610);
    assert!(
        seen.failure.is_none(),
        "another revision's pods are not this one's"
    );
    let seen = Observed::from_deployment(&deployment, &[pod("f-aaaaaaaaaa")]).expect("a revision");
    assert_eq!(
        seen.failure.map(|f| f.reason).as_deref(),
        Some("ImagePullBackOff")
    );
    assert!(
        Observed::from_deployment(&Deployment::default(), &[]).is_none(),
        "no label, no revision"
    );
}

#[test]
fn ready_means_a_ready_pod_now_or_before() {
    let previous = [RevisionStatus {
        name: "f-old".into(),
        ready: true,
        ..RevisionStatus::default()
    }];
    assert!(is_ready(&rev("f-new", 2, 1), &previous, false));
    assert!(!is_ready(&rev("f-new", 2, 0), &previous, false));
    let mut old = rev("f-old", 1, 0);
    old.desired = 0;
    assert!(is_ready(&old, &previous, false), "scaled to zero after serving");
    let mut cold = rev("f-cold", 3, 0);
    cold.desired = 0;
    assert!(!is_ready(&cold, &[], false));
    assert!(is_ready(&cold, &[], true), "initial scale 0: nothing to wait for");
    cold.failure = Some(Failure {
        reason: "ErrImagePull".into(),
        message: String::new(),
    });
    assert!(!is_ready(&cold, &[], true));
}

#[test]
fn only_the_first_revision_counts_as_ready_without_a_pod() {
    let mut first = rev("f-first", 1, 0);
    first.desired = 0;
    assert!(is_first(&first, std::slice::from_ref(&first), &[]));
    // A new revision at zero replicas while an older one serves (or served) is no first revision:
    // with `initial: 0` it must still prove itself with a ready pod.
    let mut broken = rev("f-broken", 2, 0);
    broken.desired = 0;
    let serving = rev("f-old", 1, 1);
    let both = [broken.clone(), serving.clone()];
    assert!(!is_first(&broken, &both, &[]));
    let served = [RevisionStatus {
        name: "f-old".into(),
        ready: true,
        ..RevisionStatus::default()
    }];
    let mut scaled_to_zero = serving;
    scaled_to_zero.ready_replicas = 0;
    let both = [broken.clone(), scaled_to_zero];
    assert!(!is_first(&broken, &both, &served));
    assert!(!is_ready(&broken, &served, false));
    // Its own readiness, once proven, is kept in the status (level-triggered).
    let proven = [RevisionStatus {
        name: "f-broken".into(),
        ready: true,
        ..RevisionStatus::default()
    }];
    assert!(is_ready(&broken, &proven, false));
}

#[test]
fn the_latest_ready_revision_prefers_the_current_then_the_previous_then_the_newest() {
    let revisions = [rev("f-c", 3, 0), rev("f-b", 2, 1), rev("f-a", 1, 1)];
    assert_eq!(
        latest_ready("f-c", &revisions, &set(&["f-a", "f-b", "f-c"]), Some("f-a")),
        Some("f-c".into())
    );
    assert_eq!(
        latest_ready("f-c", &revisions, &set(&["f-a", "f-b"]), Some("f-a")),
        Some("f-a".into()),
        "a revert to f-a while f-c starts keeps f-a"
    );
    assert_eq!(
        latest_ready("f-c", &revisions, &set(&["f-a", "f-b"]), None),
        Some("f-b".into())
    );
    assert_eq!(latest_ready("f-c", &revisions, &set(&[]), None), None);
}

#[test]
fn latest_traffic_moves_only_to_a_ready_revision() {
    let existing = set(&["f-a", "f-b"]);
    let routes = resolve_traffic(None, &existing, Some("f-a"), "f-b", url).expect("resolves");
    assert_eq!(routes.len(), 1);
    assert_eq!(
        (routes[0].revision_name.as_str(), routes[0].percent),
        ("f-a", 100)
    );
    assert_eq!(routes[0].latest_revision, Some(true));
    let first = resolve_traffic(None, &existing, None, "f-b", url).expect("resolves");
    assert_eq!(
        first[0].revision_name, "f-b",
        "nothing ready yet: wait for the first"
    );
}

#[test]
fn named_targets_and_tags_resolve_with_urls() {
    let spec = vec![
        target(json!({ "revisionName": "f-a", "percent": 90 })),
        target(json!({ "latestRevision": true, "percent": 10, "tag": "canary" })),
        target(json!({ "revisionName": "f-a", "percent": 0, "tag": "stable" })),
    ];
    let routes = resolve_traffic(Some(&spec), &set(&["f-a", "f-b"]), Some("f-b"), "f-b", url).expect("ok");
    let got: Vec<_> = routes
        .iter()
        .map(|r| {
            (
                r.revision_name.as_str(),
                r.percent,
                r.tag.as_deref(),
                r.url.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("f-a", 90, None, None),
            ("f-b", 10, Some("canary"), Some("http://canary-f.ns.example.com")),
            ("f-a", 0, Some("stable"), Some("http://stable-f.ns.example.com")),
        ]
    );
}

#[test]
fn an_unknown_revision_is_reported_by_name() {
    let spec = vec![
        target(json!({ "revisionName": "f-gone", "percent": 50 })),
        target(json!({ "latestRevision": true, "percent": 50 })),
    ];
    let err = resolve_traffic(Some(&spec), &set(&["f-a"]), Some("f-a"), "f-a", url).expect_err("missing");
    assert_eq!(err, MissingRevisions(vec!["f-gone".into()]));
    assert!(err.to_string().contains("spec.traffic"), "{err}");
}

#[test]
fn collection_keeps_routed_tagged_named_and_latest_revisions() {
    let revisions: Vec<Observed> = (0..8).rev().map(|i| rev(&format!("f-{i}"), i, 0)).collect();
    let traffic = vec![
        TrafficStatus {
            revision_name: "f-0".into(),
            percent: 100,
            ..TrafficStatus::default()
        },
        TrafficStatus {
            revision_name: "f-1".into(),
            percent: 0,
            tag: Some("old".into()),
            ..TrafficStatus::default()
        },
        TrafficStatus {
            revision_name: "f-2".into(),
            percent: 0,
            ..TrafficStatus::default()
        },
    ];
    let keep = protected(&traffic, None, &[Some("f-7"), Some("f-6"), None]);
    assert_eq!(keep, set(&["f-0", "f-1", "f-6", "f-7"]));
    // Unprotected, newest first: f-5, f-4, f-3, f-2; a limit of 2 keeps f-5 and f-4.
    assert_eq!(collectable(&revisions, &keep, 2), ["f-3", "f-2"]);
    assert!(collectable(&revisions, &keep, 5).is_empty());
    assert_eq!(collectable(&revisions, &keep, 0).len(), 4);
    let named = [target(json!({ "revisionName": "f-3", "percent": 0 }))];
    let keep = protected(&traffic, Some(&named), &[Some("f-7")]);
    assert!(!collectable(&revisions, &keep, 0).contains(&"f-3".to_string()));
}

#[test]
fn statuses_sum_shares_and_name_the_first_tag() {
    let revisions = [rev("f-b", 2, 1), rev("f-a", 1, 0)];
    let traffic = [
        TrafficStatus {
            revision_name: "f-b".into(),
            percent: 60,
            tag: Some("zeta".into()),
            url: Some("http://zeta".into()),
            ..TrafficStatus::default()
        },
        TrafficStatus {
            revision_name: "f-b".into(),
            percent: 40,
            tag: Some("alpha".into()),
            url: Some("http://alpha".into()),
            ..TrafficStatus::default()
        },
    ];
    let s = statuses(&revisions, &set(&["f-b"]), &traffic);
    assert_eq!(
        (s[0].percent, s[0].ready, s[0].tag.as_deref()),
        (100, true, Some("alpha"))
    );
    assert_eq!(s[0].url.as_deref(), Some("http://alpha"));
    assert_eq!((s[1].percent, s[1].ready, s[1].tag.as_deref()), (0, false, None));
}

#[test]
fn newest_first_orders_by_creation_then_name() {
    let mut revisions = vec![rev("f-a", 1, 0), rev("f-c", 2, 0), rev("f-b", 2, 0)];
    newest_first(&mut revisions);
    let names: Vec<_> = revisions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["f-b", "f-c", "f-a"]);
}
