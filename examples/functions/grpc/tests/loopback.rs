//! The gRPC function on loopback, called by a tonic client: unary, bidirectional streaming, health
//! and the drain on shutdown.
#![allow(clippy::unwrap_used)] // test helpers; failing loudly is the point

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use zeroscale_echo_grpc::EchoService;
use zeroscale_echo_grpc::proto::echo_client::EchoClient;
use zeroscale_echo_grpc::proto::{ChatMessage, ChatReply, SayRequest};
use zeroscale_echo_grpc::server::{self, Drain, ServerError};

/// Generous bound on anything that should happen at once (a busy CI machine), never a speed claim.
const PATIENCE: Duration = Duration::from_secs(20);

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    done: JoinHandle<Result<Drain, ServerError>>,
}

async fn start(drain_timeout: Duration) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(server::serve(
        listener,
        EchoService::new("pod-a"),
        drain_timeout,
        async {
            let _ = stopped.await;
        },
    ));
    Running { addr, stop, done }
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn finished(done: JoinHandle<Result<Drain, ServerError>>) -> Drain {
    tokio::time::timeout(PATIENCE, done)
        .await
        .expect("the server ends")
        .unwrap()
        .unwrap()
}

/// A Chat call: the sender of the client's half and the server's replies.
async fn open_chat(
    client: &mut EchoClient<Channel>,
) -> (mpsc::Sender<ChatMessage>, tonic::Streaming<ChatReply>) {
    let (tx, rx) = mpsc::channel(4);
    let replies = client.chat(ReceiverStream::new(rx)).await.unwrap().into_inner();
    (tx, replies)
}

/// Sends message `seq` and asserts the reply to it comes back before anything else is sent.
async fn exchange(tx: &mpsc::Sender<ChatMessage>, replies: &mut tonic::Streaming<ChatReply>, seq: u64) {
    let text = format!("message {seq}");
    tx.send(ChatMessage {
        seq,
        text: text.clone(),
    })
    .await
    .unwrap();
    let reply = tokio::time::timeout(PATIENCE, replies.next())
        .await
        .expect("a reply while the stream stays open")
        .expect("the stream is not over")
        .expect("no error status");
    assert_eq!(
        reply,
        ChatReply {
            seq,
            text,
            count: seq + 1,
            pod: "pod-a".into(),
        }
    );
}

#[tokio::test]
async fn unary_say_echoes_and_names_the_pod() {
    let running = start(Duration::from_secs(5)).await;
    let mut client = EchoClient::new(channel(running.addr).await);
    let reply = client
        .say(SayRequest {
            message: "hello, zero".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.message, "hello, zero");
    assert_eq!(reply.pod, "pod-a");
    running.stop.send(()).unwrap();
    assert_eq!(finished(running.done).await, Drain::Complete);
}

#[tokio::test]
async fn chat_answers_each_message_before_the_next_is_sent() {
    let running = start(Duration::from_secs(5)).await;
    let mut client = EchoClient::new(channel(running.addr).await);
    let (tx, mut replies) = open_chat(&mut client).await;
    for seq in 0..50 {
        exchange(&tx, &mut replies, seq).await;
    }
    drop(tx);
    let end = tokio::time::timeout(PATIENCE, replies.next()).await.unwrap();
    assert!(end.is_none(), "the server ends its half with OK: {end:?}");
    running.stop.send(()).unwrap();
    assert_eq!(finished(running.done).await, Drain::Complete);
}

#[tokio::test]
async fn health_serves_the_overall_and_the_echo_service() {
    let running = start(Duration::from_secs(5)).await;
    let mut health = HealthClient::new(channel(running.addr).await);
    for service in ["", "zeroscale.echo.v1.Echo"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "service {service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    running.stop.send(()).unwrap();
    assert_eq!(finished(running.done).await, Drain::Complete);
}

#[tokio::test]
async fn shutdown_reports_not_serving_and_lets_open_streams_finish() {
    let running = start(Duration::from_secs(60)).await;
    let ch = channel(running.addr).await;
    let mut client = EchoClient::new(ch.clone());
    let mut health = HealthClient::new(ch);
    let mut watch = health
        .watch(HealthCheckRequest { service: "".into() })
        .await
        .unwrap()
        .into_inner();
    let status = |r: Option<Result<HealthCheckResponse, tonic::Status>>| r.unwrap().unwrap().status;
    assert_eq!(status(watch.next().await), ServingStatus::Serving as i32);
    let (tx, mut replies) = open_chat(&mut client).await;
    exchange(&tx, &mut replies, 0).await;

    running.stop.send(()).unwrap();
    let next = tokio::time::timeout(PATIENCE, watch.next()).await.unwrap();
    assert_eq!(status(next), ServingStatus::NotServing as i32);
    drop(watch);

    // New connections are no longer accepted…
    let refused = tokio::time::timeout(
        PATIENCE,
        Channel::from_shared(format!("http://{}", running.addr))
            .unwrap()
            .connect(),
    )
    .await
    .unwrap();
    assert!(refused.is_err(), "a new connection during the drain is refused");
    // …while the stream in flight is still answered, until the client ends it.
    for seq in 1..5 {
        exchange(&tx, &mut replies, seq).await;
    }
    assert!(
        !running.done.is_finished(),
        "the server waits for the open stream"
    );
    drop(tx);
    assert!(replies.next().await.is_none());
    assert_eq!(finished(running.done).await, Drain::Complete);
}

#[tokio::test]
async fn drain_timeout_cuts_a_stream_that_never_ends() {
    let running = start(Duration::from_millis(200)).await;
    let mut client = EchoClient::new(channel(running.addr).await);
    let (tx, mut replies) = open_chat(&mut client).await;
    exchange(&tx, &mut replies, 0).await;
    running.stop.send(()).unwrap();
    assert_eq!(finished(running.done).await, Drain::TimedOut);
    drop(tx);
}
