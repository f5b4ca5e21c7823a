//! The cluster side of the benchmark: Functions created at zero, metric scrapes, the moment a
//! function's pod is first able to serve, observed from the host, and the runtime's share of the start
//! (pod scheduled → container running) from the kubelet's pod status.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher::{self, Event};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use zeroscale_crds::revision::split_revision_name;

use crate::BenchError;
use crate::stats::MS;

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
        // Each Function's pods are its revision's Deployment, `<function>-<hash>`.
        let at_zero = list
            .items
            .iter()
            .filter(|d| d.spec.as_ref().and_then(|s| s.replicas) == Some(0))
            .filter_map(|d| d.metadata.name.as_deref())
            .map(|name| split_revision_name(name).0.to_string())
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

/// The API server's `/metrics` text through `client`, if it answers (the local cluster's admin
/// credentials may read it).
pub async fn apiserver_metrics(client: &kube::Client) -> Option<String> {
    let request = http::Request::get("/metrics").body(Vec::new()).ok()?;
    match client.request_text(request).await {
        Ok(text) => Some(text),
        Err(e) => {
            eprintln!("coldstart: cannot read the API server's /metrics: {e}");
            None
        }
    }
}

/// When one of a function's pods could first serve, seen from the host (wall clock, seconds).
#[derive(Debug, Clone, Copy)]
pub struct Serving {
    /// The pod's IP first appeared in its status.
    pub ip_seen: f64,
    /// Lower bound of the moment the pod could serve: the end of the last failed probe (or the IP's
    /// appearance, when the first probe already succeeded). Using the lower bound makes the platform's
    /// share look longer, never shorter.
    pub serving: f64,
}

/// How long the first pod's container took to start once the pod was scheduled, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ContainerStart {
    /// From the pod status: the `PodScheduled` condition's `lastTransitionTime` → the container's
    /// `state.running.startedAt`, as the API server and the kubelet wrote them (whole seconds: the API
    /// stores these times with second precision).
    pub status_ms: Option<f64>,
    /// The same span as this watch saw it: the pod first seen bound to the node → first seen with its
    /// container running (millisecond resolution, plus the kubelet's status-report delay).
    pub watched_ms: Option<f64>,
}

/// Seconds since the Unix epoch of an API time.
fn api_seconds(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> f64 {
    t.0.as_millisecond() as f64 / MS
}

/// `(scheduled, started)` of a pod from its status, seconds since the epoch: the `PodScheduled=True`
/// condition's transition and the first container's `running.startedAt`.
pub fn status_times(pod: &Pod) -> (Option<f64>, Option<f64>) {
    let Some(status) = pod.status.as_ref() else {
        return (None, None);
    };
    let scheduled = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(api_seconds);
    let started = status
        .container_statuses
        .iter()
        .flatten()
        .next()
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.running.as_ref())
        .and_then(|r| r.started_at.as_ref())
        .map(api_seconds);
    (scheduled, started)
}

/// What the watch has seen of one pod so far (wall clock, seconds).
#[derive(Debug, Default)]
struct PodSeen {
    bound: Option<f64>,
    reported: bool,
}

/// Watches a function's pods and probes each new pod IP directly, every millisecond.
pub struct ServeWatch {
    serving: mpsc::UnboundedReceiver<Serving>,
    started: mpsc::UnboundedReceiver<ContainerStart>,
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
        let (found, serving) = mpsc::unbounded_channel();
        let (start_found, started) = mpsc::unbounded_channel();
        let (ready, established) = oneshot::channel();
        let path = path.to_string();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(watcher::watcher(api, config));
            let mut ready = Some(ready);
            let mut probing = HashSet::new();
            let mut probes = Vec::new();
            let mut seen: std::collections::HashMap<String, PodSeen> = Default::default();
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
                let now = unix_now();
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                let entry = seen.entry(uid).or_default();
                if entry.bound.is_none() && pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
                    entry.bound = Some(now);
                }
                let (scheduled, running) = status_times(&pod);
                if !entry.reported && running.is_some() {
                    entry.reported = true;
                    let _ = start_found.send(ContainerStart {
                        status_ms: scheduled.zip(running).map(|(s, r)| (r - s) * MS),
                        watched_ms: entry.bound.map(|b| (now - b) * MS),
                    });
                }
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
            serving,
            started,
            tasks: vec![task],
        })
    }

    /// The first pod's container start (scheduled → running), waiting up to `limit`.
    pub async fn container_start(&mut self, limit: Duration) -> Option<ContainerStart> {
        tokio::time::timeout(limit, self.started.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next pod to serve (the first, at the first call), waiting up to `limit`.
    pub async fn first(&mut self, limit: Duration) -> Option<Serving> {
        tokio::time::timeout(limit, self.serving.recv())
            .await
            .ok()
            .flatten()
    }

    /// Every pod seen serving: the next one waiting up to `limit`, then those already found.
    pub async fn all(&mut self, limit: Duration) -> Vec<Serving> {
        let mut all: Vec<Serving> = self.first(limit).await.into_iter().collect();
        while let Ok(next) = self.serving.try_recv() {
            all.push(next);
        }
        all
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
        let yaml = functions_yaml(&["a".into(), "b".into()], zeroscale_e2e::ECHO_IMAGE);
        assert_eq!(yaml.matches("kind: Function").count(), 2);
        assert_eq!(yaml.matches("initial: 0").count(), 2);
        assert!(yaml.contains("name: b") && yaml.contains("---\n"));
        assert!(yaml.contains("image: localhost:5000/zeroscale/echo:0.1.0"));
    }

    #[test]
    fn status_times_read_the_scheduled_condition_and_the_running_container() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:01Z"},
                ],
                "containerStatuses": [{
                    "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"running": {"startedAt": "2026-01-01T00:00:03Z"}},
                }],
            },
        }))
        .expect("pod");
        let (scheduled, started) = status_times(&pod);
        let (scheduled, started) = (scheduled.expect("scheduled"), started.expect("started"));
        assert_eq!((started - scheduled) * MS, 2000.0);
        let waiting: Pod = serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "status": {
            "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}}))
        .expect("pod");
        assert_eq!(status_times(&waiting), (None, None));
    }
}
