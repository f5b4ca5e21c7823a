//! The per-function state machine on a virtual clock: times are `t0 + offset`, the random source is
//! seeded, and waiters are plain numbers, so every test is deterministic and instant.

use std::{net::SocketAddr, time::Duration};

use rand::{SeedableRng, rngs::StdRng};
use tokio::time::Instant;

use super::{
    core::Core,
    effects::{Admit, Effects},
};
use crate::{
    error::ProxyError,
    queue::{BufferBudget, QueueLimits},
    settings::{EndpointInfo, FunctionSettings, Port, StartupFailure},
};

fn pod(n: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, n], 8080))
}

fn settings(concurrency: u32) -> FunctionSettings {
    FunctionSettings {
        concurrency,
        ..FunctionSettings::default()
    }
}

struct Machine {
    core: Core<u32>,
    rng: StdRng,
    t0: Instant,
    budget: BufferBudget,
}

impl Machine {
    fn new(concurrency: u32, max_requests: usize, max_bytes: usize) -> Self {
        let t0 = Instant::now();
        let budget = BufferBudget::new(1 << 20);
        let limits = QueueLimits {
            max_requests,
            max_bytes,
        };
        Self {
            core: Core::new("ns/f".into(), settings(concurrency), limits, budget.clone(), t0),
            rng: StdRng::seed_from_u64(7),
            t0,
            budget,
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn admit(&mut self, waiter: u32, ms: u64) -> (Result<Admit, ProxyError>, Effects<u32>) {
        let mut fx = Effects::default();
        let now = self.at(ms);
        let r = self
            .core
            .admit(Port::Internal, now, || 100, || waiter, &mut self.rng, &mut fx);
        (r, fx)
    }

    fn update(&mut self, settings: FunctionSettings, endpoints: Vec<EndpointInfo>, ms: u64) -> Effects<u32> {
        let mut fx = Effects::default();
        let now = self.at(ms);
        self.core.update(settings, endpoints, now, &mut self.rng, &mut fx);
        fx
    }
}

fn go(r: Result<Admit, ProxyError>) -> std::sync::Arc<crate::endpoints::Endpoint> {
    match r {
        Ok(Admit::Go { endpoint, .. }) => endpoint,
        other => panic!("expected a pod, got {other:?}"),
    }
}

fn wait(r: Result<Admit, ProxyError>) -> u64 {
    match r {
        Ok(Admit::Wait { id, .. }) => id,
        other => panic!("expected to wait, got {other:?}"),
    }
}

#[test]
fn admission_holds_the_concurrency_limit_and_hands_slots_on_in_order() {
    let mut m = Machine::new(2, 10, 1 << 20);
    m.update(settings(2), vec![EndpointInfo::ready(pod(1))], 0);
    let (first, fx) = m.admit(1, 0);
    let first = go(first);
    assert_eq!(fx.metrics.in_flight, 1);
    let second = go(m.admit(2, 0).0);
    assert_eq!(second.in_flight(), 2);
    let (third, fx) = m.admit(3, 10);
    wait(third);
    assert_eq!((fx.metrics.queue_depth, fx.metrics.in_flight), (1, 0));
    wait(m.admit(4, 20).0);
    assert_eq!(m.core.queued(), 2);

    // The first response frees a slot at 250 ms: the oldest waiter gets it, having waited 240 ms.
    let mut fx = Effects::default();
    let (arrived, now) = (m.at(0), m.at(250));
    m.core.release(&first, arrived, 200, now, &mut m.rng, &mut fx);
    assert_eq!(fx.grants.len(), 1);
    assert_eq!(fx.grants[0].waiter, 3, "first in, first served");
    assert_eq!(
        fx.grants[0].arrived,
        m.at(10),
        "deadlines keep counting from arrival"
    );
    assert_eq!(fx.metrics.waits, vec![(Duration::from_millis(240), false)]);
    assert_eq!(fx.metrics.responses, vec![200]);
    assert_eq!(fx.metrics.duration, Some(Duration::from_millis(250)));
    assert_eq!((fx.metrics.in_flight, fx.metrics.queue_depth), (0, -1));
    assert_eq!(first.in_flight(), 2, "the slot went straight to the waiter");

    let mut fx = Effects::default();
    let now = m.at(300);
    m.core.release(&second, arrived, 200, now, &mut m.rng, &mut fx);
    assert_eq!(fx.grants.iter().map(|g| g.waiter).collect::<Vec<_>>(), vec![4]);
    assert_eq!(m.core.queued(), 0);
}

#[test]
fn the_queue_is_bounded_by_count_and_bytes() {
    let mut m = Machine::new(0, 2, 250);
    wait(m.admit(1, 0).0);
    wait(m.admit(2, 0).0);
    match m.admit(3, 0).0 {
        Err(ProxyError::QueueFull { limit, .. }) => assert_eq!(limit, "queue-max-requests"),
        other => panic!("expected a full queue, got {other:?}"),
    }
    let mut m = Machine::new(0, 10, 250);
    wait(m.admit(1, 0).0);
    wait(m.admit(2, 0).0);
    match m.admit(3, 0).0 {
        Err(ProxyError::QueueFull { limit, .. }) => assert_eq!(limit, "queue-max-bytes"),
        other => panic!("expected a full queue, got {other:?}"),
    }
    assert_eq!(m.budget.used(), 200);
}

#[test]
fn a_waiter_that_times_out_leaves_and_ends_the_cold_episode() {
    let mut m = Machine::new(0, 10, 1 << 20);
    let (r, fx) = m.admit(1, 0);
    let id = wait(r);
    assert_eq!(fx.demand, Some(1));
    assert_eq!(fx.metrics.cold_starts, 1);
    assert!(m.core.is_cold());
    // Its deadline passes at 30 s: the shell gives up on it.
    let mut fx = Effects::default();
    let now = m.at(30_000);
    m.core.abandon(id, now, &mut fx);
    assert_eq!(fx.metrics.queue_depth, -1);
    assert_eq!((m.core.queued(), m.core.present()), (0, 0));
    assert_eq!(m.budget.used(), 0, "its bytes are given back");
    assert!(!m.core.is_cold());
    // Leaving twice changes nothing; the next request at zero sends demand again.
    let mut fx = Effects::default();
    m.core.abandon(id, now, &mut fx);
    assert_eq!(fx.metrics.queue_depth, 0);
    assert_eq!(m.admit(2, 31_000).1.demand, Some(1));
    // Presence counted one request for 30 s over the 31 s period.
    let now = m.at(31_000);
    let (report, queued) = m.core.take_report(now).unwrap();
    assert_eq!((report.requests, queued), (2, 1));
    assert!((report.concurrency - 30.0 / 31.0).abs() < 1e-9, "{report:?}");
}

#[test]
fn waiters_fail_when_the_function_cannot_start_or_is_deleted() {
    let mut m = Machine::new(0, 10, 1 << 20);
    wait(m.admit(1, 0).0);
    wait(m.admit(2, 0).0);
    let failing = FunctionSettings {
        failure: Some(StartupFailure {
            reason: "OOMKilled".into(),
            message: "the container ran out of memory".into(),
        }),
        ..FunctionSettings::default()
    };
    let fx = m.update(failing, vec![], 100);
    assert_eq!(
        fx.failures.iter().map(|(w, _)| *w).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(
        fx.failures
            .iter()
            .all(|(_, e)| matches!(e, ProxyError::StartupFailed { reason, .. } if reason == "OOMKilled"))
    );
    assert_eq!(fx.metrics.queue_depth, -2);
    assert!(matches!(m.admit(3, 200).0, Err(ProxyError::StartupFailed { .. })));

    let mut m = Machine::new(0, 10, 1 << 20);
    wait(m.admit(1, 0).0);
    let mut fx = Effects::default();
    let now = m.at(50);
    m.core.remove(now, &mut fx);
    assert!(matches!(&fx.failures[..], [(1, ProxyError::FunctionDeleted(_))]));
    assert_eq!(fx.failures[0].1.status(), 404);
    assert!(matches!(m.admit(2, 60).0, Err(ProxyError::UnknownFunction(_))));
    assert!(!m.core.serves(Port::Internal));
}

#[test]
fn a_superseded_entry_hands_its_waiters_back_to_be_routed_again() {
    // Its function still exists (its first revision took over this entry): nobody gets 404, and a
    // request that still finds this state is handed back too, never admitted here.
    let mut m = Machine::new(0, 10, 1 << 20);
    wait(m.admit(1, 0).0);
    wait(m.admit(2, 10).0);
    let mut fx = Effects::default();
    let now = m.at(50);
    m.core.supersede(now, &mut fx);
    assert_eq!(
        fx.failures.iter().map(|(w, _)| *w).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(
        fx.failures
            .iter()
            .all(|(_, e)| matches!(e, ProxyError::Rerouted(_)))
    );
    assert_eq!(fx.metrics.queue_depth, -2);
    assert_eq!(m.core.queued(), 0);
    assert!(matches!(m.admit(3, 60).0, Err(ProxyError::Rerouted(_))));
    assert!(!m.core.serves(Port::Internal));
}

#[test]
fn a_queue_growing_at_zero_sends_demand_again_each_time_it_needs_twice_the_pods() {
    // `concurrency: 10`: 1,000 requests at zero need 100 pods; the autoscaler hears of the queue
    // as it grows (1 pod, 2, 4, … 64), not only of the first request.
    let mut m = Machine::new(10, 2_000, 1 << 20);
    let mut demands = Vec::new();
    let mut cold_starts = 0;
    for waiter in 0..1_000 {
        let (r, fx) = m.admit(waiter, 0);
        wait(r);
        demands.extend(fx.demand);
        cold_starts += fx.metrics.cold_starts;
    }
    assert_eq!(demands, vec![1, 11, 31, 71, 151, 311, 631]);
    assert_eq!(cold_starts, 1, "one cold episode");
    // Unlimited concurrency: one pod takes any queue, so one demand.
    let mut m = Machine::new(0, 2_000, 1 << 20);
    let sent = (0..100)
        .filter_map(|waiter| {
            let (r, fx) = m.admit(waiter, 0);
            wait(r);
            fx.demand
        })
        .count();
    assert_eq!(sent, 1);
}

#[test]
fn one_demand_per_cold_episode_and_one_prober_while_pods_start() {
    let mut m = Machine::new(0, 10, 1 << 20);
    let (r, fx) = m.admit(1, 0);
    wait(r);
    assert_eq!((fx.demand, fx.probe), (Some(1), false));
    let (r, fx) = m.admit(2, 5);
    wait(r);
    assert_eq!(
        (fx.demand, fx.metrics.cold_starts),
        (None, 0),
        "the episode is open"
    );
    let fx = m.update(
        FunctionSettings::default(),
        vec![EndpointInfo::starting(pod(1))],
        10,
    );
    assert!(fx.probe, "waiters and a starting pod: probe it");
    assert_eq!(m.core.probe_targets(), Some(vec![pod(1)]));
    let (_, fx) = m.admit(3, 20);
    assert!(!fx.probe, "one prober at a time");
    // The pod answers a probe: every waiter goes to it, and the episode ends.
    let mut fx = Effects::default();
    let now = m.at(2_000);
    m.core.mark_answering(pod(1), now, &mut m.rng, &mut fx);
    assert_eq!(
        fx.grants.iter().map(|g| g.waiter).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(
        fx.metrics.waits[0],
        (Duration::from_secs(2), true),
        "the first waiter was cold"
    );
    assert_eq!(fx.metrics.waits[1], (Duration::from_millis(1_995), false));
    assert!(!m.core.is_cold());
    assert_eq!(m.core.probe_targets(), None, "nobody waits: probing stops");
}

#[test]
fn a_cold_episode_stamps_the_first_pod_address_it_knows_once() {
    let mut m = Machine::new(1, 10, 1 << 20);
    let (r, fx) = m.admit(1, 0);
    let id = wait(r);
    assert!(!fx.metrics.cold_address_known, "no pod is known yet");
    let starting = |pods: &[u8]| pods.iter().map(|n| EndpointInfo::starting(pod(*n))).collect();
    let fx = m.update(FunctionSettings::default(), starting(&[1]), 10);
    assert!(
        fx.metrics.cold_address_known,
        "the pod watch brought a starting pod's IP"
    );
    let fx = m.update(FunctionSettings::default(), starting(&[1, 2]), 20);
    assert!(!fx.metrics.cold_address_known, "once an episode");
    // The waiter leaves, which ends the episode; the next one starts with the pods still starting,
    // so it knows an address from its first request.
    let mut fx = Effects::default();
    m.core.abandon(id, m.at(30_000), &mut fx);
    assert!(!m.core.is_cold());
    let (r, fx) = m.admit(2, 31_000);
    wait(r);
    assert_eq!(fx.metrics.cold_starts, 1, "a new episode");
    assert!(
        fx.metrics.cold_address_known,
        "its pods' addresses were known when it began"
    );
    // Outside an episode nothing is stamped: a ready pod ends it and later updates are warm.
    let fx = m.update(
        FunctionSettings::default(),
        vec![EndpointInfo::ready(pod(1))],
        32_000,
    );
    assert!(
        !fx.metrics.cold_address_known,
        "stamped at the episode's start, not again"
    );
    assert!(!m.core.is_cold());
    let fx = m.update(
        FunctionSettings::default(),
        vec![EndpointInfo::ready(pod(2))],
        33_000,
    );
    assert!(!fx.metrics.cold_address_known, "warm");
}

#[test]
fn a_refused_request_goes_first_and_its_pod_is_routed_around() {
    let mut m = Machine::new(1, 10, 1 << 20);
    m.update(
        settings(1),
        vec![EndpointInfo::ready(pod(1)), EndpointInfo::ready(pod(2))],
        0,
    );
    let a = go(m.admit(1, 0).0);
    let b = go(m.admit(2, 0).0);
    wait(m.admit(3, 10).0);
    // `a`'s pod refused the connection: the request is admitted again ahead of waiter 3.
    let mut fx = Effects::default();
    let (arrived, now) = (m.at(0), m.at(20));
    let r = m
        .core
        .retry(&a, true, arrived, 100, || 9, now, &mut m.rng, &mut fx);
    wait(r);
    assert_eq!(fx.failed_pod, Some(a.address));
    assert!(fx.probe, "a failed pod is probed until it answers");
    assert_eq!(m.core.routable(), vec![b.address]);
    let mut fx = Effects::default();
    let now = m.at(40);
    m.core.release(&b, arrived, 200, now, &mut m.rng, &mut fx);
    assert_eq!(fx.grants.iter().map(|g| g.waiter).collect::<Vec<_>>(), vec![9]);
    assert_eq!(
        fx.grants[0].arrived,
        m.at(0),
        "the retried request keeps its arrival"
    );
}
