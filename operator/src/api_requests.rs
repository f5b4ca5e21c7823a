//! Counts the operator's requests to the API server by verb and resource
//! (`zeroscale_operator_api_requests_total{verb,resource}`), from a layer on the client.
//!
//! Why: an operator's load on the API server grows with the number of Functions and with how often
//! their pods change. The counter shows what a reconcile costs there, and tests assert that a settled
//! Function costs nothing.

use http::{Method, Request};
use kube::client::Body;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::{counter::Counter, family::Family};
use tower::util::MapRequestLayer;

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiRequestLabels {
    /// `get`, `list`, `watch`, `create`, `update`, `apply` (a server-side apply), `patch`, `delete`,
    /// `deletecollection`, or the HTTP method in lower case for anything else.
    pub verb: String,
    /// The resource in the request's path (`pods`, `deployments`, `functions/status`, …), or `other`
    /// for a path that names none (discovery, `/version`).
    pub resource: String,
}

/// The media type of a server-side apply.
const APPLY: &str = "application/apply-patch+yaml";

/// The resource a request path names, and whether it names one object: `/api/v1/...` and
/// `/apis/<group>/<version>/...`, namespaced or not, with an optional subresource.
fn resource(path: &str) -> Option<(String, bool)> {
    let mut segments = path.trim_matches('/').split('/');
    match segments.next()? {
        "api" => {
            segments.next()?;
        }
        "apis" => {
            segments.next()?;
            segments.next()?;
        }
        _ => return None,
    }
    let mut rest: Vec<&str> = segments.collect();
    // `namespaces/<ns>/<resource>...`; `namespaces` and `namespaces/<ns>` alone are the Namespace resource.
    if rest.len() >= 3 && rest[0] == "namespaces" {
        rest.drain(..2);
    }
    match rest.as_slice() {
        [resource] => Some((resource.to_string(), false)),
        [resource, _name] => Some((resource.to_string(), true)),
        [resource, _name, sub, ..] => Some((format!("{resource}/{sub}"), true)),
        _ => None,
    }
}

/// Whether the query asks for a watch (`watch=true` or `watch=1`).
fn is_watch(query: Option<&str>) -> bool {
    query
        .unwrap_or_default()
        .split('&')
        .any(|pair| pair == "watch=true" || pair == "watch=1")
}

/// The labels of `request`.
pub fn classify<B>(request: &Request<B>) -> ApiRequestLabels {
    let uri = request.uri();
    let Some((resource, one)) = resource(uri.path()) else {
        return ApiRequestLabels {
            verb: request.method().as_str().to_ascii_lowercase(),
            resource: "other".into(),
        };
    };
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let verb = match *request.method() {
        Method::GET if is_watch(uri.query()) => "watch",
        Method::GET if one => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH if content_type.starts_with(APPLY) => "apply",
        Method::PATCH => "patch",
        Method::DELETE if one => "delete",
        Method::DELETE => "deletecollection",
        ref other => {
            return ApiRequestLabels {
                verb: other.as_str().to_ascii_lowercase(),
                resource,
            };
        }
    };
    ApiRequestLabels {
        verb: verb.into(),
        resource,
    }
}

/// A client layer that counts every request in `counter` and passes it on unchanged.
pub fn layer(
    counter: Family<ApiRequestLabels, Counter>,
) -> MapRequestLayer<impl Fn(Request<Body>) -> Request<Body> + Clone> {
    MapRequestLayer::new(move |request: Request<Body>| {
        counter.get_or_create(&classify(&request)).inc();
        request
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(method: Method, uri: &str, content_type: Option<&str>) -> (String, String) {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(ct) = content_type {
            builder = builder.header(http::header::CONTENT_TYPE, ct);
        }
        let l = classify(&builder.body(()).expect("request"));
        (l.verb, l.resource)
    }

    fn pair(verb: &str, resource: &str) -> (String, String) {
        (verb.into(), resource.into())
    }

    #[test]
    fn requests_are_named_by_verb_and_resource() {
        let pods = "/api/v1/namespaces/ns/pods";
        assert_eq!(labels(Method::GET, pods, None), pair("list", "pods"));
        assert_eq!(
            labels(Method::GET, &format!("{pods}?labelSelector=a&watch=true"), None),
            pair("watch", "pods")
        );
        assert_eq!(
            labels(Method::GET, "/api/v1/pods?watch=1", None),
            pair("watch", "pods")
        );
        assert_eq!(
            labels(Method::GET, &format!("{pods}/p"), None),
            pair("get", "pods")
        );
        let deployment = "/apis/apps/v1/namespaces/ns/deployments/hello?fieldManager=x&force=true";
        assert_eq!(
            labels(Method::PATCH, deployment, Some("application/apply-patch+yaml")),
            pair("apply", "deployments")
        );
        assert_eq!(
            labels(Method::PATCH, deployment, Some("application/merge-patch+json")),
            pair("patch", "deployments")
        );
        assert_eq!(
            labels(
                Method::PATCH,
                "/apis/zeroscale.dev/v1alpha1/namespaces/ns/functions/hello/status",
                Some("application/apply-patch+yaml")
            ),
            pair("apply", "functions/status")
        );
        assert_eq!(
            labels(Method::POST, "/apis/events.k8s.io/v1/namespaces/ns/events", None),
            pair("create", "events")
        );
        assert_eq!(
            labels(
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l",
                None
            ),
            pair("update", "leases")
        );
        assert_eq!(
            labels(Method::DELETE, &format!("{pods}/p"), None),
            pair("delete", "pods")
        );
        assert_eq!(
            labels(Method::DELETE, pods, None),
            pair("deletecollection", "pods")
        );
        assert_eq!(
            labels(Method::GET, "/api/v1/namespaces/ns", None),
            pair("get", "namespaces")
        );
        assert_eq!(labels(Method::GET, "/version", None), pair("get", "other"));
        assert_eq!(labels(Method::HEAD, pods, None), pair("head", "pods"));
    }
}
