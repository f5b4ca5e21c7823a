//! What each Trigger still owes its subscriber: queue depth (events accepted for it and not yet
//! acknowledged, delivered or dead-lettered) and the age of the oldest of them, plus its
//! redeliveries and dead letters, as Prometheus metrics labelled by `namespace`, `trigger` and
//! `function` (the subscriber Function; empty for a `uri` subscriber).
//!
//! - [`pending`]: the events the in-memory broker holds, per Trigger (both stores: sources always
//!   deliver through it).
//! - [`sampler`]: sets the gauges periodically from [`pending`] and, with the JetStream store, from
//!   each broker Trigger's consumer info (the store's own count, not ours).
//! - [`metrics`]: the metric families.

pub mod metrics;
pub mod pending;
pub mod sampler;

use std::time::Duration;

/// A Trigger's backlog at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Events accepted for the Trigger and not finished.
    pub depth: u64,
    /// Age of the oldest of them (zero when there is none).
    pub oldest_age: Duration,
}

impl Backlog {
    /// The backlog of two places an event can wait in (the memory broker and the store): depths
    /// add up, the oldest age is the larger.
    pub fn merge(self, other: Backlog) -> Backlog {
        Backlog {
            depth: self.depth.saturating_add(other.depth),
            oldest_age: self.oldest_age.max(other.oldest_age),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_backlogs_add_depths_and_keep_the_oldest_age() {
        let memory = Backlog {
            depth: 2,
            oldest_age: Duration::from_secs(3),
        };
        let store = Backlog {
            depth: 5,
            oldest_age: Duration::from_secs(40),
        };
        assert_eq!(
            memory.merge(store),
            Backlog {
                depth: 7,
                oldest_age: Duration::from_secs(40)
            }
        );
        assert_eq!(Backlog::default().merge(memory), memory);
    }
}
