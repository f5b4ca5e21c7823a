//! Logging and process set-up shared by the components: structured JSON logs (or plain text for
//! humans) filtered by `RUST_LOG` (default `info`), written to standard output by a thread of their
//! own ([`log_writer`]). The shutdown signal is [`crate::shutdown`].

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::{EnvFilter, Layer, fmt, fmt::MakeWriter, prelude::*, registry::LookupSpan};

mod json_line;
pub mod log_writer;
mod span_fields;
pub use json_line::{JsonLine, JsonLines};
pub use log_writer::LogGuard;
pub use span_fields::JsonSpanFields;

/// Log output format, chosen with each component's `--log-format` flag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (the default, for log collectors).
    #[default]
    Json,
    /// Human-readable text.
    Plain,
}

/// Installs the global tracing subscriber. Call once, at the top of `main`, and hold the guard until
/// `main` returns: dropping it writes out the lines still queued.
pub fn init(format: LogFormat) -> LogGuard {
    let (writer, guard) = log_writer::queued(log_writer::stdout());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => {
            // Lines written directly (`JsonLines`) go through the same writer thread.
            JsonLines::install(writer.clone());
            registry.with(json_layer(writer)).init()
        }
        // Colours only on a terminal: through a pipe (a container's log, `kubectl logs`, a file)
        // the escape codes would be text around every field name.
        LogFormat::Plain => registry
            .with(
                fmt::layer()
                    .with_writer(writer)
                    .with_ansi(std::io::stdout().is_terminal()),
            )
            .init(),
    }
    guard
}

/// The JSON format's layer writing to `writer`: what [`init`] installs, and what tests compare the
/// directly written lines ([`JsonLine`]) against.
pub(crate) fn json_layer<S, W>(writer: W) -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    fmt::layer()
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .fmt_fields(JsonSpanFields)
}
