//! Asynchronous invocation through the activator with the memory store: `Prefer: respond-async`
//! answered 202 at once while the function is at zero, then run through the data port when its pod
//! is ready, with the request as sent and the `Success` record at `onSuccess`; 404 for an unknown
//! function, 413 over the size limit.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

mod support;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use support::*;
use zeroscale_activator::{
    Activator,
    events::{EventsConfig, TriggerSource},
    settings::{EndpointInfo, FunctionSettings},
};
use zeroscale_eventing::{
    async_invocation::AsyncPolicy,
    delivery::{DeliveryDefaults, Target},
    store::StoreConfig,
};

async fn with_eventing(max_body: usize) -> Activator {
    activator(|c| {
        c.events = Some(EventsConfig {
            broker_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            triggers: TriggerSource::Manual,
            ingress: Default::default(),
            broker: Default::default(),
            store: StoreConfig {
                async_max_body: max_body,
                ..StoreConfig::default()
            },
            defaults: DeliveryDefaults::default(),
            auth: Default::default(),
        })
    })
    .await
}

fn invoke(activator: &Activator, host: &str, body: &'static str) -> Request<TestBody> {
    Request::builder()
        .method(Method::PUT)
        .uri(format!("http://{}/orders/7?dry=1", activator.external_addr))
        .header("host", host)
        .header("prefer", "respond-async, return=minimal")
        .header("content-type", "text/plain")
        .body(full(body))
        .unwrap()
}

type Seen = Arc<Mutex<Vec<(String, String, Option<String>, String)>>>;

/// A server recording method, path and query, `prefer` and body of every request.
async fn recorder(ip: [u8; 4], status: u16) -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let recorded = Arc::clone(&seen);
    let addr = upstream(ip, move |req| {
        let recorded = Arc::clone(&recorded);
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            recorded.lock().unwrap().push((
                parts.method.to_string(),
                parts.uri.path_and_query().unwrap().to_string(),
                parts
                    .headers
                    .get("prefer")
                    .map(|v| v.to_str().unwrap().to_string()),
                String::from_utf8_lossy(&body).into_owned(),
            ));
            let mut response = Response::new(full("made"));
            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
            response
        }
    })
    .await;
    (addr, seen)
}

#[tokio::test(start_paused = true)]
async fn an_async_invocation_of_a_function_at_zero_is_answered_at_once_and_runs_when_it_wakes() {
    let activator = with_eventing(1024).await;
    set(&activator, FunctionSettings::default(), vec![]);
    let (sink, records) = recorder([127, 0, 0, 11], 202).await;
    activator.async_functions().unwrap().set(
        key(),
        AsyncPolicy {
            on_success: Some(Target::uri(&format!("http://{sink}/ok")).unwrap()),
            ..AsyncPolicy::default()
        },
    );
    let (status, body, headers) = send(invoke(&activator, HOST, "order 7")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(headers["preference-applied"], "respond-async");
    let id = headers["zeroscale-invocation-id"].to_str().unwrap().to_string();
    assert_eq!(headers["location"].to_str().unwrap(), format!("urn:uuid:{id}"));

    let function = activator.table.get(&key()).unwrap();
    until("the invocation parked at the function", || function.queued() == 1).await;
    let (pod, calls) = recorder([127, 0, 0, 12], 200).await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo {
            address: pod,
            ready: true,
            terminating: false,
        }],
    );
    until("the record at onSuccess", || !records.lock().unwrap().is_empty()).await;
    let call = calls.lock().unwrap()[0].clone();
    assert_eq!(
        call,
        (
            "PUT".into(),
            "/orders/7?dry=1".into(),
            Some("return=minimal".into()),
            "order 7".into()
        )
    );
    let record: serde_json::Value = serde_json::from_str(&records.lock().unwrap()[0].3).unwrap();
    assert_eq!(record["outcome"], "Success");
    assert_eq!(record["invocationId"], id.as_str());
    assert_eq!(record["attempts"], 1);
    assert_eq!(record["status"], 200);
    assert_eq!(record["body"], "made");
}

#[tokio::test(start_paused = true)]
async fn unknown_functions_get_404_and_bodies_over_the_limit_413() {
    let activator = with_eventing(4).await;
    set(&activator, FunctionSettings::default(), vec![]);
    let (status, _, _) = send(invoke(&activator, "nope.default.svc.cluster.local", "x")).await;
    assert_eq!(status, 404);
    let (status, body, _) = send(invoke(&activator, HOST, "too large")).await;
    assert_eq!(status, 413);
    assert!(body.contains("--async-max-body-bytes"), "{body}");
}
