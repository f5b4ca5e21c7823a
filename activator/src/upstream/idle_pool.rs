//! The idle keep-alive connections of one pod (or peer activator), and how long one may stay idle.
//!
//! A request written onto an idle connection just as the pod closes it is lost when it cannot be
//! sent again (a `POST`): the pod may have read it. Servers close idle connections on timers of their
//! own (Node.js and uvicorn after 5 s, gunicorn after 2 s, a peer activator after its header-read
//! timeout), so this side has to close first. The pool learns each pod's timer from the connections
//! it finds closed while idle (by a checkout or the sweeper, after some idle time of at least the
//! pod's timeout) and from then on keeps connections idle for at most half the shortest such time.

// Connections are boxed so checkout and checkin move a pointer, not the whole connection state.
#![allow(clippy::vec_box)]

use std::{
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::time::Instant;

use super::h1::RawConn;

/// Idle keep-alive connections to one pod, most recently used last.
#[derive(Debug)]
pub struct IdlePool {
    conns: Mutex<Vec<Box<RawConn>>>,
    // The shortest idle time (µs) after which the pod was found to have closed one of them;
    // `u64::MAX` until one is.
    closed_after_micros: AtomicU64,
}

impl Default for IdlePool {
    fn default() -> Self {
        Self {
            conns: Mutex::default(),
            closed_after_micros: AtomicU64::new(u64::MAX),
        }
    }
}

/// How long idle connections are kept and how many per pod.
#[derive(Clone, Copy, Debug)]
pub struct PoolLimits {
    /// Idle connections older than this are closed (or sooner: see [`IdlePool::idle_timeout`]).
    pub idle_timeout: Duration,
    /// Most idle connections kept per pod.
    pub max_idle: usize,
    /// Whether a close by the pod while idle shortens the idle timeout ([`IdlePool::idle_timeout`]).
    pub learn_idle_close: bool,
}

impl IdlePool {
    fn lock(&self) -> MutexGuard<'_, Vec<Box<RawConn>>> {
        // Plain data: a panic elsewhere leaves nothing half-updated worth refusing to serve over.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long a connection may stay idle here: `limits.idle_timeout`, or (when the limits learn)
    /// half the shortest idle time after which the pod was seen to close one, whichever is shorter.
    pub fn idle_timeout(&self, limits: PoolLimits) -> Duration {
        if !limits.learn_idle_close {
            return limits.idle_timeout;
        }
        idle_timeout(
            limits.idle_timeout,
            self.closed_after_micros.load(Ordering::Relaxed),
        )
    }

    /// Takes the most recently used connection that is still open, closing stale ones on the way.
    pub fn checkout(&self, limits: PoolLimits) -> Option<Box<RawConn>> {
        let mut closed = Vec::new();
        let now = Instant::now();
        let found = {
            let mut conns = self.lock();
            expire(&mut conns, self.idle_timeout(limits), now, &mut closed);
            loop {
                let Some(mut conn) = conns.pop() else { break None };
                if conn.reusable() {
                    break Some(conn);
                }
                self.closed_while_idle(&conn, now);
                closed.push(conn);
            }
        };
        // Closing a connection (dropping it) happens outside the lock.
        drop(closed);
        found
    }

    /// Returns a connection that finished its response, if it can carry another one.
    pub fn checkin(&self, mut conn: Box<RawConn>, limits: PoolLimits) {
        // Closed as its response ended, not after idling: nothing to learn from it.
        if !conn.reusable() {
            return;
        }
        let now = Instant::now();
        conn.idle_since = now;
        let mut closed = Vec::new();
        {
            let mut conns = self.lock();
            expire(&mut conns, self.idle_timeout(limits), now, &mut closed);
            if conns.len() < limits.max_idle {
                conns.push(conn);
            } else {
                closed.push(conn);
            }
        }
        drop(closed);
    }

    /// Idle connections now.
    pub fn idle(&self) -> usize {
        self.lock().len()
    }

    /// Closes the connections idle for longer than the timeout and those the other side closed;
    /// returns how many. No task polls an idle connection, so without a sweep a pod's or a peer
    /// activator's close is noticed only when the pool is next used: until then each connection keeps
    /// its socket (in `CLOSE-WAIT`) and its read buffer (8–16 KiB; hyper's connections kept about
    /// 20 KiB), which after a burst through a peer was most of the activator's memory (#19's P9).
    pub fn sweep(&self, limits: PoolLimits) -> usize {
        let mut closed = Vec::new();
        let now = Instant::now();
        {
            let mut conns = self.lock();
            expire(&mut conns, self.idle_timeout(limits), now, &mut closed);
            let open = closed.len();
            closed.extend(conns.extract_if(.., |conn| !conn.reusable()));
            for conn in &closed[open..] {
                self.closed_while_idle(conn, now);
            }
        }
        let swept = closed.len();
        drop(closed);
        swept
    }

    /// Closes every idle connection (the pod is going away, or one of its connections broke).
    pub fn clear(&self) {
        let closed = std::mem::take(&mut *self.lock());
        drop(closed);
    }

    /// Notes that the pod closed `conn` while it was idle, found so at `now`.
    fn closed_while_idle(&self, conn: &RawConn, now: Instant) {
        let idle = now.saturating_duration_since(conn.idle_since);
        let micros = u64::try_from(idle.as_micros()).unwrap_or(u64::MAX);
        self.closed_after_micros.fetch_min(micros, Ordering::Relaxed);
    }
}

/// The idle timeout with the pod's learned close: `closed_after_micros` is the shortest idle time
/// after which it closed a connection (`u64::MAX`: none yet). That was found at or after the pod's
/// own timer ran out (by a checkout, or the sweeper within [`super::SWEEP_INTERVAL`]), so half of it
/// is below the timer whenever the close was seen within as long again.
fn idle_timeout(configured: Duration, closed_after_micros: u64) -> Duration {
    match closed_after_micros {
        u64::MAX => configured,
        micros => configured.min(Duration::from_micros(micros / 2)),
    }
}

/// Moves connections idle for longer than `timeout` at `now` (the oldest are first) to `closed`.
fn expire(conns: &mut Vec<Box<RawConn>>, timeout: Duration, now: Instant, closed: &mut Vec<Box<RawConn>>) {
    let stale = conns
        .iter()
        .take_while(|c| now.saturating_duration_since(c.idle_since) > timeout)
        .count();
    closed.extend(conns.drain(..stale));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pods_close_halves_the_idle_timeout_and_only_ever_shortens_it() {
        let secs = Duration::from_secs;
        assert_eq!(idle_timeout(secs(90), u64::MAX), secs(90), "nothing learned");
        // Node.js closes after 5 s; the sweeper found it at 6.5 s.
        assert_eq!(idle_timeout(secs(90), 6_500_000), Duration::from_millis(3_250));
        assert_eq!(
            idle_timeout(secs(2), 6_500_000),
            secs(2),
            "a shorter setting stays"
        );
        assert_eq!(idle_timeout(secs(90), 0), Duration::ZERO);
    }

    #[test]
    fn a_pool_that_does_not_learn_keeps_its_setting() {
        let pool = IdlePool::default();
        pool.closed_after_micros.store(1_000_000, Ordering::Relaxed);
        let limits = |learn_idle_close| PoolLimits {
            idle_timeout: Duration::from_secs(90),
            max_idle: 8,
            learn_idle_close,
        };
        assert_eq!(pool.idle_timeout(limits(true)), Duration::from_millis(500));
        assert_eq!(pool.idle_timeout(limits(false)), Duration::from_secs(90));
    }
}
