//! Sends the activator's signals to the autoscaler: `dev.zeroscale.demand` the moment a function at
//! zero gets a request, and `dev.zeroscale.stats` every second per active function (docs/signals.md).

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::Full;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tokio_util::sync::CancellationToken;
use zeroscale_common::signals::{self, DEMAND_TYPE, Demand, FunctionKey, STATS_TYPE, Stats};

use crate::table::RoutingTable;

/// A signal that could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The event could not be built.
    #[error("cannot build signal: {0}")]
    Build(#[from] signals::SignalError),
    /// The autoscaler could not be reached.
    #[error("cannot reach the autoscaler: {0}")]
    Http(#[from] hyper_util::client::legacy::Error),
    /// The autoscaler answered with an error status.
    #[error("autoscaler answered {0}")]
    Status(http::StatusCode),
    /// The autoscaler did not answer in time.
    #[error("autoscaler did not answer in time")]
    Timeout,
    /// The request could not be built.
    #[error("cannot build request: {0}")]
    Request(#[from] http::Error),
}

/// An invalid `--autoscaler-url`.
#[derive(Debug, thiserror::Error)]
#[error("invalid autoscaler url {url:?}: {source}")]
pub struct UrlError {
    url: String,
    #[source]
    source: http::uri::InvalidUri,
}

/// Sends signals for one activator replica.
#[derive(Debug)]
pub struct SignalSender {
    url: Option<Uri>,
    activator: String,
    source: String,
    /// `Authorization` value sent with every signal, when the autoscaler requires a token.
    authorization: Option<http::HeaderValue>,
    client: Client<HttpConnector, Full<Bytes>>,
}

const SEND_TIMEOUT: Duration = Duration::from_secs(2);

impl SignalSender {
    /// A sender to `url` (empty = signals disabled) for the activator pod `pod_name`.
    pub fn new(url: &str, pod_name: &str) -> Result<Self, UrlError> {
        let url = if url.trim().is_empty() {
            None
        } else {
            Some(url.parse().map_err(|source| UrlError {
                url: url.to_string(),
                source,
            })?)
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Ok(Self {
            url,
            activator: pod_name.to_string(),
            source: format!("/zeroscale/activator/{pod_name}"),
            authorization: None,
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// Sends `Authorization: Bearer <token>` with every signal (`None` or empty: no header). A token
    /// that cannot be a header value is not sent; the autoscaler then answers 401, which is logged.
    pub fn with_token(mut self, token: Option<&str>) -> Self {
        self.authorization = token
            .filter(|t| !t.is_empty())
            .and_then(|t| http::HeaderValue::from_str(&format!("Bearer {t}")).ok())
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        self
    }

    async fn post<T: serde::Serialize>(
        &self,
        ty: &str,
        function: &FunctionKey,
        payload: &T,
    ) -> Result<(), SendError> {
        let Some(url) = &self.url else { return Ok(()) };
        let event = signals::build_event(ty, &self.source, function, payload)?;
        let message = signals::to_binary(event)?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(url.clone())
            .body(Full::new(Bytes::from(message.body)))?;
        request.headers_mut().extend(message.headers);
        if let Some(authorization) = &self.authorization {
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, authorization.clone());
        }
        let response = tokio::time::timeout(SEND_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| SendError::Timeout)??;
        if !response.status().is_success() {
            return Err(SendError::Status(response.status()));
        }
        Ok(())
    }

    /// Sends `dev.zeroscale.demand` for `function` on a spawned task, so the request never waits for it.
    pub fn send_demand(self: &Arc<Self>, function: FunctionKey, queued: u64) {
        if self.url.is_none() {
            return;
        }
        let sender = Arc::clone(self);
        tokio::spawn(async move {
            let demand = Demand {
                function: function.clone(),
                activator: sender.activator.clone(),
                queued,
            };
            match sender.post(DEMAND_TYPE, &function, &demand).await {
                Ok(()) => tracing::debug!(%function, "demand sent"),
                Err(e) => tracing::warn!(%function, error = %e, "cannot send demand"),
            }
        });
    }

    /// Sends one stats event per function with something to report.
    pub async fn report_stats(&self, table: &RoutingTable) {
        let now = tokio::time::Instant::now();
        let reports: Vec<Stats> = table
            .all()
            .iter()
            .filter_map(|f| {
                let (report, queued) = f.take_report(now)?;
                Some(Stats {
                    function: f.key().clone(),
                    activator: self.activator.clone(),
                    period_ms: u64::try_from(report.period.as_millis()).unwrap_or(u64::MAX),
                    concurrency: report.concurrency,
                    requests: report.requests,
                    queued,
                })
            })
            .collect();
        let sends = reports.iter().map(|s| async move {
            if let Err(e) = self.post(STATS_TYPE, &s.function, s).await {
                tracing::warn!(function = %s.function, error = %e, "cannot send stats");
            }
        });
        futures::future::join_all(sends).await;
    }

    /// Reports every `period` until `stop`, then once more so the last period is not lost.
    pub async fn run_stats(
        self: Arc<Self>,
        table: Arc<RoutingTable>,
        period: Duration,
        stop: CancellationToken,
    ) {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => self.report_stats(&table).await,
                () = stop.cancelled() => break,
            }
        }
        self.report_stats(&table).await;
    }
}
