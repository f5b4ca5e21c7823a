//! HTTP/1.1 connections to one pod, driven by the task of the request that uses them, and the idle
//! keep-alive pool each [`Endpoint`](crate::balancer::Endpoint) keeps.
//!
//! A pooled client (hyper-util's) runs every upstream connection as a task of its own, so a proxied
//! request hops between three tasks (client connection, request, upstream connection) with a wake-up
//! at every hop. Here the upstream connection future is polled by whoever holds the connection: the
//! request future while it waits for the response head, then the response body while the client
//! reads it. Everything runs in the client connection's task, as in one event loop.

// Connections are boxed so checkout and checkin move a pointer, not the whole connection state.
#![allow(clippy::vec_box)]

use std::{
    future::Future,
    pin::Pin,
    sync::Mutex,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use hyper::{body::Incoming, client::conn::http1};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The connection future of one upstream HTTP/1.1 connection.
type Driver = http1::Connection<TokioIo<TcpStream>, Incoming>;

/// One upstream HTTP/1.1 connection: the handle to send on and the future that does its IO.
pub struct UpstreamConn {
    sender: http1::SendRequest<Incoming>,
    driver: Driver,
    // A finished connection future must not be polled again.
    finished: bool,
    idle_since: Instant,
}

impl std::fmt::Debug for UpstreamConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConn")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl UpstreamConn {
    /// Wraps a fresh handshake.
    pub fn new(sender: http1::SendRequest<Incoming>, driver: Driver) -> Self {
        Self {
            sender,
            driver,
            finished: false,
            idle_since: Instant::now(),
        }
    }

    /// The handle requests are sent on.
    pub fn sender(&mut self) -> &mut http1::SendRequest<Incoming> {
        &mut self.sender
    }

    /// Polls the connection's IO once. Returns true when the connection has ended (closed by either
    /// side or failed); its errors surface on the request or body it carried.
    pub fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.finished
            && let Poll::Ready(result) = Pin::new(&mut self.driver).poll(cx)
        {
            if let Err(e) = result {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
            self.finished = true;
        }
        self.finished
    }

    /// Whether the connection is open and idle, ready for another request. Polls it first, which
    /// notices a close by the pod and lets a connection that just finished a response become idle.
    pub fn reusable(&mut self, cx: &mut Context<'_>) -> bool {
        !self.drive(cx) && !self.sender.is_closed() && self.sender.is_ready()
    }

    /// Sends `request` and drives the connection until the response head arrives. A request that
    /// was never written (the connection closed first) comes back in the error.
    pub async fn send(
        &mut self,
        request: http::Request<Incoming>,
    ) -> Result<http::Response<Incoming>, hyper::client::conn::TrySendError<http::Request<Incoming>>> {
        let mut response = std::pin::pin!(self.sender.try_send_request(request));
        let (driver, finished) = (&mut self.driver, &mut self.finished);
        std::future::poll_fn(|cx| {
            // IO first, so the response the connection delivers is seen in the same poll.
            if !*finished && let Poll::Ready(result) = Pin::new(&mut *driver).poll(cx) {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "upstream connection ended with an error");
                }
                *finished = true;
            }
            response.as_mut().poll(cx)
        })
        .await
    }
}

/// Idle keep-alive connections to one pod, most recently used last.
#[derive(Debug, Default)]
pub struct IdlePool {
    conns: Mutex<Vec<Box<UpstreamConn>>>,
}

/// How long idle connections are kept and how many per pod.
#[derive(Clone, Copy, Debug)]
pub struct PoolLimits {
    /// Idle connections older than this are closed.
    pub idle_timeout: Duration,
    /// Most idle connections kept per pod.
    pub max_idle: usize,
}

impl IdlePool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Box<UpstreamConn>>> {
        // Plain data: a panic elsewhere leaves nothing half-updated worth refusing to serve over.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the most recently used connection that is still open, closing stale ones on the way.
    /// Polled with the caller's context, so the connection's IO is registered with the caller's task.
    pub fn checkout(&self, cx: &mut Context<'_>, limits: PoolLimits) -> Option<Box<UpstreamConn>> {
        let mut closed = Vec::new();
        let found = {
            let mut conns = self.lock();
            expire(&mut conns, limits.idle_timeout, &mut closed);
            loop {
                let Some(mut conn) = conns.pop() else { break None };
                if conn.reusable(cx) {
                    break Some(conn);
                }
                closed.push(conn);
            }
        };
        // Closing a connection (dropping it) happens outside the lock.
        drop(closed);
        found
    }

    /// Returns a connection that finished its response, if it can carry another one.
    pub fn checkin(&self, mut conn: Box<UpstreamConn>, cx: &mut Context<'_>, limits: PoolLimits) {
        if !conn.reusable(cx) {
            return;
        }
        conn.idle_since = Instant::now();
        let mut closed = Vec::new();
        {
            let mut conns = self.lock();
            expire(&mut conns, limits.idle_timeout, &mut closed);
            if conns.len() < limits.max_idle {
                conns.push(conn);
            } else {
                closed.push(conn);
            }
        }
        drop(closed);
    }

    /// Idle connections now.
    pub fn idle(&self) -> usize {
        self.lock().len()
    }
}

/// Moves connections idle for longer than `timeout` (the oldest are first) to `closed`.
fn expire(conns: &mut Vec<Box<UpstreamConn>>, timeout: Duration, closed: &mut Vec<Box<UpstreamConn>>) {
    let now = Instant::now();
    let stale = conns
        .iter()
        .take_while(|c| now.saturating_duration_since(c.idle_since) > timeout)
        .count();
    closed.extend(conns.drain(..stale));
}
