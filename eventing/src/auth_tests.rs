use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use futures::FutureExt;

use super::*;

/// Tokens `good-<user>` authenticate as `<user>`; `<user>` may post to namespaces in `grants`.
#[derive(Clone, Default)]
pub(crate) struct FakeVerifier {
    pub reviews: Arc<AtomicUsize>,
    pub checks: Arc<AtomicUsize>,
    pub down: Arc<AtomicBool>,
    pub grants: Vec<(String, String)>,
}

impl FakeVerifier {
    pub(crate) fn allowing(user: &str, namespace: &str) -> Self {
        Self {
            grants: vec![(user.into(), namespace.into())],
            ..Self::default()
        }
    }
}

impl Verifier for FakeVerifier {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Identity>, VerifyError>> {
        self.reviews.fetch_add(1, Ordering::SeqCst);
        let down = self.down.load(Ordering::SeqCst);
        async move {
            if down {
                return Err(VerifyError("connection refused".into()));
            }
            Ok(token.strip_prefix("good-").map(|user| Identity {
                username: user.to_string(),
                ..Identity::default()
            }))
        }
        .boxed()
    }

    fn authorize<'a>(
        &'a self,
        who: &'a Identity,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<bool, VerifyError>> {
        self.checks.fetch_add(1, Ordering::SeqCst);
        let allowed = self
            .grants
            .iter()
            .any(|(u, n)| *u == who.username && n == namespace);
        async move { Ok(allowed) }.boxed()
    }
}

fn gate(fake: &FakeVerifier) -> BrokerAuth {
    BrokerAuth::new(fake.clone(), CacheConfig::default())
}

#[tokio::test]
async fn missing_invalid_forbidden_and_allowed() {
    let fake = FakeVerifier::allowing("alice", "shop");
    let auth = gate(&fake);
    assert_eq!(auth.check(None, "shop").await, Err(Denied::Missing));
    assert_eq!(auth.check(Some("Basic abc"), "shop").await, Err(Denied::Missing));
    assert_eq!(auth.check(Some("Bearer "), "shop").await, Err(Denied::Missing));
    assert_eq!(
        auth.check(Some("Bearer nope"), "shop").await,
        Err(Denied::Invalid)
    );
    assert_eq!(
        auth.check(Some("Bearer good-bob"), "shop").await,
        Err(Denied::Forbidden {
            user: "bob".into(),
            namespace: "shop".into()
        })
    );
    assert_eq!(
        auth.check(Some("bearer good-alice"), "shop")
            .await
            .map(|i| i.username),
        Ok("alice".into())
    );
    assert!(matches!(
        auth.check(Some("Bearer good-alice"), "other").await,
        Err(Denied::Forbidden { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn answers_are_cached_for_the_ttl_only() {
    let fake = FakeVerifier::allowing("alice", "shop");
    let auth = gate(&fake);
    for _ in 0..5 {
        auth.check(Some("Bearer good-alice"), "shop").await.unwrap();
        let _ = auth.check(Some("Bearer bad"), "shop").await;
    }
    assert_eq!(fake.reviews.load(Ordering::SeqCst), 2, "one review per token");
    assert_eq!(
        fake.checks.load(Ordering::SeqCst),
        1,
        "one access review per user and namespace"
    );
    tokio::time::advance(CacheConfig::default().ttl + Duration::from_millis(1)).await;
    auth.check(Some("Bearer good-alice"), "shop").await.unwrap();
    assert_eq!(
        fake.reviews.load(Ordering::SeqCst),
        3,
        "asked again after the ttl"
    );
    assert_eq!(fake.checks.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_unreachable_api_server_is_unavailable_and_not_cached() {
    let fake = FakeVerifier::allowing("alice", "shop");
    let auth = gate(&fake);
    fake.down.store(true, Ordering::SeqCst);
    assert_eq!(
        auth.check(Some("Bearer good-alice"), "shop").await,
        Err(Denied::Unavailable)
    );
    fake.down.store(false, Ordering::SeqCst);
    assert!(auth.check(Some("Bearer good-alice"), "shop").await.is_ok());
}

#[tokio::test]
async fn the_caches_stay_bounded() {
    let fake = FakeVerifier::default();
    let auth = BrokerAuth::new(
        fake,
        CacheConfig {
            ttl: Duration::from_secs(60),
            max_entries: 8,
        },
    );
    for i in 0..100 {
        let _ = auth.check(Some(&format!("Bearer good-user{i}")), "shop").await;
        let (tokens, grants) = auth.cached();
        assert!(tokens <= 8 && grants <= 8, "{tokens} {grants}");
    }
}
