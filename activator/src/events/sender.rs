//! The broker's [`EventSender`]: deliveries to a Function go through this activator's own in-cluster
//! data port with `Host: <name>.<ns>.svc.<cluster-domain>`, so an event is handled exactly like a
//! request — buffered while the function is at zero, waking it, balanced within its concurrency
//! limit and bounded by its timeout. `uri` subscribers are reached directly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use http::{HeaderValue, header};
use zeroscale_eventing::{
    async_invocation::{Invocation, InvocationSender},
    delivery::{
        Answer, EventSender, HttpSender, Outgoing, SendError, Target, sender::DEFAULT_MAX_REPLY_BYTES,
    },
};

/// Longest part of an answer's body written to the debug log.
const LOGGED_BODY_BYTES: usize = 2048;

/// Delivers through the activator's request path (Functions) or directly (URIs).
#[derive(Clone, Debug)]
pub struct ActivatorSender {
    inner: HttpSender,
    internal: http::Uri,
    cluster_domain: String,
}

impl ActivatorSender {
    /// A sender reaching Functions through the data port bound at `internal` (an unspecified address
    /// such as `0.0.0.0` is reached on loopback) and naming them in the `cluster_domain`.
    pub fn new(internal: SocketAddr, cluster_domain: &str) -> Result<Self, SendError> {
        let ip = match internal.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let uri = format!("http://{}/", SocketAddr::new(ip, internal.port()));
        let internal = uri.parse().map_err(|_| SendError::Unsupported(uri))?;
        Ok(Self {
            inner: HttpSender::new("http://{name}.{namespace}.svc", DEFAULT_MAX_REPLY_BYTES),
            internal,
            cluster_domain: cluster_domain.to_string(),
        })
    }

    /// Rewrites a delivery to a Function into a request to the data port with the function's host;
    /// leaves a URI delivery as it is.
    pub fn rewrite(&self, mut request: Outgoing) -> Result<Outgoing, SendError> {
        if let Target::Function(key) = &request.target {
            let host = format!("{}.{}.svc.{}", key.name, key.namespace, self.cluster_domain);
            let value = HeaderValue::from_str(&host).map_err(|_| SendError::Unsupported(host.clone()))?;
            request.headers.insert(header::HOST, value);
            request.target = Target::Uri(self.internal.clone());
        }
        Ok(request)
    }
}

impl InvocationSender for ActivatorSender {
    /// Replays the stored request to the data port with the function's cluster host, like a
    /// delivery: it wakes the function at zero and waits within its concurrency limit.
    async fn invoke(&self, invocation: &Invocation) -> Result<Answer, SendError> {
        let key = &invocation.function;
        let host = format!("{}.{}.svc.{}", key.name, key.namespace, self.cluster_domain);
        let host = HeaderValue::from_str(&host).map_err(|_| SendError::Unsupported(host.clone()))?;
        let authority = self
            .internal
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        let request = invocation.http_request(&authority, Some(host))?;
        let result = self.inner.exchange(request).await;
        match &result {
            Ok(answer) => {
                tracing::debug!(function = %key, id = %invocation.id, status = answer.status.as_u16(), "async invocation answered")
            }
            Err(error) => {
                tracing::debug!(function = %key, id = %invocation.id, %error, "async invocation not answered")
            }
        }
        result
    }
}

impl EventSender for ActivatorSender {
    async fn send(&self, request: Outgoing) -> Result<Answer, SendError> {
        let destination = request.target.address();
        let id = request
            .headers
            .get("ce-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let result = self.inner.send(self.rewrite(request)?).await;
        match &result {
            Ok(answer) => {
                let shown = &answer.body[..answer.body.len().min(LOGGED_BODY_BYTES)];
                tracing::debug!(
                    %destination, %id, status = answer.status.as_u16(),
                    body = %String::from_utf8_lossy(shown), "event answered"
                );
            }
            Err(error) => tracing::debug!(%destination, %id, %error, "event not answered"),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::HeaderMap;
    use zeroscale_common::signals::FunctionKey;

    use super::*;

    fn outgoing(target: Target) -> Outgoing {
        Outgoing {
            target,
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"{}"),
        }
    }

    #[test]
    fn functions_go_to_the_data_port_with_their_cluster_host() {
        let sender = ActivatorSender::new("0.0.0.0:8081".parse().unwrap(), "cluster.local").unwrap();
        let out = sender
            .rewrite(outgoing(Target::Function(FunctionKey::new("shop", "orders"))))
            .unwrap();
        assert_eq!(out.target, Target::Uri("http://127.0.0.1:8081/".parse().unwrap()));
        assert_eq!(
            out.headers.get(header::HOST).unwrap(),
            "orders.shop.svc.cluster.local"
        );
    }

    #[test]
    fn a_specific_bind_address_is_used_as_is_and_uris_go_direct() {
        let sender = ActivatorSender::new("10.244.0.1:9000".parse().unwrap(), "c.l").unwrap();
        let f = sender
            .rewrite(outgoing(Target::Function(FunctionKey::new("n", "f"))))
            .unwrap();
        assert_eq!(f.target, Target::Uri("http://10.244.0.1:9000/".parse().unwrap()));
        let uri = Target::uri("http://sink.example/in").unwrap();
        let out = sender.rewrite(outgoing(uri.clone())).unwrap();
        assert_eq!(out.target, uri);
        assert!(out.headers.get(header::HOST).is_none());
    }
}
