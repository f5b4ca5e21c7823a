//! What a burst costs the API server: its requests and CPU, and the operator's share of the requests,
//! from the API server's and the operator's `/metrics` before and after.
//!
//! Why: while a burst drains, the control plane shares the node's two cores with the activators
//! (session 24 measured the API server at 15 % of both cores then), and every pod that starts makes
//! the operator reconcile its Function.

use serde::Serialize;

use crate::prom::{total, values};

/// The counters [`ApiLoad::between`] takes the difference of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiCounters {
    /// `apiserver_request_total` over every verb but `WATCH` (a watch is counted when it ends).
    pub apiserver_requests: Option<f64>,
    /// The API server's `process_cpu_seconds_total`.
    pub apiserver_cpu_seconds: Option<f64>,
    /// `zeroscale_operator_api_requests_total` over every verb but `watch`, leaving out its Lease
    /// (renewed on a timer, whatever the burst does), summed over the operator's replicas; `None`
    /// when no replica exports it (an operator from before the counter).
    pub operator_requests: Option<f64>,
}

impl ApiCounters {
    /// The counters in the API server's `/metrics` text (if it answered) and the operator replicas'.
    pub fn read(apiserver: Option<&str>, operators: &[String]) -> Self {
        let apiserver = apiserver.map(|text| [text.to_string()]);
        let apiserver = apiserver.as_ref().map(|t| t.as_slice());
        let counted = operators.iter().any(|t| {
            values(t, "zeroscale_operator_api_requests_total", &[])
                .next()
                .is_some()
        });
        let operator_requests = counted.then(|| {
            let requests =
                |labels: &[(&str, &str)]| total(operators, "zeroscale_operator_api_requests_total", labels);
            let leases =
                requests(&[("resource", "leases")]) - requests(&[("verb", "watch"), ("resource", "leases")]);
            requests(&[]) - requests(&[("verb", "watch")]) - leases
        });
        Self {
            apiserver_requests: apiserver.map(|t| {
                total(t, "apiserver_request_total", &[])
                    - total(t, "apiserver_request_total", &[("verb", "WATCH")])
            }),
            apiserver_cpu_seconds: apiserver.map(|t| total(t, "process_cpu_seconds_total", &[])),
            operator_requests,
        }
    }
}

/// The API server's load over a span (a burst), from the counters at its start and its end.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ApiLoad {
    /// Requests the API server answered (watches left out).
    pub apiserver_requests: Option<f64>,
    /// CPU time the API server used, ms.
    pub apiserver_cpu_ms: Option<f64>,
    /// Requests the operator sent (watches and its Lease left out).
    pub operator_requests: Option<f64>,
}

impl ApiLoad {
    /// The difference of `after` and `before`, for each counter read both times.
    pub fn between(before: &ApiCounters, after: &ApiCounters) -> Self {
        let diff = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        Self {
            apiserver_requests: diff(after.apiserver_requests, before.apiserver_requests),
            apiserver_cpu_ms: diff(after.apiserver_cpu_seconds, before.apiserver_cpu_seconds)
                .map(|s| s * 1000.0),
            operator_requests: diff(after.operator_requests, before.operator_requests),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APISERVER: &str = "# TYPE apiserver_request_total counter\n\
        apiserver_request_total{code=\"200\",resource=\"pods\",verb=\"LIST\"} 10\n\
        apiserver_request_total{code=\"200\",resource=\"pods\",verb=\"WATCH\"} 4\n\
        apiserver_request_total{code=\"201\",resource=\"services\",verb=\"APPLY\"} 5\n\
        process_cpu_seconds_total 12.5\n";

    fn operator(applies: u32, lease_updates: u32) -> String {
        format!(
            "zeroscale_operator_api_requests_total{{verb=\"apply\",resource=\"services\"}} {applies}\n\
             zeroscale_operator_api_requests_total{{verb=\"watch\",resource=\"pods\"}} 3\n\
             zeroscale_operator_api_requests_total{{verb=\"update\",resource=\"leases\"}} {lease_updates}\n"
        )
    }

    #[test]
    fn counts_requests_without_watches_or_the_lease() {
        let c = ApiCounters::read(Some(APISERVER), &[operator(7, 40)]);
        assert_eq!(c.apiserver_requests, Some(15.0));
        assert_eq!(c.apiserver_cpu_seconds, Some(12.5));
        assert_eq!(c.operator_requests, Some(7.0));
    }

    #[test]
    fn the_load_is_the_difference_and_unknown_where_a_side_is_missing() {
        let before = ApiCounters::read(Some(APISERVER), &[operator(7, 40)]);
        let after = ApiCounters::read(
            Some(&APISERVER.replace("12.5", "12.75").replace("} 10", "} 30")),
            &[operator(9, 45)],
        );
        let load = ApiLoad::between(&before, &after);
        assert_eq!(load.apiserver_requests, Some(20.0));
        assert_eq!(load.apiserver_cpu_ms, Some(250.0));
        assert_eq!(load.operator_requests, Some(2.0));
        let unknown = ApiLoad::between(&ApiCounters::read(None, &[]), &after);
        assert_eq!(unknown, ApiLoad::default());
        let old_operator = ApiCounters::read(None, &["zeroscale_operator_leader 1\n".to_string()]);
        assert_eq!(old_operator.operator_requests, None, "not counted is not zero");
    }
}
