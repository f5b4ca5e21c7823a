//! Filters of the CloudEvents Subscriptions API (`exact`, `prefix`, `suffix`, `all`, `any`, `not`, `cesql`).
//!
//! The dialects nest (`all`, `any` and `not` hold filters), but a Kubernetes structural schema cannot be
//! recursive. Rather than stop validating below the first level (`x-kubernetes-preserve-unknown-fields`,
//! which lets a malformed nested filter reach the API and break every watcher that decodes it), the
//! schema is unrolled to a fixed depth of [`MAX_FILTER_DEPTH`] levels: [`TriggerFilter`] holds
//! [`NestedFilter1`], which holds [`NestedFilter2`], which holds [`LeafFilter`] (no further nesting).
//! Every level is validated at admission; a deeper `all`/`any`/`not` is pruned by the API server and
//! then fails the "exactly one dialect" rule of the leaf, so it is rejected rather than silently
//! changed. Code that evaluates filters reads every level through [`FilterNode`].

use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{add_rules, cel_rule, exactly_one};

/// Levels of filters, counting the top level: an `any` holding an `all` holding a `not` holding an
/// `exact` is four levels.
pub const MAX_FILTER_DEPTH: usize = 4;

/// Most filters in one list (`spec.filters`, `all`, `any`) and most attributes in one
/// `exact`/`prefix`/`suffix` map; bounds the API server's CEL cost estimate.
pub const MAX_FILTERS: usize = 16;

/// Longest text an `exact`/`prefix`/`suffix` filter compares with (as long as a URI, since `source`
/// and `dataschema` are URIs).
pub const MAX_FILTER_VALUE_LENGTH: usize = 2048;

/// Longest `cesql` expression, in bytes (the eventing crate's CESQL parser refuses longer text too).
pub const MAX_CESQL_LENGTH: usize = 4096;

/// Read access to one filter of any nesting level.
pub trait FilterNode {
    /// `exact`: attribute name → value the attribute must equal.
    fn exact(&self) -> Option<&BTreeMap<String, String>>;
    /// `prefix`: attribute name → text the attribute must start with.
    fn prefix(&self) -> Option<&BTreeMap<String, String>>;
    /// `suffix`: attribute name → text the attribute must end with.
    fn suffix(&self) -> Option<&BTreeMap<String, String>>;
    /// `all`: filters that must all match.
    fn all(&self) -> Option<Vec<&dyn FilterNode>>;
    /// `any`: filters of which at least one must match.
    fn any(&self) -> Option<Vec<&dyn FilterNode>>;
    /// `not`: a filter that must not match.
    fn not(&self) -> Option<&dyn FilterNode>;
    /// `cesql`: a CloudEvents SQL expression that must evaluate to `true` without error.
    fn cesql(&self) -> Option<&str>;
}

/// Bounds an `exact`/`prefix`/`suffix` map: 1 to [`MAX_FILTERS`] attributes, each value at most
/// [`MAX_FILTER_VALUE_LENGTH`] characters. (A structural schema cannot bound the keys; attribute names are
/// checked when the Trigger is reconciled.)
fn attribute_map_bounds(schema: &mut Schema) {
    schema.insert("minProperties".into(), 1.into());
    schema.insert("maxProperties".into(), MAX_FILTERS.into());
    if let Some(Value::Object(values)) = schema.get_mut("additionalProperties") {
        values.insert("maxLength".into(), MAX_FILTER_VALUE_LENGTH.into());
    }
}

fn one_dialect_rule(schema: &mut Schema) {
    add_rules(
        schema,
        [cel_rule(
            exactly_one(&["exact", "prefix", "suffix", "all", "any", "not", "cesql"]),
            "a filter must set exactly one of exact, prefix, suffix, all, any, not or cesql",
        )],
    );
}

fn leaf_dialect_rule(schema: &mut Schema) {
    add_rules(
        schema,
        [cel_rule(
            exactly_one(&["exact", "prefix", "suffix", "cesql"]),
            "a filter nested four levels deep must set exactly one of exact, prefix, suffix or cesql (all, any and not nest at most four levels)",
        )],
    );
}

/// Declares one level of filter that nests `$child` in `all`, `any` and `not`.
macro_rules! nesting_filter {
    ($(#[$doc:meta])* $name:ident, $child:ty) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase")]
        #[schemars(transform = one_dialect_rule)]
        pub struct $name {
            /// Attribute name → value: every named attribute (or extension) must exist and equal the value
            /// exactly (case-sensitive).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(transform = attribute_map_bounds)]
            pub exact: Option<BTreeMap<String, String>>,
            /// Attribute name → text: every named attribute must exist and start with the text.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(transform = attribute_map_bounds)]
            pub prefix: Option<BTreeMap<String, String>>,
            /// Attribute name → text: every named attribute must exist and end with the text.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(transform = attribute_map_bounds)]
            pub suffix: Option<BTreeMap<String, String>>,
            /// Filters that must all match.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(length(min = 1, max = MAX_FILTERS))]
            pub all: Option<Vec<$child>>,
            /// Filters of which at least one must match.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(length(min = 1, max = MAX_FILTERS))]
            pub any: Option<Vec<$child>>,
            /// A filter that must not match.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub not: Option<Box<$child>>,
            /// A CloudEvents SQL (CESQL v1) expression; matches when it is `true` without error.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(length(min = 1, max = MAX_CESQL_LENGTH))]
            pub cesql: Option<String>,
        }

        impl FilterNode for $name {
            fn exact(&self) -> Option<&BTreeMap<String, String>> {
                self.exact.as_ref()
            }
            fn prefix(&self) -> Option<&BTreeMap<String, String>> {
                self.prefix.as_ref()
            }
            fn suffix(&self) -> Option<&BTreeMap<String, String>> {
                self.suffix.as_ref()
            }
            fn all(&self) -> Option<Vec<&dyn FilterNode>> {
                self.all.as_ref().map(|v| v.iter().map(|f| f as &dyn FilterNode).collect())
            }
            fn any(&self) -> Option<Vec<&dyn FilterNode>> {
                self.any.as_ref().map(|v| v.iter().map(|f| f as &dyn FilterNode).collect())
            }
            fn not(&self) -> Option<&dyn FilterNode> {
                self.not.as_deref().map(|f| f as &dyn FilterNode)
            }
            fn cesql(&self) -> Option<&str> {
                self.cesql.as_deref()
            }
        }
    };
}

nesting_filter!(
    /// A filter of `spec.filters`: exactly one of `exact`, `prefix`, `suffix`, `all`, `any`, `not`,
    /// `cesql`.
    TriggerFilter,
    NestedFilter1
);
nesting_filter!(
    /// A filter nested one level deep: exactly one of `exact`, `prefix`, `suffix`, `all`, `any`, `not`,
    /// `cesql`.
    NestedFilter1,
    NestedFilter2
);
nesting_filter!(
    /// A filter nested two levels deep: exactly one of `exact`, `prefix`, `suffix`, `all`, `any`, `not`,
    /// `cesql`.
    NestedFilter2,
    LeafFilter
);

/// A filter nested three levels deep, the deepest allowed: exactly one of `exact`, `prefix`, `suffix`,
/// `cesql`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = leaf_dialect_rule)]
pub struct LeafFilter {
    /// Attribute name → value: every named attribute (or extension) must exist and equal the value
    /// exactly (case-sensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = attribute_map_bounds)]
    pub exact: Option<BTreeMap<String, String>>,
    /// Attribute name → text: every named attribute must exist and start with the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = attribute_map_bounds)]
    pub prefix: Option<BTreeMap<String, String>>,
    /// Attribute name → text: every named attribute must exist and end with the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = attribute_map_bounds)]
    pub suffix: Option<BTreeMap<String, String>>,
    /// A CloudEvents SQL (CESQL v1) expression; matches when it is `true` without error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_CESQL_LENGTH))]
    pub cesql: Option<String>,
}

impl FilterNode for LeafFilter {
    fn exact(&self) -> Option<&BTreeMap<String, String>> {
        self.exact.as_ref()
    }
    fn prefix(&self) -> Option<&BTreeMap<String, String>> {
        self.prefix.as_ref()
    }
    fn suffix(&self) -> Option<&BTreeMap<String, String>> {
        self.suffix.as_ref()
    }
    fn all(&self) -> Option<Vec<&dyn FilterNode>> {
        None
    }
    fn any(&self) -> Option<Vec<&dyn FilterNode>> {
        None
    }
    fn not(&self) -> Option<&dyn FilterNode> {
        None
    }
    fn cesql(&self) -> Option<&str> {
        self.cesql.as_deref()
    }
}
