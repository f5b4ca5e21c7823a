//! HTTP/2 with prior knowledge on one multiplexed connection per address, opened on demand. Used for
//! peer activators: a request that never left must come back whole so the peer can handle it
//! locally, which hyper-util's pooled client (used for pods) cannot do, as it consumes the request.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use super::{OutBody, UpstreamError, open};

type Senders = HashMap<SocketAddr, http2::SendRequest<OutBody>>;

/// One HTTP/2 connection per address.
#[derive(Debug, Default)]
pub struct DirectH2 {
    senders: Mutex<Senders>,
}

impl DirectH2 {
    fn lock(&self) -> MutexGuard<'_, Senders> {
        // Plain data: a panic elsewhere leaves nothing half-updated worth refusing to serve over.
        self.senders.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A sender on the open connection to `address`, or on a new one opened within `timeout`.
    pub async fn sender(
        &self,
        address: SocketAddr,
        timeout: Duration,
    ) -> Result<http2::SendRequest<OutBody>, UpstreamError> {
        if let Some(sender) = self.lock().get(&address).filter(|s| !s.is_closed()) {
            return Ok(sender.clone());
        }
        let io = TokioIo::new(open(address, timeout).await?);
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(io)
            .await
            .map_err(UpstreamError::Http)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "h2c connection ended with an error");
            }
        });
        self.lock().insert(address, sender.clone());
        Ok(sender)
    }
}
