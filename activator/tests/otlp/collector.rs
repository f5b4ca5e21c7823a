//! A real OpenTelemetry Collector for the tracing tests: `otelcol-zeroscale`, which
//! `e2e/cluster/build.sh otelcol` builds from the pinned module, run as a host process with an OTLP/HTTP
//! receiver on a free loopback port and a file exporter writing OTLP JSON lines into a temporary
//! directory.

use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde_json::Value;
use tokio::process::{Child, Command};

/// The binary: `$OTELCOL`, else `$ZEROSCALE_CACHE/k8s-<version>/bin/otelcol-zeroscale` as
/// `e2e/cluster/lib.sh` computes `$ZS_BIN`.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("OTELCOL") {
        return PathBuf::from(path);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let go_mod =
        std::fs::read_to_string(root.join("e2e/cluster/k8s/go.mod")).expect("read e2e/cluster/k8s/go.mod");
    let version = go_mod
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.len() >= 2 && w[0] == "k8s.io/kubernetes" && w[1].starts_with('v'))
        .map(|w| w[1].to_string())
        .expect("k8s.io/kubernetes version in e2e/cluster/k8s/go.mod");
    let cache = std::env::var_os("ZEROSCALE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/zeroscale")
        });
    cache.join(format!("k8s-{version}/bin/otelcol-zeroscale"))
}

/// A free loopback port (bound and released; the process binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running collector.
pub struct Collector {
    /// The OTLP/HTTP receiver's base URL (`http://127.0.0.1:<port>`).
    pub endpoint: String,
    spans: PathBuf,
    dir: PathBuf,
    child: Child,
}

impl Collector {
    /// Starts a collector and waits until its receiver accepts connections.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("zs-otelcol-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the collector's directory");
        let port = free_port();
        let spans = dir.join("spans.jsonl");
        let config = format!(
            "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:{port}\n\
             exporters:\n  file:\n    path: {}\n    flush_interval: 50ms\n\
             service:\n  telemetry:\n    metrics:\n      level: none\n  pipelines:\n    traces:\n      \
             receivers: [otlp]\n      exporters: [file]\n",
            spans.display()
        );
        std::fs::write(dir.join("config.yaml"), config).expect("write the collector's config");
        let binary = binary();
        let log = std::fs::File::create(dir.join("collector.log")).expect("create the collector's log");
        let child = Command::new(&binary)
            .arg(format!("--config={}", dir.join("config.yaml").display()))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "otelcol-zeroscale not found at {}: build it with `bash e2e/cluster/build.sh otelcol` \
                     (or set OTELCOL): {e}",
                    binary.display()
                )
            });
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Self {
                    endpoint: format!("http://{addr}"),
                    spans,
                    dir,
                    child,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(dir.join("collector.log")).unwrap_or_default();
        panic!("the collector did not listen on {addr} within 10 s:\n{log}");
    }

    /// Every span exported so far, flattened from the file exporter's lines.
    pub fn spans(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.spans).unwrap_or_default();
        let mut out = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(doc) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            for resource in doc["resourceSpans"].as_array().into_iter().flatten() {
                for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                    for span in scope["spans"].as_array().into_iter().flatten() {
                        let mut span = span.clone();
                        span["service"] = resource["resource"]["attributes"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|a| a["key"] == "service.name")
                            .map(|a| a["value"]["stringValue"].clone())
                            .unwrap_or(Value::Null);
                        out.push(span);
                    }
                }
            }
        }
        out
    }

    /// The spans of trace `trace_id` once there are at least `count` of them (within 20 s).
    pub async fn wait_for_trace(&self, trace_id: &str, count: usize) -> Vec<Value> {
        for _ in 0..400 {
            let spans: Vec<Value> = self
                .spans()
                .into_iter()
                .filter(|s| s["traceId"] == trace_id)
                .collect();
            if spans.len() >= count {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "fewer than {count} spans of trace {trace_id} reached the collector; it has: {:#?}",
            self.spans()
        );
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
