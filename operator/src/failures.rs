//! Consecutive reconcile failures per object, for exponential back-off.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use kube::Resource;

/// First retry delay after an error; doubles per consecutive failure up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// Longest retry delay after errors.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Retry delay after `failures` consecutive failures: 0.5 s, 1 s, 2 s, … up to 5 min.
pub fn backoff(failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    MIN_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

/// The key of `object` in [`Failures`] and in logs: `namespace/name`. The error policy gets objects
/// that may not have passed validation, so missing metadata reads as empty.
pub fn key<K: Resource>(object: &K) -> String {
    let meta = object.meta();
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// Consecutive failures per object (`namespace/name`). The lock is never held across `.await`.
#[derive(Debug, Default)]
pub struct Failures(Mutex<HashMap<String, u32>>);

impl Failures {
    /// Counts one more failure of `key` and answers how many in a row.
    pub fn record(&self, key: String) -> u32 {
        let mut failures = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = failures.entry(key).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    /// Forgets the failures of `key` after a success.
    pub fn clear(&self, key: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(4));
        assert_eq!(backoff(30), Duration::from_secs(300));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn failures_count_in_a_row_until_cleared() {
        let f = Failures::default();
        assert_eq!(f.record("a".into()), 1);
        assert_eq!(f.record("a".into()), 2);
        assert_eq!(f.record("b".into()), 1);
        f.clear("a");
        assert_eq!(f.record("a".into()), 1);
    }
}
