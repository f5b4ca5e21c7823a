//! A client connection's task, from accept to close: its first head, the wait for a pod if the head
//! was parked, then serving.
//!
//! One task, written out by hand as a state machine rather than an `async fn`, so that the task is
//! never larger than what its current step needs. A burst's connections are accepted in thousands
//! while their clients are still sending (the listen queue holds 4,096), and a parked request may
//! wait for minutes: in both steps the task is one 384-byte allocation. Serving state is allocated
//! once serving starts; a parked request's task is the one that read its head, so a burst of parked
//! requests frees no per-connection memory on the way, which the allocator would keep resident for
//! its decay time (`docs/benchmarks.md`, session 30).

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use pin_project_lite::pin_project;
use tokio::{net::TcpStream, sync::mpsc};

use super::{
    Listener, h1,
    head::{FirstHead, Head, Prefixed},
    park::{self, ParkedConnection},
    serve_http2,
};
use crate::proxy::{Early, HeadAdmission};

/// Serving a connection (the activator's HTTP/1.1 server, or hyper): boxed, because it is sized for
/// serving and only allocated once serving starts.
type Serving = Pin<Box<dyn Future<Output = ()> + Send>>;

pin_project! {
    #[project = StepProj]
    enum Step {
        // Reading the first head.
        Reading { #[pin] first: FirstHead },
        // The first request waits for a pod.
        Parked { #[pin] parked: ParkedConnection },
        // Served until the connection ends.
        Serving { serving: Serving },
    }
}

pin_project! {
    /// A client connection's task: ends when the connection does.
    pub(super) struct Connection {
        shared: Arc<Listener>,
        // Held until the connection ends: a drain waits for every one.
        open: mpsc::Sender<()>,
        #[pin]
        step: Step,
    }
}

impl Connection {
    /// A connection just accepted on `shared`'s port.
    pub(super) fn new(shared: Arc<Listener>, stream: TcpStream, open: mpsc::Sender<()>) -> Self {
        let limits = shared.limits;
        let first = FirstHead::new(
            stream,
            limits.max_header_bytes,
            limits.header_read_timeout,
            shared.stop.clone(),
        );
        Self {
            shared,
            open,
            step: Step::Reading { first },
        }
    }
}

impl Future for Connection {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        loop {
            let next = match this.step.as_mut().project() {
                StepProj::Reading { first } => match ready!(first.poll(cx)) {
                    Some((stream, bytes, head)) => after_head(this.shared, stream, bytes, head),
                    // Closed, failed, too slow or draining: nothing to answer.
                    None => return Poll::Ready(()),
                },
                StepProj::Parked { parked } => match ready!(parked.poll(cx)) {
                    Some((stream, head, early)) => Step::Serving {
                        serving: Box::pin(park::serve(Arc::clone(this.shared), stream, head, early)),
                    },
                    // The client went away while its request waited.
                    None => return Poll::Ready(()),
                },
                StepProj::Serving { serving } => return serving.as_mut().poll(cx),
            };
            this.step.set(next);
        }
    }
}

/// What follows the first head: HTTP/2 goes to hyper; an HTTP/1.1 head naming a host is admitted
/// from the head alone, and either waits for a pod or is served with the outcome reached early;
/// anything else is served (hyper answers what the activator's server leaves to it).
fn after_head(shared: &Arc<Listener>, stream: TcpStream, bytes: Vec<u8>, head: Head) -> Step {
    let early = match head {
        Head::Http2 => {
            return Step::Serving {
                serving: Box::pin(serve_h2(Arc::clone(shared), stream, bytes)),
            };
        }
        Head::Http1 { host } => match shared.proxy.admit_head(shared.port, host, bytes.len()) {
            HeadAdmission::Decided(early) => Some(early),
            HeadAdmission::Parked(parked) => {
                return Step::Parked {
                    parked: park::wait(stream, bytes.into_boxed_slice(), parked),
                };
            }
        },
        Head::Partial | Head::Other => None,
    };
    Step::Serving {
        serving: Box::pin(serve_h1(Arc::clone(shared), stream, bytes, early)),
    }
}

// The client's address is read when serving starts rather than kept from accept: 32 bytes more
// would take the task past its 384-byte allocation while it waits.
async fn serve_h1(shared: Arc<Listener>, stream: TcpStream, bytes: Vec<u8>, early: Option<Early>) {
    let Ok(remote) = stream.peer_addr() else {
        return;
    };
    h1::serve(&shared, stream, bytes, remote, early).await;
}

async fn serve_h2(shared: Arc<Listener>, stream: TcpStream, bytes: Vec<u8>) {
    let Ok(remote) = stream.peer_addr() else {
        return;
    };
    serve_http2(&shared, Prefixed::new(bytes, stream), remote).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_connection_stays_small() {
        // The task's whole state while it reads its first head or waits for a pod. With tokio's task
        // header and trailer (~100 bytes) the task takes one 384-byte allocation; the rest of a parked
        // request (socket registration, channel, head, queue entry) is ~500 bytes: P6 allows 1 KiB in
        // all (`docs/benchmarks.md`, "What a parked request holds").
        let size = std::mem::size_of::<Connection>();
        assert!(size <= 280, "connection task future is {size} bytes");
    }
}
