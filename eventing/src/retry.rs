//! When to retry a delivery and how long to wait: Knative's back-off formulas, `Retry-After`, and the
//! classification of responses into final and retryable.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode, header::RETRY_AFTER};
use zeroscale_crds::trigger::BackoffPolicy;

/// Longest single wait between two attempts, whatever the policy computes (exponential back-off
/// overflows quickly: 200ms × 2^30 is seven years).
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Longest wait a `Retry-After` header can impose.
pub const DEFAULT_RETRY_AFTER_MAX: Duration = Duration::from_secs(60);

/// How one Trigger retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// How the wait grows.
    pub backoff: BackoffPolicy,
    /// The base delay.
    pub delay: Duration,
    /// Cap on one computed wait.
    pub max_backoff: Duration,
    /// Cap on the wait a `Retry-After` header can impose.
    pub retry_after_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 3,
            backoff: BackoffPolicy::Exponential,
            delay: Duration::from_millis(200),
            max_backoff: DEFAULT_MAX_BACKOFF,
            retry_after_max: DEFAULT_RETRY_AFTER_MAX,
        }
    }
}

impl RetryPolicy {
    /// The back-off before retry `retry` (counting from 1): `delay × retry` (linear) or
    /// `delay × 2^retry` (exponential), as Knative computes it, capped at `max_backoff`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor: u32 = match self.backoff {
            BackoffPolicy::Linear => retry,
            BackoffPolicy::Exponential => 2u32.checked_pow(retry).unwrap_or(u32::MAX),
        };
        self.delay
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max_backoff)
    }

    /// The wait before retry `retry`: the back-off, or the server's `Retry-After` (capped at
    /// `retry_after_max`) when that is longer. A server can ask us to wait longer, never shorter.
    pub fn wait_before(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.backoff(retry);
        match retry_after {
            Some(asked) => backoff.max(asked.min(self.retry_after_max)),
            None => backoff,
        }
    }
}

/// Whether a response with `status` should be retried: 5xx, 404 (the subscriber may not be routable
/// yet), 408, 409 and 429, as the Knative data-plane spec says. Other statuses are final: 2xx are
/// successes, other 4xx mean the event itself is refused and retrying cannot help, and 1xx/3xx are not
/// valid answers to an event.
pub fn is_retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || matches!(
            status,
            StatusCode::NOT_FOUND
                | StatusCode::REQUEST_TIMEOUT
                | StatusCode::CONFLICT
                | StatusCode::TOO_MANY_REQUESTS
        )
}

/// The wait a `Retry-After` header asks for, read at `now`: either delay-seconds (`120`) or an
/// HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`, and the two obsolete date formats). A date in the past
/// asks for no wait. `None` when the header is absent or does not parse.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn exponential_doubles_from_twice_the_delay() {
        let policy = RetryPolicy::default();
        let waits: Vec<_> = (1..=4).map(|n| policy.backoff(n)).collect();
        assert_eq!(waits, [ms(400), ms(800), ms(1600), ms(3200)]);
    }

    #[test]
    fn linear_grows_by_the_delay() {
        let policy = RetryPolicy {
            backoff: BackoffPolicy::Linear,
            ..RetryPolicy::default()
        };
        let waits: Vec<_> = (1..=4).map(|n| policy.backoff(n)).collect();
        assert_eq!(waits, [ms(200), ms(400), ms(600), ms(800)]);
    }

    #[test]
    fn backoff_is_capped_and_never_overflows() {
        let policy = RetryPolicy {
            max_backoff: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        assert_eq!(policy.backoff(6), ms(12_800).min(Duration::from_secs(10)));
        assert_eq!(policy.backoff(100), Duration::from_secs(10));
        let linear = RetryPolicy {
            backoff: BackoffPolicy::Linear,
            delay: Duration::MAX,
            ..policy
        };
        assert_eq!(linear.backoff(3), Duration::from_secs(10));
    }

    #[test]
    fn retry_after_lengthens_but_never_shortens_and_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.wait_before(1, Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        assert_eq!(policy.wait_before(1, Some(ms(10))), ms(400));
        assert_eq!(
            policy.wait_before(1, Some(Duration::from_secs(3600))),
            DEFAULT_RETRY_AFTER_MAX
        );
        assert_eq!(policy.wait_before(2, None), ms(800));
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let header = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            h
        };
        assert_eq!(retry_after(&header("120"), now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(&header(" 7 "), now), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after(&header("Wed, 21 Oct 2015 07:28:30 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&header("Wednesday, 21-Oct-15 07:29:00 GMT"), now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_after(&header("Wed Oct 21 07:28:10 2015"), now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after(&header("Wed, 21 Oct 2015 07:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&header("-5"), now), None);
        assert_eq!(retry_after(&header("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn classification_follows_the_knative_data_plane_spec() {
        for retry in [404, 408, 409, 429, 500, 502, 503, 504, 599] {
            assert!(
                is_retryable(StatusCode::from_u16(retry).unwrap()),
                "{retry} retries"
            );
        }
        for last in [200, 202, 204, 301, 400, 401, 403, 405, 410, 413, 415, 422] {
            assert!(
                !is_retryable(StatusCode::from_u16(last).unwrap()),
                "{last} is final"
            );
        }
    }
}
