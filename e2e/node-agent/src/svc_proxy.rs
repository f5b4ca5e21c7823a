//! Service networking, the proxy (IO): one TCP listener per ClusterIP:port that forwards each
//! connection to one of the Service's ready endpoints, round-robin; a refused or timed-out connect
//! moves on to the next endpoint. Endpoint changes apply to the next connection at once; connections
//! already forwarded stay where they are (as with kube-proxy).

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::svc_model::Backends;

/// How long one connect attempt to an endpoint may take before the next endpoint is tried (a pod
/// that vanished without a trace does not answer ARP; a live one answers in microseconds).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);

type Endpoints = Arc<Vec<SocketAddrV4>>;

struct Listener {
    endpoints: watch::Sender<Endpoints>,
    stop: CancellationToken,
}

/// The running listeners, keyed by ClusterIP:port.
#[derive(Default)]
pub struct Proxy {
    listeners: HashMap<SocketAddrV4, Listener>,
}

impl Proxy {
    /// Makes the listeners match `table`: new ones bound, endpoints of existing ones replaced, gone
    /// ones closed. Returns the addresses that could not be bound (retried on the next call).
    pub fn apply(&mut self, table: &Backends) -> Vec<(SocketAddrV4, std::io::Error)> {
        self.listeners.retain(|addr, l| {
            let keep = table.contains_key(addr);
            if !keep {
                l.stop.cancel();
            }
            keep
        });
        let mut failed = Vec::new();
        for (addr, endpoints) in table {
            if let Some(l) = self.listeners.get(addr) {
                l.endpoints.send_if_modified(|current| {
                    let changed = current.as_slice() != endpoints.as_slice();
                    if changed {
                        *current = Arc::new(endpoints.clone());
                    }
                    changed
                });
                continue;
            }
            match bind(*addr) {
                Ok(socket) => {
                    let (tx, rx) = watch::channel(Arc::new(endpoints.clone()));
                    let stop = CancellationToken::new();
                    tokio::spawn(serve(socket, rx, stop.clone()));
                    self.listeners.insert(*addr, Listener { endpoints: tx, stop });
                }
                Err(e) => failed.push((*addr, e)),
            }
        }
        failed
    }

    /// Closes every listener.
    pub fn clear(&mut self) {
        for (_, l) in self.listeners.drain() {
            l.stop.cancel();
        }
    }
}

fn bind(addr: SocketAddrV4) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // A restarted agent rebinds while connections of the previous one are still in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::V4(addr))?;
    socket.listen(1024)
}

async fn serve(listener: TcpListener, endpoints: watch::Receiver<Endpoints>, stop: CancellationToken) {
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((client, _)) => {
                let list = endpoints.borrow().clone();
                let start = next.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(forward(client, list, start, stop.clone()));
            }
            Err(e) => {
                tracing::warn!("service listener: accept: {e}");
                // Out of file descriptors and the like: let the condition pass instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Connects to the endpoints in round-robin order from `start`, the first that accepts wins.
async fn connect(list: &[SocketAddrV4], start: usize) -> Option<TcpStream> {
    for i in 0..list.len() {
        let addr = list[(start + i) % list.len()];
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Some(stream),
            Ok(Err(e)) => tracing::debug!(%addr, "service endpoint refused: {e}"),
            Err(_) => tracing::debug!(%addr, "service endpoint connect timed out"),
        }
    }
    None
}

async fn forward(mut client: TcpStream, list: Endpoints, start: usize, stop: CancellationToken) {
    // No endpoint accepted: closing the connection is this proxy's "connection refused".
    let Some(mut upstream) = connect(&list, start).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    tokio::select! {
        // A Service that is deleted takes its connections with it.
        _ = stop.cancelled() => {}
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
    }
}
