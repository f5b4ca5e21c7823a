//! One shutdown token per process. [`on_signal`] turns the first SIGTERM or SIGINT (Ctrl-C) into the
//! cancellation of a [`CancellationToken`]; every part of a component (servers, watches, decision
//! loops, leader election) stops on that token or on a child of it, instead of each listening for
//! signals in its own way.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::admin::Readiness;

/// A token cancelled on the first SIGTERM or SIGINT. Spawns the listener on the current runtime.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        signal().await;
        cancel.cancel();
    });
    token
}

/// Resolves on SIGTERM or SIGINT, whichever comes first. A signal that cannot be listened for is
/// logged and never fires.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

/// The drain delay: waits for `shutdown`, then reports not ready on `/ready` at once, for good
/// ([`Readiness::drain`]), while the component keeps serving as usual for `delay`, the time Services
/// and peers take to stop sending to it; returns when the component should stop accepting work.
pub async fn drain_delay(shutdown: &CancellationToken, readiness: &Readiness, delay: Duration) {
    shutdown.cancelled().await;
    tracing::info!(?delay, "not ready: serving until the drain delay has passed");
    readiness.drain();
    tokio::time::sleep(delay).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn drain_delay_reports_unready_at_once_and_returns_after_the_delay() {
        let shutdown = CancellationToken::new();
        let readiness = Readiness::default();
        readiness.set(true);
        let delay = Duration::from_secs(5);
        let drained = tokio::spawn({
            let (shutdown, readiness) = (shutdown.clone(), readiness.clone());
            async move { drain_delay(&shutdown, &readiness, delay).await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(
            readiness.get() && !drained.is_finished(),
            "nothing happens before the signal"
        );
        let signalled = tokio::time::Instant::now();
        shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(!readiness.get(), "not ready as soon as the signal came");
        assert!(!drained.is_finished(), "still serving during the delay");
        drained.await.expect("drain delay ends");
        assert_eq!(signalled.elapsed(), delay);
    }
}
