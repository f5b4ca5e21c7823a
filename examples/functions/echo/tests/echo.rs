//! The echo function over real sockets: JSON echo, controls, streaming, overlap detection, h2c,
//! WebSocket, and graceful shutdown of the binary.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Version};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use zeroscale_echo::{Config, server};

async fn start(single: bool) -> String {
    start_with(single, false).await
}

async fn start_with(single: bool, record_ids: bool) -> String {
    start_config(single, record_ids, None).await
}

async fn start_config(single: bool, record_ids: bool, fail_percent: Option<&str>) -> String {
    let config = Config {
        port: 0,
        single,
        pod: Some("pod-a".into()),
        function: Some("fn-a".into()),
        start_delay: Duration::ZERO,
        alloc_at_start: None,
        record_ids,
        sleep: None,
        fail_percent: fail_percent.map(str::to_string),
        status: None,
    };
    let listener = server::bind(&config).await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(server::serve(listener, config));
    format!("127.0.0.1:{port}")
}

async fn send(addr: &str, method: &str, path: &str, body: &str, h2: bool) -> (u16, Version, String) {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(h2)
        .build_http::<Full<Bytes>>();
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("x-test", "yes")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let response = client.request(req).await.expect("response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (
        parts.status.as_u16(),
        parts.version,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn fails_the_configured_share_of_echoed_requests() {
    let addr = start_config(false, false, Some("20")).await;
    let mut failed = 0;
    for _ in 0..50 {
        let (status, _, body) = send(&addr, "GET", "/x", "", false).await;
        if status == 500 {
            assert!(body.contains("injected failure"), "{body}");
            failed += 1;
        } else {
            assert_eq!(status, 200);
        }
    }
    assert_eq!(failed, 10);
    // Health checks never fail: the pod stays ready.
    assert_eq!(send(&addr, "GET", "/healthz", "", false).await.0, 200);
}

#[tokio::test]
async fn echoes_the_request_as_json() {
    let addr = start(false).await;
    let (status, _, body) = send(&addr, "POST", "/a/b?x=1&status=201", "hello", false).await;
    assert_eq!(status, 201);
    let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(doc["method"], "POST");
    assert_eq!(doc["path"], "/a/b");
    assert_eq!(doc["query"], "x=1&status=201");
    assert_eq!(doc["headers"]["x-test"], "yes");
    assert_eq!(doc["body"], "hello");
    assert_eq!(doc["pod"], "pod-a");
    assert_eq!(doc["function"], "fn-a");
    assert_eq!(doc["in_flight"], 1);
    let (status, _, _) = send(&addr, "GET", "/healthz", "", false).await;
    assert_eq!(status, 200);
    let (status, _, _) = send(&addr, "GET", "/?status=9000", "", false).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn allocates_memory_on_request_and_rejects_bad_sizes() {
    let addr = start(false).await;
    let (status, _, body) = send(&addr, "GET", "/?alloc=3Mi", "", false).await;
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(doc["allocated"], 3 << 20);
    let (status, _, body) = send(&addr, "GET", "/", "", false).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("json")["allocated"],
        0
    );
    let (status, _, body) = send(&addr, "GET", "/?alloc=200MB", "", false).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("bad value for alloc") && body.contains("200MB"),
        "{body}"
    );
    let (status, _, body) = send(&addr, "GET", "/?alloc=64Gi", "", false).await;
    assert_eq!(status, 400);
    assert!(body.contains("4Gi"), "{body}");
}

#[tokio::test]
async fn write_probe_leaves_nothing_behind_and_names_the_error() {
    let addr = start(false).await;
    let path = std::env::temp_dir().join(format!("echo-probe-{}", std::process::id()));
    let path = path.to_str().expect("utf-8 path").to_string();
    let (status, _, body) = send(&addr, "GET", &format!("/?write={path}"), "", false).await;
    assert_eq!(status, 200, "{body}");
    assert!(!std::path::Path::new(&path).exists(), "removed again");
    let (status, _, body) = send(&addr, "GET", "/?write=/no-such-dir/probe", "", false).await;
    assert_eq!(status, 500);
    assert!(body.starts_with("cannot write /no-such-dir/probe: "), "{body}");
    let (status, _, body) = send(&addr, "GET", "/?write=probe", "", false).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn sleeps_and_streams() {
    let addr = start(false).await;
    let t = Instant::now();
    let (status, _, _) = send(&addr, "GET", "/?sleep=200", "", false).await;
    assert_eq!(status, 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
    let (_, _, body) = send(&addr, "GET", "/?stream=3", "", false).await;
    assert_eq!(body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
}

#[tokio::test]
async fn speaks_h2c_on_the_same_port() {
    let addr = start(false).await;
    let (status, version, body) = send(&addr, "GET", "/", "", true).await;
    assert_eq!((status, version), (200, Version::HTTP_2));
    assert!(body.contains("HTTP/2.0"), "{body}");
}

#[tokio::test]
async fn detects_overlapping_requests() {
    let addr = start(false).await;
    let slow = tokio::spawn({
        let addr = addr.clone();
        async move { send(&addr, "GET", "/?sleep=500", "", false).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (status, _, body) = send(&addr, "GET", "/?overlap=fail", "", false).await;
    assert_eq!((status, body.as_str()), (500, "overlap detected\n"));
    let (status, _, body) = send(&addr, "GET", "/", "", false).await;
    assert_eq!(status, 200);
    assert!(body.contains("\"in_flight\":2"), "{body}");
    let (slow_status, _, slow_body) = slow.await.expect("join");
    assert_eq!(slow_status, 200);
    // The answers' start and end times show the overlap too (what a client checks across pods).
    let times = |body: &str| {
        let doc: serde_json::Value = serde_json::from_str(body).expect("json");
        (
            doc["started_us"].as_u64().expect("started_us"),
            doc["answered_us"].as_u64().expect("answered_us"),
        )
    };
    let (slow_start, slow_end) = times(&slow_body);
    let (fast_start, fast_end) = times(&body);
    assert!(
        slow_end - slow_start >= 500_000,
        "slept 500 ms: {slow_start}..{slow_end}"
    );
    assert!(
        slow_start < fast_start && fast_end < slow_end,
        "{fast_start}..{fast_end} inside {slow_start}..{slow_end}"
    );

    let single = start(true).await;
    let slow = tokio::spawn({
        let single = single.clone();
        async move { send(&single, "GET", "/?sleep=500", "", false).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(send(&single, "GET", "/", "", false).await.0, 500);
    assert_eq!(slow.await.expect("join").0, 200);
}

#[tokio::test]
async fn echoes_websocket_messages() {
    let addr = start(false).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("ws connect");
    ws.send("ping".into()).await.expect("send");
    let echoed = ws.next().await.expect("a message").expect("ok");
    assert_eq!(echoed.into_text().expect("text").as_str(), "ping");
    // The close handshake completes: the server answers the client's close frame with its own.
    ws.close(None).await.expect("close sent");
    let reply = ws.next().await.expect("the server's close frame").expect("ok");
    assert!(reply.is_close(), "{reply:?}");
    assert!(ws.next().await.is_none(), "the stream ends after the handshake");
}

#[tokio::test]
async fn sigterm_finishes_requests_in_flight() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_zeroscale-echo"))
        .env("PORT", port.to_string())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn echo");
    let addr = format!("127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let slow = tokio::spawn({
        let addr = addr.clone();
        async move { send(&addr, "GET", "/?sleep=700", "", false).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert_eq!(
        slow.await.expect("join").0,
        200,
        "the request in flight completes"
    );
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success());
}

#[tokio::test]
async fn calls_another_url_from_inside() {
    let callee = start(false).await;
    let caller = start(false).await;
    let path = format!("/call?url=http://{callee}/inner%3Fstatus%3D201");
    let (status, _, body) = send(&caller, "GET", &path, "", false).await;
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(doc["status"], 201);
    assert_eq!(doc["body"]["path"], "/inner");
    assert_eq!(doc["body"]["function"], "fn-a");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let path = format!("/call?url=http://{closed}/");
    let (status, _, body) = send(&caller, "GET", &path, "", false).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(send(&caller, "GET", "/call?url=ftp://x/", "", false).await.0, 400);
}

async fn post_event(addr: &str, id: &str) -> u16 {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = Request::builder()
        .method("POST")
        .uri(format!("http://{addr}/"))
        .header("ce-id", id)
        .header("ce-specversion", "1.0")
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("request");
    client.request(req).await.expect("response").status().as_u16()
}

#[tokio::test]
async fn records_cloudevent_ids_only_when_asked() {
    let addr = start_with(false, true).await;
    for id in ["e-2", "e-1", "e-2"] {
        assert_eq!(post_event(&addr, id).await, 200);
    }
    let (status, _, body) = send(&addr, "GET", "/ids", "", false).await;
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(doc["requests"], 3);
    assert_eq!(doc["ids"], serde_json::json!(["e-1", "e-2"]));
    assert_eq!(doc["pod"], "pod-a");

    // Without ECHO_RECORD_IDS, /ids is an ordinary echo and nothing is kept.
    let plain = start(false).await;
    assert_eq!(post_event(&plain, "e-1").await, 200);
    let (_, _, body) = send(&plain, "GET", "/ids", "", false).await;
    let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(doc["path"], "/ids");
}
