//! Stopping the controllers on shutdown without holding the Lease hostage.
//!
//! A kube-runtime Controller shut down gracefully finishes the reconciles in flight and then ends. Two
//! things can keep it from ending, and while it runs the operator keeps renewing its Lease, so a
//! successor cannot take over until the process is killed and the Lease has expired:
//! - kube-runtime's runner holds every reconcile until the controller's store has synced, and keeps
//!   waiting for that sync after a graceful shutdown; a controller whose first list never succeeds (its
//!   CRD is not installed, its RBAC is missing) would never end. [`until_stopped`] drops such a
//!   controller as soon as the shutdown comes: it has started no reconcile, so nothing is cut short.
//! - A reconcile stuck on a slow API call. [`within_grace`] bounds the whole drain.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long the reconciles in flight get after SIGTERM before the operator releases its Lease and
/// exits anyway: well inside a pod's default 30 s grace period, so the release always happens.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// How a controller ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// It ran to its end: after a shutdown, once the reconciles in flight finished.
    Drained,
    /// The shutdown came before its store's first sync; it was dropped with no reconcile started.
    BeforeSync,
}

/// Drives `controller` (a controller stream run to its end, shut down gracefully on `shutdown`) until it
/// ends, or until `shutdown` is cancelled while `synced` (its store's first sync) has not resolved.
pub async fn until_stopped(
    controller: impl Future<Output = ()>,
    synced: impl Future<Output = ()>,
    shutdown: &CancellationToken,
) -> Stopped {
    let stopped_before_sync = async {
        let synced_first = tokio::select! {
            // A store that synced as the shutdown came may have reconciles in flight: let them drain.
            biased;
            () = synced => true,
            () = shutdown.cancelled() => false,
        };
        if synced_first {
            // From now on the controller's own graceful shutdown ends it.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = controller => Stopped::Drained,
        () = stopped_before_sync => Stopped::BeforeSync,
    }
}

/// Drives `work` until it ends, or for at most `grace` after `shutdown` is cancelled; returns whether it
/// ended by itself.
pub async fn within_grace(
    work: impl Future<Output = ()>,
    shutdown: &CancellationToken,
    grace: Duration,
) -> bool {
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = work => true,
        () = deadline => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;
    use tokio::time::{Instant, sleep};

    /// A future that ends when the returned sender fires (or is dropped).
    fn signal() -> (oneshot::Sender<()>, impl Future<Output = ()>) {
        let (tx, rx) = oneshot::channel::<()>();
        (tx, async move {
            let _ = rx.await;
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_controller_that_never_synced_stops_at_the_shutdown() {
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            sleep(Duration::from_secs(3)).await;
            stop.cancel();
        });
        let start = Instant::now();
        // The controller and the sync never end by themselves, as with a CRD that is not installed.
        let stopped = until_stopped(std::future::pending(), std::future::pending(), &shutdown).await;
        assert_eq!(stopped, Stopped::BeforeSync);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_synced_controller_drains_its_reconciles_after_the_shutdown() {
        let shutdown = CancellationToken::new();
        let (drained, controller) = signal();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            sleep(Duration::from_secs(1)).await;
            stop.cancel();
            // The reconcile in flight takes 4 s more.
            sleep(Duration::from_secs(4)).await;
            let _ = drained.send(());
        });
        let start = Instant::now();
        let stopped = until_stopped(controller, std::future::ready(()), &shutdown).await;
        assert_eq!(stopped, Stopped::Drained);
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_sync_and_a_shutdown_at_once_count_as_synced() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let controller = sleep(Duration::from_secs(2));
        let stopped = until_stopped(controller, std::future::ready(()), &shutdown).await;
        assert_eq!(stopped, Stopped::Drained);
    }

    #[tokio::test(start_paused = true)]
    async fn a_controller_that_ends_alone_is_drained() {
        let shutdown = CancellationToken::new();
        let stopped = until_stopped(std::future::ready(()), std::future::pending(), &shutdown).await;
        assert_eq!(stopped, Stopped::Drained);
    }

    #[tokio::test(start_paused = true)]
    async fn work_gets_the_grace_period_after_the_shutdown_and_no_more() {
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            sleep(Duration::from_secs(60)).await;
            stop.cancel();
        });
        let start = Instant::now();
        let ended = within_grace(std::future::pending(), &shutdown, SHUTDOWN_GRACE).await;
        assert!(!ended, "stuck work is given up");
        assert_eq!(start.elapsed(), Duration::from_secs(60) + SHUTDOWN_GRACE);
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_ends_within_the_grace_period_ends_by_itself() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let ended = within_grace(sleep(Duration::from_secs(2)), &shutdown, SHUTDOWN_GRACE).await;
        assert!(ended);
    }
}
