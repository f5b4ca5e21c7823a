//! The cluster side of the benchmark: Functions created at zero, metric scrapes, and the moment a
//! function's pod is first able to serve, observed from the host.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher::{self, Event};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::BenchError;

/// Wall-clock now, seconds since the Unix epoch (comparable with the components' stamps).
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// YAML of `names` as Functions of the echo example created at zero (`scale.initial: 0`), so each
/// one's first request is an independent cold start without waiting for a scale-down.
pub fn functions_yaml(names: &[String], image: &str) -> String {
    names
        .iter()
        .map(|name| {
            format!(
                "apiVersion: zeroscale.dev/v1alpha1\nkind: Function\nmetadata:\n  name: {name}\nspec:\n  \
                 image: {image}\n  concurrency: 10\n  timeoutSeconds: 60\n  scale:\n    initial: 0\n    \
                 min: 0\n    max: 5\n    window: 30s\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Creates the Functions and waits (up to `limit`) until every one has its Deployment at zero.
pub async fn create_at_zero(
    ns: &str,
    names: &[String],
    image: &str,
    limit: Duration,
) -> Result<(), BenchError> {
    let yaml = functions_yaml(names, image);
    zeroscale_e2e::try_kubectl(&["apply", "-n", ns, "-f", "-"], Some(&yaml)).await?;
    let client = zeroscale_e2e::try_client().await?;
    let api: Api<Deployment> = Api::namespaced(client, ns);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let list = api.list(&Default::default()).await?;
        let at_zero = list
            .items
            .iter()
            .filter(|d| d.spec.as_ref().and_then(|s| s.replicas) == Some(0))
            .filter_map(|d| d.metadata.name.clone())
            .collect::<HashSet<_>>();
        if names.iter().all(|n| at_zero.contains(n)) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(BenchError::Setup(format!(
                "only {} of {} Deployments at zero after {limit:?}",
                at_zero.len(),
                names.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `/metrics` of every admin URL that answers (a replica that does not is left out).
pub async fn scrape(admin_urls: &[String]) -> Vec<String> {
    let mut texts = Vec::new();
    for url in admin_urls {
        match zeroscale_e2e::http_get(&format!("{}/metrics", url.trim_end_matches('/'))).await {
            Ok(r) if r.status == 200 => texts.push(r.text()),
            Ok(r) => eprintln!("coldstart: {url}/metrics answered {}", r.status),
            Err(e) => eprintln!("coldstart: cannot scrape {url}: {e}"),
        }
    }
    texts
}

/// When a function's first pod could serve, seen from the host (wall clock, seconds).
#[derive(Debug, Clone, Copy)]
pub struct Serving {
    /// The pod's IP first appeared in its status.
    pub ip_seen: f64,
    /// Lower bound of the moment the pod could serve: the end of the last failed probe (or the IP's
    /// appearance, when the first probe already succeeded). Using the lower bound makes the platform's
    /// share look longer, never shorter.
    pub serving: f64,
}

/// Watches a function's pods and probes each new pod IP directly, every millisecond.
pub struct ServeWatch {
    first: mpsc::UnboundedReceiver<Serving>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for ServeWatch {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl ServeWatch {
    /// Starts watching pods labelled for `function`; returns once the watch is established, so a request
    /// sent afterwards cannot wake a pod the watch misses.
    pub async fn start(ns: &str, function: &str, port: u16, path: &str) -> Result<Self, BenchError> {
        let client = zeroscale_e2e::try_client().await?;
        let api: Api<Pod> = Api::namespaced(client, ns);
        let config = watcher::Config::default().labels(&format!("zeroscale.dev/function={function}"));
        let (found, first) = mpsc::unbounded_channel();
        let (ready, established) = oneshot::channel();
        let path = path.to_string();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(watcher::watcher(api, config));
            let mut ready = Some(ready);
            let mut probing = HashSet::new();
            let mut probes = Vec::new();
            while let Some(event) = stream.next().await {
                let pod = match event {
                    Ok(Event::InitDone) => {
                        if let Some(ready) = ready.take() {
                            let _ = ready.send(());
                        }
                        continue;
                    }
                    Ok(Event::Apply(pod) | Event::InitApply(pod)) => pod,
                    Ok(_) => continue,
                    Err(e) => {
                        eprintln!("coldstart: pod watch: {e}");
                        continue;
                    }
                };
                let Some(ip) = pod.status.and_then(|s| s.pod_ip) else {
                    continue;
                };
                if probing.insert(ip.clone()) {
                    let url = format!("http://{ip}:{port}{path}");
                    probes.push(ProbeTask(tokio::spawn(probe(url, unix_now(), found.clone()))));
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(30), established)
            .await
            .map_err(|_| BenchError::Setup("pod watch not established in 30 s".into()))?
            .map_err(|_| BenchError::Setup("pod watch ended".into()))?;
        Ok(Self {
            first,
            tasks: vec![task],
        })
    }

    /// The first pod to serve, waiting up to `limit`.
    pub async fn first(&mut self, limit: Duration) -> Option<Serving> {
        tokio::time::timeout(limit, self.first.recv())
            .await
            .ok()
            .flatten()
    }
}

/// Aborts a probe when the watch ends.
struct ProbeTask(JoinHandle<()>);

impl Drop for ProbeTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn probe(url: String, ip_seen: f64, found: mpsc::UnboundedSender<Serving>) {
    let mut last_failure: Option<f64> = None;
    loop {
        let started = unix_now();
        let answer = zeroscale_e2e::http_request(
            http::Method::GET,
            &url,
            &[],
            bytes::Bytes::new(),
            Duration::from_millis(50),
        )
        .await;
        match answer {
            Ok(r) if r.status < 500 => {
                let serving = last_failure.unwrap_or(started).max(ip_seen);
                let _ = found.send(Serving { ip_seen, serving });
                return;
            }
            _ => last_failure = Some(unix_now()),
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_start_at_zero() {
        let yaml = functions_yaml(&["a".into(), "b".into()], "zeroscale/echo");
        assert_eq!(yaml.matches("kind: Function").count(), 2);
        assert_eq!(yaml.matches("initial: 0").count(), 2);
        assert!(yaml.contains("name: b") && yaml.contains("---\n"));
        assert!(yaml.contains("image: zeroscale/echo"));
    }
}
