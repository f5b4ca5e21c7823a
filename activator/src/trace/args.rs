//! `--otlp-endpoint` and `--trace-sampling-ratio`: whether and how much the activator exports its
//! request spans (docs/observability.md). The chart sets them from `tracing.*`.

use zeroscale_common::tracing_otlp::{self, OtlpConfig, OtlpError, TracingGuard};

fn ratio(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{value:?} is not a probability from 0 to 1")),
    }
}

fn endpoint(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(String::new());
    }
    tracing_otlp::traces_url(value)
        .map(|_| value.to_string())
        .map_err(|e| e.to_string())
}

/// The tracing flags of `zeroscale-activator`.
#[derive(Clone, Debug, clap::Args)]
pub struct TracingArgs {
    /// OTLP/HTTP endpoint of a collector, e.g. `http://otel-collector.observability:4318`, to export
    /// request spans to (POSTed to `<endpoint>/v1/traces`); empty: no spans are built or exported.
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_OTLP_ENDPOINT", default_value = "", value_parser = endpoint)]
    pub otlp_endpoint: String,
    /// Probability of exporting a trace that starts at the activator; a caller's `traceparent`
    /// decides for its own trace (sampled flag).
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_TRACE_SAMPLING_RATIO", default_value = "1", value_parser = ratio)]
    pub trace_sampling_ratio: f64,
}

impl TracingArgs {
    /// Starts the export when an endpoint is set (inside the runtime); `None` when tracing is off.
    pub fn install(&self) -> Result<Option<TracingGuard>, OtlpError> {
        if self.otlp_endpoint.is_empty() {
            return Ok(None);
        }
        let config = OtlpConfig {
            endpoint: self.otlp_endpoint.clone(),
            sampling_ratio: self.trace_sampling_ratio,
            service_name: "zeroscale-activator",
        };
        let guard = tracing_otlp::install(&config)?;
        tracing::info!(
            endpoint = %self.otlp_endpoint, sampling_ratio = self.trace_sampling_ratio,
            "exporting request spans over OTLP"
        );
        Ok(Some(guard))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        tracing: TracingArgs,
    }

    #[test]
    fn off_by_default_and_checked_when_set() {
        let flags = Flags::try_parse_from(["x"]).expect("parses");
        assert!(flags.tracing.otlp_endpoint.is_empty());
        assert_eq!(flags.tracing.trace_sampling_ratio, 1.0);
        assert!(flags.tracing.install().expect("off").is_none());
        let flags = Flags::try_parse_from([
            "x",
            "--otlp-endpoint=http://c:4318",
            "--trace-sampling-ratio=0.25",
        ])
        .expect("parses");
        assert_eq!(flags.tracing.otlp_endpoint, "http://c:4318");
        assert_eq!(flags.tracing.trace_sampling_ratio, 0.25);
        for bad in [
            ["x", "--otlp-endpoint=https://c:4318"],
            ["x", "--trace-sampling-ratio=2"],
            ["x", "--trace-sampling-ratio=half"],
        ] {
            let error = Flags::try_parse_from(bad).expect_err("refused").to_string();
            assert!(
                error.contains("invalid OTLP endpoint") || error.contains("not a probability"),
                "{error}"
            );
        }
    }
}
