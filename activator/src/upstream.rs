//! Pooled HTTP clients towards the pods: HTTP/1.1 keep-alive, and HTTP/2 with prior knowledge for
//! `protocol: h2c` functions.

use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};
use zeroscale_crds::function::Protocol;

/// A pooled client that sends the client's own body through unchanged.
pub type UpstreamClient = Client<HttpConnector, Incoming>;

/// Settings of the upstream pools.
#[derive(Clone, Copy, Debug)]
pub struct UpstreamConfig {
    /// How long to try to connect to a pod.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// Most idle connections kept per pod.
    pub pool_max_idle_per_host: usize,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 1024,
        }
    }
}

/// One client per protocol.
#[derive(Clone, Debug)]
pub struct Upstreams {
    http1: UpstreamClient,
    h2c: UpstreamClient,
}

fn connector(config: &UpstreamConfig) -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(config.connect_timeout));
    connector
}

impl Upstreams {
    /// Builds both pools.
    pub fn new(config: UpstreamConfig) -> Self {
        let http1 = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .build(connector(&config));
        let h2c = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .http2_only(true)
            .build(connector(&config));
        Self { http1, h2c }
    }

    /// The client for `protocol`.
    pub fn client(&self, protocol: Protocol) -> &UpstreamClient {
        match protocol {
            Protocol::Http1 => &self.http1,
            Protocol::H2c => &self.h2c,
        }
    }
}
