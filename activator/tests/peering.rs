//! Peering between two activators in one process: each function has one owner, the other forwards
//! to it, so a pod's `concurrency` holds across replicas (SPEC §4). Streaming, WebSocket, the loop
//! guard, an unreachable owner and one that breaks the connection.
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

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use support::*;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::{Notify, mpsc},
};
use zeroscale_activator::{
    Activator,
    peers::{Outcome, PeerSet, PeerSource, PeersConfig},
    settings::{EndpointInfo, FunctionSettings},
};

/// `<namespace>/<name>` of [`key`].
const FUNCTION: &str = "default/hello";

async fn peered() -> Activator {
    activator(|c| {
        c.peers = Some(PeersConfig {
            source: PeerSource::Static(vec![]),
            pod_ip: [127, 0, 0, 1].into(),
        });
    })
    .await
}

/// Two peered activators serving `pod` with `settings`: (owner, other).
async fn pair(settings: FunctionSettings, pod: SocketAddr) -> (Activator, Activator) {
    let (a, b) = (peered().await, peered().await);
    let set = PeerSet::new([a.internal_addr, b.internal_addr], []);
    for x in [&a, &b] {
        x.peers.as_ref().unwrap().set(set.clone());
        set_fn(x, settings.clone(), pod);
    }
    if set.owner(FUNCTION) == Some(a.internal_addr) {
        (a, b)
    } else {
        (b, a)
    }
}

fn set_fn(activator: &Activator, settings: FunctionSettings, pod: SocketAddr) {
    set(activator, settings, vec![EndpointInfo::ready(pod)]);
}

fn forwards(activator: &Activator, outcome: Outcome) -> u64 {
    activator.peers.as_ref().unwrap().forwards(outcome)
}

/// An upstream that fails with 500 when a request overlaps another, and records the most it had in
/// flight and the last request's headers.
async fn overlap_upstream() -> (SocketAddr, Arc<AtomicUsize>, Arc<Mutex<HeaderMap>>) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let headers = Arc::new(Mutex::new(HeaderMap::new()));
    let (i, m, h) = (
        Arc::clone(&in_flight),
        Arc::clone(&max_seen),
        Arc::clone(&headers),
    );
    let addr = upstream([127, 0, 0, 2], move |req: Request<hyper::body::Incoming>| {
        let (i, m, h) = (Arc::clone(&i), Arc::clone(&m), Arc::clone(&h));
        async move {
            *h.lock().unwrap() = req.headers().clone();
            let now = i.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(3)).await;
            i.fetch_sub(1, Ordering::SeqCst);
            let mut response = Response::new(full(if now > 1 { "overlap detected" } else { "ok" }));
            if now > 1 {
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            }
            response
        }
    })
    .await;
    (addr, max_seen, headers)
}

fn one() -> FunctionSettings {
    FunctionSettings {
        concurrency: 1,
        ..FunctionSettings::default()
    }
}

#[tokio::test(start_paused = true)]
async fn twenty_clients_across_both_activators_never_overlap() {
    let (pod, max_seen, _) = overlap_upstream().await;
    let (owner, other) = pair(one(), pod).await;
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let addr = if i % 2 == 0 {
                owner.internal_addr
            } else {
                other.internal_addr
            };
            tokio::spawn(async move {
                for _ in 0..5 {
                    let (status, body, _) = send(get(addr, "/")).await;
                    assert_eq!((status, body.as_str()), (200, "ok"));
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(
        max_seen.load(Ordering::SeqCst),
        1,
        "the pod saw overlapping requests"
    );
    assert_eq!(forwards(&other, Outcome::Forwarded), 50);
    assert_eq!(forwards(&owner, Outcome::Forwarded), 0);
    // Only the owner counts the requests (so the autoscaler sees each once).
    let counted = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("zeroscale_activator_requests_total{") && l.contains("hello"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum::<u64>()
    };
    assert_eq!(counted(&metrics(&owner).await), 100);
    assert_eq!(counted(&metrics(&other).await), 0);
    assert!(
        metrics(&other)
            .await
            .contains("zeroscale_activator_peer_forwards_total{outcome=\"forwarded\"} 50")
    );
}

#[tokio::test(start_paused = true)]
async fn the_edge_adds_forwarding_headers_once_and_pods_never_see_the_marker() {
    let (pod, _, headers) = overlap_upstream().await;
    let (_owner, other) = pair(one(), pod).await;
    let (status, _, _) = send(get(other.internal_addr, "/")).await;
    assert_eq!(status, 200);
    let seen = headers.lock().unwrap().clone();
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["host"], HOST);
    assert!(!seen.contains_key("zeroscale-peer-hop"));
    assert_eq!(forwards(&other, Outcome::Forwarded), 1);
}

#[tokio::test(start_paused = true)]
async fn a_hop_from_a_peer_is_handled_where_it_arrives() {
    let (pod, _, headers) = overlap_upstream().await;
    let (_owner, other) = pair(one(), pod).await;
    // From 127.0.0.1, a peer address: the loop guard keeps it here even though it is not the owner.
    let mut request = get(other.internal_addr, "/");
    request
        .headers_mut()
        .insert("zeroscale-peer-hop", "owner-thinks-otherwise".parse().unwrap());
    let (status, _, _) = send(request).await;
    assert_eq!(status, 200);
    assert_eq!(forwards(&other, Outcome::Forwarded), 0);
    assert!(!headers.lock().unwrap().contains_key("zeroscale-peer-hop"));
    // From 127.0.0.3, no peer: the marker is ignored and the request goes to the owner.
    let mut sender = connection_from([127, 0, 0, 3], other.internal_addr).await;
    let request = Request::get("/")
        .header("host", HOST)
        .header("zeroscale-peer-hop", "forged")
        .body(full(""))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(forwards(&other, Outcome::Forwarded), 1);
    assert_eq!(headers.lock().unwrap()["x-forwarded-for"], "127.0.0.3");
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_owner_means_local_handling() {
    let (pod, _, _) = overlap_upstream().await;
    let a = peered().await;
    set_fn(&a, one(), pod);
    // A closed port that owns the function.
    let dead = (1..1000)
        .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
        .find(|&d| PeerSet::new([a.internal_addr, d], []).owner(FUNCTION) == Some(d))
        .unwrap();
    a.peers
        .as_ref()
        .unwrap()
        .set(PeerSet::new([a.internal_addr, dead], []));
    for _ in 0..3 {
        let (status, body, _) = send(get(a.internal_addr, "/")).await;
        assert_eq!((status, body.as_str()), (200, "ok"));
    }
    assert_eq!(forwards(&a, Outcome::Local), 3);
    assert_eq!(forwards(&a, Outcome::Forwarded), 0);
}

/// A peer on 127.0.0.1 that owns [`FUNCTION`] beside `a`, reads each request's head and closes the
/// connection without answering, as an owner killed with requests in flight; counts the heads.
async fn breaking_owner(a: &Activator) -> (SocketAddr, Arc<AtomicUsize>) {
    // Half of all addresses own the function beside `a`: a few binds find one.
    let listener = loop {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        if PeerSet::new([a.internal_addr, addr], []).owner(FUNCTION) == Some(addr) {
            break listener;
        }
    };
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&heads);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counted = Arc::clone(&counted);
            tokio::spawn(async move {
                if read_head(&mut stream).await {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                // Dropped without a response.
            });
        }
    });
    (addr, heads)
}

#[tokio::test(start_paused = true)]
async fn an_owner_that_breaks_the_connection_replays_only_what_is_safe_to_send_again() {
    let (pod, _, _) = overlap_upstream().await;
    let a = peered().await;
    set_fn(&a, one(), pod);
    let (owner, heads) = breaking_owner(&a).await;
    a.peers
        .as_ref()
        .unwrap()
        .set(PeerSet::new([a.internal_addr, owner], []));
    let with = |method: &str, body: &'static str| {
        Request::builder()
            .method(method)
            .uri(format!("http://{}/", a.internal_addr))
            .header("host", HOST)
            .body(full(body))
            .unwrap()
    };
    // Idempotent, with its whole body in hand: handled here once the owner drops it.
    let (status, body, _) = send(get(a.internal_addr, "/")).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body, _) = send(with("PUT", "state")).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert_eq!(forwards(&a, Outcome::Replayed), 2);
    // A POST the owner may have acted on is not sent again: a 502 that names the failure.
    let (status, body, _) = send(with("POST", "order")).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("cannot reach function default/hello"), "{body}");
    assert_eq!(forwards(&a, Outcome::Failed), 1);
    assert_eq!(forwards(&a, Outcome::Local), 0);
    assert_eq!(
        heads.load(Ordering::SeqCst),
        3,
        "each request reached the owner once"
    );
}

#[tokio::test(start_paused = true)]
async fn a_streamed_response_is_forwarded_as_it_comes() {
    let step = Arc::new(Notify::new());
    let s = Arc::clone(&step);
    let pod = upstream([127, 0, 0, 2], move |_req: Request<hyper::body::Incoming>| {
        let step = Arc::clone(&s);
        async move {
            let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>>(4);
            tokio::spawn(async move {
                for i in 0..3 {
                    let _ = tx
                        .send(Ok(Frame::data(Bytes::from(format!("data: {i}\n\n")))))
                        .await;
                    step.notified().await;
                }
            });
            let stream =
                futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .unwrap()
        }
    })
    .await;
    let (_owner, other) = pair(FunctionSettings::default(), pod).await;
    let response = client()
        .request(get(other.internal_addr, "/events"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    for i in 0..3 {
        // Each event arrives before the pod is allowed to send the next one.
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .unwrap();
        let data = frame.unwrap().unwrap().into_data().unwrap();
        assert_eq!(data, format!("data: {i}\n\n"));
        step.notify_one();
    }
    assert_eq!(forwards(&other, Outcome::Forwarded), 1);
}

#[tokio::test(start_paused = true)]
async fn a_websocket_is_forwarded_both_ways() {
    let pod = upstream(
        [127, 0, 0, 2],
        |mut req: Request<hyper::body::Incoming>| async move {
            assert!(!req.headers().contains_key("zeroscale-peer-hop"));
            let on_upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let mut io = TokioIo::new(on_upgrade.await.expect("upgrade"));
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
                .body(full(""))
                .unwrap()
        },
    )
    .await;
    let (_owner, other) = pair(FunctionSettings::default(), pod).await;
    websocket_round_trip(
        other.internal_addr,
        HOST,
        &["hello", "world", "through two activators"],
    )
    .await;
    assert_eq!(forwards(&other, Outcome::Forwarded), 1);
}

#[tokio::test(start_paused = true)]
async fn h2c_streaming_with_trailers_is_forwarded() {
    let step = Arc::new(Notify::new());
    let s = Arc::clone(&step);
    let pod = upstream([127, 0, 0, 2], move |req: Request<hyper::body::Incoming>| {
        let step = Arc::clone(&s);
        async move {
            let version = format!("{:?}", req.version());
            let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>>(4);
            tokio::spawn(async move {
                for i in 0..3 {
                    let _ = tx
                        .send(Ok(Frame::data(Bytes::from(format!("{i} over {version}")))))
                        .await;
                    step.notified().await;
                }
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", "0".parse().unwrap());
                let _ = tx.send(Ok(Frame::trailers(trailers))).await;
            });
            let stream =
                futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
            Response::builder()
                .header("content-type", "application/grpc")
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .unwrap()
        }
    })
    .await;
    let settings = FunctionSettings {
        protocol: zeroscale_crds::function::Protocol::H2c,
        ..FunctionSettings::default()
    };
    let (_owner, other) = pair(settings, pod).await;
    let client = h2c_client();
    let request = Request::post(format!("http://{}/echo.Echo/ServerStream", other.internal_addr))
        .header("host", HOST)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(full(""))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut messages = Vec::new();
    let mut trailers = None;
    while let Some(frame) = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .unwrap()
    {
        let frame = frame.unwrap();
        if let Some(data) = frame.data_ref() {
            messages.push(String::from_utf8_lossy(data).into_owned());
            step.notify_one();
        } else if let Ok(t) = frame.into_trailers() {
            trailers = Some(t);
        }
    }
    assert_eq!(
        messages,
        ["0 over HTTP/2.0", "1 over HTTP/2.0", "2 over HTTP/2.0"]
    );
    assert_eq!(trailers.expect("trailers")["grpc-status"], "0");
    assert_eq!(forwards(&other, Outcome::Forwarded), 1);
}
