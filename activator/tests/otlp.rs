//! Request spans reach a real OTLP receiver (issue #16): the activator binary, run with
//! `--otlp-endpoint` at an OpenTelemetry Collector on loopback, continues a caller's `traceparent`
//! with a server span and a client span for the forward, sends the client span's context to the pod,
//! and writes the same trace and span ids in its access-log line and its other JSON log lines about
//! the request.
#![allow(clippy::unwrap_used)]

#[path = "otlp/collector.rs"]
mod collector;
mod support;

use std::{
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use collector::{Collector, free_port};
use http::Response;
use serde_json::Value;
use support::{full, send, upstream};
use tokio::process::{Child, Command};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const HOST: &str = "hello.default.svc.cluster.local";

struct Process {
    child: Child,
    log: std::path::PathBuf,
    internal: String,
}

impl Process {
    /// The JSON log lines written so far.
    fn log_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The first log line matching `wanted`, waiting for it up to 5 s.
    async fn log_line(&self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..100 {
            if let Some(line) = self.log_lines().into_iter().find(&wanted) {
                return line;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no log line {what} in {:#?}", self.log_lines());
    }

    /// The access-log line of the request answered `status`.
    async fn access_line(&self, status: u16) -> Value {
        self.log_line(&format!("access {status}"), |l| {
            l["target"] == "access" && l["status"] == status
        })
        .await
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The activator binary serving `hello` at `pod`, exporting to `otlp` when given.
async fn activator(pod: std::net::SocketAddr, otlp: Option<&str>) -> Process {
    let dir = std::env::temp_dir().join(format!(
        "zs-otlp-activator-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("functions.yaml");
    std::fs::write(
        &config,
        format!(
            "functions:\n  - namespace: default\n    name: hello\n    endpoints: [{{address: \"{pod}\"}}]\n"
        ),
    )
    .unwrap();
    let (external, internal, admin) = (free_port(), free_port(), free_port());
    let log = dir.join("activator.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_zeroscale-activator"));
    command
        .arg(format!("--static-config={}", config.display()))
        .args([
            "--autoscaler-url=",
            "--broker-addr=off",
            "--log-format=json",
            "--access-log=true",
        ])
        .arg(format!("--external-addr=127.0.0.1:{external}"))
        .arg(format!("--internal-addr=127.0.0.1:{internal}"))
        .arg(format!("--admin-addr=127.0.0.1:{admin}"))
        // Debug for `respond`: a refused request's line is the one written about it today.
        .env("RUST_LOG", "info,zeroscale_activator::respond=debug")
        // Spans leave within 50 ms instead of the SDK's 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Some(endpoint) = otlp {
        command.arg(format!("--otlp-endpoint={endpoint}"));
    }
    let child = command.spawn().expect("start the activator");
    let ready = format!("http://127.0.0.1:{admin}/ready");
    let client = support::client();
    for _ in 0..200 {
        let request = http::Request::get(&ready).body(full("")).unwrap();
        if let Ok(r) = client.request(request).await
            && r.status() == 200
        {
            return Process {
                child,
                log,
                internal: format!("127.0.0.1:{internal}"),
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the activator was not ready within 10 s");
}

/// A pod answering 200 that records the `traceparent` of every request.
async fn pod() -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&seen);
    let addr = upstream(
        [127, 0, 0, 1],
        move |req: http::Request<hyper::body::Incoming>| {
            let recorded = Arc::clone(&recorded);
            async move {
                let tp = req
                    .headers()
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                recorded.lock().unwrap().push(tp.to_string());
                Response::new(full("ok"))
            }
        },
    )
    .await;
    (addr, seen)
}

fn request(internal: &str, host: &str, traceparent: &str) -> http::Request<support::TestBody> {
    http::Request::get(format!("http://{internal}/work"))
        .header("host", host)
        .header("traceparent", traceparent)
        .header("tracestate", "vendor=opaque")
        .header("x-request-id", "req-otlp-1")
        .body(full(""))
        .unwrap()
}

fn attribute<'a>(span: &'a Value, key: &str) -> &'a Value {
    span["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|kv| kv["key"] == key))
        .map(|kv| &kv["value"])
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn a_callers_trace_reaches_the_collector_the_pod_and_the_logs() {
    let collector = Collector::start().await;
    let (pod, seen) = pod().await;
    let activator = activator(pod, Some(&collector.endpoint)).await;
    let traceparent = format!("00-{TRACE}-{CALLER_SPAN}-01");
    let (status, _, _) = send(request(&activator.internal, HOST, &traceparent)).await;
    assert_eq!(status, 200);

    let spans = collector.wait_for_trace(TRACE, 2).await;
    let server = spans.iter().find(|s| s["kind"] == 2).expect("a server span");
    let client = spans.iter().find(|s| s["kind"] == 3).expect("a client span");
    assert_eq!(
        server["parentSpanId"], CALLER_SPAN,
        "the caller's span is the parent"
    );
    assert_eq!(server["service"], "zeroscale-activator");
    assert_eq!(server["name"], format!("GET {HOST}"));
    assert_eq!(attribute(server, "http.response.status_code")["intValue"], "200");
    assert_eq!(
        attribute(server, "zeroscale.request_id")["stringValue"],
        "req-otlp-1"
    );
    assert_eq!(attribute(server, "url.path")["stringValue"], "/work");
    assert_eq!(server["traceState"], "vendor=opaque", "tracestate is continued");
    assert_eq!(client["parentSpanId"], server["spanId"]);
    let client_id = client["spanId"].as_str().unwrap();
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [format!("00-{TRACE}-{client_id}-01")],
        "the pod's parent is the forward's span"
    );
    let started: u64 = server["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let ended: u64 = server["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let client_started: u64 = client["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let client_ended: u64 = client["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(
        started <= client_started && client_ended <= ended,
        "the forward is inside the request"
    );
    let access = activator.access_line(200).await;
    assert_eq!(access["request_id"], "req-otlp-1");
    assert_eq!(access["trace_id"], TRACE);
    assert_eq!(
        access["span_id"], server["spanId"],
        "the access log names the exported server span"
    );
    assert_eq!(access["function"], "hello");

    // A request for a function nobody serves is refused (404), and its log line names the trace and
    // the activator's span.
    let (status, _, _) = send(request(
        &activator.internal,
        "nobody.default.svc.cluster.local",
        &traceparent,
    ))
    .await;
    assert_eq!(status, 404);
    let spans = collector.wait_for_trace(TRACE, 3).await;
    let refused = spans
        .iter()
        .find(|s| s["kind"] == 2 && attribute(s, "http.response.status_code")["intValue"] == "404")
        .expect("the refused request's server span");
    let line = activator
        .log_line("request refused", |l| l["message"] == "request refused")
        .await;
    assert_eq!(line["span"]["name"], "request");
    assert_eq!(line["span"]["request_id"], "req-otlp-1");
    assert_eq!(line["span"]["trace_id"], TRACE);
    assert_eq!(line["span"]["span_id"], refused["spanId"]);
    let access = activator.access_line(404).await;
    assert_eq!(access["trace_id"], TRACE);
    assert_eq!(access["span_id"], refused["spanId"]);
}

#[tokio::test]
async fn without_an_endpoint_the_pod_still_gets_the_trace_and_the_logs_name_it() {
    let (pod, seen) = pod().await;
    let activator = activator(pod, None).await;
    let traceparent = format!("00-{TRACE}-{CALLER_SPAN}-01");
    let (status, _, _) = send(request(&activator.internal, HOST, &traceparent)).await;
    assert_eq!(status, 200);
    let forwarded = seen
        .lock()
        .unwrap()
        .first()
        .cloned()
        .expect("the pod got the request");
    let parts: Vec<&str> = forwarded.split('-').collect();
    assert_eq!(parts[1], TRACE);
    assert_ne!(
        parts[2], CALLER_SPAN,
        "the activator's hop has a span id of its own"
    );
    assert_eq!(parts[3], "01");
    let access = activator.access_line(200).await;
    assert_eq!(access["trace_id"], TRACE);
    assert_eq!(
        access["span_id"], parts[2],
        "the access log names the span the pod sees as its parent"
    );
    let (status, _, _) = send(request(
        &activator.internal,
        "nobody.default.svc.cluster.local",
        &traceparent,
    ))
    .await;
    assert_eq!(status, 404);
    let line = activator
        .log_line("request refused", |l| l["message"] == "request refused")
        .await;
    assert_eq!(line["span"]["trace_id"], TRACE);
    assert_eq!(line["span"]["request_id"], "req-otlp-1");
    assert_eq!(activator.access_line(404).await["trace_id"], TRACE);
}
