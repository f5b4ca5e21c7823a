//! The CloudEvents endpoint: activator replicas `POST` `dev.zeroscale.demand` and
//! `dev.zeroscale.stats` events here (binary mode; see `docs/signals.md`).
//!
//! `202` when accepted; `400` with a plain-text reason for a malformed event, an unknown type or an
//! unknown `dataschema`; `401` without the shared token when `--events-token` is set; `405` for
//! methods other than `POST`; `503` when the decision loop is not keeping up.

use std::time::Instant;

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use cloudevents::AttributesReader;
use tokio::sync::mpsc;
use zeroscale_common::signals::{self, DEMAND_TYPE, Demand, STATS_TYPE, Stats};

use super::metrics::{Metrics, SignalLabels};

/// Largest accepted event: signals are a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;

/// A decoded signal on its way to the decision loop.
#[derive(Debug)]
pub enum Signal {
    /// A request waits for a function with no ready pod; `arrived` is when the event reached us.
    Demand {
        /// The payload.
        demand: Demand,
        /// When the request carrying the event was received.
        arrived: Instant,
    },
    /// A per-second report.
    Stats(Stats),
}

#[derive(Clone)]
struct EventsState {
    tx: mpsc::Sender<Signal>,
    token: Option<String>,
    metrics: Metrics,
}

/// The endpoint's router; signals go to `tx`. With a `token` (an empty one counts as none), every
/// signal must carry `Authorization: Bearer <token>`.
pub fn router(tx: mpsc::Sender<Signal>, token: Option<String>, metrics: Metrics) -> Router {
    let token = token.filter(|t| !t.is_empty());
    Router::new()
        .fallback(receive)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(EventsState { tx, token, metrics })
}

fn plain(status: StatusCode, reason: impl Into<String>) -> Response {
    let mut text = reason.into();
    text.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same(given.as_bytes(), token.as_bytes()))
}

/// Compares in time independent of where the first difference is, so the token cannot be guessed
/// byte by byte from answer times.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

async fn receive(
    State(state): State<EventsState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrived = Instant::now();
    if method != Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only POST is accepted");
    }
    if let Some(token) = &state.token
        && !authorized(&headers, token)
    {
        return plain(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let (kind, decoded) = decode(&headers, body, arrived);
    let outcome = if decoded.is_ok() { "accepted" } else { "rejected" };
    state
        .metrics
        .signals
        .get_or_create(&SignalLabels { kind, outcome })
        .inc();
    let signal = match decoded {
        Ok(signal) => signal,
        Err(reason) => return plain(StatusCode::BAD_REQUEST, reason),
    };
    match state.tx.try_send(signal) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(mpsc::error::TrySendError::Full(_)) => {
            plain(StatusCode::SERVICE_UNAVAILABLE, "autoscaler is overloaded")
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            plain(StatusCode::SERVICE_UNAVAILABLE, "autoscaler is shutting down")
        }
    }
}

/// Decodes a signal; the error is the plain-text reason for the `400`.
fn decode(headers: &HeaderMap, body: Bytes, arrived: Instant) -> (&'static str, Result<Signal, String>) {
    let event = match signals::from_http(headers, body.to_vec()) {
        Ok(event) => event,
        Err(e) => return ("unknown", Err(e.to_string())),
    };
    match event.ty() {
        DEMAND_TYPE => {
            let signal = signals::payload::<Demand>(&event, DEMAND_TYPE)
                .map(|demand| Signal::Demand { demand, arrived })
                .map_err(|e| e.to_string());
            (DEMAND_TYPE, signal)
        }
        STATS_TYPE => {
            let signal = signals::payload::<Stats>(&event, STATS_TYPE)
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    if s.concurrency.is_finite() && s.concurrency >= 0.0 {
                        Ok(Signal::Stats(s))
                    } else {
                        Err(
                            "invalid event data: concurrency must be a finite non-negative number"
                                .to_string(),
                        )
                    }
                });
            (STATS_TYPE, signal)
        }
        other => ("unknown", Err(format!("unknown event type {other:?}"))),
    }
}

#[cfg(test)]
mod tests;
