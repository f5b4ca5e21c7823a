//! The counting sinks: echo Functions with `ECHO_RECORD_IDS=1` (examples/functions/echo, `GET /ids`),
//! read on each pod's IP from the host, so a count does not depend on the activators being killed.
//! The ids seen are kept across polls: a pod that goes away later does not take them with it.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use zeroscale_e2e::{http_get, try_kubectl};

/// The ids one Function's pods received, accumulated over every poll.
#[derive(Debug, Default)]
pub struct Counted {
    /// Distinct ids.
    pub ids: BTreeSet<String>,
    /// Requests with an id, summed over the pods at their latest poll (redeliveries included).
    pub requests: u64,
}

/// The IPs of Function `function`'s running pods in `namespace`.
async fn pod_ips(namespace: &str, function: &str) -> Vec<String> {
    let selector = format!("zeroscale.dev/function={function}");
    let out = try_kubectl(
        &[
            "get",
            "pods",
            "-n",
            namespace,
            "-l",
            &selector,
            "--field-selector=status.phase=Running",
            "-o",
            "jsonpath={.items[*].status.podIP}",
        ],
        None,
    )
    .await
    .unwrap_or_default();
    out.split_whitespace().map(str::to_string).collect()
}

impl Counted {
    /// Reads `/ids` from every running pod of `function` and adds what is new.
    pub async fn poll(&mut self, namespace: &str, function: &str) {
        let mut requests = 0;
        for ip in pod_ips(namespace, function).await {
            let Ok(response) = http_get(&format!("http://{ip}:8080/ids")).await else {
                continue;
            };
            let doc: Value = response.json();
            requests += doc["requests"].as_u64().unwrap_or(0);
            let ids = doc["ids"].as_array().cloned().unwrap_or_default();
            self.ids
                .extend(ids.iter().filter_map(Value::as_str).map(str::to_string));
        }
        self.requests = self.requests.max(requests);
    }
}

/// The subscriber and the dead-letter sink, polled together.
#[derive(Debug, Default)]
pub struct Sinks {
    /// What the subscriber Function received.
    pub delivered: Counted,
    /// What the dead-letter Function received.
    pub dead: Counted,
}

impl Sinks {
    /// Polls both Functions.
    pub async fn poll(&mut self, namespace: &str, subscriber: &str, dead_letter: &str) {
        self.delivered.poll(namespace, subscriber).await;
        self.dead.poll(namespace, dead_letter).await;
    }

    /// How many of `accepted` reached neither sink.
    pub fn missing(&self, accepted: &BTreeSet<String>) -> usize {
        accepted
            .iter()
            .filter(|id| !self.delivered.ids.contains(*id) && !self.dead.ids.contains(*id))
            .count()
    }
}

/// Time between two polls of the sinks.
pub const POLL: Duration = Duration::from_millis(500);
