//! Traffic splitting (pure): which revision of a function takes a request, by weight, and which
//! revision a tag's address reaches.
//!
//! The operator resolves `spec.traffic` into `status.traffic` (concrete revisions, percentages that sum
//! to 100); the activator follows only that. Every request is picked on its own (sticky per request, not
//! per connection): a uniform draw in `[0, total)` falls in one revision's share.

use rand::Rng;
use zeroscale_crds::function::TrafficStatus;

use crate::host::key_of;

/// The weighted revisions of one function: routing keys (`<revision>.<namespace>`) and cumulative
/// weights, so a pick is a binary search.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// `(routing key of the revision, cumulative weight up to and including it)`.
    cumulative: Vec<(Box<str>, u32)>,
}

impl Split {
    /// A split from `(routing key, weight)` pairs; entries for the same revision add up, zero weights
    /// are dropped, the order of first appearance is kept.
    pub fn new<'a>(weights: impl IntoIterator<Item = (&'a str, u32)>) -> Self {
        let mut merged: Vec<(Box<str>, u32)> = Vec::new();
        for (key, weight) in weights.into_iter().filter(|(_, w)| *w > 0) {
            match merged.iter_mut().find(|(k, _)| &**k == key) {
                Some((_, w)) => *w = w.saturating_add(weight),
                None => merged.push((key.into(), weight)),
            }
        }
        let mut total = 0u32;
        let cumulative = merged
            .into_iter()
            .map(|(key, weight)| {
                total = total.saturating_add(weight);
                (key, total)
            })
            .collect();
        Self { cumulative }
    }

    /// Sum of the weights.
    pub fn total(&self) -> u32 {
        self.cumulative.last().map_or(0, |(_, c)| *c)
    }

    /// The revision whose share contains `draw` (taken modulo the total); `None` when empty.
    pub fn pick_at(&self, draw: u32) -> Option<&str> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let draw = draw % total;
        let index = self.cumulative.partition_point(|(_, c)| *c <= draw);
        self.cumulative.get(index).map(|(k, _)| &**k)
    }

    /// Whether `key` is one of the revisions with a share.
    pub fn contains(&self, key: &str) -> bool {
        self.cumulative.iter().any(|(k, _)| &**k == key)
    }

    /// A revision picked at random by weight.
    pub fn pick(&self, rng: &mut impl Rng) -> Option<&str> {
        let total = self.total();
        (total > 0)
            .then(|| rng.random_range(0..total))
            .and_then(|d| self.pick_at(d))
    }
}

/// The routes of one function, from its `status.traffic`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routes {
    /// Weighted revisions for the function's own address.
    pub split: Split,
    /// `(routing key of the tag's address <tag>-<function>.<namespace>, routing key of the revision)`.
    pub tags: Vec<(String, String)>,
}

impl Routes {
    /// The routes of function `name` in `namespace` with `traffic` (its `status.traffic`).
    pub fn from_traffic(namespace: &str, name: &str, traffic: &[TrafficStatus]) -> Self {
        let keys: Vec<(String, u32)> = traffic
            .iter()
            .map(|t| {
                let weight = u32::try_from(t.percent).unwrap_or(0);
                (key_of(namespace, &t.revision_name), weight)
            })
            .collect();
        let tags = traffic
            .iter()
            .filter_map(|t| {
                let tag = t.tag.as_deref()?;
                Some((
                    key_of(namespace, &format!("{tag}-{name}")),
                    key_of(namespace, &t.revision_name),
                ))
            })
            .collect();
        Self {
            split: Split::new(keys.iter().map(|(k, w)| (k.as_str(), *w))),
            tags,
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;
    use crate::host::Domains;

    fn traffic(revision: &str, percent: i32, tag: Option<&str>) -> TrafficStatus {
        TrafficStatus {
            revision_name: revision.into(),
            percent,
            tag: tag.map(str::to_string),
            ..TrafficStatus::default()
        }
    }

    #[test]
    fn draws_fall_in_each_share() {
        let split = Split::new([("a.ns", 90), ("b.ns", 10)]);
        assert_eq!(split.total(), 100);
        assert_eq!(split.pick_at(0), Some("a.ns"));
        assert_eq!(split.pick_at(89), Some("a.ns"));
        assert_eq!(split.pick_at(90), Some("b.ns"));
        assert_eq!(split.pick_at(99), Some("b.ns"));
        assert_eq!(split.pick_at(100), Some("a.ns"), "modulo the total");
    }

    #[test]
    fn zero_weights_are_never_picked_and_duplicates_add_up() {
        let split = Split::new([("a.ns", 0), ("b.ns", 30), ("b.ns", 70)]);
        assert_eq!(split.total(), 100);
        assert!((0..100).all(|d| split.pick_at(d) == Some("b.ns")));
        assert_eq!(Split::new([("a.ns", 0)]).pick_at(0), None);
        assert_eq!(Split::default().pick(&mut SmallRng::seed_from_u64(1)), None);
    }

    #[test]
    fn a_ninety_ten_split_lands_within_a_point_over_100k_picks() {
        let split = Split::new([("a.ns", 90), ("b.ns", 10)]);
        let mut rng = SmallRng::seed_from_u64(42);
        let n = 100_000;
        let b = (0..n).filter(|_| split.pick(&mut rng) == Some("b.ns")).count();
        let share = b as f64 * 100.0 / f64::from(n);
        assert!((9.0..=11.0).contains(&share), "b got {share:.2} %");
    }

    #[test]
    fn tags_get_their_own_address_even_at_zero_percent() {
        let routes = Routes::from_traffic(
            "ns",
            "hello",
            &[
                traffic("hello-aaaaaaaaaa", 100, Some("current")),
                traffic("hello-bbbbbbbbbb", 0, Some("canary")),
            ],
        );
        assert_eq!(routes.split.total(), 100);
        // The activator's host parsing gives `<tag>-<function>.<namespace>` for a tag's address.
        let key = Domains::default()
            .route_key("canary-hello.ns.example.com")
            .expect("valid")
            .expect("routed")
            .into_owned();
        let revision = routes
            .tags
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, r)| r.as_str());
        assert_eq!(revision, Some("hello-bbbbbbbbbb.ns"));
        let key = Domains::default()
            .route_key("current-hello.ns.svc.cluster.local")
            .expect("valid")
            .expect("routed");
        assert!(routes.tags.iter().any(|(k, _)| *k == key));
    }
}
