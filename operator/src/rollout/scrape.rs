//! Reading the activators' per-revision counts: the ready endpoints of the activator Service's
//! EndpointSlices (port `admin`), each asked `GET /revisions/stats` with a short deadline.
//!
//! An activator that does not answer is left out of this reading (logged); its counts come back in the
//! window with its next answer, because they are cumulative.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::{Client as HttpClient, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::ListParams;
use kube::{Api, Client};
use zeroscale_common::revision_stats::{STATS_PATH, StatsReport};

/// Deadline of one activator's answer.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Largest report read (a report lists every revision the activator served).
const MAX_REPORT_BYTES: usize = 4 * 1024 * 1024;
/// Name of the activator Service's port that leads to the admin port.
const ADMIN_PORT_NAME: &str = "admin";

/// Why the activators could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// `--activator-service` is not `<service>.<namespace>[.svc...]`.
    #[error("--activator-service {0:?} is not <service>.<namespace>.svc[.<cluster domain>]")]
    Service(String),
    /// The EndpointSlices could not be listed.
    #[error("cannot list the EndpointSlices of the activator Service {service}")]
    List {
        /// `<namespace>/<service>`.
        service: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// The activator Service's name and namespace from its host name (`--activator-service`).
pub fn service_of(host: &str) -> Result<(&str, &str), ScrapeError> {
    let mut parts = host.split('.');
    match (parts.next(), parts.next()) {
        (Some(name), Some(namespace)) if !name.is_empty() && !namespace.is_empty() => Ok((name, namespace)),
        _ => Err(ScrapeError::Service(host.to_string())),
    }
}

/// `http://<address>:<admin port>/revisions/stats` for every ready endpoint of `slices`.
pub fn stats_urls(slices: &[EndpointSlice]) -> Vec<String> {
    let mut urls = Vec::new();
    for slice in slices {
        let Some(port) = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(ADMIN_PORT_NAME))
            .and_then(|p| p.port)
        else {
            continue;
        };
        for endpoint in &slice.endpoints {
            if endpoint.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            for address in &endpoint.addresses {
                let host = if address.contains(':') {
                    format!("[{address}]")
                } else {
                    address.clone()
                };
                urls.push(format!("http://{host}:{port}{STATS_PATH}"));
            }
        }
    }
    urls.sort();
    urls.dedup();
    urls
}

/// Reads every activator's report; a failed one is logged and left out.
#[derive(Clone, Debug)]
pub struct Scraper {
    http: HttpClient<HttpConnector, Empty<Bytes>>,
}

impl Default for Scraper {
    fn default() -> Self {
        Self {
            http: HttpClient::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl Scraper {
    /// The reports of the activators behind the Service `activator_service` (a host name).
    pub async fn reports(
        &self,
        client: &Client,
        activator_service: &str,
    ) -> Result<Vec<StatsReport>, ScrapeError> {
        let (name, namespace) = service_of(activator_service)?;
        let api: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
        let params = ListParams::default().labels(&format!("kubernetes.io/service-name={name}"));
        let slices = api.list(&params).await.map_err(|source| ScrapeError::List {
            service: format!("{namespace}/{name}"),
            source,
        })?;
        let urls = stats_urls(&slices.items);
        let reads = urls.iter().map(|url| self.read(url));
        let mut reports = Vec::with_capacity(urls.len());
        for (url, result) in urls.iter().zip(futures::future::join_all(reads).await) {
            match result {
                Ok(report) => reports.push(report),
                Err(why) => tracing::warn!(%url, error = %why, "cannot read the activator's revision counts"),
            }
        }
        Ok(reports)
    }

    async fn read(&self, url: &str) -> Result<StatsReport, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("{e}"))?;
        let answer = tokio::time::timeout(TIMEOUT, self.http.get(uri))
            .await
            .map_err(|_| format!("no answer within {TIMEOUT:?}"))?
            .map_err(|e| e.to_string())?;
        if !answer.status().is_success() {
            return Err(format!("answered {}", answer.status()));
        }
        let body = tokio::time::timeout(
            TIMEOUT,
            Limited::new(answer.into_body(), MAX_REPORT_BYTES).collect(),
        )
        .await
        .map_err(|_| format!("no complete answer within {TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?
        .to_bytes();
        serde_json::from_slice(&body).map_err(|e| format!("not a revision stats report: {e}"))
    }
}

#[cfg(test)]
#[path = "scrape_tests.rs"]
mod tests;
