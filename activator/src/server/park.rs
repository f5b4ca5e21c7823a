//! A connection whose first request waits in its function's queue (a request "parked" at a
//! function at zero). Thousands of them may wait for minutes, so each is a task of its own holding
//! only what waiting needs: the socket, the head's bytes, the place in the queue and the deadline
//! timer (256 bytes; SPEC P6 allows 1 KiB for everything a parked request holds, see
//! `docs/benchmarks.md`, "What a parked request holds"). The task that read the head, sized for
//! serving a connection, has ended by then; hyper gets the connection once the wait is over.

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
    sync::mpsc,
    time::{Sleep, sleep_until},
};

use super::{
    Listener, h1,
    head::{self, Head},
};
use crate::proxy::{Early, Parked};

/// Waits for `parked`'s pod (or error, or deadline) while watching for the client going away, then
/// hands the connection to a task serving it (`h1.rs`), from `head`. `open` is held until the
/// connection ends (a drain waits for parked requests too).
pub(super) fn wait(
    shared: Arc<Listener>,
    stream: TcpStream,
    head: Box<[u8]>,
    parked: Parked,
    open: mpsc::Sender<()>,
) -> ParkedConnection {
    ParkedConnection {
        deadline: sleep_until(parked.deadline()),
        parked,
        connection: Some((shared, stream, open)),
        head,
        body_waiting: false,
    }
}

/// Serves the connection of a request whose wait is over.
async fn serve(
    shared: Arc<Listener>,
    stream: TcpStream,
    head: Box<[u8]>,
    early: Early,
    open: mpsc::Sender<()>,
) {
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
    drop(open);
}

pin_project! {
    /// The parked task's whole state, written out by hand rather than as an `async fn` so that
    /// nothing is kept twice: it ends once the function answered (or the deadline passed), handing
    /// the connection to a task of its own ([`serve`]), or when the client goes away.
    pub(super) struct ParkedConnection {
        // Taken when the wait is over.
        connection: Option<(Arc<Listener>, TcpStream, mpsc::Sender<()>)>,
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
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let early = if let Poll::Ready(early) = this.parked.poll_early(cx) {
            early
        } else if this.deadline.poll(cx).is_ready() {
            this.parked.expire()
        } else {
            let Some((_, stream, _)) = this.connection.as_ref() else {
                return Poll::Ready(());
            };
            if !*this.body_waiting {
                match poll_gone(stream, cx) {
                    // The client gave up while its request waited: dropping the place (when this
                    // task ends) leaves the queue.
                    Poll::Ready(true) => return Poll::Ready(()),
                    Poll::Ready(false) => *this.body_waiting = true,
                    Poll::Pending => {}
                }
            }
            return Poll::Pending;
        };
        if let Some((shared, stream, open)) = this.connection.take() {
            let head = std::mem::take(this.head);
            tokio::spawn(serve(shared, stream, head, early, open));
        }
        Poll::Ready(())
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
        // The parked task's whole state while its request waits. With tokio's task header and
        // trailer (~100 bytes) the task takes one 384-byte allocation; the rest of a parked request
        // (socket registration, channel, head, queue entry) is ~500 bytes: P6 allows 1 KiB in all.
        let size = std::mem::size_of::<ParkedConnection>();
        assert!(size <= 280, "parked connection future is {size} bytes");
    }
}
