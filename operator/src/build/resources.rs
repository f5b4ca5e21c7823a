//! The function container's compute resources: the Function's own, plus the operator's default CPU
//! request when the Function asks for no CPU at all.
//!
//! Why a default: a pod whose containers request nothing is `BestEffort`, and on a node the
//! `BestEffort` pods share the lowest CPU weight there is (cgroup v1 `cpu.shares` 2 for all of them
//! together, v2 weight 1), below the activator relaying their requests (`Burstable`, 100m). On a busy
//! node a function pod then waits for the CPU behind everything else: in the cold-start bench's
//! burst, a pod that had just become ready took 85 ms to answer its first requests while the node
//! started the others (`docs/benchmarks.md`, session 29). A small request makes the pod `Burstable`
//! with a weight of its own, as Knative's queue-proxy sidecar (25m) does for its pods.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The resource name of CPU in requests and limits.
const CPU: &str = "cpu";

/// `resources` with `default_cpu_request` as its CPU request when it has neither a CPU request nor a
/// CPU limit. A CPU limit alone is left as it is: Kubernetes makes the request equal to the limit.
pub fn container_resources(
    resources: Option<&ResourceRequirements>,
    default_cpu_request: Option<&Quantity>,
) -> Option<ResourceRequirements> {
    let asks_for_cpu = |map: Option<&BTreeMap<String, Quantity>>| map.is_some_and(|m| m.contains_key(CPU));
    let Some(default) = default_cpu_request else {
        return resources.cloned();
    };
    if resources.is_some_and(|r| asks_for_cpu(r.requests.as_ref()) || asks_for_cpu(r.limits.as_ref())) {
        return resources.cloned();
    }
    let mut resources = resources.cloned().unwrap_or_default();
    resources
        .requests
        .get_or_insert_with(BTreeMap::new)
        .insert(CPU.into(), default.clone());
    Some(resources)
}

/// Whether `value` is a CPU quantity the operator may request for every function: a positive
/// decimal number of cores (`0.5`) or of millicores (`25m`).
pub fn is_cpu_quantity(value: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = match value.strip_suffix('m') {
        Some(millicores) => digits(millicores),
        None => match value.split_once('.') {
            Some((whole, fraction)) => digits(whole) && digits(fraction),
            None => digits(value),
        },
    };
    well_formed && value.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantity(q: &str) -> Quantity {
        Quantity(q.into())
    }

    fn requirements(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> ResourceRequirements {
        let map = |pairs: &[(&str, &str)]| {
            (!pairs.is_empty()).then(|| pairs.iter().map(|(k, v)| (k.to_string(), quantity(v))).collect())
        };
        ResourceRequirements {
            requests: map(requests),
            limits: map(limits),
            ..ResourceRequirements::default()
        }
    }

    #[test]
    fn a_function_asking_for_nothing_gets_the_default_cpu_request() {
        let got = container_resources(None, Some(&quantity("25m")));
        assert_eq!(got, Some(requirements(&[("cpu", "25m")], &[])));
    }

    #[test]
    fn the_default_joins_a_memory_request_and_limit() {
        let own = requirements(&[("memory", "32Mi")], &[("memory", "64Mi")]);
        let got = container_resources(Some(&own), Some(&quantity("25m")));
        assert_eq!(
            got,
            Some(requirements(
                &[("cpu", "25m"), ("memory", "32Mi")],
                &[("memory", "64Mi")]
            ))
        );
    }

    #[test]
    fn a_function_asking_for_cpu_keeps_its_own() {
        for own in [
            requirements(&[("cpu", "1")], &[]),
            // A limit alone: Kubernetes sets the request to it, so none is added.
            requirements(&[], &[("cpu", "500m")]),
        ] {
            assert_eq!(container_resources(Some(&own), Some(&quantity("25m"))), Some(own));
        }
    }

    #[test]
    fn without_a_default_the_functions_resources_are_left_as_they_are() {
        assert_eq!(container_resources(None, None), None);
        let own = requirements(&[("memory", "32Mi")], &[]);
        assert_eq!(container_resources(Some(&own), None), Some(own));
    }

    #[test]
    fn cpu_quantities_are_positive_cores_or_millicores() {
        for good in ["25m", "100m", "1", "0.5", "2.25", "0.025"] {
            assert!(is_cpu_quantity(good), "{good}");
        }
        for bad in [
            "", "m", "0", "0m", "0.0", "-1", "1.", ".5", "1.5m", "25Mi", "1e3", " 25m", "25 m",
        ] {
            assert!(!is_cpu_quantity(bad), "{bad}");
        }
    }
}
