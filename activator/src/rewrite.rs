//! Rewriting a client's request for the hop it takes next: the target URI in the form the protocol
//! wants, hop-by-hop headers removed, tracing headers added, forwarding fields made.

use std::net::SocketAddr;

use http::{
    HeaderValue, Request, Uri, Version, header,
    uri::{Authority, Scheme},
};
use zeroscale_crds::function::Protocol;

use crate::{client_body::ClientBody, forwarding::Forwarding, headers, host::HostError};

/// The request's host: the `Host` header, else the target's authority (HTTP/2 `:authority`).
pub fn host_of<B>(request: &Request<B>) -> Result<&str, HostError> {
    match request.headers().get(header::HOST) {
        Some(v) => v
            .to_str()
            .map_err(|_| HostError::Invalid(String::from_utf8_lossy(v.as_bytes()).into_owned())),
        None => request
            .uri()
            .authority()
            .map(|a| a.as_str())
            .ok_or(HostError::Missing),
    }
}

/// The request's host as a header value: its `Host` field's own (shared, not copied) when it is
/// text, else its URI's authority (HTTP/2).
pub fn host_value<B>(request: &Request<B>) -> Option<HeaderValue> {
    match request.headers().get(header::HOST) {
        Some(v) => v.to_str().is_ok().then(|| v.clone()),
        None => request
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    }
}

/// Rewrites the request for the pod: origin-form target (HTTP/1.1; h2c sets the pod's address per
/// attempt), the right HTTP version, hop-by-hop headers removed, tracing headers added. The client's
/// `Host` is kept. Returns the forwarding fields for `host`, which the request gets where it is sent
/// (`upstream::Outgoing`): written with its head by the activator's own client, or put into its map.
pub fn prepare(
    request: &mut Request<ClientBody>,
    protocol: Protocol,
    remote: SocketAddr,
    host: Option<HeaderValue>,
    upgrade: bool,
) -> Option<Forwarding> {
    if request.uri().scheme().is_some() || request.uri().path_and_query().is_none() {
        // Absolute-form from the client (or no path): the pod gets origin-form, `Host` names the host.
        set_target(request, None);
    }
    *request.version_mut() = match protocol {
        Protocol::Http1 => Version::HTTP_11,
        Protocol::H2c => Version::HTTP_2,
    };
    let h = request.headers_mut();
    headers::strip_hop_by_hop(h, upgrade && protocol == Protocol::Http1);
    let forwarding = host.map(|host| {
        if !h.contains_key(header::HOST) {
            h.insert(header::HOST, host.clone());
        }
        Forwarding::new(remote.ip(), host)
    });
    crate::trace::hop(request);
    forwarding
}

/// Sets the request target: absolute on `authority` (plain HTTP), or origin-form without one.
pub fn set_target<B>(request: &mut Request<B>, authority: Option<Authority>) {
    let mut parts = std::mem::take(request.uri_mut()).into_parts();
    parts.scheme = authority.is_some().then_some(Scheme::HTTP);
    parts.authority = authority;
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    *request.uri_mut() = Uri::from_parts(parts).unwrap_or_else(|_| Uri::from_static("/"));
}
