//! Polling with a deadline.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often [`wait_for`] polls.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Errors from [`try_wait_for`].
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The condition did not hold before the deadline.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The deadline.
        timeout: Duration,
    },
}

/// Polls `check` every [`POLL_INTERVAL`] until it returns `Some`, or until `timeout` has passed.
pub async fn try_wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<T, WaitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            return Err(WaitError::Timeout {
                what: what.to_string(),
                timeout,
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Like [`try_wait_for`] but panics with `timed out after … waiting for <what>`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match try_wait_for(timeout, what, check).await {
        Ok(value) => value,
        Err(e) => panic!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_the_first_some() {
        let n = AtomicU32::new(0);
        let v = wait_for(Duration::from_secs(5), "three polls", || async {
            let seen = n.fetch_add(1, Ordering::SeqCst);
            (seen == 2).then_some(seen)
        })
        .await;
        assert_eq!(v, 2);
    }

    #[tokio::test]
    async fn times_out_naming_what() {
        let r: Result<(), _> = try_wait_for(Duration::from_millis(150), "godot", || async { None }).await;
        let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("waiting for godot"), "{msg}");
    }
}
