//! Hostile and broken input gets a 4xx or a closed connection, never a crash; routing edge cases.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

mod support;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use http::Response;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroscale_activator::settings::{EndpointInfo, FunctionSettings};
use zeroscale_crds::function::Visibility;

/// Sends raw bytes and returns what came back until the server closed (or 5 s passed).
async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut stream = connect(addr).await;
    let _ = stream.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> Option<u16> {
    response.split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

/// A pod that counts requests and remembers their paths.
async fn counted_pod(ip: [u8; 4]) -> (std::net::SocketAddr, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
    let count = Arc::new(AtomicUsize::new(0));
    let paths = Arc::new(Mutex::new(Vec::new()));
    let (c, p) = (Arc::clone(&count), Arc::clone(&paths));
    let addr = upstream(ip, move |req: http::Request<hyper::body::Incoming>| {
        let (c, p) = (Arc::clone(&c), Arc::clone(&p));
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            p.lock().unwrap().push(req.uri().path().to_string());
            Response::new(full("ok"))
        }
    })
    .await;
    (addr, count, paths)
}

#[tokio::test(start_paused = true)]
async fn hostile_requests_are_refused_and_the_activator_keeps_serving() {
    let activator = activator(|c| c.server_limits.header_read_timeout = Duration::from_millis(500)).await;
    let (pod, count, paths) = counted_pod([127, 0, 0, 2]).await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::ready(pod)],
    );
    let addr = activator.internal_addr;

    // Oversized head.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: {HOST}\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let r = raw(addr, big.as_bytes()).await;
    assert!(r.is_empty() || status_of(&r) == Some(431), "{r:.80}");

    // Too many header fields.
    let many: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = raw(
        addr,
        format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n{many}\r\n").as_bytes(),
    )
    .await;
    assert!(
        r.is_empty() || status_of(&r).is_some_and(|s| (400..500).contains(&s)),
        "{r:.80}"
    );

    // Invalid and missing Host.
    let r = raw(
        addr,
        b"GET / HTTP/1.1\r\nHost: bad host!\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&r), Some(400), "{r}");
    let r = raw(
        addr,
        b"GET / HTTP/1.1\r\nHost: hello.default:notaport\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&r), Some(400), "{r}");
    let r = raw(addr, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status_of(&r), Some(400), "{r}");

    // Smuggling: Content-Length and Transfer-Encoding together, and two different Content-Lengths,
    // each hiding a second request in the body.
    let smuggled = "GET /admin HTTP/1.1\r\nHost: hello.default\r\n\r\n";
    let cl_te = format!(
        "POST / HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"
    );
    // hyper follows RFC 9112 §6.1: Transfer-Encoding wins, Content-Length is dropped and the
    // connection closes after the response, so the hidden request is never parsed.
    let r = raw(addr, cl_te.as_bytes()).await;
    assert!(
        r.is_empty() || status_of(&r) == Some(400) || r.contains("connection: close"),
        "{r}"
    );
    assert!(
        r.matches("HTTP/1.1 ").count() <= 1,
        "the smuggled request was answered: {r}"
    );
    let cl_cl = format!(
        "POST / HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\n{smuggled}"
    );
    let r = raw(addr, cl_cl.as_bytes()).await;
    assert!(r.is_empty() || status_of(&r) == Some(400), "{r}");
    let te_te = format!(
        "POST / HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n{smuggled}"
    );
    let r = raw(addr, te_te.as_bytes()).await;
    assert!(r.is_empty() || status_of(&r) == Some(400), "{r}");
    assert!(
        !paths.lock().unwrap().iter().any(|p| p == "/admin"),
        "a smuggled request reached the pod"
    );
    let before = count.load(Ordering::SeqCst);

    // Garbage.
    let r = raw(addr, b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n").await;
    assert!(r.is_empty() || status_of(&r) == Some(400), "{r}");

    // A slow client that never finishes its head is disconnected.
    let mut slow = connect(addr).await;
    slow.write_all(b"GET / HTTP/1.1\r\nHost: hello.def")
        .await
        .unwrap();
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut out)).await;
    assert!(
        closed.is_ok(),
        "slow client still connected after the header read timeout"
    );

    // Still serving.
    assert_eq!(send(get(addr, "/")).await.0, 200);
    assert_eq!(count.load(Ordering::SeqCst), before + 1);
}

#[tokio::test(start_paused = true)]
async fn routing_by_host_and_port() {
    let activator = activator(|_| {}).await;
    let (pod, _, _) = counted_pod([127, 0, 0, 3]).await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::ready(pod)],
    );
    let private = zeroscale_common::signals::FunctionKey::new("default", "private");
    let settings = FunctionSettings {
        visibility: Visibility::ClusterLocal,
        ..FunctionSettings::default()
    };
    activator
        .table
        .apply(&private, settings, vec![EndpointInfo::ready(pod)]);

    for host in [
        "hello.default",
        "hello.default.svc",
        "hello.default.svc.cluster.local:8081",
        "hello.default.example.com",
    ] {
        let request = http::Request::get(format!("http://{}/", activator.external_addr))
            .header("host", host)
            .body(full(""))
            .unwrap();
        assert_eq!(send(request).await.0, 200, "{host}");
    }
    let req = |addr: std::net::SocketAddr, host: &str| {
        http::Request::get(format!("http://{addr}/"))
            .header("host", host)
            .body(full(""))
            .unwrap()
    };
    let (status, body, headers) = send(req(activator.external_addr, "nope.default")).await;
    assert_eq!(status, 404);
    assert!(body.contains("nope.default"));
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(
        send(req(activator.external_addr, "private.default")).await.0,
        404,
        "cluster-local is not external"
    );
    assert_eq!(
        send(req(activator.internal_addr, "private.default.svc")).await.0,
        200
    );
}

#[tokio::test(start_paused = true)]
async fn forwarding_headers_reach_the_pod() {
    let activator = activator(|_| {}).await;
    let pod = upstream(
        [127, 0, 0, 4],
        |req: http::Request<hyper::body::Incoming>| async move {
            let h = req.headers();
            let pick = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
            let names = [
                "host",
                "forwarded",
                "x-forwarded-for",
                "x-forwarded-proto",
                "x-forwarded-host",
                "x-request-id",
                "traceparent",
                "connection",
                "x-hop",
            ];
            let body = names
                .iter()
                .map(|n| format!("{n}={}", pick(n)))
                .collect::<Vec<_>>()
                .join("\n");
            Response::new(full(body))
        },
    )
    .await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::ready(pod)],
    );
    let request = http::Request::get(format!("http://{}/", activator.internal_addr))
        .header("host", HOST)
        .header("connection", "x-hop")
        .header("x-hop", "secret")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(full(""))
        .unwrap();
    let (status, body, _) = send(request).await;
    assert_eq!(status, 200);
    let get = |n: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{n}=")))
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(get("host"), HOST);
    assert_eq!(
        get("forwarded"),
        format!("for=127.0.0.1;host=\"{HOST}\";proto=http")
    );
    assert_eq!(get("x-forwarded-for"), "127.0.0.1");
    assert_eq!(get("x-forwarded-proto"), "http");
    assert_eq!(get("x-forwarded-host"), HOST);
    assert_eq!(get("x-request-id").len(), 32);
    assert!(get("traceparent").starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    assert_eq!(get("x-hop"), "-", "headers named in Connection are hop-by-hop");
}
