//! Restart decisions and back-off for crashing containers (pure). Like the kubelet: the delay doubles with every
//! restart up to a cap, and is reset after the container has run long enough without exiting.

use std::time::Duration;

/// Back-off settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Delay before the first restart.
    pub initial: Duration,
    /// Upper bound of the delay.
    pub max: Duration,
    /// A container that ran at least this long before exiting starts again from `initial`.
    pub reset_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        // The kubelet uses 10 s doubling to 5 min; a test cluster wants crash loops to show quickly.
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
        }
    }
}

/// The back-off state of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backoff {
    /// Consecutive quick exits so far.
    failures: u32,
}

impl Backoff {
    /// Records an exit after `ran` and returns how long to wait before starting again.
    pub fn next_delay(&mut self, policy: &BackoffPolicy, ran: Duration) -> Duration {
        if ran >= policy.reset_after {
            self.failures = 0;
        }
        let factor = 2u32.saturating_pow(self.failures.min(20));
        self.failures = self.failures.saturating_add(1);
        policy.initial.saturating_mul(factor).min(policy.max)
    }
}

/// Whether a container that exited with `exit_code` starts again under the pod's restart policy
/// (`Always` when unset or unknown, as the API defaults it).
pub fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert!(should_restart("Always", 0) && should_restart("Always", 1) && should_restart("", 0));
        assert!(should_restart("OnFailure", 2) && !should_restart("OnFailure", 0));
        assert!(!should_restart("Never", 1));
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let p = BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(5),
            reset_after: Duration::from_secs(60),
        };
        let mut b = Backoff::default();
        let quick = Duration::from_millis(10);
        let delays: Vec<u64> = (0..5).map(|_| b.next_delay(&p, quick).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 5, 5]);
    }

    #[test]
    fn resets_after_a_long_run() {
        let p = BackoffPolicy::default();
        let mut b = Backoff::default();
        b.next_delay(&p, Duration::ZERO);
        b.next_delay(&p, Duration::ZERO);
        assert_eq!(b.next_delay(&p, Duration::from_secs(61)), p.initial);
    }
}
