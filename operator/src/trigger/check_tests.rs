use serde_json::{Value, json};
use zeroscale_crds::trigger::Trigger;

use super::*;

fn trigger(spec: Value) -> Trigger {
    serde_json::from_value(json!({
        "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Trigger",
        "metadata": {"namespace": "shop", "name": "t", "generation": 2},
        "spec": spec,
    }))
    .expect("trigger")
}

fn invalid(check: &SpecCheck) -> &'static str {
    match &check.source {
        SourceCheck::Invalid(p) => p.reason,
        other => panic!("valid source {other:?}"),
    }
}

#[test]
fn a_broker_trigger_to_a_function_needs_that_function() {
    let check = SpecCheck::of(&trigger(json!({
        "source": {"broker": {}}, "subscriber": {"function": "orders"},
        "delivery": {"deadLetterSink": {"function": "dlq"}},
    })));
    assert_eq!(check.source_kind, Some("broker"));
    assert!(matches!(check.source, SourceCheck::Valid(_)));
    assert_eq!(check.routing, Ok(()));
    assert_eq!(check.subscriber, Ok(Dest::Function("orders".into())));
    assert_eq!(
        check.functions().into_iter().collect::<Vec<_>>(),
        ["dlq", "orders"]
    );
    assert_eq!(
        Dest::Function("orders".into()).address("shop"),
        "http://orders.shop.svc.cluster.local"
    );
    assert!(check.kind().is_none());
}

#[test]
fn a_uri_subscriber_needs_no_lookup_and_is_its_own_address() {
    let check = SpecCheck::of(&trigger(json!({
        "source": {"broker": {}}, "subscriber": {"uri": "http://sink.shop.svc/in"},
    })));
    assert!(check.functions().is_empty());
    let dest = check.subscriber.expect("resolved");
    assert_eq!(dest.address("shop"), "http://sink.shop.svc/in");
}

#[test]
fn cron_values_and_time_zones_are_checked() {
    let bad_minute = json!({"source": {"schedule": {"cron": "61 * * * *"}}, "subscriber": {"function": "f"}});
    assert_eq!(invalid(&SpecCheck::of(&trigger(bad_minute))), "InvalidSchedule");
    let bad_zone = json!({"source": {"schedule": {"cron": "* * * * *", "timeZone": "Mars/Olympus"}},
                          "subscriber": {"function": "f"}});
    assert_eq!(invalid(&SpecCheck::of(&trigger(bad_zone))), "InvalidSchedule");
    let good = json!({"source": {"schedule": {"cron": "*/5 * * * *", "timeZone": "Europe/Paris"}},
                      "subscriber": {"function": "f"}});
    let check = SpecCheck::of(&trigger(good));
    assert_eq!(check.source_kind, Some("schedule"));
    assert!(matches!(&check.source, SourceCheck::Valid(m) if m.contains("Europe/Paris")));
}

#[test]
fn kubernetes_sources_on_secrets_or_other_namespaces_are_not_allowed() {
    let secrets = json!({"source": {"kubernetes": {"apiVersion": "v1", "kind": "Secret"}},
                         "subscriber": {"function": "f"}});
    assert_eq!(invalid(&SpecCheck::of(&trigger(secrets))), "SourceNotAllowed");
    let other = json!({"source": {"kubernetes": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "kube-system"}},
                       "subscriber": {"function": "f"}});
    assert_eq!(invalid(&SpecCheck::of(&trigger(other))), "SourceNotAllowed");
    let malformed = json!({"source": {"kubernetes": {"apiVersion": "a/b/c", "kind": "Thing"}},
                           "subscriber": {"function": "f"}});
    assert_eq!(invalid(&SpecCheck::of(&trigger(malformed))), "KindNotFound");
    let fine = json!({"source": {"kubernetes": {"apiVersion": "apps/v1", "kind": "Deployment"}},
                      "subscriber": {"function": "f"}});
    let check = SpecCheck::of(&trigger(fine));
    let gvk = check.kind().expect("a kind to discover");
    assert_eq!(
        (gvk.group.as_str(), gvk.version.as_str(), gvk.kind.as_str()),
        ("apps", "v1", "Deployment")
    );
}

#[test]
fn filters_and_delivery_are_checked() {
    let filter = json!({"source": {"broker": {}}, "subscriber": {"function": "f"},
                        "filters": [{"exact": {"Type": "x"}}]});
    assert_eq!(
        SpecCheck::of(&trigger(filter)).routing.map_err(|p| p.reason),
        Err("InvalidFilter")
    );
    let cesql = json!({"source": {"broker": {}}, "subscriber": {"function": "f"},
                       "filters": [{"cesql": "true"}, {"not": {"cesql": "NOT 10"}}]});
    assert_eq!(
        SpecCheck::of(&trigger(cesql)).routing.map_err(|p| (p.reason, p.message)),
        Err((
            "InvalidFilter",
            "spec.filters[1]: cesql: type error: cannot use Integer 10 as a Boolean (write BOOL(x) to convert) at 1:5".to_string()
        ))
    );
    let delivery = json!({"source": {"broker": {}}, "subscriber": {"function": "f"},
                          "delivery": {"timeout": "0s"}});
    assert_eq!(
        SpecCheck::of(&trigger(delivery)).routing.map_err(|p| p.reason),
        Err("InvalidDelivery")
    );
    let sink = json!({"source": {"broker": {}}, "subscriber": {"function": "f"},
                      "delivery": {"deadLetterSink": {"uri": "ftp://x/y"}}});
    let check = SpecCheck::of(&trigger(sink));
    assert_eq!(check.routing, Ok(()));
    assert!(matches!(
        check.dead_letter,
        Some(Err(Problem {
            reason: "InvalidURI",
            ..
        }))
    ));
}

#[test]
fn no_source_is_reported() {
    let check = SpecCheck::of(&trigger(json!({"source": {}, "subscriber": {"function": "f"}})));
    assert_eq!(check.source_kind, None);
    assert_eq!(invalid(&check), REASON_INVALID_SOURCE);
}

#[test]
fn triggers_reference_their_subscriber_and_sink_functions() {
    let t = trigger(json!({"source": {"broker": {}}, "subscriber": {"function": "a"},
                           "delivery": {"deadLetterSink": {"function": "b"}}}));
    assert!(references_function(&t, "a") && references_function(&t, "b"));
    assert!(!references_function(&t, "c"));
}

#[test]
fn uris_outside_the_allow_list_are_refused_naming_the_host() {
    let t = trigger(
        json!({"source": {"broker": {}}, "subscriber": {"uri": "http://169.254.169.254/latest"},
                           "delivery": {"deadLetterSink": {"uri": "https://dlq.example.com/in"}}}),
    );
    let check = SpecCheck::of(&t);
    let refused = check.subscriber.clone().unwrap_err();
    assert_eq!(refused.reason, "HostNotAllowed");
    assert!(
        refused
            .message
            .starts_with("spec.subscriber.uri: host \"169.254.169.254\""),
        "{}",
        refused.message
    );
    let sink = check.dead_letter.clone().unwrap().unwrap_err();
    assert_eq!(sink.reason, "HostNotAllowed");
    assert!(sink.message.contains("\"dlq.example.com\""), "{}", sink.message);

    let allowed = AllowedHosts::new(CLUSTER_DOMAIN)
        .with_list("169.254.169.254,*.example.com")
        .unwrap();
    let check = SpecCheck::with_hosts(&t, "shop", &allowed);
    assert_eq!(
        check.subscriber,
        Ok(Dest::Uri("http://169.254.169.254/latest".into()))
    );
    assert_eq!(
        check.dead_letter,
        Some(Ok(Dest::Uri("https://dlq.example.com/in".into())))
    );

    let in_cluster =
        trigger(json!({"source": {"broker": {}}, "subscriber": {"uri": "http://sink.shop.svc:8080/in"}}));
    assert!(SpecCheck::of(&in_cluster).subscriber.is_ok());
}
