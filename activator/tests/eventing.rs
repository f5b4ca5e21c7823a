//! The broker inside the activator: events delivered through the in-cluster data port (so they wait
//! for a function at zero like requests), and a broker that keeps that port open while it drains.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

mod support;

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use http::{Method, Request, Response, StatusCode};
use support::*;
use zeroscale_activator::{
    Activator,
    events::{EventsConfig, TriggerSource},
    settings::{EndpointInfo, FunctionSettings},
};
use zeroscale_crds::trigger::Trigger;
use zeroscale_eventing::{delivery::DeliveryDefaults, router::Route};

async fn with_broker() -> Activator {
    activator(|c| {
        c.events = Some(EventsConfig {
            broker_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            triggers: TriggerSource::Manual,
            ingress: Default::default(),
            broker: Default::default(),
            store: Default::default(),
            defaults: DeliveryDefaults::default(),
            auth: Default::default(),
        })
    })
    .await
}

/// Routes every event of `default`'s broker to the function `hello`.
fn route_to_hello(activator: &Activator, delivery: serde_json::Value) {
    let trigger: Trigger = serde_json::from_value(serde_json::json!({
        "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Trigger",
        "metadata": {"namespace": "default", "name": "t"},
        "spec": {"source": {"broker": {}}, "subscriber": {"function": "hello"}, "delivery": delivery},
    }))
    .unwrap();
    let route = Route::compile(&trigger, &DeliveryDefaults::default()).unwrap();
    activator.event_routes().unwrap().upsert(route);
}

async fn post_event(activator: &Activator, id: &str) -> u16 {
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{}/default", activator.broker_addr.unwrap()))
        .header("ce-specversion", "1.0")
        .header("ce-id", id)
        .header("ce-source", "/test")
        .header("ce-type", "test")
        .body(full("{}"))
        .unwrap();
    send(request).await.0
}

fn endpoint(address: SocketAddr) -> Vec<EndpointInfo> {
    vec![EndpointInfo {
        address,
        ready: true,
        terminating: false,
    }]
}

#[tokio::test(start_paused = true)]
async fn an_event_for_a_function_at_zero_waits_for_its_pod_and_arrives_with_the_function_host() {
    let activator = with_broker().await;
    set(&activator, FunctionSettings::default(), vec![]);
    route_to_hello(&activator, serde_json::json!({}));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&seen);
    let pod = upstream([127, 0, 0, 3], move |req| {
        let recorded = Arc::clone(&recorded);
        async move {
            let header = |name: &str| req.headers().get(name).map(|v| v.to_str().unwrap().to_string());
            recorded.lock().unwrap().push((header("host"), header("ce-id")));
            Response::new(full(""))
        }
    })
    .await;

    assert_eq!(post_event(&activator, "e1").await, 202);
    let function = activator.table.get(&key()).unwrap();
    until("the event parked at the function", || function.queued() == 1).await;
    assert!(seen.lock().unwrap().is_empty());
    set(&activator, FunctionSettings::default(), endpoint(pod));
    until("the event delivered", || !seen.lock().unwrap().is_empty()).await;
    let (host, id) = seen.lock().unwrap()[0].clone();
    assert_eq!(host.as_deref(), Some(HOST));
    assert_eq!(id.as_deref(), Some("e1"));
    let metrics = metrics(&activator).await;
    assert!(
        metrics.contains(
            r#"zeroscale_event_deliveries_total{namespace="default",trigger="t",outcome="delivered"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_sigterm_still_reaches_the_function_through_the_data_port() {
    let activator = with_broker().await;
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&attempts);
    // The first attempt fails; the retry comes 300 ms later, after shutdown has started.
    let pod = upstream([127, 0, 0, 4], move |_req| {
        let counted = Arc::clone(&counted);
        async move {
            let status = match counted.fetch_add(1, Ordering::SeqCst) {
                0 => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::OK,
            };
            let mut response = Response::new(full(""));
            *response.status_mut() = status;
            response
        }
    })
    .await;
    set(&activator, FunctionSettings::default(), endpoint(pod));
    route_to_hello(
        &activator,
        serde_json::json!({"retries": 1, "backoffPolicy": "linear", "backoffDelay": "300ms"}),
    );
    assert_eq!(post_event(&activator, "e2").await, 202);
    until("the first attempt", || attempts.load(Ordering::SeqCst) == 1).await;
    activator.shutdown();
    let broker = activator.broker_addr.unwrap();
    tokio::time::timeout(Duration::from_secs(10), activator.wait())
        .await
        .expect("drained within the deadline");
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        2,
        "the retry was delivered during the drain"
    );
    assert!(
        tokio::net::TcpStream::connect(broker).await.is_err(),
        "the broker port is closed after the drain"
    );
}
