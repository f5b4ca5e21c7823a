//! Protocols through the activator: WebSocket (upgrade), h2c server streaming with trailers, an HTTP/2
//! request's trailers reaching an HTTP/1.1 pod, a streamed HTTP/1.1 response (SSE), and a 1 GiB
//! streamed upload with flat memory.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use support::*;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::{Notify, mpsc},
};
use zeroscale_activator::settings::{EndpointInfo, FunctionSettings};
use zeroscale_crds::function::Protocol;

type Chunk = Result<Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>;

/// A body fed from a channel: each message is one frame.
fn channel_body(rx: mpsc::Receiver<Chunk>) -> TestBody {
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    BodyExt::boxed(StreamBody::new(stream))
}

#[tokio::test(start_paused = true)]
async fn websocket_upgrade_echoes_both_ways() {
    let activator = activator(|_| {}).await;
    let pod = upstream(
        [127, 0, 0, 2],
        |mut req: Request<hyper::body::Incoming>| async move {
            assert_eq!(req.headers()["upgrade"], "websocket");
            let on_upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let upgraded = on_upgrade.await.expect("upgrade");
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                loop {
                    let n = io.read(&mut buf).await.unwrap_or(0);
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("upgrade", "websocket")
                .header("connection", "upgrade")
                .header("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
                .body(full(""))
                .unwrap()
        },
    )
    .await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::ready(pod)],
    );

    websocket_round_trip(
        activator.internal_addr,
        HOST,
        &["hello", "world", "through the activator"],
    )
    .await;
}

/// An upstream streaming three messages, each released by the test, then trailers.
async fn streaming_upstream(
    ip: [u8; 4],
    step: Arc<Notify>,
    content_type: &'static str,
) -> std::net::SocketAddr {
    upstream(ip, move |req: Request<hyper::body::Incoming>| {
        let step = Arc::clone(&step);
        async move {
            let version = format!("{:?}", req.version());
            let (tx, rx) = mpsc::channel(4);
            tokio::spawn(async move {
                for i in 0..3 {
                    let _ = tx
                        .send(Ok(Frame::data(Bytes::from(format!(
                            "data: message {i} over {version}\n\n"
                        )))))
                        .await;
                    step.notified().await;
                }
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", "0".parse().unwrap());
                let _ = tx.send(Ok(Frame::trailers(trailers))).await;
            });
            Response::builder()
                .header("content-type", content_type)
                .body(channel_body(rx))
                .unwrap()
        }
    })
    .await
}

/// Reads frames, releasing the next message only after each one arrived: proves no buffering.
async fn read_stepwise(mut body: hyper::body::Incoming, step: &Notify) -> (Vec<String>, Option<HeaderMap>) {
    let mut messages = Vec::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.unwrap();
        if let Some(data) = frame.data_ref() {
            messages.push(String::from_utf8_lossy(data).into_owned());
            step.notify_one();
        } else if let Ok(t) = frame.into_trailers() {
            trailers = Some(t);
        }
    }
    (messages, trailers)
}

#[tokio::test(start_paused = true)]
async fn h2c_server_streaming_passes_through_with_trailers() {
    let activator = activator(|_| {}).await;
    let step = Arc::new(Notify::new());
    let pod = streaming_upstream([127, 0, 0, 3], Arc::clone(&step), "application/grpc").await;
    let settings = FunctionSettings {
        protocol: Protocol::H2c,
        ..FunctionSettings::default()
    };
    set(&activator, settings, vec![EndpointInfo::ready(pod)]);

    // A gRPC-style client: HTTP/2 with prior knowledge to the activator too.
    let client = h2c_client();
    let request = Request::post(format!(
        "http://{}/echo.Echo/ServerStream",
        activator.internal_addr
    ))
    .header("host", HOST)
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(full(""))
    .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_2);
    let (messages, trailers) = read_stepwise(response.into_body(), &step).await;
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(
        messages[0].contains("HTTP/2"),
        "the pod was reached over h2c: {messages:?}"
    );
    assert_eq!(trailers.expect("trailers")["grpc-status"], "0");
}

#[tokio::test(start_paused = true)]
async fn an_http2_request_s_trailers_reach_an_http1_pod() {
    let activator = activator(|_| {}).await;
    // The pod answers with its request's body and the trailers it read after it.
    let pod = upstream([127, 0, 0, 5], |req: Request<hyper::body::Incoming>| async move {
        let version = format!("{:?}", req.version());
        let collected = req.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let checksum = trailers
            .get("x-checksum")
            .map(|v| v.to_str().unwrap().to_string());
        let body = String::from_utf8_lossy(&collected.to_bytes()).to_string();
        Response::new(full(format!("{version} {body} {checksum:?}")))
    })
    .await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::ready(pod)],
    );

    // A small body with its length declared, so the activator keeps it whole, then trailers.
    for (length, data) in [("5", "hello"), ("0", "")] {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", "abc".parse().unwrap());
        let mut frames: Vec<Chunk> = Vec::new();
        if !data.is_empty() {
            frames.push(Ok(Frame::data(Bytes::from(data))));
        }
        frames.push(Ok(Frame::trailers(trailers)));
        let body = BodyExt::boxed(StreamBody::new(futures::stream::iter(frames)));
        let request = Request::post(format!("http://{}/upload", activator.internal_addr))
            .header("host", HOST)
            .header("content-length", length)
            .body(body)
            .unwrap();
        let response = h2c_client().request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let text = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            String::from_utf8_lossy(&text),
            format!("HTTP/1.1 {data} Some(\"abc\")"),
            "the trailers went with the body"
        );
    }
}

/// A pod's response fields reach the client whichever server writes the answer: the activator's
/// own HTTP/1.1 server writes them as the lines it passed on, hyper (HTTP/2) from its header map.
#[tokio::test(start_paused = true)]
async fn a_pods_response_fields_reach_http1_and_http2_clients() {
    let activator = activator(|_| {}).await;
    let pod = upstream(
        [127, 0, 0, 6],
        |_req: Request<hyper::body::Incoming>| async move {
            Response::builder()
                .header("X-Pod", "yes")
                .header("set-cookie", "a=1")
                .header("set-cookie", "b=2")
                .header("keep-alive", "timeout=5")
                .header("date", "Sat, 05 Dec 2026 14:00:00 GMT")
                .body(full("hi"))
                .unwrap()
        },
    )
    .await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::ready(pod)],
    );
    for client in [client(), h2c_client()] {
        let request = get(activator.internal_addr, "/");
        let response = client.request(request).await.unwrap();
        let version = response.version();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hi", "{version:?}");
        assert_eq!(headers["x-pod"], "yes", "{version:?}");
        let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"], "{version:?}");
        assert_eq!(
            headers["date"], "Sat, 05 Dec 2026 14:00:00 GMT",
            "the pod's own: {version:?}"
        );
        assert_eq!(headers.get_all("date").iter().count(), 1, "{version:?}");
        assert!(
            !headers.contains_key("keep-alive"),
            "a field of the pod's hop: {version:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn http1_streamed_response_and_sse_pass_through() {
    let activator = activator(|_| {}).await;
    let step = Arc::new(Notify::new());
    let pod = streaming_upstream([127, 0, 0, 4], Arc::clone(&step), "text/event-stream").await;
    let settings = FunctionSettings {
        idle_timeout: Some(Duration::from_secs(5)),
        ..FunctionSettings::default()
    };
    set(&activator, settings, vec![EndpointInfo::ready(pod)]);
    let response = client()
        .request(get(activator.internal_addr, "/events"))
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (messages, _) = read_stepwise(response.into_body(), &step).await;
    assert_eq!(messages.len(), 3);
    assert!(
        messages[2].starts_with("data: message 2 over HTTP/1.1"),
        "{messages:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_cuts_a_stalled_stream() {
    let activator = activator(|_| {}).await;
    let pod = upstream([127, 0, 0, 5], |_req| async {
        let (tx, rx) = mpsc::channel::<Chunk>(1);
        tokio::spawn(async move {
            let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"first")))).await;
            // Never sends again, never ends.
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        Response::new(channel_body(rx))
    })
    .await;
    let settings = FunctionSettings {
        idle_timeout: Some(Duration::from_secs(1)),
        ..FunctionSettings::default()
    };
    set(&activator, settings, vec![EndpointInfo::ready(pod)]);
    let response = client().request(get(activator.internal_addr, "/")).await.unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.data_ref().unwrap().as_ref(), b"first");
    let next = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("cut by the idle timeout");
    assert!(
        matches!(next, Some(Err(_)) | None),
        "the stream ends with an error"
    );
}

#[tokio::test(start_paused = true)]
async fn one_gib_upload_streams_with_flat_memory() {
    const TOTAL: u64 = 1 << 30;
    let activator = activator(|_| {}).await;
    let pod = upstream([127, 0, 0, 6], |req: Request<hyper::body::Incoming>| async move {
        let mut body = req.into_body();
        let mut received = 0u64;
        while let Some(frame) = body.frame().await {
            if let Some(d) = frame.unwrap().data_ref() {
                received += d.len() as u64;
            }
        }
        Response::new(full(received.to_string()))
    })
    .await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::ready(pod)],
    );

    let chunk = Bytes::from(vec![7u8; 256 * 1024]);
    let chunks = TOTAL / chunk.len() as u64;
    let stream =
        futures::stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(Frame::data(chunk.clone()))));
    let body = BodyExt::boxed(
        StreamBody::new(stream).map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
    );
    let request = Request::post(format!("http://{}/upload", activator.internal_addr))
        .header("host", HOST)
        .header("content-length", TOTAL.to_string())
        .body(body)
        .unwrap();

    let baseline = rss_bytes();
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampler = {
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let (status, body, _) = send(request).await;
    sampler.abort();
    assert_eq!((status, body), (200, TOTAL.to_string()));
    let growth = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    // The client, the activator and the pod all run in this process; a buffered GiB would show.
    assert!(
        growth < 64 << 20,
        "RSS grew by {} MiB while streaming 1 GiB",
        growth >> 20
    );
}

#[tokio::test(start_paused = true)]
async fn response_start_timeout_gives_504() {
    let activator = activator(|_| {}).await;
    let pod = upstream([127, 0, 0, 7], |_req| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Response::new(full("late"))
    })
    .await;
    let settings = FunctionSettings {
        timeout: Duration::from_secs(30),
        response_start_timeout: Duration::from_secs(1),
        ..FunctionSettings::default()
    };
    set(&activator, settings, vec![EndpointInfo::ready(pod)]);
    let (status, body, _) = send(get(activator.internal_addr, "/")).await;
    assert_eq!(status, 504);
    assert!(body.contains("did not start its response in time"), "{body}");
    assert!(metrics(&activator).await.contains("code=\"504\""));
}
