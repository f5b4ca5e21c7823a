//! Settings from the environment (the way a function gets them from its pod spec).

use std::time::Duration;

/// How long calls in flight may take to finish after SIGTERM unless `DRAIN_TIMEOUT_SECONDS` says
/// otherwise (the operator gives pods `timeoutSeconds` before it kills them, 300 s by default).
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `PORT` is not a port number.
    #[error("PORT must be a port number from 1 to 65535, not {0:?}")]
    Port(String),
    /// `DRAIN_TIMEOUT_SECONDS` is not a whole number of seconds.
    #[error("DRAIN_TIMEOUT_SECONDS must be a whole number of seconds, not {0:?}")]
    DrainTimeout(String),
}

/// The function's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Port to listen on (`$PORT`, default 8080), on all addresses.
    pub port: u16,
    /// The pod name (`$POD_NAME`, else `$HOSTNAME`; see [`Config::from_env`]), put in every reply.
    pub pod: String,
    /// How long calls in flight may take after SIGTERM (`$DRAIN_TIMEOUT_SECONDS`, default 30).
    pub drain_timeout: Duration,
}

impl Config {
    /// Reads the settings through `get` (`std::env::var` in production, a map in tests); an empty
    /// variable counts as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let non_empty = |k: &str| get(k).filter(|v| !v.is_empty());
        let port = match non_empty("PORT") {
            None => 8080,
            Some(v) => v
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or(ConfigError::Port(v))?,
        };
        let drain_timeout = match non_empty("DRAIN_TIMEOUT_SECONDS") {
            None => DEFAULT_DRAIN_TIMEOUT,
            Some(v) => Duration::from_secs(v.parse().map_err(|_| ConfigError::DrainTimeout(v))?),
        };
        Ok(Self {
            port,
            pod: non_empty("POD_NAME")
                .or_else(|| non_empty("HOSTNAME"))
                .unwrap_or_default(),
            drain_timeout,
        })
    }

    /// Reads the settings from the process environment; without `POD_NAME` and `HOSTNAME` the pod is
    /// the kernel's host name (a pod's host name is its name).
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut config = Self::from_lookup(|k| std::env::var(k).ok())?;
        if config.pod.is_empty() {
            config.pod = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|name| name.trim().to_string())
                .unwrap_or_default();
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults() {
        let c = Config::from_lookup(lookup(&[("PORT", "")]));
        assert_eq!(
            c,
            Ok(Config {
                port: 8080,
                pod: String::new(),
                drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            })
        );
    }

    #[test]
    fn overrides_and_pod_name_before_hostname() {
        let c = Config::from_lookup(lookup(&[
            ("PORT", "9000"),
            ("POD_NAME", "p"),
            ("HOSTNAME", "h"),
            ("DRAIN_TIMEOUT_SECONDS", "5"),
        ]));
        assert_eq!(
            c,
            Ok(Config {
                port: 9000,
                pod: "p".into(),
                drain_timeout: Duration::from_secs(5),
            })
        );
        let c = Config::from_lookup(lookup(&[("HOSTNAME", "h")]));
        assert_eq!(c.map(|c| c.pod), Ok("h".to_string()));
    }

    #[test]
    fn bad_values_are_named() {
        for port in ["0", "65536", "http", "-1"] {
            let got = Config::from_lookup(|k| (k == "PORT").then(|| port.to_string()));
            assert_eq!(got, Err(ConfigError::Port(port.into())));
        }
        let got = Config::from_lookup(lookup(&[("DRAIN_TIMEOUT_SECONDS", "5s")]));
        let msg = got.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            msg,
            "DRAIN_TIMEOUT_SECONDS must be a whole number of seconds, not \"5s\""
        );
    }
}
