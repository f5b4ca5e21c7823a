//! HTTP/1.1 to a pod (or a peer activator) on a pooled connection: a body kept whole through the
//! activator's own client ([`h1::RawConn`]), a streamed one through hyper's on the same kind of socket.

use std::sync::Arc;

use http::{HeaderMap, Request};
use http_body::Body as _;

use super::{
    IdlePool, OutBody, PodBody, PooledConn, SendError, Sent, UpstreamConn, UpstreamError, Upstreams,
    failed_send, h1, h1::HeadRef,
};
use crate::endpoints::Endpoint;

impl Upstreams {
    /// Sends an HTTP/1.1 request (origin-form URI, `Host` set) to `endpoint` on a pooled connection,
    /// or a new one when none is idle. Stale pooled connections are skipped transparently. A body
    /// kept whole (or none) goes out directly ([`h1::RawConn`]), a streamed one through hyper's client.
    pub async fn send_http1(
        &self,
        endpoint: &Endpoint,
        mut request: Request<OutBody>,
    ) -> Result<Sent, SendError> {
        let kept = match request.body() {
            OutBody::Buffered(data, trailers) => Some((data.clone().unwrap_or_default(), trailers.clone())),
            OutBody::Streamed(body) if body.is_end_stream() => Some((bytes::Bytes::new(), None)),
            OutBody::Streamed(_) => None,
        };
        if let Some((body, trailers)) = kept {
            let head = HeadRef::of(&request);
            let sent = self.send_kept(endpoint, head, &body, trailers.as_ref()).await;
            return sent.map_err(|failure| failure.into_error(Some(request)));
        }
        let pool = self.pools.of(endpoint);
        loop {
            let (conn, fresh) = match self.conn_for(endpoint, &pool).await {
                Ok(conn) => conn,
                Err(error) => return Err(AttemptFailure::Connect(error).into_error(Some(request))),
            };
            match self.send_streamed(conn, fresh, pool.clone(), request).await {
                // hyper found the pooled connection closed before any of it went out.
                Err(SendError::NotSent {
                    request: Some(unsent),
                    ..
                }) if !fresh => request = *unsent,
                sent => return sent,
            }
        }
    }

    /// [`Upstreams::send_http1`] for a request whose body the caller keeps whole: written from `head`
    /// (its parts, hop-by-hop fields removed, and its forwarding fields), `body` and its `trailers` as
    /// they are, so an attempt builds no request. A failure gives no request back; the caller still
    /// has it.
    pub async fn send_http1_kept(
        &self,
        endpoint: &Endpoint,
        head: HeadRef<'_>,
        body: &[u8],
        trailers: Option<&HeaderMap>,
    ) -> Result<Sent, SendError> {
        let sent = self.send_kept(endpoint, head, body, trailers).await;
        sent.map_err(|failure| failure.into_error(None))
    }

    /// A kept-body request on a pooled connection, the next one when a pooled one turns out closed
    /// before any of it went out, or a new one.
    async fn send_kept(
        &self,
        endpoint: &Endpoint,
        head: HeadRef<'_>,
        body: &[u8],
        trailers: Option<&HeaderMap>,
    ) -> Result<Sent, AttemptFailure> {
        let pool = self.pools.of(endpoint);
        loop {
            let (conn, fresh) = self
                .conn_for(endpoint, &pool)
                .await
                .map_err(AttemptFailure::Connect)?;
            match self.send_raw(conn, fresh, &pool, head, body, trailers).await {
                Ok(sent) => return Ok(sent),
                // A pooled connection the pod had closed, found before any of the request went
                // out: try the next one, or a new one.
                Err(None) if !fresh => {}
                Err(None) => {
                    return Err(AttemptFailure::Raw(RawFailure {
                        sent: false,
                        fresh,
                        error: h1::H1Error::Closed,
                    }));
                }
                Err(Some(e)) => return Err(AttemptFailure::Raw(e)),
            }
        }
    }

    /// An idle connection from `pool` (`false`: not fresh), or a new one to `endpoint` (`true`).
    async fn conn_for(
        &self,
        endpoint: &Endpoint,
        pool: &Option<Arc<IdlePool>>,
    ) -> Result<(Box<h1::RawConn>, bool), UpstreamError> {
        match pool.as_ref().and_then(|p| p.checkout(self.pool_limits())) {
            Some(conn) => Ok((conn, false)),
            None => Ok((self.connect(endpoint.address).await?, true)),
        }
    }

    /// One attempt of a kept-body request on `conn`. `Err(None)`: nothing went out, the connection
    /// was found closed.
    async fn send_raw(
        &self,
        mut conn: Box<h1::RawConn>,
        fresh: bool,
        pool: &Option<Arc<IdlePool>>,
        request: HeadRef<'_>,
        body: &[u8],
        trailers: Option<&HeaderMap>,
    ) -> Result<Sent, Option<RawFailure>> {
        // A pooled connection has carried requests before: only what this one wrote counts.
        let before = conn.written();
        match conn.send(request, body, trailers).await {
            Ok(head) => {
                let body = h1::H1Body::new(conn, &head);
                let response = head.response.map(|()| PodBody::H1(body));
                Ok((
                    response,
                    Some(PooledConn::new(None, pool.clone(), self.pool_limits())),
                ))
            }
            Err(error) if conn.written() == before && !fresh && error.is_closed() => Err(None),
            Err(error) => Err(Some(RawFailure {
                sent: conn.written() > before,
                fresh,
                error,
            })),
        }
    }

    /// A streamed-body request through hyper's client on `conn`'s socket.
    async fn send_streamed(
        &self,
        conn: Box<h1::RawConn>,
        fresh: bool,
        pool: Option<Arc<IdlePool>>,
        request: Request<OutBody>,
    ) -> Result<Sent, SendError> {
        let limits = self.pool_limits();
        let mut conn = match UpstreamConn::from_raw(*conn).await {
            Ok(conn) => conn,
            Err(e) => {
                return Err(SendError::NotSent {
                    request: Some(Box::new(request)),
                    pod_failed: fresh,
                    error: UpstreamError::Http(e),
                });
            }
        };
        let written = conn.written();
        match conn.send(request).await {
            Ok(response) => Ok((
                response.map(PodBody::Hyper),
                Some(PooledConn::new(Some(conn), pool, limits)),
            )),
            Err(e) => Err(match failed_send(e, fresh, fresh) {
                // The socket took none of it: the pod cannot have seen the request.
                SendError::Broken { error, .. } if conn.written() == written => SendError::NotSent {
                    request: None,
                    pod_failed: fresh,
                    error,
                },
                failed => failed,
            }),
        }
    }

    async fn connect(&self, address: std::net::SocketAddr) -> Result<Box<h1::RawConn>, UpstreamError> {
        Ok(Box::new(h1::RawConn::new(self.open(address).await?)))
    }
}

/// A failed attempt on a raw connection.
#[derive(Debug)]
struct RawFailure {
    /// Whether any of the request went out.
    sent: bool,
    /// Whether the connection was new.
    fresh: bool,
    error: h1::H1Error,
}

/// Why a request could not be sent on a connection.
#[derive(Debug)]
enum AttemptFailure {
    /// No connection to the pod could be opened: nothing went out.
    Connect(UpstreamError),
    /// The attempt on a connection failed.
    Raw(RawFailure),
}

impl AttemptFailure {
    /// The error to report; `request` is given back whole when nothing of it went out.
    fn into_error(self, request: Option<Request<OutBody>>) -> SendError {
        let request = request.map(Box::new);
        match self {
            Self::Connect(error) => SendError::NotSent {
                request,
                pod_failed: true,
                error,
            },
            Self::Raw(RawFailure {
                sent: true,
                fresh,
                error,
            }) => SendError::Broken {
                fresh,
                error: UpstreamError::H1(error),
            },
            Self::Raw(RawFailure {
                sent: false,
                fresh,
                error,
            }) => SendError::NotSent {
                request,
                pod_failed: fresh,
                error: UpstreamError::H1(error),
            },
        }
    }
}
