//! One cold start and the burst, against the installed system.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;

use crate::BenchError;
use crate::api_load::{ApiCounters, ApiLoad};
use crate::cluster::{ServeWatch, apiserver_metrics, scrape, unix_now};
use crate::drain::HandOver;
use crate::figures::{Burst, ColdStart, Observed, Shot};
use crate::prom::{latest, total};
use crate::stats::MS;

/// Where the system is and what to run.
#[derive(Debug, Clone)]
pub struct Target {
    /// The activator's external URL.
    pub activator: String,
    /// Admin URLs (`/metrics`) of every activator replica.
    pub activator_admin: Vec<String>,
    /// Admin URLs (`/metrics`) of every autoscaler replica.
    pub autoscaler_admin: Vec<String>,
    /// Admin URLs (`/metrics`) of every operator replica (none: the operator's share is not reported).
    pub operator_admin: Vec<String>,
    /// Namespace of the benchmark's Functions.
    pub namespace: String,
    /// External domain the activator routes (`<fn>.<ns>.<domain>`).
    pub domain: String,
    /// The function's container port.
    pub port: u16,
}

const DEMAND: (&str, &str) = ("kind", "dev.zeroscale.demand");
const ACCEPTED: (&str, &str) = ("outcome", "accepted");

/// The activators' wall-clock stamps of a function's latest cold episode (the latest over replicas).
struct ColdStamps {
    started: Option<f64>,
    address: Option<f64>,
    forwarded: Option<f64>,
}

impl ColdStamps {
    /// The stamps labelled `labels` in the activators' metrics `texts`.
    fn read(texts: &[String], labels: &[(&str, &str)]) -> Self {
        let stamp = |name: &str| latest(texts, name, labels);
        Self {
            started: stamp("zeroscale_activator_cold_start_started_timestamp_seconds"),
            address: stamp("zeroscale_activator_cold_start_address_timestamp_seconds"),
            forwarded: stamp("zeroscale_activator_cold_start_forwarded_timestamp_seconds"),
        }
    }
}

/// Autoscaler counters summed over replicas: demands accepted, demand patches and their seconds.
fn autoscaler_counts(texts: &[String]) -> (f64, f64, f64) {
    (
        total(texts, "zeroscale_autoscaler_signals_total", &[DEMAND, ACCEPTED]),
        total(texts, "zeroscale_autoscaler_demand_to_patch_seconds_count", &[]),
        total(texts, "zeroscale_autoscaler_demand_to_patch_seconds_sum", &[]),
    )
}

impl Target {
    /// The labels of `function`'s series in the components' metrics.
    fn labels<'a>(&'a self, function: &'a str) -> [(&'static str, &'a str); 2] {
        [("namespace", self.namespace.as_str()), ("function", function)]
    }

    fn host(&self, function: &str) -> String {
        format!("{function}.{}.{}", self.namespace, self.domain)
    }

    async fn get(&self, function: &str, limit: Duration) -> u16 {
        let host = self.host(function);
        let url = format!("{}/", self.activator.trim_end_matches('/'));
        match zeroscale_e2e::http_request(Method::GET, &url, &[("host", host.as_str())], Bytes::new(), limit)
            .await
        {
            Ok(r) => r.status,
            Err(e) => {
                eprintln!("coldstart: {function}: {e}");
                0
            }
        }
    }

    /// One cold start of `function` (at zero, never woken before), with its platform share.
    pub async fn cold_start(&self, function: &str) -> Result<ColdStart, BenchError> {
        let mut watch = ServeWatch::start(&self.namespace, function, self.port, "/healthz").await?;
        let (demands0, patches0, patch_seconds0) = autoscaler_counts(&scrape(&self.autoscaler_admin).await);
        let sent = unix_now();
        let status = self.get(function, Duration::from_secs(60)).await;
        let answered = unix_now();
        let serving = watch.first(Duration::from_secs(5)).await.map(|s| s.serving);
        let container = watch
            .container_start(Duration::from_secs(5))
            .await
            .unwrap_or_default();
        let activator = scrape(&self.activator_admin).await;
        let (demands1, patches1, patch_seconds1) = autoscaler_counts(&scrape(&self.autoscaler_admin).await);
        let labels = self.labels(function);
        let stamps = ColdStamps::read(&activator, &labels);
        let observed = Observed {
            sent,
            answered,
            status,
            serving,
            episode_started: stamps.started,
            address_known: stamps.address,
            forwarded: stamps.forwarded,
            episodes: total(&activator, "zeroscale_activator_cold_starts_total", &labels),
            demands: demands1 - demands0,
            demand_accepted: latest(
                &scrape(&self.autoscaler_admin).await,
                "zeroscale_autoscaler_demand_accepted_timestamp_seconds",
                &[],
            ),
            patches: patches1 - patches0,
            patch_seconds: patch_seconds1 - patch_seconds0,
        };
        let mut sample = ColdStart::from_observed(function, &observed);
        sample.container_start_ms = container.status_ms;
        sample.container_start_watched_ms = container.watched_ms;
        Ok(sample)
    }

    /// The API server's and the operator's request counters now (the API server's only with a
    /// `client`).
    async fn api_counters(&self, client: Option<&kube::Client>) -> ApiCounters {
        let apiserver = match client {
            Some(client) => apiserver_metrics(client).await,
            None => None,
        };
        ApiCounters::read(apiserver.as_deref(), &scrape(&self.operator_admin).await)
    }

    /// `requests` concurrent requests, one connection each, to `function` at zero.
    pub async fn burst(&self, function: &str, requests: usize) -> Result<Burst, BenchError> {
        let mut watch = ServeWatch::start(&self.namespace, function, self.port, "/healthz").await?;
        // One client for both readings of the API server's counters, made before the burst.
        let client = zeroscale_e2e::try_client().await.ok();
        let counters = self.api_counters(client.as_ref()).await;
        let this = Arc::new(self.clone());
        // Every task waits at the barrier, so the requests leave together rather than as they are spawned.
        let barrier = Arc::new(tokio::sync::Barrier::new(requests));
        let tasks: Vec<_> = (0..requests)
            .map(|_| {
                let (this, barrier, function) =
                    (Arc::clone(&this), Arc::clone(&barrier), function.to_string());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let sent = unix_now();
                    let status = this.get(&function, Duration::from_secs(60)).await;
                    Shot {
                        sent,
                        done: unix_now(),
                        ok: (200..300).contains(&status),
                    }
                })
            })
            .collect();
        let mut shots = Vec::with_capacity(requests);
        for task in futures::future::join_all(tasks).await {
            match task {
                Ok(shot) => shots.push(shot),
                Err(e) => eprintln!("coldstart: burst task: {e}"),
            }
        }
        let api_load = ApiLoad::between(&counters, &self.api_counters(client.as_ref()).await);
        let seen = watch.all(Duration::from_secs(5)).await;
        let serving: Vec<f64> = seen.iter().map(|s| s.serving).collect();
        let stamps = ColdStamps::read(&scrape(&self.activator_admin).await, &self.labels(function));
        let mut burst = Burst::from_shots(&shots, &serving);
        // A late sighting says which of the driver's steps lagged: its watch (the address came when
        // the pod already served: ~0 ms) or its probe (the address came well before).
        let first = seen.iter().min_by(|a, b| a.serving.total_cmp(&b.serving));
        if let (Some(why), Some(first)) = (burst.excluded.as_mut(), first) {
            let probing = (first.serving - first.ip_seen) * MS;
            why.push_str(&format!(
                "; its watch had the address {probing:.1} ms before that"
            ));
        }
        // Counted from ready, like the figures it splits: none where ready is unknown.
        let hand_over = match burst.ready_ms {
            Some(_) => HandOver::of(stamps.address, stamps.forwarded, &serving),
            None => HandOver::default(),
        };
        Ok(Burst {
            api_load,
            hand_over,
            ..burst
        })
    }
}
