//! The outbound guard: which hosts a Trigger's `subscriber.uri` and dead-letter `uri` may point at.
//!
//! Without it anyone allowed to create a Trigger could make the activator send requests anywhere it
//! can reach: cloud metadata endpoints, pod IPs, the API server, the internet. The operator refuses
//! such a Trigger (`Ready=False`, reason `HostNotAllowed`, naming the host) and the activator, which
//! compiles Triggers with the same list, never routes it, so nothing is sent even while the status
//! lags.
//!
//! Always allowed: in-cluster Service names, `<name>.<namespace>.svc` and
//! `<name>.<namespace>.svc.<cluster-domain>`. Not allowed unless listed: everything else, including
//! the short `<name>.<namespace>` form (for a namespace that does not exist the resolver's search
//! path falls through to public DNS, so `attacker.com` would be read as service `attacker` in
//! namespace `com`), single labels, and IP literals (pod IPs, `169.254.169.254`). Entries of the list
//! are exact host names or `*.suffix` patterns (any host ending in `.suffix`, not `suffix` itself); a
//! lone `*` allows every host (the guard off: for tests and for clusters that want no guard).

use std::{fmt, str::FromStr};

/// A host the allow-list refuses; the message names it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "host {host:?} is not allowed: only in-cluster services (*.svc, *.svc.{cluster_domain}) and the hosts in --allowed-hosts may receive events"
)]
pub struct HostNotAllowed {
    /// The refused host, lower case.
    pub host: String,
    /// The cluster domain in force, for the message.
    pub cluster_domain: String,
}

/// An entry of `--allowed-hosts` that is not a host name or a `*.suffix` pattern.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid allowed host {0:?}: use a host name (sink.example.com) or a pattern (*.example.com)")]
pub struct InvalidPattern(pub String);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    /// `*`: every host.
    Any,
    Exact(String),
    /// `*.suffix`, stored as `.suffix`.
    Suffix(String),
}

impl Pattern {
    fn matches(&self, host: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(exact) => host == exact,
            Pattern::Suffix(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Any => f.write_str("*"),
            Pattern::Exact(host) => f.write_str(host),
            Pattern::Suffix(suffix) => write!(f, "*{suffix}"),
        }
    }
}

/// The allow-list: in-cluster Service names plus explicitly allowed external hosts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedHosts {
    cluster_domain: String,
    patterns: Vec<Pattern>,
}

impl Default for AllowedHosts {
    /// In-cluster Services of `cluster.local` only.
    fn default() -> Self {
        Self::new("cluster.local")
    }
}

impl AllowedHosts {
    /// In-cluster Services of `cluster_domain` only.
    pub fn new(cluster_domain: &str) -> Self {
        Self {
            cluster_domain: normalize(cluster_domain),
            patterns: Vec::new(),
        }
    }

    /// Adds the entries of a comma-separated list (the flag's form; blanks are ignored).
    pub fn with_list(mut self, list: &str) -> Result<Self, InvalidPattern> {
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            self.patterns.push(entry.parse()?);
        }
        Ok(self)
    }

    /// Whether events may be sent to `host` (a host name without port; case and a trailing dot do
    /// not matter).
    pub fn allows(&self, host: &str) -> bool {
        let host = normalize(host);
        is_service_name(&host, &self.cluster_domain) || self.patterns.iter().any(|p| p.matches(&host))
    }

    /// Checks the host of `uri`; a URI without a host is refused.
    pub fn check(&self, uri: &http::Uri) -> Result<(), HostNotAllowed> {
        let host = uri.host().unwrap_or_default();
        if !host.is_empty() && self.allows(host) {
            return Ok(());
        }
        Err(HostNotAllowed {
            host: normalize(host),
            cluster_domain: self.cluster_domain.clone(),
        })
    }

    /// The explicit entries, comma-separated (for logs).
    pub fn list(&self) -> String {
        let entries: Vec<String> = self.patterns.iter().map(ToString::to_string).collect();
        entries.join(",")
    }
}

impl FromStr for Pattern {
    type Err = InvalidPattern;

    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        if entry.trim() == "*" {
            return Ok(Pattern::Any);
        }
        let lowered = normalize(entry);
        let (pattern, name) = match lowered.strip_prefix("*.") {
            Some(suffix) => (Pattern::Suffix(format!(".{suffix}")), suffix),
            None => (Pattern::Exact(lowered.clone()), lowered.as_str()),
        };
        if is_dns_name(name) {
            Ok(pattern)
        } else {
            Err(InvalidPattern(entry.to_string()))
        }
    }
}

fn normalize(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `<name>.<namespace>.svc` or `<name>.<namespace>.svc.<cluster domain>`, each label a DNS-1123
/// label (so an IP literal never matches).
fn is_service_name(host: &str, cluster_domain: &str) -> bool {
    let prefix = host
        .strip_suffix(cluster_domain)
        .and_then(|rest| rest.strip_suffix('.'))
        .unwrap_or(host);
    let Some(service) = prefix.strip_suffix(".svc") else {
        return false;
    };
    let mut labels = service.split('.');
    matches!(
        (labels.next(), labels.next(), labels.next()),
        (Some(name), Some(namespace), None) if is_label(name) && is_label(namespace)
    )
}

fn is_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

fn is_dns_name(name: &str) -> bool {
    (1..=253).contains(&name.len()) && name.split('.').all(is_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> http::Uri {
        s.parse().unwrap()
    }

    #[test]
    fn in_cluster_services_are_allowed_by_default() {
        let allowed = AllowedHosts::default();
        for host in [
            "sink.shop.svc",
            "sink.shop.svc.cluster.local",
            "Sink.Shop.SVC.cluster.local.",
        ] {
            assert!(allowed.allows(host), "{host}");
        }
        assert!(allowed.check(&uri("http://sink.shop.svc:8080/in")).is_ok());
    }

    #[test]
    fn everything_else_is_refused_by_default() {
        let allowed = AllowedHosts::default();
        for host in [
            "attacker.com",
            "sink",
            "sink.shop",
            "10.244.0.11",
            "169.254.169.254",
            "kubernetes.default.svc.evil.com",
            "svc.cluster.local",
            "a.b.c.svc",
            "x.svc",
            "sink.shop.svc.other.domain",
        ] {
            assert!(!allowed.allows(host), "{host}");
        }
        let refused = allowed
            .check(&uri("http://169.254.169.254/latest/meta-data"))
            .unwrap_err();
        assert_eq!(refused.host, "169.254.169.254");
        assert!(refused.to_string().contains("\"169.254.169.254\""), "{refused}");
    }

    #[test]
    fn explicit_hosts_and_suffix_patterns() {
        let allowed = AllowedHosts::new("corp.internal")
            .with_list(" sink.example.com, *.hooks.example.org ,")
            .unwrap();
        assert!(allowed.allows("sink.example.com"));
        assert!(allowed.allows("SINK.example.com."));
        assert!(!allowed.allows("other.example.com"));
        assert!(allowed.allows("a.hooks.example.org"));
        assert!(allowed.allows("a.b.hooks.example.org"));
        assert!(
            !allowed.allows("hooks.example.org"),
            "the pattern needs a label in front"
        );
        assert!(!allowed.allows("evilhooks.example.org"));
        assert!(allowed.allows("f.ns.svc.corp.internal"));
        assert!(
            !allowed.allows("f.ns.svc.cluster.local"),
            "another cluster domain"
        );
        assert_eq!(allowed.list(), "sink.example.com,*.hooks.example.org");
    }

    #[test]
    fn a_lone_star_allows_every_host() {
        let allowed = AllowedHosts::default().with_list("*").unwrap();
        assert!(allowed.allows("10.244.0.11") && allowed.allows("attacker.com"));
        assert_eq!(allowed.list(), "*");
    }

    #[test]
    fn malformed_entries_are_refused_with_their_text() {
        for bad in [
            "**",
            "*.",
            "http://x.com",
            "a..b",
            "x.com:80",
            "*.*.com",
            "-a.com",
        ] {
            let error = AllowedHosts::default().with_list(bad).unwrap_err();
            assert_eq!(error, InvalidPattern(bad.to_string()));
        }
    }
}
