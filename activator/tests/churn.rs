//! Pods going away under requests (issue 12): every way a request can meet a pod that is leaving, each
//! shown to end in a 2xx through a retry (counted in `zeroscale_activator_upstream_retries_total`, and
//! by the pod that answered) or a wait, and the one case that cannot be saved — a streamed,
//! non-idempotent request whose pod dies with it — answered 502 and counted as lost.
//!
//! The pods are scripted raw TCP servers on 127.0.1.x (`churn/pod.rs`), so each failure happens at an exact point of
//! the exchange; no assertion depends on wall-clock timing.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

#[path = "churn/pod.rs"]
mod pod;
mod support;

use std::{net::SocketAddr, sync::atomic::Ordering, time::Duration};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use pod::{Act, Pod};
use support::*;
use tokio::{net::TcpListener, sync::mpsc};
use zeroscale_activator::{
    Activator,
    settings::{EndpointInfo, FunctionSettings},
};

/// The value of counter `name` with label `reason` for the test function, 0 when absent.
async fn counter(activator: &Activator, name: &str, reason: &str) -> u64 {
    let text = metrics(activator).await;
    let prefix = format!(
        "zeroscale_activator_{name}_total{{namespace=\"default\",function=\"hello\",revision=\"\",reason=\"{reason}\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map_or(0, |v| v.trim().parse().unwrap())
}

async fn retries(activator: &Activator, reason: &str) -> u64 {
    counter(activator, "upstream_retries", reason).await
}

async fn lost(activator: &Activator, reason: &str) -> u64 {
    counter(activator, "upstream_lost", reason).await
}

fn settings() -> FunctionSettings {
    FunctionSettings {
        timeout: Duration::from_secs(30),
        response_start_timeout: Duration::from_secs(30),
        ..FunctionSettings::default()
    }
}

/// A POST for [`HOST`] with a small body (announced length).
fn post(addr: SocketAddr, body: &'static str) -> Request<TestBody> {
    Request::post(format!("http://{addr}/"))
        .header("host", HOST)
        .body(full(body))
        .unwrap()
}

/// Case 1: the pod closes a kept-alive connection (SIGTERM) just as a GET is written onto it. The
/// request is sent again on a fresh connection and answered.
#[tokio::test(start_paused = true)]
async fn a_get_written_onto_a_connection_the_pod_closed_is_sent_again() {
    let activator = activator(|_| {}).await;
    // The second request on the first connection meets the close; everything else is answered.
    let pod = Pod::start([127, 0, 1, 1], "pod", |c, r| {
        if (c, r) == (0, 1) {
            Act::CloseAfterRead
        } else {
            Act::Answer
        }
    })
    .await;
    set(&activator, settings(), vec![EndpointInfo::ready(pod.addr)]);
    for _ in 0..2 {
        let (status, body, _) = send(get(activator.internal_addr, "/")).await;
        assert_eq!((status, body.as_str()), (200, "pod"));
    }
    assert_eq!(
        pod.requests.load(Ordering::SeqCst),
        3,
        "the second request was sent twice"
    );
    assert_eq!(
        pod.accepted.load(Ordering::SeqCst),
        2,
        "the retry used a new connection"
    );
    assert_eq!(retries(&activator, "replayed").await, 1);
    assert_eq!(lost(&activator, "before-response").await, 0);
}

/// Case 1, for a POST: a kept-alive connection the pod closed while it was idle (its shutdown on
/// SIGTERM) is noticed before anything is written, so the POST goes out on a new connection.
#[tokio::test(start_paused = true)]
async fn a_post_never_goes_onto_a_connection_the_pod_closed_while_idle() {
    let activator = activator(|_| {}).await;
    let pod = Pod::start([127, 0, 1, 2], "pod", |c, _| {
        if c == 0 { Act::AnswerThenClose } else { Act::Answer }
    })
    .await;
    set(&activator, settings(), vec![EndpointInfo::ready(pod.addr)]);
    assert_eq!(send(post(activator.internal_addr, "first")).await.0, 200);
    until("the pod to close its idle connection", || {
        pod.closed_by_pod.load(Ordering::SeqCst) == 1
    })
    .await;
    let (status, body, _) = send(post(activator.internal_addr, "second")).await;
    assert_eq!((status, body.as_str()), (200, "pod"));
    assert_eq!(pod.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(
        pod.requests.load(Ordering::SeqCst),
        2,
        "each POST reached the pod once"
    );
    assert_eq!(lost(&activator, "before-response").await, 0);
}

/// Case 1, for a POST with a small body written onto a connection that then broke: it may have
/// reached the pod, so it is not sent again: 502 with a reason and the request id, never an
/// address, and counted as lost.
#[tokio::test(start_paused = true)]
async fn a_post_the_pod_may_have_seen_is_not_sent_twice() {
    let activator = activator(|_| {}).await;
    let pod = Pod::start([127, 0, 1, 3], "pod", |c, r| {
        if (c, r) == (0, 1) {
            Act::CloseAfterRead
        } else {
            Act::Answer
        }
    })
    .await;
    set(&activator, settings(), vec![EndpointInfo::ready(pod.addr)]);
    assert_eq!(send(get(activator.internal_addr, "/")).await.0, 200);
    let mut request = post(activator.internal_addr, "pay once");
    request
        .headers_mut()
        .insert("x-request-id", "churn-test-1".parse().unwrap());
    let (status, body, _) = send(request).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("default/hello") && body.contains("churn-test-1"),
        "{body}"
    );
    assert!(!body.contains("127.0."), "an address leaked: {body}");
    assert_eq!(pod.requests.load(Ordering::SeqCst), 2, "sent once");
    assert_eq!(lost(&activator, "before-response").await, 1);
}

/// Case 2: the pod the activator picked leaves the EndpointSlice (terminating) before the request
/// goes out: it goes to another pod, and the leaving pod's idle connections are closed at once.
#[tokio::test(start_paused = true)]
async fn a_pod_that_terminates_after_it_was_picked_gets_nothing() {
    let activator = activator(|_| {}).await;
    let a = Pod::start([127, 0, 1, 4], "a", |_, _| Act::Answer).await;
    let b = Pod::start([127, 0, 1, 5], "b", |_, _| Act::Answer).await;
    // A request waits (no pod), is handed `a`, and `a` terminates before the request task runs: the
    // test task does not yield between the two updates.
    set(&activator, settings(), vec![]);
    let function = activator.table.get(&key()).unwrap();
    let request = tokio::spawn(send(post(activator.internal_addr, "hello")));
    until("the request to wait", || function.queued() == 1).await;
    set(&activator, settings(), vec![EndpointInfo::ready(a.addr)]);
    assert_eq!(function.queued(), 0, "handed to a");
    set(
        &activator,
        settings(),
        vec![EndpointInfo::terminating(a.addr), EndpointInfo::ready(b.addr)],
    );
    let (status, body, _) = request.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "b"));
    assert_eq!(a.requests.load(Ordering::SeqCst), 0, "nothing reached a");
    assert_eq!(retries(&activator, "pod-gone").await, 1);
}

/// Case 2: a pod turning terminating loses its idle kept-alive connections at once (it would close
/// them itself soon, and a request written onto one then would be lost), and gets no new request.
#[tokio::test(start_paused = true)]
async fn a_terminating_pod_has_its_idle_connections_closed() {
    let activator = activator(|_| {}).await;
    let a = Pod::start([127, 0, 1, 17], "a", |_, _| Act::Answer).await;
    let b = Pod::start([127, 0, 1, 18], "b", |_, _| Act::Answer).await;
    set(&activator, settings(), vec![EndpointInfo::ready(a.addr)]);
    assert_eq!(send(get(activator.internal_addr, "/")).await.1, "a");
    assert_eq!(a.closed_by_peer.load(Ordering::SeqCst), 0, "kept alive");
    set(
        &activator,
        settings(),
        vec![EndpointInfo::terminating(a.addr), EndpointInfo::ready(b.addr)],
    );
    until("a's idle connection to close", || {
        a.closed_by_peer.load(Ordering::SeqCst) == 1
    })
    .await;
    for _ in 0..5 {
        assert_eq!(send(get(activator.internal_addr, "/")).await.1, "b");
    }
    assert_eq!(a.requests.load(Ordering::SeqCst), 1);
}

/// Case 2, with an EndpointSlice saying `serving: false` (the Kubernetes watch maps it to not ready):
/// new requests avoid the pod, no retry needed.
#[tokio::test(start_paused = true)]
async fn a_pod_that_is_not_ready_is_not_chosen() {
    let activator = activator(|_| {}).await;
    let a = Pod::start([127, 0, 1, 6], "a", |_, _| Act::Answer).await;
    let b = Pod::start([127, 0, 1, 7], "b", |_, _| Act::Answer).await;
    set(
        &activator,
        settings(),
        vec![EndpointInfo::starting(a.addr), EndpointInfo::ready(b.addr)],
    );
    for _ in 0..10 {
        assert_eq!(send(get(activator.internal_addr, "/")).await.1, "b");
    }
    assert_eq!(a.requests.load(Ordering::SeqCst), 0);
}

/// Case 3: a refused connection, for a POST with a small body (nothing reached the pod): sent to
/// another pod.
#[tokio::test(start_paused = true)]
async fn a_post_refused_by_a_pod_goes_to_another() {
    let activator = activator(|_| {}).await;
    let gone = TcpListener::bind("127.0.1.8:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let b = Pod::start([127, 0, 1, 9], "b", |_, _| Act::Answer).await;
    set(&activator, settings(), vec![EndpointInfo::ready(gone)]);
    // Only the refusing pod first, so the POST certainly meets it; `b` appears while it waits.
    let function = activator.table.get(&key()).unwrap();
    let request = tokio::spawn(send(post(activator.internal_addr, "once")));
    until("the refused request to wait", || function.queued() == 1).await;
    set(
        &activator,
        settings(),
        vec![EndpointInfo::ready(gone), EndpointInfo::ready(b.addr)],
    );
    let (status, body, _) = request.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "b"));
    assert_eq!(retries(&activator, "not-sent").await, 1);
    assert_eq!(b.requests.load(Ordering::SeqCst), 1);
}

/// Case 3: a connection reset before any response byte, for a GET: sent again, to the other pod
/// (the resetting pod is routed around until it accepts a probe connection again).
#[tokio::test(start_paused = true)]
async fn a_get_reset_before_the_response_goes_to_another_pod() {
    let activator = activator(|_| {}).await;
    let a = Pod::start([127, 0, 1, 10], "a", |_, _| Act::Reset).await;
    let b = Pod::start([127, 0, 1, 11], "b", |_, _| Act::Answer).await;
    set(&activator, settings(), vec![EndpointInfo::ready(a.addr)]);
    let request = tokio::spawn(send(get(activator.internal_addr, "/")));
    until("a to reset the request", || {
        a.requests.load(Ordering::SeqCst) >= 1
    })
    .await;
    set(
        &activator,
        settings(),
        vec![EndpointInfo::ready(a.addr), EndpointInfo::ready(b.addr)],
    );
    let (status, body, _) = request.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "b"));
    let retried = retries(&activator, "replayed").await + retries(&activator, "not-sent").await;
    assert!(retried >= 1, "{retried} retries");
    assert_eq!(a.answered.load(Ordering::SeqCst), 0);
    assert_eq!(b.requests.load(Ordering::SeqCst), 1);
}

/// Case 4: the pod dies while answering a GET, before its response head is complete, and it was the
/// only pod: the request waits in the queue until a new pod answers.
#[tokio::test(start_paused = true)]
async fn a_get_whose_only_pod_dies_while_answering_waits_for_the_next_pod() {
    let activator = activator(|_| {}).await;
    let listener = TcpListener::bind("127.0.1.12:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let dying = Pod::serve(listener, "dying", |_, _| Act::PartialHead, 1);
    set(&activator, settings(), vec![EndpointInfo::ready(address)]);
    let function = activator.table.get(&key()).unwrap();
    let request = tokio::spawn(send(get(activator.internal_addr, "/")));
    until("the request to come back to the queue", || function.queued() == 1).await;
    assert!(dying.requests.load(Ordering::SeqCst) >= 1);
    assert!(function.routable().is_empty(), "the dying pod is out of rotation");
    let next = Pod::start([127, 0, 1, 13], "next", |_, _| Act::Answer).await;
    set(
        &activator,
        settings(),
        vec![EndpointInfo::terminating(address), EndpointInfo::ready(next.addr)],
    );
    let (status, body, _) = request.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "next"));
    assert_eq!(retries(&activator, "replayed").await, 1);
}

/// Case 4: a pod killed after its response head went to the client: the client sees a cut body (no
/// status can be changed any more) and the loss is counted.
#[tokio::test(start_paused = true)]
async fn a_response_cut_mid_body_is_counted_as_lost() {
    let activator = activator(|_| {}).await;
    let pod = Pod::start([127, 0, 1, 14], "pod", |_, _| Act::CutBody).await;
    set(&activator, settings(), vec![EndpointInfo::ready(pod.addr)]);
    // The head may or may not reach the client before the connection is aborted; either way the
    // client cannot take the response for a whole one.
    if let Ok(response) = client().request(get(activator.internal_addr, "/")).await {
        assert_eq!(response.status(), 200);
        assert!(response.into_body().collect().await.is_err(), "the body is cut");
    }
    assert_eq!(lost(&activator, "mid-response").await, 1);
}

/// The case that cannot be saved: a streamed (chunked) POST whose pod dies after part of the body
/// went out. 502 with a reason, counted as lost, and not sent anywhere else.
#[tokio::test(start_paused = true)]
async fn a_streamed_post_whose_pod_dies_gets_502_and_is_counted_lost() {
    let activator = activator(|_| {}).await;
    let a = Pod::start([127, 0, 1, 15], "a", |_, _| Act::CloseMidBody).await;
    let b = Pod::start([127, 0, 1, 16], "b", |_, _| Act::Answer).await;
    set(&activator, settings(), vec![EndpointInfo::ready(a.addr)]);
    let stream = connect(activator.internal_addr).await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let (chunks, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
    let body = StreamBody::new(tokio_stream_from(rx));
    let request = Request::post("/upload")
        .header("host", HOST)
        .header("x-request-id", "churn-stream-1")
        .body(body)
        .unwrap();
    let response = tokio::spawn(sender.send_request(request));
    chunks
        .send(Ok(Frame::data(Bytes::from_static(b"part one"))))
        .await
        .unwrap();
    // `b` is there to take a retry, which must not happen.
    until("a to get the request", || a.requests.load(Ordering::SeqCst) == 1).await;
    set(
        &activator,
        settings(),
        vec![EndpointInfo::ready(a.addr), EndpointInfo::ready(b.addr)],
    );
    let response = response.await.unwrap().unwrap();
    assert_eq!(response.status(), 502);
    let text = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("default/hello") && text.contains("churn-stream-1"),
        "{text}"
    );
    assert!(!text.contains("127.0."), "an address leaked: {text}");
    drop(chunks);
    assert_eq!(lost(&activator, "before-response").await, 1);
    assert_eq!(b.requests.load(Ordering::SeqCst), 0, "not sent again");
}

/// A receiver as a stream of body frames.
fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
