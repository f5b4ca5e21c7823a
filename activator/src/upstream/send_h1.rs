//! HTTP/1.1 to a pod (or a peer activator) on a pooled connection: a body kept whole through the
//! activator's own client ([`h1::RawConn`]), a streamed one through hyper's on the same kind of socket.

use std::sync::Arc;

use http::Request;
use http_body::Body as _;

use super::{
    IdlePool, OutBody, PodBody, PooledConn, SendError, Sent, UpstreamConn, UpstreamError, Upstreams,
    failed_send, h1,
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
            OutBody::Buffered(data, _) => Some(data.clone().unwrap_or_default()),
            OutBody::Streamed(body) if body.is_end_stream() => Some(bytes::Bytes::new()),
            OutBody::Streamed(_) => None,
        };
        let limits = self.pool_limits();
        let pool = self.pools.of(endpoint);
        loop {
            let (conn, fresh) = match pool.as_ref().and_then(|p| p.checkout(limits)) {
                Some(conn) => (conn, false),
                None => match self.connect(endpoint.address).await {
                    Ok(conn) => (conn, true),
                    Err(error) => {
                        return Err(SendError::NotSent {
                            request: Some(Box::new(request)),
                            pod_failed: true,
                            error,
                        });
                    }
                },
            };
            let sent = match &kept {
                Some(body) => self.send_raw(conn, fresh, &pool, &request, body).await,
                None => match self.send_streamed(conn, fresh, pool.clone(), request).await {
                    // hyper found the pooled connection closed before any of it went out.
                    Err(SendError::NotSent {
                        request: Some(unsent),
                        ..
                    }) if !fresh => {
                        request = *unsent;
                        continue;
                    }
                    sent => return sent,
                },
            };
            match sent {
                Ok(sent) => return Ok(sent),
                // A pooled connection the pod had closed, found before any of the request went
                // out: try the next one, or a new one.
                Err(None) if !fresh => {}
                Err(None) => {
                    return Err(SendError::NotSent {
                        request: Some(Box::new(request)),
                        pod_failed: true,
                        error: UpstreamError::H1(h1::H1Error::Closed),
                    });
                }
                Err(Some(e)) => return Err(e.with_request(request)),
            }
        }
    }

    /// One attempt of a kept-body request on `conn`. `Err(None)`: nothing went out, the connection
    /// was found closed.
    async fn send_raw(
        &self,
        mut conn: Box<h1::RawConn>,
        fresh: bool,
        pool: &Option<Arc<IdlePool>>,
        request: &Request<OutBody>,
        body: &[u8],
    ) -> Result<Sent, Option<RawFailure>> {
        // A pooled connection has carried requests before: only what this one wrote counts.
        let before = conn.written();
        match conn.send(request, body).await {
            Ok(head) => {
                let response = head
                    .response
                    .map(|()| PodBody::H1(h1::H1Body::new(conn, head.framing, head.keep_alive)));
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

impl RawFailure {
    /// The error to report for `request`: given back whole when nothing of it went out.
    fn with_request(self, request: Request<OutBody>) -> SendError {
        let error = UpstreamError::H1(self.error);
        if self.sent {
            SendError::Broken {
                fresh: self.fresh,
                error,
            }
        } else {
            SendError::NotSent {
                request: Some(Box::new(request)),
                pod_failed: self.fresh,
                error,
            }
        }
    }
}
