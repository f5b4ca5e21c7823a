//! `ECHO_FAIL_PERCENT=<0-100>`: answer `500 injected failure` to that share of the echoed requests,
//! spread evenly and deterministically (request `i`, counting from 0, fails when
//! `⌊(i+1)·p/100⌋ > ⌊i·p/100⌋`), so any 100 consecutive requests hold exactly `p` failures. Plays a bad
//! revision for the automated canary.

use std::sync::atomic::{AtomicU64, Ordering};

/// A value of `ECHO_FAIL_PERCENT` that is not a whole number from 0 to 100.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ECHO_FAIL_PERCENT must be a whole number from 0 to 100, got {0:?}")]
pub struct FailPercentError(pub String);

/// Parses `ECHO_FAIL_PERCENT`.
pub fn parse_percent(value: &str) -> Result<u8, FailPercentError> {
    value
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|p| *p <= 100)
        .ok_or_else(|| FailPercentError(value.to_string()))
}

/// Decides, request by request, which ones fail.
#[derive(Debug, Default)]
pub struct FailPercent {
    percent: u64,
    seen: AtomicU64,
}

impl FailPercent {
    /// Fails `percent` (0–100, clamped) of the requests.
    pub fn new(percent: u8) -> Self {
        Self {
            percent: u64::from(percent.min(100)),
            seen: AtomicU64::new(0),
        }
    }

    /// Whether the next request fails.
    pub fn next(&self) -> bool {
        if self.percent == 0 {
            return false;
        }
        let i = self.seen.fetch_add(1, Ordering::Relaxed);
        (i + 1) * self.percent / 100 > i * self.percent / 100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_share_fails_in_every_hundred() {
        for percent in [0u8, 1, 20, 33, 50, 100] {
            let fail = FailPercent::new(percent);
            for _ in 0..3 {
                let failed = (0..100).filter(|_| fail.next()).count();
                assert_eq!(failed, usize::from(percent), "{percent}%");
            }
        }
        // 20 %: one in five, evenly spread.
        let fail = FailPercent::new(20);
        let pattern: Vec<bool> = (0..10).map(|_| fail.next()).collect();
        assert_eq!(pattern.iter().filter(|f| **f).count(), 2);
        assert!(pattern[4] && pattern[9]);
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(parse_percent("20"), Ok(20));
        assert_eq!(parse_percent("100"), Ok(100));
        for bad in ["101", "-1", "ten", "", "2.5"] {
            assert_eq!(parse_percent(bad), Err(FailPercentError(bad.to_string())));
        }
        assert!(
            FailPercentError("x".into())
                .to_string()
                .contains("ECHO_FAIL_PERCENT")
        );
    }
}
