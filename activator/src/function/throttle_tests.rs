//! `maxConcurrency`, `maxQueued`, the computed `Retry-After` and the namespace quotas, on a virtual
//! clock: times are `t0 + offset`, the random source is seeded, waiters are plain numbers.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use rand::{SeedableRng, rngs::StdRng};
use tokio::time::Instant;

use super::{
    core::{Core, drain::MAX_RETRY_AFTER_SECS},
    effects::{Admit, Effects},
};
use crate::{
    endpoints::Endpoint,
    error::ProxyError,
    queue::{BufferBudget, QueueLimits},
    settings::{EndpointInfo, FunctionSettings, Port},
};

fn pod(n: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, n], 8080))
}

fn capped(max_concurrency: u32, max_queued: Option<u32>) -> FunctionSettings {
    FunctionSettings {
        max_concurrency,
        max_queued,
        ..FunctionSettings::default()
    }
}

struct Fn {
    core: Core<u32>,
    rng: StdRng,
    t0: Instant,
}

impl Fn {
    fn new(name: &str, settings: FunctionSettings, budget: BufferBudget, t0: Instant) -> Self {
        let limits = QueueLimits {
            max_requests: 10_000,
            max_bytes: 1 << 30,
        };
        let mut f = Self {
            core: Core::new(name.into(), settings.clone(), limits, budget, t0),
            rng: StdRng::seed_from_u64(7),
            t0,
        };
        // Three pods with no per-pod limit: only the function's cap holds requests back.
        let pods = (1..=3).map(|n| EndpointInfo::ready(pod(n))).collect();
        let mut fx = Effects::default();
        f.core.update(settings, pods, t0, &mut f.rng, &mut fx);
        f
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn admit(&mut self, waiter: u32, ms: u64) -> Result<Admit, ProxyError> {
        let mut fx = Effects::default();
        let now = self.at(ms);
        self.core
            .admit(Port::Internal, now, || 1000, || waiter, &mut self.rng, &mut fx)
    }

    /// Answers the request on `endpoint` at `ms`; returns the waiters handed a pod.
    fn release(&mut self, endpoint: &Endpoint, ms: u64) -> Vec<(u32, Arc<Endpoint>)> {
        let mut fx = Effects::default();
        let now = self.at(ms);
        self.core.release(endpoint, now, 200, now, &mut self.rng, &mut fx);
        fx.grants.into_iter().map(|g| (g.waiter, g.endpoint)).collect()
    }
}

fn go(r: Result<Admit, ProxyError>) -> Arc<Endpoint> {
    match r {
        Ok(Admit::Go { endpoint, .. }) => endpoint,
        other => panic!("expected a pod, got {other:?}"),
    }
}

fn waits(r: Result<Admit, ProxyError>) {
    assert!(matches!(r, Ok(Admit::Wait { .. })), "expected to wait, got {r:?}");
}

fn throttled(r: Result<Admit, ProxyError>) -> (&'static str, u64) {
    match r {
        Err(e @ ProxyError::Throttled { .. }) => {
            assert_eq!(e.status(), 429);
            match e {
                ProxyError::Throttled {
                    limit, retry_after, ..
                } => (limit, retry_after),
                _ => unreachable!(),
            }
        }
        other => panic!("expected 429, got {other:?}"),
    }
}

#[test]
fn the_cap_holds_across_pods_and_the_queue_takes_the_rest() {
    let t0 = Instant::now();
    let mut f = Fn::new("ns/f", capped(2, Some(2)), BufferBudget::new(1 << 20), t0);
    let a = go(f.admit(1, 0));
    let _b = go(f.admit(2, 0));
    assert_eq!(f.core.in_flight(), 2);
    // Pods have room, the function does not: the next two wait.
    waits(f.admit(3, 0));
    waits(f.admit(4, 0));
    // Beyond maxQueued: 429, and nothing has completed yet, so the longest Retry-After.
    assert_eq!(throttled(f.admit(6, 0)), ("maxConcurrency", MAX_RETRY_AFTER_SECS));
    // A response frees one slot: exactly one waiter goes, oldest first.
    let granted = f.release(&a, 500);
    assert_eq!(granted.iter().map(|g| g.0).collect::<Vec<_>>(), vec![3]);
    assert_eq!(f.core.in_flight(), 2);
    assert_eq!(f.core.queued(), 1);
}

#[test]
fn retry_after_follows_the_observed_drain_rate() {
    let t0 = Instant::now();
    let mut f = Fn::new("ns/f", capped(2, Some(4)), BufferBudget::new(1 << 20), t0);
    let mut running: Vec<Arc<Endpoint>> = vec![go(f.admit(0, 0)), go(f.admit(0, 0))];
    for w in 1..=4 {
        waits(f.admit(w, 0));
    }
    // Each request takes 1 s and two run at once: two completions a second, the queue refilled.
    let mut next = 10;
    for second in 1..=10u64 {
        for endpoint in std::mem::take(&mut running) {
            for (_, granted) in f.release(&endpoint, second * 1000) {
                running.push(granted);
            }
            waits(f.admit(next, second * 1000));
            next += 1;
        }
        assert_eq!(f.core.in_flight(), 2, "never more than the cap");
    }
    // 4 queued ahead + this one = 5 completions at 2/s: 2.5 s, rounded up to 3.
    assert_eq!(throttled(f.admit(99, 10_000)), ("maxConcurrency", 3));

    // A function draining four times as fast answers sooner.
    let mut fast = Fn::new("ns/fast", capped(8, Some(4)), BufferBudget::new(1 << 20), t0);
    let mut running: Vec<Arc<Endpoint>> = (0..8).map(|_| go(fast.admit(0, 0))).collect();
    for w in 1..=4 {
        waits(fast.admit(w, 0));
    }
    for second in 1..=10u64 {
        for endpoint in std::mem::take(&mut running) {
            for (_, granted) in fast.release(&endpoint, second * 1000) {
                running.push(granted);
            }
            waits(fast.admit(next, second * 1000));
            next += 1;
        }
    }
    assert_eq!(throttled(fast.admit(99, 10_000)), ("maxConcurrency", 1));
}

#[test]
fn an_uncapped_full_queue_is_still_a_503_with_a_computed_retry_after() {
    let t0 = Instant::now();
    let settings = FunctionSettings {
        concurrency: 1,
        max_queued: Some(1),
        ..FunctionSettings::default()
    };
    let mut f = Fn::new("ns/f", settings, BufferBudget::new(1 << 20), t0);
    let busy: Vec<_> = (0..3).map(|w| go(f.admit(w, 0))).collect();
    waits(f.admit(3, 0));
    match f.admit(4, 0) {
        Err(ProxyError::QueueFull {
            limit, retry_after, ..
        }) => {
            assert_eq!(limit, "maxQueued");
            assert_eq!(retry_after, MAX_RETRY_AFTER_SECS, "nothing completed yet");
        }
        other => panic!("expected 503, got {other:?}"),
    }
    // Two responses within second 1: waiter 3 takes a pod, a new request the other, one waits.
    f.release(&busy[0], 1000);
    f.release(&busy[1], 1500);
    go(f.admit(5, 2000));
    waits(f.admit(6, 2000));
    // 1 ahead + this one at 2 completions a second: 1 s.
    match f.admit(7, 2000) {
        Err(ProxyError::QueueFull { retry_after, .. }) => assert_eq!(retry_after, 1),
        other => panic!("expected 503, got {other:?}"),
    }
}

#[test]
fn a_namespace_flooding_its_quota_leaves_another_namespace_its_buffer() {
    let t0 = Instant::now();
    // Room for 10 parked requests globally, 6 per namespace.
    let budget = BufferBudget::new(10_000).with_namespace_limit(6_000);
    let flood = capped(1, None);
    let mut a1 = Fn::new("a/f1", flood.clone(), budget.for_namespace("a"), t0);
    let mut a2 = Fn::new("a/f2", flood.clone(), budget.for_namespace("a"), t0);
    let mut b = Fn::new("b/f", flood, budget.for_namespace("b"), t0);
    go(a1.admit(0, 0));
    go(a2.admit(0, 0));
    go(b.admit(0, 0));
    for w in 1..=3 {
        waits(a1.admit(w, 0));
        waits(a2.admit(w, 0));
    }
    // Namespace a holds 6 of 10: both its functions are refused, with 429.
    assert_eq!(throttled(a1.admit(9, 0)).0, "namespace-buffer-memory-limit");
    assert_eq!(throttled(a2.admit(9, 0)).0, "namespace-buffer-memory-limit");
    // Namespace b still parks its requests in the rest of the buffer.
    for w in 1..=4 {
        waits(b.admit(w, 0));
    }
    assert_eq!(budget.used(), 10_000);
}
