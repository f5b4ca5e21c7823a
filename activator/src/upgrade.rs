//! Upgraded connections (WebSocket and other `Upgrade:` protocols): once the pod (or the activator
//! owning the function) answers 101, bytes are copied both ways until either side closes. A pod's
//! lease is held for the tunnel's life, so a WebSocket counts against the pod's concurrency; the
//! request timeouts no longer apply.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// Why a tunnel ended early.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// One side's upgrade did not complete.
    #[error("upgrade failed: {0}")]
    Upgrade(#[source] hyper::Error),
    /// Copying failed.
    #[error("tunnel copy failed: {0}")]
    Copy(#[source] std::io::Error),
}

/// Joins the client's and the upstream's upgraded connections and copies until both directions end,
/// holding `held` (a pod's lease) until then.
pub async fn tunnel<H>(client: OnUpgrade, upstream: OnUpgrade, held: H) -> Result<(u64, u64), TunnelError> {
    let (client, upstream) = tokio::try_join!(client, upstream).map_err(TunnelError::Upgrade)?;
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    let copied = tokio::io::copy_bidirectional(&mut client, &mut upstream)
        .await
        .map_err(TunnelError::Copy);
    drop(held);
    copied
}

/// Spawns [`tunnel`] for `function`, logging how it ended.
pub fn spawn_tunnel<H: Send + 'static>(function: String, client: OnUpgrade, upstream: OnUpgrade, held: H) {
    tokio::spawn(async move {
        match tunnel(client, upstream, held).await {
            Ok((up, down)) => tracing::debug!(%function, up, down, "upgraded connection closed"),
            Err(e) => tracing::debug!(%function, error = %e, "upgraded connection failed"),
        }
    });
}
