//! Time as the deliverer sees it, so back-off schedules can be tested under a virtual clock.

use std::{
    future::Future,
    time::{Duration, SystemTime},
};

/// The deliverer's clock: wall time (to read `Retry-After` dates) and the back-off waits.
///
/// Per-attempt timeouts are not part of it: they bound real IO and always use tokio's timer.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
    /// Waits `duration` between two attempts.
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send;
}

/// The real clock: `SystemTime::now` and `tokio::time::sleep`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(duration)
    }
}
