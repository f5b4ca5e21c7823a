//! The broker ingress of a running activator with authentication on (a fake verifier stands in for
//! TokenReview and SubjectAccessReview): 401 without a valid token, 403 without the grant, 202 with
//! both, 404 for a namespace without broker Triggers; and a Trigger whose URI is outside the
//! allow-list is never routed, so nothing is sent there.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

mod support;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::{FutureExt, future::BoxFuture};
use http::{Method, Request, Response};
use support::*;
use zeroscale_activator::{
    Activator,
    events::{EventsConfig, IngressAuth, TriggerSource},
};
use zeroscale_crds::trigger::Trigger;
use zeroscale_eventing::{
    auth::{BrokerAuth, CacheConfig, Identity, Verifier, VerifyError},
    delivery::DeliveryDefaults,
    router::{Route, RouteError},
};

/// `good-<user>` tokens authenticate; only `producer` may post, and not to `guarded`.
struct Fake;

impl Verifier for Fake {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Identity>, VerifyError>> {
        let identity = token.strip_prefix("good-").map(|user| Identity {
            username: user.to_string(),
            ..Identity::default()
        });
        async move { Ok(identity) }.boxed()
    }

    fn authorize<'a>(
        &'a self,
        who: &'a Identity,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<bool, VerifyError>> {
        let allowed = who.username == "producer" && namespace != "guarded";
        async move { Ok(allowed) }.boxed()
    }
}

async fn with_auth(triggers: TriggerSource) -> Activator {
    activator(|c| {
        c.events = Some(EventsConfig {
            broker_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            triggers,
            ingress: Default::default(),
            broker: Default::default(),
            store: Default::default(),
            defaults: DeliveryDefaults::default(),
            auth: IngressAuth::Custom(Arc::new(BrokerAuth::new(Fake, CacheConfig::default()))),
        })
    })
    .await
}

fn trigger(namespace: &str, subscriber: serde_json::Value) -> Trigger {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Trigger",
        "metadata": {"namespace": namespace, "name": "t"},
        "spec": {"source": {"broker": {}}, "subscriber": subscriber},
    }))
    .unwrap()
}

async fn post(activator: &Activator, namespace: &str, token: Option<&str>) -> (u16, String) {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{}/{namespace}", activator.broker_addr.unwrap()))
        .header("ce-specversion", "1.0")
        .header("ce-id", "e1")
        .header("ce-source", "/test")
        .header("ce-type", "test");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let (status, body, _) = send(request.body(full("{}")).unwrap()).await;
    (status, body)
}

#[tokio::test(start_paused = true)]
async fn tokens_grants_and_namespaces_decide_the_answer() {
    let activator = with_auth(TriggerSource::Manual).await;
    let route = Route::compile(
        &trigger("default", serde_json::json!({"function": "hello"})),
        &DeliveryDefaults::default(),
    )
    .unwrap();
    activator.event_routes().unwrap().upsert(route);

    let (status, body) = post(&activator, "default", None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("request id: "), "{body}");
    assert_eq!(post(&activator, "default", Some("forged")).await.0, 401);
    assert_eq!(post(&activator, "default", Some("good-stranger")).await.0, 403);
    assert_eq!(post(&activator, "default", Some("good-producer")).await.0, 202);
    assert_eq!(post(&activator, "guarded", Some("good-producer")).await.0, 403);
    // Allowed there, but no Trigger takes broker events in `empty`: like an unknown broker. An
    // anonymous caller learns nothing about it.
    assert_eq!(post(&activator, "empty", Some("good-producer")).await.0, 404);
    assert_eq!(post(&activator, "empty", None).await.0, 401);
}

#[tokio::test(start_paused = true)]
async fn a_namespace_without_broker_triggers_is_404_without_auth_too() {
    let activator = activator(|c| {
        c.events = Some(EventsConfig {
            broker_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            triggers: TriggerSource::Manual,
            ingress: Default::default(),
            broker: Default::default(),
            store: Default::default(),
            defaults: DeliveryDefaults::default(),
            auth: IngressAuth::Off,
        })
    })
    .await;
    let (status, body) = post(&activator, "nobody-home", None).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("has no broker"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn a_uri_outside_the_allow_list_is_never_routed_nor_called() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let outside = upstream([127, 0, 0, 9], move |_req| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Response::new(full("")) }
    })
    .await;
    let refused = Route::compile(
        &trigger(
            "default",
            serde_json::json!({"uri": format!("http://{outside}/")}),
        ),
        &DeliveryDefaults::default(),
    );
    match refused {
        Err(RouteError::HostNotAllowed { source, .. }) => assert_eq!(source.host, "127.0.0.9"),
        other => panic!("{other:?}"),
    }
    // Through the activator's own Trigger handling (a static Trigger file): the Trigger to the
    // outside host is not routed, the one to a Function is; an event is accepted and fans out to
    // the Function only.
    let file = std::env::temp_dir().join(format!("zeroscale-outbound-{}.yaml", std::process::id()));
    std::fs::write(
        &file,
        format!(
            "apiVersion: zeroscale.dev/v1alpha1\nkind: Trigger\nmetadata: {{namespace: default, name: out}}\n\
             spec: {{source: {{broker: {{}}}}, subscriber: {{uri: 'http://{outside}/'}}}}\n---\n\
             apiVersion: zeroscale.dev/v1alpha1\nkind: Trigger\nmetadata: {{namespace: default, name: in}}\n\
             spec: {{source: {{broker: {{}}}}, subscriber: {{function: hello}}}}\n"
        ),
    )
    .unwrap();
    let activator = with_auth(TriggerSource::Static(file.clone())).await;
    let routes = activator.event_routes().unwrap();
    assert!(routes.get("default", "out").is_none());
    assert!(routes.get("default", "in").is_some());
    assert_eq!(post(&activator, "default", Some("good-producer")).await.0, 202);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "nothing was sent outside the allow-list"
    );
    std::fs::remove_file(file).unwrap();
}
