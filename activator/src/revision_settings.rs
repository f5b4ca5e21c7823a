//! What the activator keeps per revision, read from a Function's status (pure): one routing-table
//! entry per revision, with the Function's settings and the revision's own startup failure, and the
//! function's routes. A revision's own runtime settings (concurrency, timeouts, protocol, port) come
//! from its EndpointSlices' labels ([`RevisionRuntime`]) and replace the Function's current ones
//! ([`with_runtime`], in `settings`), so an older revision keeps its own during a split.
//!
//! A Function whose status lists no revision (one from before revisions, or not yet reconciled by an
//! operator that makes them) keeps a single entry under its own name, as before.

use std::collections::BTreeSet;

use zeroscale_common::signals::FunctionKey;
use zeroscale_crds::Function;

pub use crate::settings::with_runtime;
use crate::settings::{FunctionSettings, StartupFailure};
use crate::split::Routes;

/// The routing-table entries of `function` (namespace `namespace`, name `name`): every revision its
/// status lists or routes to, or the function itself when there is none.
pub fn entries(function: &Function, namespace: &str, name: &str) -> Vec<(FunctionKey, FunctionSettings)> {
    let base = FunctionSettings::from_function(function);
    let Some(status) = function.status.as_ref() else {
        return vec![(FunctionKey::new(namespace, name), base)];
    };
    let mut names: BTreeSet<&str> = status.revisions.iter().map(|r| r.name.as_str()).collect();
    names.extend(status.traffic.iter().map(|t| t.revision_name.as_str()));
    if names.is_empty() {
        return vec![(FunctionKey::new(namespace, name), base)];
    }
    names
        .into_iter()
        .map(|revision| {
            let failure = status
                .revisions
                .iter()
                .find(|r| r.name == revision)
                .and_then(|r| {
                    Some(StartupFailure {
                        reason: r.reason.clone()?,
                        message: r.message.clone().unwrap_or_default(),
                    })
                });
            let settings = FunctionSettings {
                failure,
                ..base.clone()
            };
            (FunctionKey::new(namespace, revision), settings)
        })
        .collect()
}

/// The routes of `function` from its `status.traffic`; `None` while it has none.
pub fn routes(function: &Function, namespace: &str, name: &str) -> Option<Routes> {
    let traffic = &function.status.as_ref()?.traffic;
    (!traffic.is_empty()).then(|| Routes::from_traffic(namespace, name, traffic))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroscale_crds::revision_runtime::RevisionRuntime;

    fn function(status: serde_json::Value) -> Function {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Function",
            "metadata": { "name": "hello", "namespace": "ns" },
            "spec": { "image": "echo", "concurrency": 3 },
            "status": status,
        }))
        .expect("function")
    }

    #[test]
    fn a_function_without_revisions_is_one_entry_under_its_name() {
        let f = function(serde_json::json!({}));
        let got = entries(&f, "ns", "hello");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, FunctionKey::new("ns", "hello"));
        assert!(routes(&f, "ns", "hello").is_none());
    }

    #[test]
    fn every_revision_is_an_entry_with_its_own_failure() {
        let f = function(serde_json::json!({
            "traffic": [{ "revisionName": "hello-aaaaaaaaaa", "percent": 100 }],
            "revisions": [
                { "name": "hello-bbbbbbbbbb", "reason": "ImagePullBackOff", "message": "no such image" },
                { "name": "hello-aaaaaaaaaa", "ready": true },
            ],
        }));
        let got = entries(&f, "ns", "hello");
        let view: Vec<(&str, Option<&str>, u32)> = got
            .iter()
            .map(|(k, s)| {
                (
                    k.name.as_str(),
                    s.failure.as_ref().map(|f| f.reason.as_str()),
                    s.concurrency,
                )
            })
            .collect();
        assert_eq!(
            view,
            [
                ("hello-aaaaaaaaaa", None, 3),
                ("hello-bbbbbbbbbb", Some("ImagePullBackOff"), 3)
            ]
        );
        let routes = routes(&f, "ns", "hello").expect("routes");
        assert_eq!(routes.split.pick_at(0), Some("hello-aaaaaaaaaa.ns"));
    }

    #[test]
    fn a_revision_runs_with_its_own_runtime_not_the_current_spec() {
        let current = function(serde_json::json!({}));
        let base = FunctionSettings::from_function(&current);
        let old: zeroscale_crds::FunctionSpec = serde_json::from_value(serde_json::json!({
            "image": "echo:1", "concurrency": 1, "timeoutSeconds": 20,
            "idleTimeoutSeconds": 4, "protocol": "h2c", "port": 9000,
        }))
        .expect("spec");
        let got = with_runtime(&base, &RevisionRuntime::of(&old));
        assert_eq!(got.concurrency, 1);
        assert_eq!(got.timeout, std::time::Duration::from_secs(20));
        assert_eq!(
            got.response_start_timeout,
            std::time::Duration::from_secs(20),
            "defaults to the revision's own timeout"
        );
        assert_eq!(got.idle_timeout, Some(std::time::Duration::from_secs(4)));
        assert_eq!(got.protocol, zeroscale_crds::function::Protocol::H2c);
        assert_eq!(got.port, 9000);
        // What is not per revision stays the Function's.
        assert_eq!((got.visibility, &got.uid), (base.visibility, &base.uid));
        assert_eq!(base.concurrency, 3);
        // The current revision's own runtime gives the Function's settings back.
        let same = with_runtime(&base, &RevisionRuntime::of(&current.spec));
        assert_eq!(same, base);
    }
}
