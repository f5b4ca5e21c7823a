//! Routing by `Host`: which function a request is for (SPEC §4).
//!
//! Accepted forms (the port suffix is ignored, case does not matter):
//! `<name>.<ns>`, `<name>.<ns>.svc`, `<name>.<ns>.svc.<cluster-domain>`, `<name>.<ns>.<external-domain>`.

use std::borrow::Cow;

/// A `Host` value that cannot name a function.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HostError {
    /// No `Host` header and no authority in the request target.
    #[error("request has no host")]
    Missing,
    /// The value is not a valid host name.
    #[error("invalid host {0:?}")]
    Invalid(String),
}

/// The domains the activator recognises.
#[derive(Clone, Debug)]
pub struct Domains {
    /// Cluster domain, such as `cluster.local`.
    pub cluster: String,
    /// External domain, such as `example.com`.
    pub external: String,
}

impl Default for Domains {
    fn default() -> Self {
        Self {
            cluster: "cluster.local".into(),
            external: "example.com".into(),
        }
    }
}

fn valid_host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'
}

/// Splits off a `:port` suffix, checking that the port is numeric. IPv6 literals never name a function.
fn strip_port(host: &str) -> Result<&str, HostError> {
    if host.starts_with('[') {
        return Err(HostError::Invalid(host.to_string()));
    }
    match host.rsplit_once(':') {
        Some((name, port))
            if !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(name)
        }
        Some(_) => Err(HostError::Invalid(host.to_string())),
        None => Ok(host),
    }
}

fn strip_suffix<'a>(host: &'a str, suffix: &str) -> Option<&'a str> {
    let rest = host.strip_suffix(suffix)?;
    rest.strip_suffix('.')
}

impl Domains {
    /// The routing key `<name>.<namespace>` for `host`, or `Ok(None)` when the host is well formed but
    /// not of a form the activator routes.
    ///
    /// Borrows from `host` in the common (lowercase) case so the warm path does not allocate.
    pub fn route_key<'a>(&self, host: &'a str) -> Result<Option<Cow<'a, str>>, HostError> {
        let name = strip_port(host)?;
        let name = name.strip_suffix('.').unwrap_or(name);
        // One pass over the host for both questions: this runs on every request.
        let mut uppercase = false;
        let valid = name.bytes().all(|b| {
            uppercase |= b.is_ascii_uppercase();
            valid_host_char(b)
        });
        if name.is_empty() || name.len() > 253 || !valid {
            return Err(HostError::Invalid(host.to_string()));
        }
        let name: Cow<'a, str> = if uppercase {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        let key_len = {
            let n: &str = &name;
            svc_cluster_prefix_len(n, &self.cluster)
                .or_else(|| strip_suffix(n, "svc").map(str::len))
                .or_else(|| strip_suffix(n, &self.external).map(str::len))
                .unwrap_or(n.len())
        };
        let key = match name {
            Cow::Borrowed(s) => Cow::Borrowed(&s[..key_len]),
            Cow::Owned(mut s) => {
                s.truncate(key_len);
                Cow::Owned(s)
            }
        };
        // Exactly `<name>.<namespace>`, both non-empty.
        match key.split_once('.') {
            Some((n, ns)) if !n.is_empty() && !ns.is_empty() && !ns.contains('.') => Ok(Some(key)),
            _ => Ok(None),
        }
    }
}

/// Length of the `<name>.<ns>` prefix of `host` when it ends in `.svc.<cluster>`.
fn svc_cluster_prefix_len(host: &str, cluster: &str) -> Option<usize> {
    let rest = strip_suffix(host, cluster)?;
    strip_suffix(rest, "svc").map(str::len)
}

/// The routing key of a function: `<name>.<namespace>`.
pub fn key_of(namespace: &str, name: &str) -> String {
    format!("{name}.{namespace}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(host: &str) -> Result<Option<String>, HostError> {
        Domains::default()
            .route_key(host)
            .map(|k| k.map(|k| k.into_owned()))
    }

    #[test]
    fn all_documented_forms_route() {
        for host in [
            "hello.default",
            "hello.default.svc",
            "hello.default.svc.cluster.local",
            "hello.default.example.com",
            "hello.default.example.com:8080",
            "Hello.Default.SVC:80",
            "hello.default.svc.cluster.local.",
        ] {
            assert_eq!(route(host).unwrap().as_deref(), Some("hello.default"), "{host}");
        }
    }

    #[test]
    fn other_forms_do_not_route() {
        assert_eq!(route("hello").unwrap(), None);
        assert_eq!(route("a.b.c").unwrap(), None);
        assert_eq!(route("localhost:8080").unwrap(), None);
        assert_eq!(route("hello.default.other.org").unwrap(), None);
    }

    #[test]
    fn invalid_hosts_are_errors() {
        for host in [
            "",
            "hello default",
            "hello.default:port",
            "[::1]:80",
            "a/b.c",
            "x.y:123456",
        ] {
            assert!(route(host).is_err(), "{host:?}");
        }
    }

    #[test]
    fn custom_domains() {
        let d = Domains {
            cluster: "corp.internal".into(),
            external: "fn.acme.io".into(),
        };
        assert_eq!(
            d.route_key("f.ns.svc.corp.internal").unwrap().as_deref(),
            Some("f.ns")
        );
        assert_eq!(d.route_key("f.ns.fn.acme.io").unwrap().as_deref(), Some("f.ns"));
        assert_eq!(d.route_key("f.ns.example.com").unwrap(), None);
    }
}
