//! The [`Verifier`] that asks the API server: TokenReview for the token, SubjectAccessReview for
//! `create` on `brokers.zeroscale.dev` in the event's namespace. The component running it needs
//! `create` on `tokenreviews` (authentication.k8s.io) and `subjectaccessreviews`
//! (authorization.k8s.io), which the chart grants (`docs/rbac.md`).

use futures::{FutureExt, future::BoxFuture};
use k8s_openapi::api::{
    authentication::v1::{TokenReview, TokenReviewSpec},
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
};
use kube::api::{Api, PostParams};

use crate::auth::{
    BROKER_AUDIENCE, BROKER_GROUP, BROKER_RESOURCE, BROKER_VERB, Identity, Verifier, VerifyError,
};

/// Verifies with the API server through `client`.
#[derive(Clone)]
pub struct KubeVerifier {
    client: kube::Client,
}

impl KubeVerifier {
    /// A verifier using `client`.
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

/// The identity of a TokenReview answer, when it authenticated the token for our audience. The API
/// server lists in `status.audiences` the requested audiences the token is valid for; a token of
/// another audience is either refused or comes back without ours.
pub fn reviewed_identity(review: &TokenReview) -> Option<Identity> {
    let status = review.status.as_ref()?;
    if status.authenticated != Some(true) {
        return None;
    }
    let audiences = status.audiences.as_deref().unwrap_or_default();
    if !audiences.iter().any(|a| a == BROKER_AUDIENCE) {
        return None;
    }
    let user = status.user.as_ref()?;
    Some(Identity {
        username: user.username.clone().filter(|u| !u.is_empty())?,
        uid: user.uid.clone().unwrap_or_default(),
        groups: user.groups.clone().unwrap_or_default(),
        extra: user.extra.clone().unwrap_or_default(),
    })
}

/// The SubjectAccessReview asking whether `who` may post to `namespace`'s broker.
pub fn access_review(who: &Identity, namespace: &str) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(who.username.clone()),
            uid: Some(who.uid.clone()).filter(|u| !u.is_empty()),
            groups: Some(who.groups.clone()),
            extra: Some(who.extra.clone()).filter(|e| !e.is_empty()),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_string()),
                verb: Some(BROKER_VERB.to_string()),
                group: Some(BROKER_GROUP.to_string()),
                resource: Some(BROKER_RESOURCE.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

impl Verifier for KubeVerifier {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Identity>, VerifyError>> {
        async move {
            let review = TokenReview {
                spec: TokenReviewSpec {
                    token: Some(token.to_string()),
                    audiences: Some(vec![BROKER_AUDIENCE.to_string()]),
                },
                ..Default::default()
            };
            let answer = Api::<TokenReview>::all(self.client.clone())
                .create(&PostParams::default(), &review)
                .await
                .map_err(|e| VerifyError(e.to_string()))?;
            Ok(reviewed_identity(&answer))
        }
        .boxed()
    }

    fn authorize<'a>(
        &'a self,
        who: &'a Identity,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<bool, VerifyError>> {
        async move {
            let answer = Api::<SubjectAccessReview>::all(self.client.clone())
                .create(&PostParams::default(), &access_review(who, namespace))
                .await
                .map_err(|e| VerifyError(e.to_string()))?;
            Ok(answer.status.is_some_and(|s| s.allowed && s.denied != Some(true)))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::authentication::v1::{TokenReviewStatus, UserInfo};

    use super::*;

    fn review(authenticated: bool, audiences: &[&str]) -> TokenReview {
        TokenReview {
            status: Some(TokenReviewStatus {
                authenticated: Some(authenticated),
                audiences: Some(audiences.iter().map(ToString::to_string).collect()),
                user: Some(UserInfo {
                    username: Some("system:serviceaccount:shop:producer".into()),
                    uid: Some("u-1".into()),
                    groups: Some(vec!["system:serviceaccounts".into()]),
                    extra: None,
                }),
                error: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_authenticated_tokens_of_our_audience_count() {
        let ok = reviewed_identity(&review(true, &[BROKER_AUDIENCE])).unwrap();
        assert_eq!(ok.username, "system:serviceaccount:shop:producer");
        assert_eq!(ok.groups, ["system:serviceaccounts"]);
        assert!(reviewed_identity(&review(true, &["https://kubernetes.default.svc"])).is_none());
        assert!(reviewed_identity(&review(true, &[])).is_none());
        assert!(reviewed_identity(&review(false, &[BROKER_AUDIENCE])).is_none());
        assert!(reviewed_identity(&TokenReview::default()).is_none());
    }

    #[test]
    fn the_access_review_asks_for_create_on_brokers_in_the_namespace() {
        let who = reviewed_identity(&review(true, &[BROKER_AUDIENCE])).unwrap();
        let sar = access_review(&who, "shop");
        let attrs = sar.spec.resource_attributes.unwrap();
        assert_eq!(attrs.namespace.as_deref(), Some("shop"));
        assert_eq!(attrs.verb.as_deref(), Some("create"));
        assert_eq!(attrs.group.as_deref(), Some("zeroscale.dev"));
        assert_eq!(attrs.resource.as_deref(), Some("brokers"));
        assert_eq!(
            sar.spec.user.as_deref(),
            Some("system:serviceaccount:shop:producer")
        );
        assert_eq!(sar.spec.uid.as_deref(), Some("u-1"));
    }
}
