//! A connection whose first request waits in its function's queue (a request "parked" at a
//! function at zero). Thousands of them may wait for minutes, so the connection's task
//! (`connection.rs`) holds only what waiting needs while it does: the socket, the head's bytes, the
//! place in the queue and the deadline timer (SPEC P6 allows 1 KiB for everything a parked request
//! holds, see `docs/benchmarks.md`, "What a parked request holds"). Serving state is allocated only
//! once the wait is over.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use pin_project_lite::pin_project;
use tokio::{
    io::ReadBuf,
    net::TcpStream,
    time::{Sleep, sleep_until},
};

use super::{
    Listener, h1,
    head::{self, Head},
};
use crate::proxy::{Early, Parked};

/// Waits for `parked`'s pod (or error, or deadline) while watching for the client going away.
pub(super) fn wait(stream: TcpStream, head: Box<[u8]>, parked: Parked) -> ParkedConnection {
    ParkedConnection {
        deadline: sleep_until(parked.deadline()),
        parked,
        stream: Some(stream),
        head,
        body_waiting: false,
    }
}

/// Serves the connection of a request whose wait is over, from `head`.
pub(super) async fn serve(shared: Arc<Listener>, stream: TcpStream, head: Box<[u8]>, early: Early) {
    // Read again rather than kept: neither is needed while waiting. A client gone meanwhile has no
    // address; dropping `early` then gives an unused pod slot back.
    let Ok(remote) = stream.peer_addr() else {
        return;
    };
    let host = match head::classify(&head) {
        Head::Http1 { host } => host,
        // The same bytes were classified as a head naming a host before parking.
        _ => String::new(),
    };
    let early = early.for_host(host);
    h1::serve(&shared, stream, head.into_vec(), remote, Some(early)).await;
}

pin_project! {
    /// What a parked connection holds while its request waits, written out by hand rather than as an
    /// `async fn` so that nothing is kept twice. It is ready once the function answered (or the
    /// deadline passed), with the connection to serve ([`serve`]), or with `None` when the client
    /// went away.
    pub(super) struct ParkedConnection {
        // Taken when the wait is over.
        stream: Option<TcpStream>,
        head: Box<[u8]>,
        parked: Parked,
        #[pin]
        deadline: Sleep,
        // The client sent more (a body hyper will read): closing can no longer be told apart from it
        // without reading, so the request waits for its answer or deadline alone, as hyper would.
        body_waiting: bool,
    }
}

impl Future for ParkedConnection {
    type Output = Option<(TcpStream, Box<[u8]>, Early)>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let early = if let Poll::Ready(early) = this.parked.poll_early(cx) {
            early
        } else if this.deadline.poll(cx).is_ready() {
            this.parked.expire()
        } else {
            let Some(stream) = this.stream.as_ref() else {
                return Poll::Ready(None);
            };
            if !*this.body_waiting {
                match poll_gone(stream, cx) {
                    // The client gave up while its request waited: dropping the place (with this
                    // future) leaves the queue.
                    Poll::Ready(true) => return Poll::Ready(None),
                    Poll::Ready(false) => *this.body_waiting = true,
                    Poll::Pending => {}
                }
            }
            return Poll::Pending;
        };
        let head = std::mem::take(this.head);
        Poll::Ready(this.stream.take().map(|stream| (stream, head, early)))
    }
}

/// Whether the client closed its connection (or it failed): `Ready(true)`; `Ready(false)` when it
/// sent more instead, which is hyper's to read later. Peeks, so nothing is consumed.
fn poll_gone(stream: &TcpStream, cx: &mut Context<'_>) -> Poll<bool> {
    let mut byte = [0u8; 1];
    let peeked: Poll<io::Result<usize>> = stream.poll_peek(cx, &mut ReadBuf::new(&mut byte));
    peeked.map(|read| matches!(read, Ok(0) | Err(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parked_connection_stays_small() {
        // The parked state of a connection's task (`connection.rs`, which bounds the whole task).
        let size = std::mem::size_of::<ParkedConnection>();
        assert!(size <= 240, "parked connection future is {size} bytes");
    }
}
