//! The response body sent to the client: either a pod's streamed body, watched by the idle and total
//! timeouts and holding the pod's [`Lease`] until it ends, or a short text the activator wrote.

use std::{
    pin::Pin,
    task::{Context, Poll, Waker, ready},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::{
    function::record::{RequestMeta, RequestOutcome},
    lease::Lease,
    metrics::LOST_MID_RESPONSE,
    upstream::{PodBody, PodBodyError, PooledConn, h1::PassedFields},
};

/// Why a streamed response was cut off.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The pod's body failed.
    #[error("upstream body: {0}")]
    Upstream(#[source] PodBodyError),
    /// No body bytes for longer than `idleTimeoutSeconds`.
    #[error("response idle for longer than the idle timeout")]
    Idle,
    /// The total deadline (`timeoutSeconds`) passed mid-body.
    #[error("response passed the request timeout")]
    Deadline,
}

pin_project! {
    /// A response body (see the module docs).
    pub struct ResponseBody {
        #[pin]
        upstream: Option<PodBody>,
        text: Option<Bytes>,
        // Boxed: the response is moved several times on its way out (through the request pipeline
        // into hyper's dispatcher), and a small body keeps those moves cheap.
        track: Option<Box<Tracking>>,
    }

    impl PinnedDrop for ResponseBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let Some(track) = this.track.as_deref_mut() else {
                return;
            };
            // A body the server never polled because it was empty (HEAD, 204, 304) still leaves a
            // reusable connection behind.
            let ended = this.upstream.as_ref().as_pin_ref().is_some_and(|b| b.is_end_stream());
            if ended {
                let body = this.upstream.as_pin_mut().map(Pin::get_mut);
                track.checkin(body, &mut Context::from_waker(Waker::noop()));
            }
            // Not ended: the client went away (or the connection failed) mid-response.
            let outcome = |status| match ended {
                true => RequestOutcome::of_status(status),
                false => RequestOutcome::ClientGone,
            };
            track.finish(outcome);
        }
    }
}

/// What a pod's (or a peer's) body keeps besides its bytes.
struct Tracking {
    lease: Option<Lease>,
    deadline: Option<Instant>,
    idle: Option<Duration>,
    // Armed only when the upstream body is not immediately ready, so small responses that arrive
    // with their head never touch the timer wheel.
    timer: Option<Pin<Box<Sleep>>>,
    // The HTTP/1.1 connection the body arrives on, driven from here and returned to the pod's idle
    // pool once the body has ended.
    conn: Option<PooledConn>,
    // What the request's record needs, until it is made (once: taken when made).
    served: Option<Served>,
    // Body bytes passed on to the client.
    sent: u64,
}

impl Tracking {
    /// Makes the record of a served request, once, with the outcome `outcome(status)`.
    fn finish(&mut self, outcome: impl FnOnce(u16) -> RequestOutcome) {
        if let (Some(served), Some(lease)) = (self.served.take(), self.lease.as_ref()) {
            let outcome = outcome(lease.status);
            let end = Instant::now();
            lease.record(
                &served.meta,
                served.forwarded,
                Some(served.first_byte),
                end,
                outcome,
                self.sent,
            );
        }
    }

    /// Gives the upstream connection whose response ended (`body`) back to its pod's pool.
    fn checkin(&mut self, body: Option<&mut PodBody>, cx: &mut Context<'_>) {
        if let Some(conn) = self.conn.take() {
            // A pod out of rotation keeps no idle connection: it is going away. (A forwarded body
            // has no lease: its peer's connections stay pooled.)
            let raw = body.and_then(PodBody::take_idle);
            let retired = self.lease.as_ref().is_some_and(|l| l.endpoint().is_retired());
            conn.checkin(raw, retired, cx);
        }
    }

    fn next_wake(&self) -> Option<(Instant, BodyError)> {
        let idle_at = self.idle.map(|d| Instant::now() + d);
        match (self.deadline, idle_at) {
            (Some(d), Some(i)) if i < d => Some((i, BodyError::Idle)),
            (Some(d), _) => Some((d, BodyError::Deadline)),
            (None, Some(i)) => Some((i, BodyError::Idle)),
            (None, None) => None,
        }
    }
}

/// What a pod's response body keeps to make its request's [`crate::function::record::RequestRecord`] when it
/// ends.
#[derive(Debug)]
pub struct Served {
    /// The request's method, id and size.
    pub meta: RequestMeta,
    /// When the request was handed to the pod.
    pub forwarded: Instant,
    /// When the pod's response head came back.
    pub first_byte: Instant,
}

impl ResponseBody {
    /// The pod's response fields for the client, when they were passed rather than put in the
    /// response's header map (`upstream/h1/passed.rs`); a head must be written with them.
    pub fn passed_fields(&self) -> Option<&PassedFields> {
        self.upstream.as_ref().and_then(PodBody::passed_fields)
    }

    /// A body of `text`.
    pub fn text(text: Bytes) -> Self {
        Self {
            upstream: None,
            text: Some(text),
            track: None,
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::text(Bytes::new())
    }

    /// A pod's body; `lease` is released when it ends or is dropped. `conn` is the HTTP/1.1
    /// connection the body arrives on, driven by this body and pooled again once it ends. The
    /// request's record is made from `served` when the body ends, fails or is dropped.
    pub fn upstream(
        body: PodBody,
        lease: Lease,
        deadline: Instant,
        idle: Option<Duration>,
        conn: Option<PooledConn>,
        served: Served,
    ) -> Self {
        Self::tracked(body, Some(lease), deadline, idle, conn, Some(served))
    }

    /// A body forwarded from the activator owning the function (see [`crate::peers`]): no lease
    /// (the owner holds the pod's) and no idle timeout (the owner enforces it), only `deadline`;
    /// `conn` is the HTTP/1.1 connection to the owner it arrives on, pooled again once it ends.
    pub fn forwarded(body: PodBody, deadline: Instant, conn: Option<PooledConn>) -> Self {
        Self::tracked(body, None, deadline, None, conn, None)
    }

    fn tracked(
        body: PodBody,
        lease: Option<Lease>,
        deadline: Instant,
        idle: Option<Duration>,
        conn: Option<PooledConn>,
        served: Option<Served>,
    ) -> Self {
        Self {
            upstream: Some(body),
            text: None,
            track: Some(Box::new(Tracking {
                lease,
                deadline: Some(deadline),
                idle,
                timer: None,
                conn,
                served,
                sent: 0,
            })),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let mut this = self.project();
        let (Some(upstream), Some(track)) = (this.upstream.as_mut().as_pin_mut(), this.track.as_deref_mut())
        else {
            return Poll::Ready(
                this.text
                    .take()
                    .filter(|t| !t.is_empty())
                    .map(|t| Ok(Frame::data(t))),
            );
        };
        if let Some(conn) = track.conn.as_mut() {
            // The connection's IO first: it feeds the body polled next.
            conn.drive(cx);
        }
        match upstream.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                // Progress: the idle clock starts again (the total deadline stays).
                if track.idle.is_some() && track.timer.is_some() {
                    track.timer = None;
                }
                if let Some(data) = frame.data_ref() {
                    track.sent += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                track.finish(|_| RequestOutcome::ActivatorFailure(LOST_MID_RESPONSE));
                if let Some(lease) = track.lease.take() {
                    lease.function().record_lost(LOST_MID_RESPONSE);
                }
                Poll::Ready(Some(Err(BodyError::Upstream(e))))
            }
            Poll::Ready(None) => {
                let body = this.upstream.as_pin_mut().map(Pin::get_mut);
                track.checkin(body, cx);
                track.finish(RequestOutcome::of_status);
                track.lease.take();
                Poll::Ready(None)
            }
            Poll::Pending => {
                if track.timer.is_none() {
                    match track.next_wake() {
                        Some((at, _)) => track.timer = Some(Box::pin(tokio::time::sleep_until(at))),
                        None => return Poll::Pending,
                    }
                }
                if let Some(timer) = track.timer.as_mut() {
                    ready!(timer.as_mut().poll(cx));
                }
                track.finish(|_| RequestOutcome::Timeout);
                track.lease.take();
                let deadline_passed = track.deadline.is_some_and(|d| Instant::now() >= d);
                Poll::Ready(Some(Err(if deadline_passed {
                    BodyError::Deadline
                } else {
                    BodyError::Idle
                })))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.upstream {
            Some(b) => b.is_end_stream(),
            None => self.text.as_ref().is_none_or(Bytes::is_empty),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.upstream {
            Some(b) => b.size_hint(),
            None => SizeHint::with_exact(self.text.as_ref().map_or(0, |t| t.len() as u64)),
        }
    }
}
