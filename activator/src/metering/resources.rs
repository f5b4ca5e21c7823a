//! What one invocation of a function is billed for: its container's memory and CPU, read from the
//! Function's `resources` (limits, else requests, else the configured defaults), and the rounding of
//! its duration to whole milliseconds.

use std::time::Duration;

use zeroscale_crds::Function;

/// The memory and CPU one pod of a function is allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resources {
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// CPU in millicores.
    pub cpu_millis: u64,
}

/// What a function without `resources` is billed for (`--metering-default-memory`,
/// `--metering-default-cpu`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceDefaults {
    /// Memory in bytes; 128 MiB unless configured.
    pub memory_bytes: u64,
    /// CPU in millicores; 100m unless configured.
    pub cpu_millis: u64,
}

impl Default for ResourceDefaults {
    fn default() -> Self {
        Self {
            memory_bytes: 128 << 20,
            cpu_millis: 100,
        }
    }
}

/// The memory and CPU a Function's container declares, when it declares them: its limit, else its
/// request. Unparsable quantities count as absent (the API server validates them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Declared {
    /// Memory in bytes.
    pub memory_bytes: Option<u64>,
    /// CPU in millicores.
    pub cpu_millis: Option<u64>,
}

impl Declared {
    /// What `function`'s spec declares.
    pub fn of(function: &Function) -> Self {
        let Some(resources) = function.spec.resources.as_ref() else {
            return Self::default();
        };
        let pick = |name: &str| {
            let get = |map: &Option<std::collections::BTreeMap<String, _>>| {
                map.as_ref()
                    .and_then(|m| m.get(name))
                    .map(|q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| q.0.clone())
            };
            get(&resources.limits).or_else(|| get(&resources.requests))
        };
        Self {
            memory_bytes: pick("memory").and_then(|q| quantity(&q)).map(|v| v.ceil() as u64),
            cpu_millis: pick("cpu")
                .and_then(|q| quantity(&q))
                .map(|v| (v * 1000.0).ceil() as u64),
        }
    }

    /// The declared values, with `defaults` for what is not declared.
    pub fn or(self, defaults: ResourceDefaults) -> Resources {
        Resources {
            memory_bytes: self.memory_bytes.unwrap_or(defaults.memory_bytes),
            cpu_millis: self.cpu_millis.unwrap_or(defaults.cpu_millis),
        }
    }
}

/// A Kubernetes quantity (`128Mi`, `1G`, `500m`, `0.5`, `1e3`) as a number; `None` when malformed.
pub fn quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let (number, factor) = suffixes
        .iter()
        .find_map(|(s, f)| text.strip_suffix(s).map(|n| (n, *f)))
        .unwrap_or((text, 1.0));
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value * factor)
}

/// The billed milliseconds of an invocation that lasted `duration`: rounded up to a whole
/// millisecond, at least 1 ms for an invocation that reached a pod.
pub fn billed_millis(duration: Duration) -> u64 {
    let nanos = duration.as_nanos();
    let millis = nanos.div_ceil(1_000_000);
    u64::try_from(millis).unwrap_or(u64::MAX).max(1)
}

impl From<ResourceDefaults> for Resources {
    fn from(d: ResourceDefaults) -> Self {
        Self {
            memory_bytes: d.memory_bytes,
            cpu_millis: d.cpu_millis,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_rounds_up_to_the_millisecond() {
        assert_eq!(billed_millis(Duration::ZERO), 1);
        assert_eq!(billed_millis(Duration::from_nanos(1)), 1);
        assert_eq!(billed_millis(Duration::from_millis(1)), 1);
        assert_eq!(billed_millis(Duration::from_micros(1001)), 2);
        assert_eq!(billed_millis(Duration::from_micros(199_999)), 200);
        assert_eq!(billed_millis(Duration::from_millis(200)), 200);
    }

    #[test]
    fn quantities_parse_like_kubernetes() {
        assert_eq!(quantity("128Mi"), Some(134_217_728.0));
        assert_eq!(quantity("1G"), Some(1e9));
        assert_eq!(quantity("500m"), Some(0.5));
        assert_eq!(quantity("2"), Some(2.0));
        assert_eq!(quantity("1e3"), Some(1000.0));
        assert_eq!(quantity("lots"), None);
        assert_eq!(quantity("-1"), None);
    }

    #[test]
    fn limits_win_over_requests_and_defaults_fill_the_rest() {
        let function: Function = serde_json::from_value(serde_json::json!({
            "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Function",
            "metadata": {"name": "f", "namespace": "ns"},
            "spec": {"image": "x", "resources": {
                "limits": {"memory": "128Mi"},
                "requests": {"memory": "64Mi", "cpu": "250m"}
            }}
        }))
        .expect("a function");
        let declared = Declared::of(&function);
        assert_eq!(declared.memory_bytes, Some(128 << 20));
        assert_eq!(declared.cpu_millis, Some(250));
        let defaults = ResourceDefaults {
            memory_bytes: 1,
            cpu_millis: 2,
        };
        assert_eq!(
            Declared::default().or(defaults),
            Resources {
                memory_bytes: 1,
                cpu_millis: 2
            }
        );
    }
}
