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
    upstream::{PodBody, PodBodyError, PooledConn},
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
        lease: Option<Lease>,
        deadline: Option<Instant>,
        idle: Option<Duration>,
        // Armed only when the upstream body is not immediately ready, so small responses that arrive
        // with their head never touch the timer wheel.
        timer: Option<Pin<Box<Sleep>>>,
        // The HTTP/1.1 connection the body arrives on, driven from here and returned to the pod's
        // idle pool once the body has ended.
        conn: Option<PooledConn>,
        // What the request's record needs, until it is made (once: taken when made).
        served: Option<Served>,
        // Body bytes passed on to the client.
        sent: u64,
    }

    impl PinnedDrop for ResponseBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // A body the server never polled because it was empty (HEAD, 204, 304) still leaves a
            // reusable connection behind.
            let ended = this.upstream.as_ref().as_pin_ref().is_some_and(|b| b.is_end_stream());
            if ended {
                let body = this.upstream.as_pin_mut().map(Pin::get_mut);
                checkin(this.conn, body, this.lease.as_ref(), &mut Context::from_waker(Waker::noop()));
            }
            // Not ended: the client went away (or the connection failed) mid-response.
            let outcome = |status| match ended {
                true => RequestOutcome::of_status(status),
                false => RequestOutcome::ClientGone,
            };
            finish(this.served, this.lease.as_ref(), *this.sent, outcome);
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

/// Makes the record of a served request, once, with the outcome `outcome(status)`.
fn finish(
    served: &mut Option<Served>,
    lease: Option<&Lease>,
    sent: u64,
    outcome: impl FnOnce(u16) -> RequestOutcome,
) {
    if let (Some(served), Some(lease)) = (served.take(), lease) {
        let outcome = outcome(lease.status);
        let end = Instant::now();
        lease.record(
            &served.meta,
            served.forwarded,
            Some(served.first_byte),
            end,
            outcome,
            sent,
        );
    }
}

/// Gives an upstream connection whose response ended (`body`) back to its pod's pool.
fn checkin(
    conn: &mut Option<PooledConn>,
    body: Option<&mut PodBody>,
    lease: Option<&Lease>,
    cx: &mut Context<'_>,
) {
    if let Some(conn) = conn.take() {
        // A pod out of rotation keeps no idle connection: it is going away. (A forwarded body has
        // no lease: its peer's connections stay pooled.)
        let raw = body.and_then(PodBody::take_idle);
        conn.checkin(raw, lease.is_some_and(|l| l.endpoint().is_retired()), cx);
    }
}

impl ResponseBody {
    /// A body of `text`.
    pub fn text(text: Bytes) -> Self {
        Self {
            upstream: None,
            text: Some(text),
            lease: None,
            deadline: None,
            idle: None,
            timer: None,
            conn: None,
            served: None,
            sent: 0,
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
        Self {
            upstream: Some(body),
            text: None,
            lease: Some(lease),
            deadline: Some(deadline),
            idle,
            timer: None,
            conn,
            served: Some(served),
            sent: 0,
        }
    }

    /// A body forwarded from the activator owning the function (see [`crate::peers`]): no lease
    /// (the owner holds the pod's) and no idle timeout (the owner enforces it), only `deadline`;
    /// `conn` is the HTTP/1.1 connection to the owner it arrives on, pooled again once it ends.
    pub fn forwarded(body: PodBody, deadline: Instant, conn: Option<PooledConn>) -> Self {
        Self {
            upstream: Some(body),
            text: None,
            lease: None,
            deadline: Some(deadline),
            idle: None,
            timer: None,
            conn,
            served: None,
            sent: 0,
        }
    }

    fn next_wake(deadline: Option<Instant>, idle: Option<Duration>) -> Option<(Instant, BodyError)> {
        let idle_at = idle.map(|d| Instant::now() + d);
        match (deadline, idle_at) {
            (Some(d), Some(i)) if i < d => Some((i, BodyError::Idle)),
            (Some(d), _) => Some((d, BodyError::Deadline)),
            (None, Some(i)) => Some((i, BodyError::Idle)),
            (None, None) => None,
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
        let Some(upstream) = this.upstream.as_mut().as_pin_mut() else {
            return Poll::Ready(
                this.text
                    .take()
                    .filter(|t| !t.is_empty())
                    .map(|t| Ok(Frame::data(t))),
            );
        };
        if let Some(conn) = this.conn.as_mut() {
            // The connection's IO first: it feeds the body polled next.
            conn.drive(cx);
        }
        match upstream.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                // Progress: the idle clock starts again (the total deadline stays).
                if this.idle.is_some() && this.timer.is_some() {
                    *this.timer = None;
                }
                if let Some(data) = frame.data_ref() {
                    *this.sent += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let failed = |_| RequestOutcome::ActivatorFailure(LOST_MID_RESPONSE);
                finish(this.served, this.lease.as_ref(), *this.sent, failed);
                if let Some(lease) = this.lease.take() {
                    lease.function().record_lost(LOST_MID_RESPONSE);
                }
                Poll::Ready(Some(Err(BodyError::Upstream(e))))
            }
            Poll::Ready(None) => {
                let body = this.upstream.as_pin_mut().map(Pin::get_mut);
                checkin(this.conn, body, this.lease.as_ref(), cx);
                finish(
                    this.served,
                    this.lease.as_ref(),
                    *this.sent,
                    RequestOutcome::of_status,
                );
                this.lease.take();
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.timer.is_none() {
                    match Self::next_wake(*this.deadline, *this.idle) {
                        Some((at, _)) => *this.timer = Some(Box::pin(tokio::time::sleep_until(at))),
                        None => return Poll::Pending,
                    }
                }
                if let Some(timer) = this.timer.as_mut() {
                    ready!(timer.as_mut().poll(cx));
                }
                finish(this.served, this.lease.as_ref(), *this.sent, |_| {
                    RequestOutcome::Timeout
                });
                this.lease.take();
                let deadline_passed = this.deadline.is_some_and(|d| Instant::now() >= d);
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
