//! The activator's own HTTP/1.1 client towards pods (`upstream/h1.rs`) against a pod that writes its
//! responses byte by byte as scripted: every way a body can end (length, chunks with trailers, the
//! connection's close, none for `HEAD`), interim `100` heads, keep-alive reuse, a pod that closes a
//! kept connection, and a malformed answer.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

mod support;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use http::Request;
use http_body_util::BodyExt;
use support::*;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use zeroscale_activator::settings::{EndpointInfo, FunctionSettings};

/// One request as the pod read it: the head's text and the body.
struct Seen {
    head: String,
    body: Vec<u8>,
}

/// Reads one request from `stream` (head, then a `Content-Length` body); `None` at the close.
async fn read_request(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<Seen> {
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end + 4]).into_owned();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            while pending.len() < end + 4 + length {
                let mut more = [0u8; 4096];
                let n = stream.read(&mut more).await.ok().filter(|&n| n > 0)?;
                pending.extend_from_slice(&more[..n]);
            }
            let body = pending[end + 4..end + 4 + length].to_vec();
            pending.drain(..end + 4 + length);
            return Some(Seen { head, body });
        }
        let mut more = [0u8; 4096];
        let n = stream.read(&mut more).await.ok().filter(|&n| n > 0)?;
        pending.extend_from_slice(&more[..n]);
    }
}

/// What the scripted pod writes for a request, piece by piece, and whether it closes afterwards.
fn script(seen: &Seen) -> (Vec<Vec<u8>>, bool) {
    let path = seen.head.split(' ').nth(1).unwrap_or("/").to_string();
    let pieces = |parts: &[&str]| parts.iter().map(|p| p.as_bytes().to_vec()).collect();
    match path.as_str() {
        "/chunked" => (
            pieces(&[
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\nX-Kind: chunked\r\n\r\n5\r\nhel",
                "lo\r\n",
                "7\r\n, world\r\n0\r\nX-Checksum: 42\r\n\r\n",
            ]),
            false,
        ),
        "/close" => (pieces(&["HTTP/1.1 200 OK\r\n\r\nuntil ", "the close"]), true),
        "/continue" => (
            pieces(&[
                "HTTP/1.1 100 Continue\r\n\r\n",
                "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
            ]),
            false,
        ),
        "/echo" => {
            let mut answer =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", seen.body.len()).into_bytes();
            answer.extend_from_slice(&seen.body);
            (vec![answer], false)
        }
        "/then-close" => (
            pieces(&["HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbye\n"]),
            true,
        ),
        "/garbage" => (pieces(&["SSH-2.0-not-http\r\n\r\n"]), true),
        // `HEAD` (and anything else): a length with the body only when the method allows one.
        _ if seen.head.starts_with("HEAD ") => {
            (pieces(&["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"]), false)
        }
        _ => (
            pieces(&["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain"]),
            false,
        ),
    }
}

/// What the scripted pod shares with a test: connections accepted, connections it closed, the heads
/// it read.
type PodView = (
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    Arc<std::sync::Mutex<Vec<String>>>,
);

/// The scripted pod on `ip`.
async fn scripted_pod(ip: [u8; 4]) -> (SocketAddr, PodView) {
    let listener = TcpListener::bind(SocketAddr::from((ip, 0))).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let closes = Arc::new(AtomicUsize::new(0));
    let (counter, seen_heads, closes_seen) = (Arc::clone(&accepted), Arc::clone(&heads), Arc::clone(&closes));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            stream.set_nodelay(true).unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            let seen_heads = Arc::clone(&seen_heads);
            let closed = Arc::clone(&closes_seen);
            tokio::spawn(async move {
                let mut pending = Vec::new();
                while let Some(seen) = read_request(&mut stream, &mut pending).await {
                    seen_heads.lock().unwrap().push(seen.head.clone());
                    let (pieces, close) = script(&seen);
                    for piece in pieces {
                        // One write each (TCP_NODELAY): the activator often reads them apart.
                        stream.write_all(&piece).await.unwrap();
                        tokio::task::yield_now().await;
                    }
                    if close {
                        drop(stream);
                        closed.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                }
            });
        }
    });
    (addr, (accepted, closes, heads))
}

async fn setup() -> (zeroscale_activator::Activator, PodView) {
    let activator = activator(|_| {}).await;
    let (pod, seen) = scripted_pod([127, 0, 0, 5]).await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::ready(pod)],
    );
    (activator, seen)
}

#[tokio::test]
async fn every_way_a_body_ends_reaches_the_client_whole() {
    let (activator, _) = setup().await;
    let addr = activator.internal_addr;
    let (status, body, _) = send(get(addr, "/")).await;
    assert_eq!((status, body.as_str()), (200, "plain"));
    let (status, body, headers) = send(get(addr, "/chunked")).await;
    assert_eq!((status, body.as_str()), (200, "hello, world"));
    assert_eq!(headers.get("x-kind").unwrap(), "chunked");
    let (status, body, _) = send(get(addr, "/close")).await;
    assert_eq!((status, body.as_str()), (200, "until the close"));
    let (status, body, _) = send(get(addr, "/continue")).await;
    assert_eq!((status, body.as_str()), (201, "ok"), "the interim 100 is skipped");
    let head = Request::head(format!("http://{addr}/"))
        .header("host", HOST)
        .body(full(""))
        .unwrap();
    let (status, body, headers) = send(head).await;
    assert_eq!((status, body.as_str()), (200, ""));
    assert_eq!(headers.get("content-length").unwrap(), "5");
}

#[tokio::test]
async fn trailers_of_a_chunked_body_are_passed_on() {
    let (activator, _) = setup().await;
    let mut request = get(activator.internal_addr, "/chunked");
    // hyper's server sends the trailers the response announced (`Trailer`) to a client that says it
    // takes them (`TE: trailers`).
    request
        .headers_mut()
        .insert("te", http::HeaderValue::from_static("trailers"));
    let response = client().request(request).await.unwrap();
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    assert_eq!(collected.to_bytes(), "hello, world");
    assert_eq!(trailers.get("x-checksum").map(|v| v.as_bytes()), Some(&b"42"[..]));
}

#[tokio::test]
async fn a_kept_connection_carries_the_next_requests_and_a_closed_one_does_not() {
    let (activator, (accepted, closes, _)) = setup().await;
    let addr = activator.internal_addr;
    for path in ["/", "/chunked", "/continue", "/", "/echo"] {
        let (status, _, _) = send(get(addr, path)).await;
        assert!(status < 300, "{path}: {status}");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one connection for five requests"
    );
    // A body delimited by the close ends its connection; the next request opens another.
    send(get(addr, "/close")).await;
    send(get(addr, "/")).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    // A pod that closes a kept-alive connection after answering: the next request finds it closed
    // in the pool and goes out on a new one, with no error for the client.
    let (status, body, _) = send(get(addr, "/then-close")).await;
    assert_eq!((status, body.as_str()), (200, "bye\n"));
    // The pod closed the kept connection after answering (the `/close` one counts too).
    until("the pod closed the kept connection", || {
        closes.load(Ordering::SeqCst) >= 2
    })
    .await;
    let (status, body, _) = send(get(addr, "/")).await;
    assert_eq!((status, body.as_str()), (200, "plain"));
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_small_body_goes_out_whole_with_its_own_length() {
    let (activator, (_, _, heads)) = setup().await;
    let payload = "x".repeat(10_000);
    let request = Request::post(format!("http://{}/echo", activator.internal_addr))
        .header("host", HOST)
        .header("x-custom", "kept")
        .body(full(payload.clone()))
        .unwrap();
    let (status, body, _) = send(request).await;
    assert_eq!((status, body.len()), (200, payload.len()));
    assert_eq!(body, payload);
    let heads = heads.lock().unwrap();
    let head = heads.last().unwrap();
    assert!(head.starts_with("POST /echo HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("content-length: 10000\r\n"), "{head}");
    assert!(head.contains("x-custom: kept\r\n"), "{head}");
    assert!(
        head.contains("x-forwarded-for: "),
        "forwarding headers are added: {head}"
    );
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding"), "{head}");
}

#[tokio::test]
async fn a_malformed_answer_is_a_502_that_names_no_address() {
    let (activator, _) = setup().await;
    let (status, body, _) = send(get(activator.internal_addr, "/garbage")).await;
    assert_eq!(status, 502, "{body}");
    assert!(!body.contains("127.0.0.5"), "{body}");
}

#[tokio::test]
async fn a_streamed_body_goes_through_hyper_and_its_connection_comes_back_to_the_pool() {
    let (activator, (accepted, _, heads)) = setup().await;
    let addr = activator.internal_addr;
    send(get(addr, "/")).await;
    // Larger than the 64 KiB kept for replays: streamed, so hyper's client writes it, on the socket
    // the first request left in the pool.
    let payload = "y".repeat(100_000);
    let request = Request::post(format!("http://{addr}/echo"))
        .header("host", HOST)
        .body(full(payload.clone()))
        .unwrap();
    let (status, body, _) = send(request).await;
    assert_eq!((status, body.len()), (200, payload.len()));
    assert!(body == payload);
    // hyper gave the socket back: the next request (kept body, the raw client) reuses it.
    let (status, body, _) = send(get(addr, "/")).await;
    assert_eq!((status, body.as_str()), (200, "plain"));
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one connection for all three requests"
    );
    assert!(heads.lock().unwrap()[1].contains("content-length: 100000"));
}
