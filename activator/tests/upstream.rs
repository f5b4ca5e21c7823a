//! The way to the pods: a pod that refuses connections is skipped (the request goes to another pod,
//! or waits until one answers) instead of failing the request, and HTTP/1.1 connections to pods are
//! kept alive and reused.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

mod support;

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use http::{Request, Response};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use support::*;
use tokio::net::TcpListener;
use zeroscale_activator::settings::{EndpointInfo, FunctionSettings};

/// An address on `ip` where nothing listens: connecting to it is refused.
async fn refusing(ip: [u8; 4]) -> SocketAddr {
    let listener = TcpListener::bind(SocketAddr::from((ip, 0))).await.unwrap();
    listener.local_addr().unwrap()
}

/// An HTTP/1.1 upstream on `addr` answering `name`, counting the connections it accepts.
async fn counting_upstream(addr: SocketAddr, name: &'static str) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true); // paused time: see support::upstream
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| async move {
                    let mut response = Response::new(full(name));
                    if req.uri().path() == "/empty" {
                        *response.status_mut() = http::StatusCode::NO_CONTENT;
                        *response.body_mut() = full("");
                    }
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, accepted)
}

fn function_of(
    activator: &zeroscale_activator::Activator,
) -> Arc<zeroscale_activator::function::FunctionState> {
    activator.table.lookup("hello.default").unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_refusing_pod_is_skipped_and_avoided() {
    let activator = activator(|_| {}).await;
    let dead = refusing([127, 0, 0, 3]).await;
    let (alive, _) = counting_upstream(SocketAddr::from(([127, 0, 0, 4], 0)), "alive").await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::ready(dead), EndpointInfo::ready(alive)],
    );
    for _ in 0..20 {
        let (status, body, _) = send(get(activator.internal_addr, "/")).await;
        assert_eq!((status, body.as_str()), (200, "alive"));
    }
    assert_eq!(
        function_of(&activator).routable(),
        vec![alive],
        "the refusing pod is out of rotation"
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_waits_for_a_refusing_pod_until_it_answers() {
    let activator = activator(|_| {}).await;
    let addr = refusing([127, 0, 0, 5]).await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::ready(addr)],
    );
    let request = tokio::spawn(send(get(activator.internal_addr, "/")));
    let function = function_of(&activator);
    until("the refused request to wait", || function.queued() == 1).await;
    assert!(function.routable().is_empty());
    // The pod comes up on the same address; the probe notices and the request goes out.
    let (_, accepted) = counting_upstream(addr, "late").await;
    let (status, body, _) = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "late"));
    assert!(accepted.load(Ordering::SeqCst) >= 1);
    assert_eq!(function.routable(), vec![addr], "routable again once it answered");
}

#[tokio::test(start_paused = true)]
async fn a_refusing_pod_past_the_deadline_gives_504() {
    let activator = activator(|_| {}).await;
    let addr = refusing([127, 0, 0, 6]).await;
    let settings = FunctionSettings {
        timeout: Duration::from_secs(1),
        response_start_timeout: Duration::from_secs(1),
        ..FunctionSettings::default()
    };
    set(&activator, settings, vec![EndpointInfo::ready(addr)]);
    let (status, _, _) = send(get(activator.internal_addr, "/")).await;
    assert_eq!(status, 504);
}

#[tokio::test(start_paused = true)]
async fn connections_to_a_pod_are_reused() {
    let activator = activator(|_| {}).await;
    let (pod, accepted) = counting_upstream(SocketAddr::from(([127, 0, 0, 7], 0)), "pod").await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::ready(pod)],
    );
    for i in 0..40 {
        // Empty responses (204) are never read by the server, and still give their connection back.
        let path = if i % 2 == 0 { "/" } else { "/empty" };
        let (status, _, _) = send(get(activator.internal_addr, path)).await;
        assert!(status == 200 || status == 204, "{status}");
    }
    let opened = accepted.load(Ordering::SeqCst);
    assert!(opened <= 2, "{opened} connections for 40 sequential requests");
}
