//! Upgraded connections (WebSocket and other `Upgrade:` protocols): once the pod answers 101, bytes
//! are copied both ways until either side closes. The pod's lease is held for the tunnel's life, so
//! a WebSocket counts against the pod's concurrency; the request timeouts no longer apply.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::lease::Lease;

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

/// Joins the client's and the pod's upgraded connections and copies until both directions end.
pub async fn tunnel(client: OnUpgrade, upstream: OnUpgrade, lease: Lease) -> Result<(u64, u64), TunnelError> {
    let (client, upstream) = tokio::try_join!(client, upstream).map_err(TunnelError::Upgrade)?;
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    let copied = tokio::io::copy_bidirectional(&mut client, &mut upstream)
        .await
        .map_err(TunnelError::Copy);
    drop(lease);
    copied
}

/// Spawns [`tunnel`], logging how it ended.
pub fn spawn_tunnel(client: OnUpgrade, upstream: OnUpgrade, lease: Lease) {
    let function = lease.function().display().to_string();
    tokio::spawn(async move {
        match tunnel(client, upstream, lease).await {
            Ok((up, down)) => tracing::debug!(%function, up, down, "upgraded connection closed"),
            Err(e) => tracing::debug!(%function, error = %e, "upgraded connection failed"),
        }
    });
}
