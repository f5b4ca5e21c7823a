//! Who may post events to a namespace's broker.
//!
//! A producer sends a Kubernetes ServiceAccount token issued for the audience [`BROKER_AUDIENCE`]
//! (`Authorization: Bearer <token>`). The ingress asks the API server who it is (TokenReview, with
//! that audience, so a token meant for the API server or anything else is refused) and whether that
//! identity may `create` the virtual resource `brokers` of group [`BROKER_GROUP`] in the event's
//! namespace (SubjectAccessReview). Both answers are cached for a bounded time in bounded maps, so a
//! steady producer costs the API server two requests per TTL, not two per event.
//!
//! Why `brokers` in `zeroscale.dev`: every Zeroscale permission lives in one API group, so one
//! `kubectl auth can-i create brokers.zeroscale.dev -n shop --as ...` answers "may this producer post
//! to shop's broker", and a namespace admin grants it with an ordinary Role. The resource is virtual
//! (there is no Broker object, every namespace has an implicit broker), as Kubernetes itself does for
//! `pods/eviction` or `serviceaccounts/token`; RBAC never checks that a resource exists.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, PoisonError},
    time::Duration,
};

use futures::future::BoxFuture;
use tokio::time::Instant;

/// The audience a producer's token must be issued for.
pub const BROKER_AUDIENCE: &str = "zeroscale-broker";
/// The API group of the virtual `brokers` resource.
pub const BROKER_GROUP: &str = "zeroscale.dev";
/// The virtual resource checked with SubjectAccessReview.
pub const BROKER_RESOURCE: &str = "brokers";
/// The verb that allows posting events.
pub const BROKER_VERB: &str = "create";

/// An authenticated caller, as TokenReview reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// `system:serviceaccount:<ns>:<name>` for a ServiceAccount.
    pub username: String,
    /// The user's UID.
    pub uid: String,
    /// Groups the user belongs to.
    pub groups: Vec<String>,
    /// Extra attributes (bound pod, node, ...), passed on to SubjectAccessReview.
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The API server could not answer; the ingress answers 503 and caches nothing.
#[derive(Debug, thiserror::Error)]
#[error("cannot verify the caller: {0}")]
pub struct VerifyError(pub String);

/// Asks someone (the API server, or a fake in tests) about tokens and permissions.
pub trait Verifier: Send + Sync + 'static {
    /// Who the token belongs to, or `None` when it is invalid, expired or not issued for
    /// [`BROKER_AUDIENCE`].
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Identity>, VerifyError>>;

    /// Whether `who` may `create` `brokers` in `namespace`.
    fn authorize<'a>(
        &'a self,
        who: &'a Identity,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<bool, VerifyError>>;
}

/// Why a request is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token: send a ServiceAccount token with audience {BROKER_AUDIENCE}")]
    Missing,
    /// The token is invalid, expired or for another audience.
    #[error("invalid token: it must be a valid ServiceAccount token with audience {BROKER_AUDIENCE}")]
    Invalid,
    /// Authenticated, but may not post here.
    #[error(
        "{user} may not post events to namespace {namespace}: it needs create on brokers.{BROKER_GROUP} there"
    )]
    Forbidden {
        /// The caller.
        user: String,
        /// The event's namespace.
        namespace: String,
    },
    /// The API server could not be asked.
    #[error("cannot verify the caller now; try again")]
    Unavailable,
}

/// Cache bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long an answer is reused (both positive and negative).
    pub ttl: Duration,
    /// Most entries per cache; when full, expired entries go, and if none had, all do.
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            max_entries: 4096,
        }
    }
}

struct Cache<K, V> {
    config: CacheConfig,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: std::hash::Hash + Eq, V: Clone> Cache<K, V> {
    fn new(config: CacheConfig) -> Self {
        Self {
            config,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(value, _)| value.clone())
    }

    fn put(&self, key: K, value: V) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.config.max_entries {
            entries.retain(|_, (_, expires)| *expires > now);
            if entries.len() >= self.config.max_entries {
                entries.clear();
            }
        }
        entries.insert(key, (value, now + self.config.ttl));
    }

    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// The ingress's gate: a [`Verifier`] behind two bounded TTL caches.
pub struct BrokerAuth {
    verifier: Box<dyn Verifier>,
    tokens: Cache<String, Option<Identity>>,
    grants: Cache<(String, String), bool>,
}

impl std::fmt::Debug for BrokerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerAuth").finish_non_exhaustive()
    }
}

impl BrokerAuth {
    /// A gate asking `verifier`, caching its answers as `config` says.
    pub fn new(verifier: impl Verifier, config: CacheConfig) -> Self {
        Self {
            verifier: Box::new(verifier),
            tokens: Cache::new(config),
            grants: Cache::new(config),
        }
    }

    /// Checks the `Authorization` header value of a request for `namespace`; returns the caller.
    pub async fn check(&self, authorization: Option<&str>, namespace: &str) -> Result<Identity, Denied> {
        let token = authorization
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(Denied::Missing)?;
        let identity = match self.tokens.get(token) {
            Some(cached) => cached,
            None => {
                let answer = self.verifier.authenticate(token).await.map_err(|e| {
                    tracing::warn!(error = %e, "token review failed");
                    Denied::Unavailable
                })?;
                self.tokens.put(token.to_string(), answer.clone());
                answer
            }
        }
        .ok_or(Denied::Invalid)?;
        let key = (grant_key(&identity), namespace.to_string());
        let allowed = match self.grants.get(&key) {
            Some(cached) => cached,
            None => {
                let answer = self.verifier.authorize(&identity, namespace).await.map_err(|e| {
                    tracing::warn!(error = %e, "subject access review failed");
                    Denied::Unavailable
                })?;
                self.grants.put(key, answer);
                answer
            }
        };
        if allowed {
            Ok(identity)
        } else {
            Err(Denied::Forbidden {
                user: identity.username,
                namespace: namespace.to_string(),
            })
        }
    }

    /// Entries in the token and the grant cache (for tests of the bound).
    pub fn cached(&self) -> (usize, usize) {
        (self.tokens.len(), self.grants.len())
    }
}

/// What a grant depends on: the whole identity (the same user with other groups may differ).
fn grant_key(identity: &Identity) -> String {
    format!(
        "{}\n{}\n{}\n{:?}",
        identity.username,
        identity.uid,
        identity.groups.join(","),
        identity.extra
    )
}

#[cfg(test)]
#[path = "auth_tests.rs"]
pub(crate) mod tests;
