//! Filters of the CloudEvents Subscriptions API, evaluated on events.
//!
//! Semantics (CloudEvents Subscriptions API, as Knative implements them):
//! - `exact`, `prefix`, `suffix` hold a map of attribute name → text; every entry must hold (AND). An
//!   attribute the event does not have never matches, so `not: {exact: {x: ...}}` matches events
//!   without `x`. Comparison is case-sensitive, on the attribute's canonical string form (RFC 3339 for
//!   `time`, decimal for integer extensions, `true`/`false` for booleans).
//! - `all` matches when every filter matches, `any` when at least one does, `not` when its filter does
//!   not.
//! - `cesql` holds a CloudEvents SQL expression ([`crate::cesql`]), parsed and type-checked once when
//!   the filter is compiled (each routing-table update), evaluated per event: it matches when it
//!   evaluates to `true` without error.
//! - A Trigger's list of filters behaves like `all`; an empty list matches every event.

use std::borrow::Cow;
use std::sync::Arc;

use cloudevents::{AttributesReader, Event, event::AttributeValue};
use zeroscale_crds::trigger::FilterNode;

use crate::cesql::{CesqlError, Expression};

/// A filter that is not valid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    /// The filter sets none of the dialects.
    #[error("a filter must set one of exact, prefix, suffix, all, any, not or cesql")]
    NoDialect,
    /// The filter sets more than one dialect.
    #[error("a filter must set exactly one dialect, found {0}")]
    SeveralDialects(String),
    /// An `exact`, `prefix` or `suffix` map, or an `all` or `any` list, is empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// An attribute name that CloudEvents does not allow (lowercase letters and digits only).
    #[error("invalid attribute name {0:?}: CloudEvents attribute names are lowercase letters and digits")]
    AttributeName(String),
    /// A `cesql` expression that does not parse or type-check; the message gives the position.
    #[error("cesql: {0}")]
    Cesql(#[from] CesqlError),
}

/// One compiled filter expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Every attribute equals its value.
    Exact(Vec<(String, String)>),
    /// Every attribute starts with its text.
    Prefix(Vec<(String, String)>),
    /// Every attribute ends with its text.
    Suffix(Vec<(String, String)>),
    /// Every filter matches.
    All(Vec<Filter>),
    /// At least one filter matches.
    Any(Vec<Filter>),
    /// The filter does not match.
    Not(Box<Filter>),
    /// A CESQL expression evaluates to `true` without error (shared: routing tables are cloned).
    Cesql(Arc<Expression>),
}

impl Filter {
    /// Compiles one filter of a Trigger (any nesting level), checking it has exactly one dialect and
    /// valid attribute names.
    pub fn compile(node: &dyn FilterNode) -> Result<Filter, FilterError> {
        let mut found = Vec::new();
        if let Some(map) = node.exact() {
            found.push(("exact", Filter::Exact(pairs(map, "exact")?)));
        }
        if let Some(map) = node.prefix() {
            found.push(("prefix", Filter::Prefix(pairs(map, "prefix")?)));
        }
        if let Some(map) = node.suffix() {
            found.push(("suffix", Filter::Suffix(pairs(map, "suffix")?)));
        }
        if let Some(list) = node.all() {
            found.push(("all", Filter::All(compile_list(&list, "all")?)));
        }
        if let Some(list) = node.any() {
            found.push(("any", Filter::Any(compile_list(&list, "any")?)));
        }
        if let Some(inner) = node.not() {
            found.push(("not", Filter::Not(Box::new(Filter::compile(inner)?))));
        }
        if let Some(text) = node.cesql() {
            found.push((
                "cesql",
                Filter::Cesql(Arc::new(Expression::compile_filter(text)?)),
            ));
        }
        match found.len() {
            0 => Err(FilterError::NoDialect),
            1 => Ok(found.remove(0).1),
            _ => Err(FilterError::SeveralDialects(
                found.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", "),
            )),
        }
    }

    /// Whether `event` matches.
    pub fn matches(&self, event: &Event) -> bool {
        match self {
            Filter::Exact(pairs) => all_attributes(event, pairs, |value, want| value == want),
            Filter::Prefix(pairs) => all_attributes(event, pairs, |value, want| value.starts_with(want)),
            Filter::Suffix(pairs) => all_attributes(event, pairs, |value, want| value.ends_with(want)),
            Filter::All(filters) => filters.iter().all(|f| f.matches(event)),
            Filter::Any(filters) => filters.iter().any(|f| f.matches(event)),
            Filter::Not(filter) => !filter.matches(event),
            Filter::Cesql(expression) => expression.matches(event),
        }
    }
}

/// The filters of one Trigger: all must match; none matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters(Vec<Filter>);

impl Filters {
    /// Compiles a Trigger's `spec.filters`.
    pub fn compile<F: FilterNode>(filters: &[F]) -> Result<Filters, FilterError> {
        filters
            .iter()
            .map(|f| Filter::compile(f))
            .collect::<Result<Vec<_>, _>>()
            .map(Filters)
    }

    /// Whether `event` passes every filter.
    pub fn matches(&self, event: &Event) -> bool {
        self.0.iter().all(|f| f.matches(event))
    }
}

fn compile_list(list: &[&dyn FilterNode], dialect: &'static str) -> Result<Vec<Filter>, FilterError> {
    if list.is_empty() {
        return Err(FilterError::Empty(dialect));
    }
    list.iter().map(|f| Filter::compile(*f)).collect()
}

fn pairs(
    map: &std::collections::BTreeMap<String, String>,
    dialect: &'static str,
) -> Result<Vec<(String, String)>, FilterError> {
    if map.is_empty() {
        return Err(FilterError::Empty(dialect));
    }
    map.iter()
        .map(|(name, value)| {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
                return Err(FilterError::AttributeName(name.clone()));
            }
            Ok((name.clone(), value.clone()))
        })
        .collect()
}

fn all_attributes(event: &Event, pairs: &[(String, String)], test: impl Fn(&str, &str) -> bool) -> bool {
    pairs
        .iter()
        .all(|(name, want)| attribute(event, name).is_some_and(|value| test(&value, want)))
}

/// The canonical string form of attribute or extension `name` of `event`, if it is set.
pub fn attribute<'e>(event: &'e Event, name: &str) -> Option<Cow<'e, str>> {
    // The common attributes without iterating or allocating.
    match name {
        "id" => return Some(Cow::Borrowed(event.id())),
        "type" => return Some(Cow::Borrowed(event.ty())),
        "source" => return Some(Cow::Borrowed(event.source().as_str())),
        "subject" => return event.subject().map(Cow::Borrowed),
        _ => {}
    }
    if let Some(value) = event.extension(name) {
        return Some(Cow::Owned(value.to_string()));
    }
    event
        .iter_attributes()
        .find(|(n, _)| *n == name)
        .map(|(_, value)| match value {
            AttributeValue::String(s) => Cow::Borrowed(s),
            other => Cow::Owned(other.to_string()),
        })
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
