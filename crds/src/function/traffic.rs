//! `spec.traffic` (what Git declares: which revisions take which share, and tags) and the status the
//! operator resolves it into (`status.traffic`, `status.revisions`), the only thing the activator
//! routes on.
//!
//! Admission checks everything it can see in one object (shares sum to 100, exactly one target per
//! entry, unique tags that are DNS labels); whether a named revision exists it cannot know, so the
//! operator reports that at reconcile time (`Ready=False`, reason [`REASON_REVISION_MISSING`]).

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::scale::rule;

/// Reason (on `Ready=False`): `spec.traffic` names a revision that does not exist (any more).
pub const REASON_REVISION_MISSING: &str = "RevisionMissing";
/// Most entries in `spec.traffic` (bounds the cost of the CEL rules).
pub const MAX_TRAFFIC_TARGETS: usize = 16;
/// Default of `spec.revisionHistoryLimit`.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 5;
/// A DNS-1035 label: what a tag must be.
pub const DNS_LABEL_PATTERN: &str = "^[a-z]([-a-z0-9]*[a-z0-9])?$";
/// A revision's name, `<function>-<hash>` ([`crate::revision`]): a DNS label ending in `-` and ten
/// lowercase hex digits. A `revisionName` that is not one can name no revision, so admission rejects
/// it; whether one of that form exists is for the operator to say (`RevisionMissing`).
pub const REVISION_NAME_PATTERN: &str = "^[a-z]([-a-z0-9]*[a-z0-9])?-[0-9a-f]{10}$";

/// Message when the shares of `spec.traffic` do not add up.
pub const SUM_MESSAGE: &str = "spec.traffic: the percent values must sum to 100";
/// Message when two entries of `spec.traffic` share a tag.
pub const UNIQUE_TAG_MESSAGE: &str = "spec.traffic: every tag must be unique";
/// Message when an entry names no target or two.
pub const ONE_TARGET_MESSAGE: &str =
    "spec.traffic: every entry sets exactly one of revisionName and latestRevision: true";

/// One entry of `spec.traffic`: a share of the requests, a tag, or both, for one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = target_rules)]
pub struct TrafficTarget {
    /// A revision by name, `<function>-<hash>` (as `status.revisions` lists them and
    /// `zeroscale-revision-name` computes them). Exclusive with `latestRevision`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), regex(pattern = REVISION_NAME_PATTERN))]
    pub revision_name: Option<String>,
    /// `true`: the latest revision that became ready (`status.latestReadyRevisionName`); a new revision
    /// takes this share only once ready. Exclusive with `revisionName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_revision: Option<bool>,
    /// Share of the function's requests in percent (0–100); the entries sum to 100.
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    pub percent: i32,
    /// A name that gives the revision its own address `<tag>-<function>.<namespace>.<domain>` (and
    /// `<tag>-<function>.<namespace>.svc`), reachable even at 0 %: a DNS label, unique in the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), regex(pattern = DNS_LABEL_PATTERN))]
    pub tag: Option<String>,
}

impl TrafficTarget {
    /// Whether this entry follows the latest ready revision.
    pub fn is_latest(&self) -> bool {
        self.latest_revision == Some(true)
    }
}

fn target_rules(schema: &mut Schema) {
    let rules = vec![rule(
        "(has(self.revisionName) ? 1 : 0) + ((has(self.latestRevision) && self.latestRevision) ? 1 : 0) == 1",
        ONE_TARGET_MESSAGE,
    )];
    schema.insert("x-kubernetes-validations".into(), Value::Array(rules));
}

/// The rules on `spec` that look at the whole traffic list.
pub(crate) fn traffic_rules() -> Vec<Value> {
    vec![
        rule(
            "!has(self.traffic) || self.traffic.map(t, has(t.percent) ? t.percent : 0).sum() == 100",
            SUM_MESSAGE,
        ),
        rule(
            "!has(self.traffic) || self.traffic.all(t, !has(t.tag) || self.traffic.exists_one(u, has(u.tag) && u.tag == t.tag))",
            UNIQUE_TAG_MESSAGE,
        ),
    ]
}

/// One resolved route of `status.traffic`: a concrete revision, its share and its tag.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficStatus {
    /// The revision (never "latest": resolved by the operator).
    pub revision_name: String,
    /// Share of the function's requests in percent.
    #[serde(default)]
    pub percent: i32,
    /// The tag, when the entry has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// `true` when the entry came from `latestRevision: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_revision: Option<bool>,
    /// The tag's own URL, `http://<tag>-<function>.<namespace>.<domain>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One revision the Function has (a Deployment `<function>-<hash>`), as `status.revisions` lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevisionStatus {
    /// `<function>-<hash>`: the name of its Deployment and private Service.
    pub name: String,
    /// Whether it has become ready at least once (an available pod, or available then scaled to zero).
    #[serde(default)]
    pub ready: bool,
    /// Pods its Deployment has.
    #[serde(default)]
    pub replicas: i32,
    /// Its share of the requests in percent (the sum of its entries in `status.traffic`).
    #[serde(default)]
    pub percent: i32,
    /// Its tag, when `status.traffic` gives it one (the first, by name, when several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Its tag's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Why its pods cannot start, when they cannot (one of the startup failure reasons, such as
    /// `ImagePullBackOff`): the activator fails requests for this revision fast with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What happened, for people, with `reason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The traffic a Function without `spec.traffic` has: everything to the latest ready revision.
pub fn default_traffic() -> Vec<TrafficTarget> {
    vec![TrafficTarget {
        latest_revision: Some(true),
        percent: 100,
        ..TrafficTarget::default()
    }]
}
