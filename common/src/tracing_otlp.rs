//! Trace export over OTLP/HTTP (protobuf) to a collector, off unless an endpoint is configured.
//!
//! [`install`] builds one tracer provider for the process: a batch span processor on its own thread,
//! the OTLP exporter posting to `<endpoint>/v1/traces` through our hyper client on the component's
//! Tokio runtime, and a parent-based ratio sampler (a caller's sampled trace is always kept, a new
//! trace is kept with the configured probability). [`tracer`] is `None` until then, so code creating
//! spans pays one load when tracing is off. The exporter's own failures are logged by the SDK through
//! `tracing` (target `opentelemetry_sdk`/`opentelemetry-otlp`) and never reach a request.

use std::{sync::OnceLock, time::Duration};

use opentelemetry::{KeyValue, trace::TracerProvider as _};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response, hyper::HyperClient};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{
    Resource,
    trace::{Sampler, SdkTracer, SdkTracerProvider},
};

/// How long one export request may take before it is given up.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The process's tracer, set by [`install`].
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// The tracer when export is on; `None` (one atomic load) when it is off.
pub fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get()
}

/// Where and how much to export.
#[derive(Clone, Debug, PartialEq)]
pub struct OtlpConfig {
    /// The collector's OTLP/HTTP base URL (`http://host:4318`); spans go to `<base>/v1/traces`.
    pub endpoint: String,
    /// Probability of keeping a trace that starts here, in `[0, 1]`.
    pub sampling_ratio: f64,
    /// `service.name` of the exported spans (the component's binary name).
    pub service_name: &'static str,
}

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// The endpoint is not a plain `http://host:port` URL.
    #[error("invalid OTLP endpoint {0:?}: expected http://host:port (OTLP over HTTP, no TLS)")]
    Endpoint(String),
    /// The sampling ratio is outside `[0, 1]`.
    #[error("invalid trace sampling ratio {0}: expected a number from 0 to 1")]
    Ratio(f64),
    /// The exporter could not be built.
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
    /// [`install`] was called twice.
    #[error("tracing is already installed")]
    Installed,
}

/// The URL spans are posted to: `base` with `/v1/traces` appended, unless it already ends so.
pub fn traces_url(base: &str) -> Result<String, OtlpError> {
    let uri: http::Uri = base.parse().map_err(|_| OtlpError::Endpoint(base.to_string()))?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() || uri.query().is_some() {
        return Err(OtlpError::Endpoint(base.to_string()));
    }
    let trimmed = base.trim_end_matches('/');
    Ok(if trimmed.ends_with("/v1/traces") {
        trimmed.to_string()
    } else {
        format!("{trimmed}/v1/traces")
    })
}

/// Exports spans per `config` from now on; keep the guard and call [`TracingGuard::shutdown`] on exit
/// so the last spans are sent. Must run inside the component's Tokio runtime (the exporter sends on
/// it).
pub fn install(config: &OtlpConfig) -> Result<TracingGuard, OtlpError> {
    if !(0.0..=1.0).contains(&config.sampling_ratio) {
        return Err(OtlpError::Ratio(config.sampling_ratio));
    }
    let url = traces_url(&config.endpoint)?;
    let client = OnRuntime {
        runtime: tokio::runtime::Handle::current(),
        inner: HyperClient::with_default_connector(EXPORT_TIMEOUT, None),
    };
    let exporter = SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| OtlpError::Exporter(e.to_string()))?;
    let instance = std::env::var("HOSTNAME").unwrap_or_default();
    let resource = Resource::builder()
        .with_service_name(config.service_name)
        .with_attribute(KeyValue::new("service.instance.id", instance))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sampling_ratio,
        ))))
        .with_resource(resource)
        .build();
    TRACER
        .set(provider.tracer(config.service_name))
        .map_err(|_| OtlpError::Installed)?;
    Ok(TracingGuard { provider })
}

/// Flushes and stops the exporter when asked to (see [`install`]).
#[derive(Debug)]
pub struct TracingGuard {
    provider: SdkTracerProvider,
}

impl TracingGuard {
    /// Sends the spans still buffered and stops the exporter's thread. Blocking: call it from
    /// synchronous code (after the runtime's work is done) or `spawn_blocking`.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "trace export did not shut down cleanly");
        }
    }
}

/// The batch processor exports from its own thread, which has no Tokio runtime: each request is
/// sent as a task on the component's runtime and awaited from there.
#[derive(Debug)]
struct OnRuntime {
    runtime: tokio::runtime::Handle,
    inner: HyperClient,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let inner = self.inner.clone();
        self.runtime
            .spawn(async move { inner.send_bytes(request).await })
            .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_once() {
        assert_eq!(
            traces_url("http://c:4318").expect("valid"),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://c:4318/").expect("valid"),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://c:4318/v1/traces").expect("valid"),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://c/otlp").expect("valid"),
            "http://c/otlp/v1/traces"
        );
    }

    #[test]
    fn endpoints_we_cannot_reach_are_refused_by_name() {
        for bad in [
            "https://c:4318",
            "c:4318",
            "",
            "http://c:4318/?x=1",
            "grpc://c:4317",
        ] {
            let error = traces_url(bad).expect_err(bad).to_string();
            assert!(error.contains("invalid OTLP endpoint"), "{bad}: {error}");
        }
    }

    #[test]
    fn a_ratio_outside_zero_to_one_is_refused() {
        let config = OtlpConfig {
            endpoint: "http://c:4318".into(),
            sampling_ratio: 1.5,
            service_name: "test",
        };
        let error = install(&config).expect_err("refused").to_string();
        assert_eq!(
            error,
            "invalid trace sampling ratio 1.5: expected a number from 0 to 1"
        );
        assert!(tracer().is_none(), "nothing was installed");
    }
}
