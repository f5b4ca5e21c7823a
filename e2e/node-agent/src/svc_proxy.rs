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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A backend that writes `name` to every connection and closes it.
    async fn backend(name: &'static str) -> SocketAddrV4 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let SocketAddr::V4(addr) = listener.local_addr().unwrap() else {
            unreachable!()
        };
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let _ = conn.write_all(name.as_bytes()).await;
            }
        });
        addr
    }

    /// A loopback address nothing listens on (bound, then released).
    fn free_addr() -> SocketAddrV4 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let SocketAddr::V4(addr) = l.local_addr().unwrap() else {
            unreachable!()
        };
        addr
    }

    async fn ask(addr: SocketAddrV4) -> String {
        let Ok(mut conn) = TcpStream::connect(addr).await else {
            return "refused".into();
        };
        let mut out = String::new();
        let _ = conn.read_to_string(&mut out).await;
        if out.is_empty() { "closed".into() } else { out }
    }

    #[tokio::test]
    async fn round_robin_failover_updates_and_removal() {
        let (a, b, dead) = (backend("a").await, backend("b").await, free_addr());
        let service = free_addr();
        let mut proxy = Proxy::default();
        let table = |eps: Vec<SocketAddrV4>| Backends::from([(service, eps)]);

        assert!(proxy.apply(&table(vec![a, b])).is_empty());
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(ask(service).await);
        }
        assert_eq!(seen, ["a", "b", "a", "b"], "round-robin over the endpoints");

        // A refused endpoint is skipped: every connection still gets an answer.
        assert!(proxy.apply(&table(vec![dead, a])).is_empty());
        for _ in 0..4 {
            assert_eq!(ask(service).await, "a");
        }
        // An endpoint removed gets no further connection, at once.
        assert!(proxy.apply(&table(vec![b])).is_empty());
        assert_eq!(ask(service).await, "b");
        // No endpoint: the connection is accepted and closed.
        assert!(proxy.apply(&table(vec![])).is_empty());
        assert_eq!(ask(service).await, "closed");
        // The Service goes: nothing listens any more.
        assert!(proxy.apply(&Backends::new()).is_empty());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(ask(service).await, "refused");
    }

    #[tokio::test]
    async fn unbindable_addresses_are_reported() {
        // 192.0.2.1 (TEST-NET-1) is on no interface of a test machine.
        let addr = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 80);
        let mut proxy = Proxy::default();
        let failed = proxy.apply(&Backends::from([(addr, vec![])]));
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, addr);
    }
}
