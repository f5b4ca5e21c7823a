//! The admin server every component runs on its own port: `/live`, `/ready` and `/metrics`.
//!
//! `/live` answers 200 while the process runs. `/ready` answers 200 only once the component has said it
//! is ready (for example after its watches have synced) and 503 again once it starts draining.
//! `/metrics` renders the component's prometheus-client registry in the OpenMetrics text format.

use std::{net::SocketAddr, sync::Arc};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Whether the component (or one of its watches) is ready; shared between the component and its admin
/// server. Changes are signalled: [`Readiness::wait`] wakes when it turns true, nothing polls. Once
/// [`Readiness::drain`] has run it stays not ready, whatever is set later.
#[derive(Clone, Debug)]
pub struct Readiness(Arc<watch::Sender<ReadyState>>);

#[derive(Clone, Copy, Debug, Default)]
struct ReadyState {
    ready: bool,
    draining: bool,
}

impl ReadyState {
    fn ready(self) -> bool {
        self.ready && !self.draining
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(ReadyState::default())))
    }
}

impl Readiness {
    /// Marks the component ready (or not), waking whoever waits. Has no effect once draining.
    pub fn set(&self, ready: bool) {
        self.0.send_modify(|state| state.ready = ready);
    }

    /// Marks the component not ready for good: it has begun to shut down.
    pub fn drain(&self) {
        self.0.send_modify(|state| state.draining = true);
    }

    /// Whether the component is ready.
    pub fn get(&self) -> bool {
        self.0.borrow().ready()
    }

    /// Resolves once this is (or already was) ready; never, once draining.
    pub async fn wait(&self) {
        let mut state = self.0.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = state.wait_for(|state| state.ready()).await;
    }
}

/// Sets `readiness` once every one of `synced` has turned true (each watch of the component reports its
/// first full list through its own flag), unless `stop` is cancelled first. A component that began
/// draining ([`Readiness::drain`]) does not turn ready again either way.
pub async fn ready_when_all(synced: Vec<Readiness>, readiness: Readiness, stop: CancellationToken) {
    let all = futures::future::join_all(synced.iter().map(Readiness::wait));
    tokio::select! {
        _ = all => {
            tracing::info!("watches synced: ready");
            readiness.set(true);
        }
        () = stop.cancelled() => {}
    }
}

#[derive(Clone)]
struct AdminState {
    readiness: Readiness,
    registry: Arc<Registry>,
}

/// Builds the admin router; exposed for tests.
pub fn router(readiness: Readiness, registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/live", get(|| async { "live\n" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(AdminState { readiness, registry })
}

async fn ready(State(state): State<AdminState>) -> impl IntoResponse {
    if state.readiness.get() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {e}\n"),
        )
            .into_response(),
    }
}

/// Serves the admin endpoints on `addr` until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    readiness: Readiness,
    registry: Arc<Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "admin server listening");
    axum::serve(listener, router(readiness, registry))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_once_every_watch_has_synced() {
        let (functions, peers, readiness) =
            (Readiness::default(), Readiness::default(), Readiness::default());
        let gate = tokio::spawn(ready_when_all(
            vec![functions.clone(), peers.clone()],
            readiness.clone(),
            CancellationToken::new(),
        ));
        functions.set(true);
        tokio::task::yield_now().await;
        assert!(!readiness.get(), "one watch of two has synced");
        peers.set(true);
        gate.await.expect("gate ends");
        assert!(readiness.get());
    }

    #[tokio::test]
    async fn a_draining_component_never_turns_ready() {
        let (functions, readiness, stop) = (
            Readiness::default(),
            Readiness::default(),
            CancellationToken::new(),
        );
        let gate = tokio::spawn(ready_when_all(
            vec![functions.clone()],
            readiness.clone(),
            stop.clone(),
        ));
        stop.cancel();
        gate.await.expect("gate ends");
        functions.set(true);
        assert!(!readiness.get());
    }

    #[tokio::test]
    async fn a_watch_that_syncs_during_the_drain_delay_does_not_make_it_ready() {
        let (functions, readiness) = (Readiness::default(), Readiness::default());
        let gate = tokio::spawn(ready_when_all(
            vec![functions.clone()],
            readiness.clone(),
            CancellationToken::new(),
        ));
        readiness.drain();
        functions.set(true);
        gate.await.expect("gate ends");
        assert!(!readiness.get());
        readiness.set(true);
        assert!(!readiness.get(), "draining is for good");
    }

    #[tokio::test]
    async fn wait_returns_at_once_when_already_ready() {
        let readiness = Readiness::default();
        readiness.set(true);
        readiness.wait().await;
        readiness.set(false);
        assert!(!readiness.get());
    }
}
