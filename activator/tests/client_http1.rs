//! The activator's own HTTP/1.1 server (`server/h1.rs`) on kept connections: pipelined requests are
//! answered in order, requests it leaves to hyper are served by hyper on the same connection, a small
//! body sent after its head is waited for (then left to hyper after the header-read timeout, and not
//! cut by a drain), HEAD answers carry no body, streamed answers are chunked, `Connection: close` and
//! the header-read timeout close the connection.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use support::*;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use zeroscale_activator::settings::{EndpointInfo, FunctionSettings};

/// A pod answering `<method> <path> <body>`; `/stream` answers in two chunks of unknown length.
async fn echo_pod() -> std::net::SocketAddr {
    upstream(
        [127, 0, 0, 2],
        |req: http::Request<hyper::body::Incoming>| async move {
            if req.uri().path() == "/stream" {
                let frames =
                    ["one ", "two"].map(|s| Ok::<_, BoxError>(http_body::Frame::data(Bytes::from(s))));
                let body = StreamBody::new(futures::stream::iter(frames));
                return Response::new(BodyExt::boxed(body));
            }
            if req.method() == http::Method::HEAD {
                // Named in the answer so the reader below knows no body follows.
                let mut response = Response::new(full("HEAD body"));
                response
                    .headers_mut()
                    .insert("x-head", http::HeaderValue::from_static("yes"));
                return response;
            }
            let line = format!("{} {} ", req.method(), req.uri().path());
            let body = req.into_body().collect().await.unwrap().to_bytes();
            Response::new(full(format!("{line}{}", String::from_utf8_lossy(&body))))
        },
    )
    .await
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn serving() -> (zeroscale_activator::start::Activator, std::net::SocketAddr) {
    let activator = activator(|c| c.server_limits.header_read_timeout = Duration::from_millis(500)).await;
    let pod = echo_pod().await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::ready(pod)],
    );
    let addr = activator.internal_addr;
    (activator, addr)
}

/// Reads from `stream` until `count` responses have been read whole (by `Content-Length` or the last
/// chunk), or the connection closed; returns the text.
async fn read_responses(stream: &mut TcpStream, count: usize) -> String {
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while complete_responses(&text) < count {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
        match read {
            Ok(Ok(n)) if n > 0 => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            _ => break,
        }
    }
    text
}

/// How many whole responses `text` holds.
fn complete_responses(text: &str) -> usize {
    let mut rest = text;
    let mut count = 0;
    while let Some(end) = rest.find("\r\n\r\n") {
        let head = rest[..end].to_ascii_lowercase();
        let body = &rest[end + 4..];
        let taken = if let Some(n) = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .filter(|_| !head.starts_with("http/1.1 204"))
        {
            let head_request = head.contains("x-head: yes");
            let n = if head_request { 0 } else { n };
            if body.len() < n {
                return count;
            }
            n
        } else if head.contains("transfer-encoding: chunked") {
            match body.find("0\r\n\r\n") {
                Some(at) => at + 5,
                None => return count,
            }
        } else {
            0
        };
        count += 1;
        rest = &body[taken..];
    }
    count
}

async fn closed(stream: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    matches!(read, Ok(Ok(_)))
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let (_activator, addr) = serving().await;
    let mut stream = connect(addr).await;
    let requests = format!(
        "GET /1 HTTP/1.1\r\nHost: {HOST}\r\n\r\n\
         POST /2 HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 4\r\n\r\nbody\
         GET /3 HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
    );
    stream.write_all(requests.as_bytes()).await.unwrap();
    let text = read_responses(&mut stream, 3).await;
    let bodies: Vec<&str> = ["GET /1 ", "POST /2 body", "GET /3 "]
        .into_iter()
        .filter(|b| text.contains(b))
        .collect();
    assert_eq!(bodies.len(), 3, "{text}");
    let (one, two, three) = (
        text.find("GET /1 "),
        text.find("POST /2 body"),
        text.find("GET /3 "),
    );
    assert!(one < two && two < three, "out of order: {text}");
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 3, "{text}");
    assert!(text.contains("\r\ndate: "), "responses carry a Date: {text}");

    // On a new connection, the second head arrives in two writes, its first part with the first
    // request: its header-read timeout runs from the first answer.
    let mut stream = connect(addr).await;
    let split = format!("GET /4 HTTP/1.1\r\nHost: {HOST}\r\n\r\nGET /5 HTTP/1.1\r\nHo");
    stream.write_all(split.as_bytes()).await.unwrap();
    assert!(read_responses(&mut stream, 1).await.contains("GET /4 "));
    stream
        .write_all(format!("st: {HOST}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let text = read_responses(&mut stream, 1).await;
    assert!(text.contains("GET /5 "), "{text}");
}

#[tokio::test]
async fn a_request_left_to_hyper_is_served_on_the_same_connection() {
    let (_activator, addr) = serving().await;
    let mut stream = connect(addr).await;
    let first = format!("GET /own HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    stream.write_all(first.as_bytes()).await.unwrap();
    let text = read_responses(&mut stream, 1).await;
    assert!(text.contains("GET /own "), "{text}");
    // A chunked upload is hyper's: the connection is handed over with these bytes.
    let chunked = format!(
        "POST /chunked HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
         GET /after HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
    );
    stream.write_all(chunked.as_bytes()).await.unwrap();
    let text = read_responses(&mut stream, 2).await;
    assert!(text.contains("POST /chunked abc"), "{text}");
    assert!(text.contains("GET /after "), "{text}");
}

// On a paused clock: the runtime moves time only when every task waits, so each `sleep` below takes
// no real time and orders the writes deterministically after the activator has read what came before
// (and, for the slow body, after its 500 ms header-read timer fired), whatever the machine's load.
#[tokio::test(start_paused = true)]
async fn a_small_body_sent_after_its_head_is_waited_for() {
    let (activator, addr) = serving().await;
    let head = format!("POST /late HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 9\r\n\r\n");
    // The body in a later write, soon after the head; then another request on the same connection.
    let mut stream = connect(addr).await;
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(b"late body").await.unwrap();
    assert!(
        read_responses(&mut stream, 1)
            .await
            .contains("POST /late late body")
    );
    stream
        .write_all(format!("GET /next HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    assert!(read_responses(&mut stream, 1).await.contains("GET /next "));

    // A body slower than the header-read timeout (500 ms): hyper takes the connection and reads it
    // as it comes, rather than the connection being closed.
    let mut slow = connect(addr).await;
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(b"late").await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    slow.write_all(b" body").await.unwrap();
    let text = read_responses(&mut slow, 1).await;
    assert!(text.contains("POST /late late body"), "{text}");

    // A drain does not cut a request whose body is on its way: it is answered, then the connection
    // closes.
    let mut draining = connect(addr).await;
    draining.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    activator.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    draining.write_all(b"late body").await.unwrap();
    let text = read_responses(&mut draining, 1).await;
    assert!(text.contains("POST /late late body"), "{text}");
    assert!(closed(&mut draining).await, "closed after the answer in a drain");
}

#[tokio::test]
async fn head_answers_have_no_body_and_streamed_answers_are_chunked() {
    let (_activator, addr) = serving().await;
    let mut stream = connect(addr).await;
    let head = format!("HEAD /h HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let text = read_responses(&mut stream, 1).await;
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "a HEAD answer has no body: {text:?}");
    let stream_request = format!("GET /stream HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    stream.write_all(stream_request.as_bytes()).await.unwrap();
    let text = read_responses(&mut stream, 1).await;
    assert!(text.contains("transfer-encoding: chunked\r\n"), "{text}");
    assert!(text.ends_with("0\r\n\r\n"), "{text:?}");
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let data: String = body
        .split("\r\n")
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .collect();
    assert_eq!(data, "one two", "{body:?}");
}

#[tokio::test]
async fn connection_close_and_the_header_read_timeout_close_the_connection() {
    let (_activator, addr) = serving().await;
    let mut stream = connect(addr).await;
    let two = format!(
        "GET /a HTTP/1.1\r\nHost: {HOST}\r\n\r\nGET /b HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(two.as_bytes()).await.unwrap();
    let text = read_responses(&mut stream, 2).await;
    assert!(text.contains("GET /b "), "{text}");
    assert_eq!(text.matches("connection: close").count(), 1, "{text}");
    assert!(closed(&mut stream).await, "closed after `Connection: close`");

    // A kept connection with no next head within the timeout (500 ms here) is closed, and so is one
    // whose next head stops halfway.
    let mut idle = connect(addr).await;
    let one = format!("GET /c HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    idle.write_all(one.as_bytes()).await.unwrap();
    assert!(read_responses(&mut idle, 1).await.contains("GET /c "));
    assert!(
        closed(&mut idle).await,
        "an idle connection outlived the header-read timeout"
    );
    let mut slow = connect(addr).await;
    slow.write_all(one.as_bytes()).await.unwrap();
    assert!(read_responses(&mut slow, 1).await.contains("GET /c "));
    slow.write_all(b"GET /d HTTP/1.1\r\nHost: hel").await.unwrap();
    assert!(
        closed(&mut slow).await,
        "a half-sent head outlived the header-read timeout"
    );
}
