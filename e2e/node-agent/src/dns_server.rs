//! The cluster DNS server (IO): answers on UDP `<bridge address>:53` from the current Service names.

use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::dns::{Names, answer};

/// Serves queries forever; `names` is replaced whenever Services change.
pub async fn serve(socket: UdpSocket, names: watch::Receiver<Arc<Names>>) {
    let mut buf = vec![0u8; 1500];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(e) => {
                // A persistent error would otherwise spin and flood the log; the proxy pauses alike.
                tracing::warn!("dns: receive: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let current = names.borrow().clone();
        if let Some(reply) = buf.get(..len).and_then(|q| answer(q, &current))
            && let Err(e) = socket.send_to(&reply, peer).await
        {
            tracing::debug!(%peer, "dns: send: {e}");
        }
    }
}
