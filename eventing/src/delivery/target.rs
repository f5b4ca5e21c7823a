//! Where one delivery goes: a Function (through the activator) or a URI.

use std::fmt;

use zeroscale_common::signals::FunctionKey;
use zeroscale_crds::trigger::Destination;

/// A destination that does not resolve.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    /// Neither or both of `function` and `uri` are set.
    #[error("a destination must set exactly one of function or uri")]
    NotExactlyOne,
    /// The URI does not parse or is not an absolute http(s) URI.
    #[error("invalid uri {0:?}: must be an absolute http or https uri")]
    InvalidUri(String),
}

/// A resolved destination.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A Function, reached through the activator's request path so the event wakes it at zero.
    Function(FunctionKey),
    /// An absolute http(s) URI.
    Uri(http::Uri),
}

impl Target {
    /// Resolves a Trigger's destination; a `function` names a Function in `namespace`.
    pub fn resolve(namespace: &str, destination: &Destination) -> Result<Target, TargetError> {
        match (&destination.function, &destination.uri) {
            (Some(name), None) => Ok(Target::Function(FunctionKey::new(namespace, name))),
            (None, Some(uri)) => Target::uri(uri),
            _ => Err(TargetError::NotExactlyOne),
        }
    }

    /// Parses an absolute `http` or `https` URI.
    pub fn uri(uri: &str) -> Result<Target, TargetError> {
        let parsed: http::Uri = uri
            .parse()
            .map_err(|_| TargetError::InvalidUri(uri.to_string()))?;
        let scheme_ok = matches!(parsed.scheme_str(), Some("http" | "https"));
        if !scheme_ok || parsed.host().is_none_or(str::is_empty) {
            return Err(TargetError::InvalidUri(uri.to_string()));
        }
        Ok(Target::Uri(parsed))
    }

    /// The in-cluster address of the target, as written to a Trigger's status: a Function's is
    /// `http://<name>.<namespace>.svc` (its public Service, which reaches the activator).
    pub fn address(&self) -> String {
        match self {
            Target::Function(key) => format!("http://{}.{}.svc", key.name, key.namespace),
            Target::Uri(uri) => uri.to_string(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(function: Option<&str>, uri: Option<&str>) -> Destination {
        Destination {
            function: function.map(Into::into),
            uri: uri.map(Into::into),
        }
    }

    #[test]
    fn resolves_functions_in_the_triggers_namespace_and_uris() {
        let f = Target::resolve("shop", &dest(Some("orders"), None)).unwrap();
        assert_eq!(f, Target::Function(FunctionKey::new("shop", "orders")));
        assert_eq!(f.address(), "http://orders.shop.svc");
        let u = Target::resolve("shop", &dest(None, Some("https://sink.example.com/in"))).unwrap();
        assert_eq!(u.to_string(), "https://sink.example.com/in");
    }

    #[test]
    fn rejects_ambiguous_and_relative_destinations() {
        assert_eq!(
            Target::resolve("ns", &dest(None, None)),
            Err(TargetError::NotExactlyOne)
        );
        assert_eq!(
            Target::resolve("ns", &dest(Some("a"), Some("http://b"))),
            Err(TargetError::NotExactlyOne)
        );
        for bad in ["/relative", "ftp://host/x", "http://", "not a uri"] {
            assert!(
                matches!(Target::uri(bad), Err(TargetError::InvalidUri(_))),
                "{bad}"
            );
        }
    }
}
