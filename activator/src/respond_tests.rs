//! Every error answer, rendered with realistic causes full of pod addresses and names: the body must
//! name the function and the failure and hold no IP address, no `:port`, no pod name, no source
//! chain; the log detail keeps all of it.

use std::{io, net::SocketAddr, time::Duration};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};

use super::*;
use crate::{host::HostError, upstream::UpstreamError};

const POD: &str = "10.244.0.11:8080";
const POD_NAME: &str = "hello-7d9f8b6c5-x2x9q";

/// Whether `text` holds a dotted quad (`\d+\.\d+\.\d+\.\d+`).
fn has_ipv4(text: &str) -> bool {
    let bytes = text.as_bytes();
    (0..bytes.len()).any(|start| {
        let mut i = start;
        for group in 0..4 {
            let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return false;
            }
            i += digits;
            if group < 3 {
                if bytes.get(i) != Some(&b'.') {
                    return false;
                }
                i += 1;
            }
        }
        true
    })
}

/// Whether `text` holds `:<digits>` (a port).
fn has_port(text: &str) -> bool {
    text.as_bytes()
        .windows(2)
        .any(|w| w[0] == b':' && w[1].is_ascii_digit())
}

/// A real hyper error: the "pod" accepts and closes before answering.
async fn closed_before_answer() -> hyper::Error {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        drop(socket);
    });
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = Request::get("/").body(Empty::<Bytes>::new()).unwrap();
    sender.send_request(request).await.unwrap_err()
}

/// A real hyper-util client error whose source chain names the address it could not reach.
async fn h2c_refused() -> hyper_util::client::legacy::Error {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::get(format!("http://{addr}/"))
        .body(Empty::new())
        .unwrap();
    client.request(request).await.unwrap_err()
}

/// One of each variant, each with the most revealing cause available.
async fn every_error() -> Vec<ProxyError> {
    let pod: SocketAddr = POD.parse().unwrap();
    let function = "default/hello".to_string();
    let upstream = |source| ProxyError::Upstream {
        function: function.clone(),
        source,
    };
    let errors = vec![
        ProxyError::Host(HostError::Missing),
        ProxyError::Host(HostError::Invalid("bad host!".into())),
        ProxyError::UnknownFunction("nope.default.example.com".into()),
        ProxyError::FunctionDeleted(function.clone()),
        ProxyError::Rerouted(function.clone()),
        ProxyError::StartupFailed {
            function: function.clone(),
            reason: "CrashLoopBackOff".into(),
            message: format!("pod {POD_NAME} at {POD}: back-off restarting failed container"),
        },
        ProxyError::QueueFull {
            function: function.clone(),
            limit: "queue-max-requests",
            retry_after: 3,
        },
        ProxyError::Throttled {
            function: function.clone(),
            limit: "maxConcurrency",
            retry_after: 3,
        },
        ProxyError::Timeout(function.clone()),
        ProxyError::ResponseStartTimeout(function.clone()),
        upstream(UpstreamError::Connect {
            address: pod,
            source: io::Error::new(io::ErrorKind::ConnectionRefused, format!("refused by {POD}")),
        }),
        upstream(UpstreamError::Connect {
            address: pod,
            source: io::Error::other(format!("no route to {POD_NAME} ({POD})")),
        }),
        upstream(UpstreamError::ConnectTimeout(pod)),
        upstream(UpstreamError::Http(closed_before_answer().await)),
        upstream(UpstreamError::H2c(h2c_refused().await)),
        ProxyError::Lost {
            function: function.clone(),
            kind: "its pod went away before answering, and it cannot be sent again",
        },
        ProxyError::RequestBody(function.clone()),
    ];
    for e in &errors {
        // Adding a variant fails to compile here until it is covered above.
        match e {
            ProxyError::Host(_)
            | ProxyError::UnknownFunction(_)
            | ProxyError::FunctionDeleted(_)
            | ProxyError::Rerouted(_)
            | ProxyError::StartupFailed { .. }
            | ProxyError::QueueFull { .. }
            | ProxyError::Throttled { .. }
            | ProxyError::Timeout(_)
            | ProxyError::ResponseStartTimeout(_)
            | ProxyError::Upstream { .. }
            | ProxyError::Lost { .. }
            | ProxyError::RequestBody(_) => {}
        }
    }
    errors
}

async fn body_text(response: Response<ResponseBody>) -> String {
    let bytes = tokio::time::timeout(Duration::from_secs(5), response.into_body().collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn the_detectors_detect() {
    assert!(has_ipv4("connect to 10.244.0.11:8080: timed out"));
    assert!(has_port("connect to pod:8080"));
    assert!(!has_ipv4(
        "function default/hello did not answer within its timeout"
    ));
    assert!(!has_port(
        "cannot reach function default/hello: connection refused"
    ));
}

#[tokio::test]
async fn no_error_answer_reveals_an_address_a_pod_or_a_cause() {
    let request_id = HeaderValue::from_static("0123456789abcdef0123456789abcdef");
    for error in every_error().await {
        let detail = error.detail();
        let status = error.status();
        let response = with_request_id(error.into_response(), &request_id);
        assert_eq!(response.status(), status);
        assert_eq!(response.headers()[&X_REQUEST_ID], request_id);
        assert!(response.extensions().get::<ErrorReport>().is_none());
        let body = body_text(response).await;
        assert!(!has_ipv4(&body), "{body:?} (detail {detail:?})");
        assert!(!has_port(&body), "{body:?}");
        assert!(!body.contains(POD_NAME), "{body:?}");
        assert!(
            body.ends_with("request id: 0123456789abcdef0123456789abcdef\n"),
            "{body:?}"
        );
        if body.contains("default/hello") {
            continue;
        }
        // Only the host errors, which happen before a function is known, may leave it out.
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
            "{body:?}"
        );
    }
}

#[tokio::test]
async fn the_log_detail_keeps_the_cause() {
    let errors = every_error().await;
    let startup = errors
        .iter()
        .find(|e| matches!(e, ProxyError::StartupFailed { .. }))
        .unwrap();
    assert!(startup.detail().contains(POD_NAME));
    let refused = errors
        .iter()
        .find(|e| {
            matches!(
                e,
                ProxyError::Upstream {
                    source: UpstreamError::Connect { .. },
                    ..
                }
            )
        })
        .unwrap();
    assert!(refused.detail().contains(POD), "{}", refused.detail());
    assert_eq!(
        refused.public_message(),
        "cannot reach function default/hello: connection refused"
    );
    let closed = errors
        .iter()
        .find(|e| {
            matches!(
                e,
                ProxyError::Upstream {
                    source: UpstreamError::Http(_),
                    ..
                }
            )
        })
        .unwrap();
    assert_eq!(
        closed.public_message(),
        "cannot reach function default/hello: the connection closed before the response began"
    );
}

#[tokio::test]
async fn answers_that_are_not_the_activators_own_pass_unchanged() {
    let pod_answer = Response::new(ResponseBody::text(Bytes::from_static(b"from the pod 10.0.0.1")));
    let response = with_request_id(pod_answer, &HeaderValue::from_static("id"));
    assert!(!response.headers().contains_key(&X_REQUEST_ID));
    assert_eq!(body_text(response).await, "from the pod 10.0.0.1");
}
