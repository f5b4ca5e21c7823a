use cloudevents::{AttributesReader, Data};
use serde_json::json;

use super::*;

fn cm(name: &str, uid: &str, rv: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "shop", "uid": uid, "resourceVersion": rv},
        "data": {"k": "v"},
    }))
    .unwrap()
}

fn changes(tracker: &mut ChangeTracker, event: watcher::Event<DynamicObject>) -> Vec<(Change, String)> {
    tracker
        .observe(event)
        .into_iter()
        .map(|(c, o)| (c, o.name_any()))
        .collect()
}

fn source(api_version: &str, kind: &str, namespace: Option<&str>) -> KubernetesSource {
    KubernetesSource {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.map(Into::into),
        label_selector: Some(" app=web ".into()),
    }
}

#[test]
fn objects_present_at_start_are_the_baseline() {
    let mut t = ChangeTracker::default();
    assert!(changes(&mut t, watcher::Event::Init).is_empty());
    assert!(changes(&mut t, watcher::Event::InitApply(cm("a", "1", "10"))).is_empty());
    assert!(changes(&mut t, watcher::Event::InitDone).is_empty());
    assert_eq!(
        changes(&mut t, watcher::Event::Apply(cm("b", "2", "11"))),
        [(Change::Added, "b".into())]
    );
    assert_eq!(
        changes(&mut t, watcher::Event::Apply(cm("a", "1", "12"))),
        [(Change::Updated, "a".into())]
    );
    assert!(
        changes(&mut t, watcher::Event::Apply(cm("a", "1", "12"))).is_empty(),
        "same version twice"
    );
    assert_eq!(
        changes(&mut t, watcher::Event::Delete(cm("a", "1", "13"))),
        [(Change::Deleted, "a".into())]
    );
}

#[test]
fn a_relist_reports_what_changed_while_the_watch_was_down() {
    let mut t = ChangeTracker::default();
    for e in [
        watcher::Event::Init,
        watcher::Event::InitApply(cm("keep", "1", "1")),
        watcher::Event::InitApply(cm("edit", "2", "1")),
        watcher::Event::InitApply(cm("gone", "3", "1")),
        watcher::Event::InitDone,
    ] {
        t.observe(e);
    }
    let mut seen = Vec::new();
    for e in [
        watcher::Event::Init,
        watcher::Event::InitApply(cm("keep", "1", "1")),
        watcher::Event::InitApply(cm("edit", "2", "5")),
        watcher::Event::InitApply(cm("new", "4", "6")),
        watcher::Event::InitDone,
    ] {
        seen.extend(changes(&mut t, e));
    }
    assert_eq!(
        seen,
        [
            (Change::Updated, "edit".into()),
            (Change::Added, "new".into()),
            (Change::Deleted, "gone".into())
        ]
    );
}

#[test]
fn a_recreated_object_is_a_new_object() {
    let mut t = ChangeTracker::default();
    t.observe(watcher::Event::Init);
    t.observe(watcher::Event::InitDone);
    t.observe(watcher::Event::Apply(cm("a", "1", "1")));
    t.observe(watcher::Event::Delete(cm("a", "1", "2")));
    assert_eq!(
        changes(&mut t, watcher::Event::Apply(cm("a", "9", "3"))),
        [(Change::Added, "a".into())]
    );
}

#[test]
fn the_event_carries_the_object() {
    let now: Timestamp = "2025-03-01T10:00:00Z".parse().unwrap();
    let event = object_event(
        "shop",
        "config-changes",
        Change::Updated,
        &cm("settings", "u1", "42"),
        now,
    )
    .unwrap();
    assert_eq!(event.ty(), UPDATED_TYPE);
    assert_eq!(event.source().as_str(), "/zeroscale/triggers/shop/config-changes");
    assert_eq!(event.subject(), Some("shop/settings"));
    assert_eq!(event.id(), "u1/42/updated");
    let Some(Data::Json(data)) = event.data() else {
        panic!("json data")
    };
    assert_eq!(data["kind"], "ConfigMap");
    assert_eq!(data["data"]["k"], "v");
}

#[test]
fn resolves_only_the_triggers_namespace_and_allowed_kinds() {
    let target = WatchTarget::resolve("shop", &source("v1", "ConfigMap", None)).unwrap();
    assert_eq!(target.gvk, GroupVersionKind::gvk("", "v1", "ConfigMap"));
    assert_eq!(target.namespace, "shop");
    assert_eq!(target.label_selector.as_deref(), Some("app=web"));
    let apps = WatchTarget::resolve("shop", &source("apps/v1", "Deployment", Some("shop"))).unwrap();
    assert_eq!(apps.gvk, GroupVersionKind::gvk("apps", "v1", "Deployment"));
    assert_eq!(
        WatchTarget::resolve("shop", &source("v1", "ConfigMap", Some("kube-system"))),
        Err(KubernetesSourceError::OtherNamespace("kube-system".into()))
    );
    assert_eq!(
        WatchTarget::resolve("shop", &source("v1", "Secret", None)),
        Err(KubernetesSourceError::ForbiddenKind("Secret".into()))
    );
    for bad in ["", "a/b/c", "/v1", "apps/"] {
        assert!(matches!(
            WatchTarget::resolve("shop", &source(bad, "X", None)),
            Err(KubernetesSourceError::ApiVersion(_))
        ));
    }
}
