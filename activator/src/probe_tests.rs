//! The prober on paused time with scripted connects: how soon after a pod can take connections the
//! waiting requests get it, and that a pod whose address does not answer holds nobody back.

use std::{
    io,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use prometheus_client::registry::Registry;
use tokio::time::Instant;
use zeroscale_common::signals::FunctionKey;

use super::{FAILED_PROBE_INTERVAL, HEDGE_AFTER_INTERVALS, MIN_ATTEMPT_TIMEOUT, PROBE_INTERVAL, probe_with};
use crate::{
    function::{Admission, FunctionState, NoWakeups, Ticket},
    metrics::Metrics,
    queue::{BufferBudget, QueueLimits},
    settings::{EndpointInfo, FunctionSettings, Port},
};

fn pod(n: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, n], 8080))
}

fn function(starting: &[SocketAddr]) -> Arc<FunctionState> {
    let key = FunctionKey::new("ns", "f");
    let metrics = Arc::new(Metrics::register(&mut Registry::default()));
    let f = FunctionState::new(
        key.clone(),
        FunctionSettings::default(),
        QueueLimits {
            max_requests: 100,
            max_bytes: 1 << 20,
        },
        BufferBudget::new(1 << 20),
        metrics.for_function(&key),
        Arc::new(NoWakeups),
    );
    let endpoints = starting.iter().map(|a| EndpointInfo::starting(*a)).collect();
    f.update(FunctionSettings::default(), endpoints);
    f
}

fn park(f: &Arc<FunctionState>) -> Ticket {
    match f.admit(Port::Internal, || 600, Instant::now()) {
        Ok(Admission::Wait(ticket)) => ticket,
        other => panic!("expected to wait, got {other:?}"),
    }
}

fn refused() -> io::Error {
    io::Error::from(io::ErrorKind::ConnectionRefused)
}

#[tokio::test(start_paused = true)]
async fn a_pod_gets_its_waiters_within_one_interval_of_accepting() {
    let f = function(&[pod(2)]);
    let mut ticket = park(&f);
    let t0 = Instant::now();
    // The pod listens from 503.3 ms on: not a multiple of the interval.
    let listening = t0 + Duration::from_micros(503_300);
    let attempts = Arc::new(Mutex::new(0u32));
    let counted = Arc::clone(&attempts);
    let prober = tokio::spawn(probe_with(Arc::clone(&f), PROBE_INTERVAL, move |_| {
        *counted.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        async move {
            if Instant::now() >= listening {
                Ok(())
            } else {
                Err(refused())
            }
        }
    }));
    let lease = ticket.wait().await.expect("the pod answered");
    let handed = Instant::now();
    assert_eq!(lease.endpoint().address, pod(2));
    assert!(handed >= listening, "not before the pod listens");
    assert!(
        handed - listening <= PROBE_INTERVAL,
        "handed over {:?} after the pod could serve",
        handed - listening
    );
    // One attempt per interval, not a busy loop.
    let made = *attempts.lock().unwrap_or_else(|e| e.into_inner());
    assert!((250..=254).contains(&made), "{made} attempts in 505 ms");
    // Nobody waits any more and the pod is routable: the prober ends by itself.
    drop(lease);
    tokio::time::timeout(Duration::from_secs(1), prober)
        .await
        .expect("the prober stops")
        .expect("the prober did not panic");
}

#[tokio::test(start_paused = true)]
async fn the_first_round_runs_at_once_between_timer_ticks() {
    // A pod's address arrives at any moment, mostly between two of the timer's millisecond ticks;
    // a round waiting on a timer would start at a later tick (1 ms later here with the old loop).
    tokio::time::advance(Duration::from_micros(700)).await;
    let f = function(&[pod(2)]);
    let mut ticket = park(&f);
    let t0 = Instant::now();
    let _prober = tokio::spawn(probe_with(Arc::clone(&f), PROBE_INTERVAL, |_| async { Ok(()) }));
    let lease = ticket.wait().await.expect("the pod answered");
    assert_eq!(lease.endpoint().address, pod(2));
    assert_eq!(
        Instant::now() - t0,
        Duration::ZERO,
        "handed over with no time passing"
    );
}

#[tokio::test(start_paused = true)]
async fn a_pod_that_does_not_answer_holds_nobody_back() {
    let f = function(&[pod(2), pod(3)]);
    let mut ticket = park(&f);
    let t0 = Instant::now();
    let listening = t0 + Duration::from_millis(100);
    let _prober = tokio::spawn(probe_with(
        Arc::clone(&f),
        PROBE_INTERVAL,
        move |address| async move {
            if address == pod(2) {
                // Its SYNs go nowhere: the connect never completes.
                std::future::pending::<()>().await;
            }
            if Instant::now() >= listening {
                Ok(())
            } else {
                Err(refused())
            }
        },
    ));
    let lease = ticket.wait().await.expect("pod 3 answered");
    assert_eq!(lease.endpoint().address, pod(3));
    let late = Instant::now() - listening;
    assert!(late <= PROBE_INTERVAL, "pod 3 used {late:?} after it could serve");
}

#[tokio::test(start_paused = true)]
async fn a_second_connect_finds_a_pod_whose_first_syn_went_nowhere() {
    let f = function(&[pod(2)]);
    let mut ticket = park(&f);
    let t0 = Instant::now();
    let attempts = Arc::new(Mutex::new(0u32));
    let counted = Arc::clone(&attempts);
    let _prober = tokio::spawn(probe_with(Arc::clone(&f), PROBE_INTERVAL, move |_| {
        let attempt = {
            let mut made = counted.lock().unwrap_or_else(|e| e.into_inner());
            *made += 1;
            *made
        };
        async move {
            if attempt == 1 {
                // The first SYN is dropped: this connect hangs until its timeout.
                std::future::pending::<()>().await;
            }
            Ok(())
        }
    }));
    let lease = ticket.wait().await.expect("the pod answered");
    assert_eq!(lease.endpoint().address, pod(2));
    let waited = Instant::now() - t0;
    // With one attempt at a time, the pod was found only after the first one timed out (10 ms).
    assert!(waited < MIN_ATTEMPT_TIMEOUT, "found after {waited:?}");
    assert_eq!(waited, PROBE_INTERVAL * HEDGE_AFTER_INTERVALS);
    assert_eq!(*attempts.lock().unwrap_or_else(|e| e.into_inner()), 2);
}

/// Counts a pod's attempts in flight, and the most there ever were at once.
#[derive(Default)]
struct InFlight {
    now: usize,
    most: usize,
}

/// One attempt in flight, until dropped (when its connect ends or times out).
struct Attempt(Arc<Mutex<InFlight>>);

impl Attempt {
    fn start(counts: &Arc<Mutex<InFlight>>) -> Self {
        let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
        c.now += 1;
        c.most = c.most.max(c.now);
        Self(Arc::clone(counts))
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).now -= 1;
    }
}

#[tokio::test(start_paused = true)]
async fn a_pod_whose_syns_all_go_nowhere_has_at_most_two_attempts_in_flight() {
    let f = function(&[pod(2)]);
    let _ticket = park(&f);
    let counts = Arc::new(Mutex::new(InFlight::default()));
    let started = Arc::new(Mutex::new(0u32));
    let (c, s) = (Arc::clone(&counts), Arc::clone(&started));
    let probing = tokio::time::timeout(
        Duration::from_millis(100),
        probe_with(Arc::clone(&f), PROBE_INTERVAL, move |_| {
            *s.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            let attempt = Attempt::start(&c);
            async move {
                let _attempt = attempt;
                std::future::pending::<io::Result<()>>().await
            }
        }),
    )
    .await;
    assert!(probing.is_err(), "still probing while the request waits");
    assert_eq!(counts.lock().unwrap_or_else(|e| e.into_inner()).most, 2);
    // A second attempt only after the first has waited its two intervals: never one per round.
    let made = *started.lock().unwrap_or_else(|e| e.into_inner());
    let hedge_ms = (PROBE_INTERVAL * HEDGE_AFTER_INTERVALS).as_millis() as u32;
    assert!(
        (100 / 10..=100 / hedge_ms + 1).contains(&made),
        "{made} attempts in 100 ms"
    );
}

#[tokio::test(start_paused = true)]
async fn the_prober_ends_when_nobody_waits() {
    let f = function(&[pod(2)]);
    drop(park(&f));
    let attempts = Arc::new(Mutex::new(0u32));
    let counted = Arc::clone(&attempts);
    tokio::time::timeout(
        PROBE_INTERVAL,
        probe_with(Arc::clone(&f), PROBE_INTERVAL, move |_| {
            *counted.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            async { Err(refused()) }
        }),
    )
    .await
    .expect("the prober ends at once");
    assert_eq!(*attempts.lock().unwrap_or_else(|e| e.into_inner()), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_pod_is_probed_at_the_slower_pace_while_nobody_waits() {
    let f = function(&[]);
    f.update(FunctionSettings::default(), vec![EndpointInfo::ready(pod(1))]);
    let Ok(Admission::Go(lease)) = f.admit(Port::Internal, || 600, Instant::now()) else {
        panic!("the pod has room")
    };
    // The pod refused the connection: the request waits again, then its client leaves.
    match f.retry(lease, true, 0) {
        Ok(Admission::Wait(ticket)) => drop(ticket),
        other => panic!("expected to wait, got {other:?}"),
    }
    assert!(f.routable().is_empty(), "the refusing pod is routed around");
    let t0 = Instant::now();
    let back = t0 + Duration::from_millis(250);
    let attempts = Arc::new(Mutex::new(0u32));
    let counted = Arc::clone(&attempts);
    tokio::time::timeout(
        Duration::from_secs(1),
        probe_with(Arc::clone(&f), PROBE_INTERVAL, move |_| {
            *counted.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            async move {
                if Instant::now() >= back {
                    Ok(())
                } else {
                    Err(refused())
                }
            }
        }),
    )
    .await
    .expect("the prober ends once the pod answers");
    assert_eq!(f.routable(), vec![pod(1)]);
    // One attempt every FAILED_PROBE_INTERVAL from t0 (0, 25, ..., 250 ms), not every 2 ms.
    let expected = 250 / FAILED_PROBE_INTERVAL.as_millis() as u32 + 1;
    assert_eq!(*attempts.lock().unwrap_or_else(|e| e.into_inner()), expected);
}
