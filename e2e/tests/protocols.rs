//! Protocols on the installed system with real clients, through the activator to a function at zero
//! (issue #11): a gRPC function (`examples/functions/grpc`, tonic) called by a tonic client — a unary
//! call and a bidirectional stream — and the echo function's WebSocket endpoint driven by
//! `tokio-tungstenite` — text, binary and fragmented frames, ping/pong and the close handshake.
//!
//! Like the scenario suite, this runs against Zeroscale installed by `scripts/install.sh` (the chart in
//! `zeroscale-system`), reached at the activator's external address from `.zeroscale/activator.env`,
//! each test in a namespace of its own: run it after the install, with `ZEROSCALE_E2E_INSTALLED=1` and
//! `--test-threads=1`, next to `--test scenarios`. The images are the ones `make images` pushes to the
//! local registry.

#[allow(dead_code)] // shared with scenarios.rs; this suite uses part of it
#[path = "scenarios/support.rs"]
mod support;

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tonic::transport::{Channel, Endpoint, Uri};
use zeroscale_e2e::record_timing;
use zeroscale_echo_grpc::proto::echo_client::EchoClient;
use zeroscale_echo_grpc::proto::{ChatMessage, ChatReply, SayRequest};

use support::{COLD_REQUEST_TIMEOUT, Scenario};

/// The gRPC example function's image (`examples/functions/grpc`, binary `zeroscale-echo-grpc`).
const GRPC_IMAGE: &str = "localhost:5000/zeroscale/echo-grpc:0.1.0";
/// The echo example function's image (`examples/functions/echo`, WebSocket echo on `/ws`).
const ECHO_IMAGE: &str = "localhost:5000/zeroscale/echo:0.1.0";
/// Messages in each bidirectional stream.
const CHAT_MESSAGES: u64 = 100;
/// Bound on one step of a conversation with a warm function (generous: a busy 2-core machine).
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// Creates Function `name` at zero (`scale.initial: 0`, `min: 0`) from `spec` and waits until it is
/// Ready with no pod.
async fn create_at_zero(s: &Scenario, name: &str, mut spec: serde_json::Value) {
    spec["scale"] = json!({"initial": 0, "min": 0, "window": "6s"});
    s.apply(name, spec).await;
    s.wait_ready(name).await;
    let (_, zero) = s
        .wait_replicas(name, "created at zero", Duration::from_secs(30), |d, _| d == 0)
        .await;
    assert_eq!(zero, (0, 0), "{name} starts without pods");
}

/// Waits until the Function has a ready pod (after a call from zero woke it).
async fn wait_woken(s: &Scenario, name: &str) {
    s.wait_replicas(name, "woken to a ready pod", Duration::from_secs(30), |d, r| {
        d >= 1 && r >= 1
    })
    .await;
}

/// A gRPC channel to the activator's external port whose requests carry `:authority: <host>`, the
/// function's routing host (the TCP connection goes to the activator, the authority names the function).
async fn grpc_channel(activator_url: &str, host: &str) -> Channel {
    let origin: Uri = match format!("http://{host}").parse() {
        Ok(uri) => uri,
        Err(e) => panic!("function host {host:?} is not a URI authority: {e}"),
    };
    let endpoint = match Endpoint::from_shared(activator_url.to_string()) {
        Ok(endpoint) => endpoint,
        Err(e) => panic!("activator URL {activator_url:?}: {e}"),
    };
    let endpoint = endpoint
        .origin(origin)
        .connect_timeout(Duration::from_secs(10))
        .timeout(COLD_REQUEST_TIMEOUT);
    match endpoint.connect().await {
        Ok(channel) => channel,
        Err(e) => panic!("cannot open an HTTP/2 connection to the activator at {activator_url}: {e:?}"),
    }
}

/// Asserts `reply` answers message `seq` (text `message <seq>`) as the `seq + 1`-th of its stream, from
/// a pod of Function `name`; returns that pod.
fn check_reply(name: &str, seq: u64, reply: Result<Option<ChatReply>, tonic::Status>) -> String {
    let reply = match reply {
        Ok(Some(reply)) => reply,
        Ok(None) => panic!("the Chat stream ended before the reply to message {seq}"),
        Err(status) => panic!("the Chat stream failed before the reply to message {seq}: {status:?}"),
    };
    assert_eq!(
        (reply.seq, reply.text.as_str(), reply.count),
        (seq, format!("message {seq}").as_str(), seq + 1),
        "reply {reply:?}"
    );
    assert!(
        reply.pod.starts_with(&format!("{name}-")),
        "answered by a pod of {name}: {reply:?}"
    );
    reply.pod
}

/// Reads the next reply of a Chat stream within [`STEP_TIMEOUT`].
async fn next_reply(
    replies: &mut tonic::Streaming<ChatReply>,
    seq: u64,
) -> Result<Option<ChatReply>, tonic::Status> {
    match tokio::time::timeout(STEP_TIMEOUT, replies.message()).await {
        Ok(reply) => reply,
        Err(_) => panic!("no reply to Chat message {seq} within {STEP_TIMEOUT:?}"),
    }
}

/// Asserts the server ended its half of the stream with status OK (the trailers came through).
async fn expect_ok_end(replies: &mut tonic::Streaming<ChatReply>) {
    match tokio::time::timeout(STEP_TIMEOUT, replies.message()).await {
        Ok(Ok(None)) => {}
        Ok(other) => panic!("the Chat stream should end with status OK, got {other:?}"),
        Err(_) => panic!("the Chat stream did not end within {STEP_TIMEOUT:?} of the client's end"),
    }
}

/// A Chat conversation in lock step: every message is answered before the next one is sent, so the
/// request and response bodies stream at the same time through the activator (full duplex).
async fn chat_in_lock_step(client: &mut EchoClient<Channel>, name: &str) {
    let (tx, rx) = mpsc::channel::<ChatMessage>(1);
    let mut replies = match client.chat(ReceiverStream::new(rx)).await {
        Ok(response) => response.into_inner(),
        Err(status) => panic!("Chat was refused: {status:?}"),
    };
    let mut pods = std::collections::BTreeSet::new();
    for seq in 0..CHAT_MESSAGES {
        let message = ChatMessage {
            seq,
            text: format!("message {seq}"),
        };
        if tx.send(message).await.is_err() {
            panic!("the Chat request stream closed before message {seq}");
        }
        pods.insert(check_reply(name, seq, next_reply(&mut replies, seq).await));
    }
    drop(tx);
    expect_ok_end(&mut replies).await;
    assert_eq!(pods.len(), 1, "one stream, one pod: {pods:?}");
}

/// A Chat conversation sent all at once before any reply is read: every reply arrives, in order.
async fn chat_pipelined(client: &mut EchoClient<Channel>, name: &str) {
    let messages: Vec<ChatMessage> = (0..CHAT_MESSAGES)
        .map(|seq| ChatMessage {
            seq,
            text: format!("message {seq}"),
        })
        .collect();
    let mut replies = match client.chat(tokio_stream::iter(messages)).await {
        Ok(response) => response.into_inner(),
        Err(status) => panic!("Chat was refused: {status:?}"),
    };
    for seq in 0..CHAT_MESSAGES {
        check_reply(name, seq, next_reply(&mut replies, seq).await);
    }
    expect_ok_end(&mut replies).await;
}

/// A unary `Say` whose reply must echo `message` from a pod of Function `name`.
async fn say(client: &mut EchoClient<Channel>, name: &str, message: &str) {
    let reply = match client
        .say(SayRequest {
            message: message.into(),
        })
        .await
    {
        Ok(reply) => reply.into_inner(),
        Err(status) => panic!("unary Say through the activator failed: {status:?}"),
    };
    assert_eq!(reply.message, message);
    assert!(
        reply.pod.starts_with(&format!("{name}-")),
        "answered by a pod of {name}: {reply:?}"
    );
}

/// A gRPC function (`protocol: h2c`, readiness by the kubelet's gRPC probe on `grpc.health.v1`) at
/// zero: a unary call through the activator wakes it and is answered by its pod; then bidirectional
/// streams of [`CHAT_MESSAGES`] messages, in lock step and pipelined, get every reply in order and end
/// with status OK (the trailers pass the activator).
#[tokio::test]
async fn grpc_unary_and_bidirectional_streaming_from_zero() {
    let s = Scenario::new("grpc").await;
    let name = "greeter";
    create_at_zero(
        &s,
        name,
        json!({
            "image": GRPC_IMAGE,
            "protocol": "h2c",
            "readinessProbe": {"grpc": {"port": 8080}, "periodSeconds": 1},
        }),
    )
    .await;
    let host = s.host(name).await;
    let mut client = EchoClient::new(grpc_channel(&s.installed.activator_url, &host).await);

    let start = Instant::now();
    say(&mut client, name, "hello from zero").await;
    record_timing("protocols: gRPC unary call at zero → reply", start.elapsed());
    wait_woken(&s, name).await;

    chat_in_lock_step(&mut client, name).await;
    chat_pipelined(&mut client, name).await;
}

/// The activator's external address as `host:port` for a raw TCP connection.
fn activator_authority(activator_url: &str) -> String {
    let rest = activator_url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("the activator URL {activator_url:?} is not http://"));
    let authority = rest.split('/').next().unwrap_or(rest);
    if authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    }
}

/// A WebSocket client connection to the activator.
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The next message from the server within [`STEP_TIMEOUT`], or a panic naming what was expected.
async fn next_message(ws: &mut Ws, expected: &str) -> Option<Message> {
    match tokio::time::timeout(STEP_TIMEOUT, ws.next()).await {
        Ok(Some(Ok(message))) => Some(message),
        Ok(Some(Err(e))) => panic!("WebSocket error while waiting for {expected}: {e}"),
        Ok(None) => None,
        Err(_) => panic!("no {expected} within {STEP_TIMEOUT:?}"),
    }
}

/// Sends `message` and asserts the echo is `expected`.
async fn round_trip(ws: &mut Ws, message: Message, expected: Message, what: &str) {
    if let Err(e) = ws.send(message).await {
        panic!("cannot send the {what}: {e}");
    }
    let got = next_message(ws, &format!("the echo of the {what}")).await;
    assert_eq!(got.as_ref(), Some(&expected), "echo of the {what}");
}

/// The echo function's WebSocket endpoint at zero, driven by tokio-tungstenite through the activator:
/// the upgrade wakes it, then text, a 256 KiB binary message, a text message sent as two fragments, a
/// ping (answered by a pong with its payload) and the close handshake (the server's close frame echoes
/// code 1000, then the stream ends).
#[tokio::test]
async fn websocket_framing_ping_and_close_from_zero() {
    let s = Scenario::new("websocket").await;
    let name = "socket";
    create_at_zero(&s, name, json!({"image": ECHO_IMAGE})).await;
    let host = s.host(name).await;

    let start = Instant::now();
    let mut ws = websocket_open(&s.installed.activator_url, &host).await;
    record_timing("protocols: WebSocket upgrade at zero → 101", start.elapsed());
    wait_woken(&s, name).await;
    websocket_conversation(&mut ws).await;
}

/// Opens a WebSocket to `ws://<host>/ws` over a TCP connection to the activator's external port (the
/// `Host` header names the function), asserting the `101`; allows [`COLD_REQUEST_TIMEOUT`] for a
/// function at zero.
async fn websocket_open(activator_url: &str, host: &str) -> Ws {
    let address = activator_authority(activator_url);
    let tcp = match TcpStream::connect(&address).await {
        Ok(tcp) => tcp,
        Err(e) => panic!("cannot connect to the activator at {address}: {e}"),
    };
    let request = match format!("ws://{host}/ws").into_client_request() {
        Ok(request) => request,
        Err(e) => panic!("WebSocket request for {host}: {e}"),
    };
    let handshake = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp));
    let (ws, response) = match tokio::time::timeout(COLD_REQUEST_TIMEOUT, handshake).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => panic!("WebSocket handshake through the activator failed: {e}"),
        Err(_) => panic!("no WebSocket handshake within {COLD_REQUEST_TIMEOUT:?}"),
    };
    assert_eq!(response.status().as_u16(), 101);
    ws
}

/// Text, binary and fragmented messages echoed, a ping answered by its pong, then the close
/// handshake: the server's close frame carries code 1000 and the stream ends.
async fn websocket_conversation(ws: &mut Ws) {
    round_trip(
        ws,
        Message::text("hello from zero"),
        Message::text("hello from zero"),
        "text message",
    )
    .await;
    let binary: Bytes = (0..256 * 1024)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    round_trip(
        ws,
        Message::Binary(binary.clone()),
        Message::Binary(binary),
        "256 KiB binary message",
    )
    .await;
    let first = Frame::message(Bytes::from_static(b"frag"), OpCode::Data(Data::Text), false);
    if let Err(e) = ws.send(Message::Frame(first)).await {
        panic!("cannot send the first fragment: {e}");
    }
    let last = Frame::message(Bytes::from_static(b"mented"), OpCode::Data(Data::Continue), true);
    round_trip(
        ws,
        Message::Frame(last),
        Message::text("fragmented"),
        "text message in two fragments",
    )
    .await;
    round_trip(
        ws,
        Message::Ping(Bytes::from_static(b"are you there")),
        Message::Pong(Bytes::from_static(b"are you there")),
        "ping",
    )
    .await;

    let close = CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    };
    if let Err(e) = ws.send(Message::Close(Some(close))).await {
        panic!("cannot send the close frame: {e}");
    }
    match next_message(ws, "the server's close frame").await {
        Some(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Normal, "{frame:?}"),
        other => panic!("expected the server's close frame with code 1000, got {other:?}"),
    }
    let after = next_message(ws, "the end of the connection").await;
    assert!(after.is_none(), "nothing after the close handshake: {after:?}");
}
