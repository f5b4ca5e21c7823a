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

// Byte classes of a `Host` value, looked up once per byte: a pass over the host is a load and an
// `or` per byte, where testing each byte against the ranges and separators took about 20
// instructions.
/// A byte a host name may hold.
const NAME: u8 = 1;
/// An uppercase letter (also a name byte).
const UPPER: u8 = 2;
/// `:`, which starts a port.
const COLON: u8 = 4;
/// Any byte a host name may not hold.
const OTHER: u8 = 8;

/// The class of every byte value.
static CLASSES: [u8; 256] = {
    let mut table = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_uppercase() {
            table[b] = NAME | UPPER;
        } else if valid_host_char(c) {
            table[b] = NAME;
        } else if c == b':' {
            table[b] = COLON;
        }
        b += 1;
    }
    table
};

/// The classes of the bytes of `host`, or-ed together.
fn classes(host: &str) -> u8 {
    host.bytes().fold(0, |seen, b| seen | CLASSES[usize::from(b)])
}

const fn valid_host_char(b: u8) -> bool {
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
        // One pass over the host for every question (a port? valid? uppercase?): this runs on every
        // request. A port is split off, and the name passed over again, only when there is one.
        let mut seen = classes(host);
        let name = if seen & COLON == 0 {
            host
        } else {
            let name = strip_port(host)?;
            seen = classes(name);
            name
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() || name.len() > 253 || seen & (COLON | OTHER) != 0 {
            return Err(HostError::Invalid(host.to_string()));
        }
        let name: Cow<'a, str> = if seen & UPPER != 0 {
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

    proptest::proptest! {
        /// A port never changes where a host routes, nor whether it is valid: the name is checked by
        /// the same pass with or without one.
        #[test]
        fn a_port_does_not_change_the_route(host in "[a-zA-Z0-9._ /-]{0,40}", port in 0u32..100_000) {
            let with_port = route(&format!("{host}:{port}")).ok();
            proptest::prop_assert_eq!(with_port, route(&host).ok());
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
