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

/// A pod on `ip` that answers one request per connection with keep-alive, then closes its end once
/// `close` is notified (never when `None`). Reports each connection the activator closed (end of
/// stream).
async fn idle_pod(
    ip: [u8; 4],
    close: Option<Arc<tokio::sync::Notify>>,
) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind(SocketAddr::from((ip, 0))).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed, closes) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true); // paused time: see support::upstream
            let (closed, close) = (closed.clone(), close.clone());
            tokio::spawn(async move {
                if !read_head(&mut stream).await {
                    return;
                }
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await
                    .unwrap();
                if let Some(close) = close {
                    close.notified().await;
                    let _ = stream.shutdown().await;
                }
                // The activator closing its end is the end of this stream.
                let mut buf = [0u8; 1024];
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                let _ = closed.send(());
            });
        }
    });
    (addr, closes)
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_the_pod_closed_is_closed_without_more_traffic() {
    let activator = activator(|_| {}).await;
    let close = Arc::new(tokio::sync::Notify::new());
    let (pod, mut closes) = idle_pod([127, 0, 0, 8], Some(Arc::clone(&close))).await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::ready(pod)],
    );
    let (status, body, _) = send(get(activator.internal_addr, "/")).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    // The whole answer arrived, so the connection waits in the pool: the pod closes it now.
    close.notify_one();
    // No request follows: only the pool's sweep can see the close. Before it, the activator's end
    // stayed open (CLOSE-WAIT) with the connection's buffers until the pod was next used.
    let wait = 3 * zeroscale_activator::upstream::SWEEP_INTERVAL;
    let closed = tokio::time::timeout(wait, closes.recv()).await;
    assert!(
        matches!(closed, Ok(Some(()))),
        "the activator kept the connection the pod closed"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_is_closed_after_the_idle_timeout_without_more_traffic() {
    let idle_timeout = Duration::from_secs(30);
    let activator = activator(|c| c.upstream.pool_idle_timeout = idle_timeout).await;
    let (pod, mut closes) = idle_pod([127, 0, 0, 9], None).await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::ready(pod)],
    );
    let (status, _, _) = send(get(activator.internal_addr, "/")).await;
    assert_eq!(status, 200);
    let early = tokio::time::timeout(idle_timeout / 2, closes.recv()).await;
    assert!(
        early.is_err(),
        "closed while it was still within its idle timeout"
    );
    let wait = idle_timeout + 3 * zeroscale_activator::upstream::SWEEP_INTERVAL;
    let closed = tokio::time::timeout(wait, closes.recv()).await;
    assert!(
        matches!(closed, Ok(Some(()))),
        "the activator kept an idle connection past its idle timeout"
    );
}

/// How a connection to [`timed_pod`] ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The pod closed it after `keep_alive` idle (then the activator closed its end).
    ByPod,
    /// The activator closed it first.
    ByActivator,
}

/// A pod on `ip` that serves any number of requests per connection and closes a connection idle for
/// `keep_alive`, as Node.js (5 s) or uvicorn (5 s) do; counts the connections it accepted and
/// reports how each ended.
async fn timed_pod(
    ip: [u8; 4],
    keep_alive: Duration,
) -> (
    SocketAddr,
    Arc<AtomicUsize>,
    tokio::sync::mpsc::UnboundedReceiver<Ended>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind(SocketAddr::from((ip, 0))).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let (ended, ends) = tokio::sync::mpsc::unbounded_channel();
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true); // paused time: see support::upstream
            counter.fetch_add(1, Ordering::SeqCst);
            let ended = ended.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let mut head = Vec::new();
                loop {
                    match tokio::time::timeout(keep_alive, stream.read(&mut buf)).await {
                        Err(_) if head.is_empty() => {
                            let _ = stream.shutdown().await;
                            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                            let _ = ended.send(Ended::ByPod);
                            return;
                        }
                        Ok(Ok(0) | Err(_)) => {
                            let _ = ended.send(Ended::ByActivator);
                            return;
                        }
                        Ok(Ok(n)) => head.extend_from_slice(&buf[..n]),
                        Err(_) => return,
                    }
                    if head.windows(4).any(|w| w == b"\r\n\r\n") {
                        head.clear();
                        stream
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                            .await
                            .unwrap();
                    }
                }
            });
        }
    });
    (addr, accepted, ends)
}

/// A pod that closes idle connections sooner than the activator's pool would keep them: once one
/// such close was seen, connections idle half as long are not used again, so a request is never
/// written onto a connection as the pod closes it (a POST there would be lost).
#[tokio::test(start_paused = true)]
async fn a_pods_idle_close_is_learned_and_its_connections_go_first() {
    let activator = activator(|_| {}).await;
    let keep_alive = Duration::from_secs(3);
    let (pod, accepted, mut ends) = timed_pod([127, 0, 0, 10], keep_alive).await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::ready(pod)],
    );
    let (status, _, _) = send(get(activator.internal_addr, "/")).await;
    assert_eq!(status, 200);
    // No traffic: the pod closes the connection after 3 s, the sweep finds it closed (after 4 s idle).
    let first = tokio::time::timeout(
        keep_alive + 3 * zeroscale_activator::upstream::SWEEP_INTERVAL,
        ends.recv(),
    )
    .await;
    assert_eq!(first.ok().flatten(), Some(Ended::ByPod));

    let (status, _, _) = send(get(activator.internal_addr, "/")).await;
    assert_eq!(status, 200);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    // 2.5 s idle: within the pod's 3 s, beyond half the 4 s after which its close was seen.
    // (The sweep may close it meanwhile: also the activator first.)
    let early = tokio::time::timeout(Duration::from_millis(2_500), ends.recv()).await;
    assert!(
        !matches!(early, Ok(Some(Ended::ByPod))),
        "the pod closed it first"
    );
    let (status, _, _) = send(get(activator.internal_addr, "/")).await;
    assert_eq!(status, 200);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "the third request went on a new connection, not one the pod was about to close"
    );
    let second = match early {
        Ok(ended) => ended,
        Err(_) => tokio::time::timeout(keep_alive, ends.recv()).await.ok().flatten(),
    };
    assert_eq!(
        second,
        Some(Ended::ByActivator),
        "the activator closed its idle one first"
    );
}
