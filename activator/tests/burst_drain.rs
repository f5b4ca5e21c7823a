//! A burst from zero on paused time: when a pod becomes able to serve, the backlog goes out at the
//! pod's concurrency limit in the same instant (no probe or stats tick, no one-at-a-time wake-up), and
//! each further pod takes its share at once; a finished request hands its slot on at once.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

use std::{net::SocketAddr, sync::Arc};

use futures::FutureExt;
use prometheus_client::registry::Registry;
use tokio::time::Instant;
use zeroscale_activator::{
    function::{FunctionState, NoWakeups},
    lease::{Admission, Lease, Ticket},
    metrics::Metrics,
    queue::{BufferBudget, QueueLimits},
    settings::{EndpointInfo, FunctionSettings, Port},
};
use zeroscale_common::signals::FunctionKey;

const CONCURRENCY: u32 = 10;

fn settings() -> FunctionSettings {
    FunctionSettings {
        concurrency: CONCURRENCY,
        ..FunctionSettings::default()
    }
}

fn pod(n: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, n], 8080))
}

fn function() -> Arc<FunctionState> {
    let key = FunctionKey::new("ns", "burst");
    let metrics = Arc::new(Metrics::register(&mut Registry::default()));
    FunctionState::new(
        key.clone(),
        settings(),
        QueueLimits {
            max_requests: 1000,
            max_bytes: 1 << 24,
        },
        BufferBudget::new(1 << 24),
        metrics.for_function(&key),
        Arc::new(NoWakeups),
    )
}

fn park(f: &Arc<FunctionState>, n: usize) -> Vec<Ticket> {
    (0..n)
        .map(|_| match f.admit(Port::Internal, || 600, Instant::now()) {
            Ok(Admission::Wait(ticket)) => ticket,
            other => panic!("expected to wait, got {other:?}"),
        })
        .collect()
}

/// Takes the leases already handed to waiters, without letting any time pass: a ticket whose
/// outcome is not there yet stays parked.
fn handed(tickets: &mut Vec<Ticket>) -> Vec<Lease> {
    let mut leases = Vec::new();
    let mut still = Vec::new();
    for mut ticket in tickets.drain(..) {
        match ticket.wait().now_or_never() {
            Some(outcome) => leases.push(outcome.unwrap()),
            None => still.push(ticket),
        }
    }
    *tickets = still;
    leases
}

fn on(leases: &[Lease], address: SocketAddr) -> usize {
    leases.iter().filter(|l| l.endpoint().address == address).count()
}

#[tokio::test(start_paused = true)]
async fn the_backlog_goes_out_at_each_new_pods_limit_at_once() {
    let f = function();
    let mut tickets = park(&f, 100);
    let t0 = Instant::now();
    assert_eq!(f.queued(), 100);

    // The EndpointSlice says the first pod is ready: ten requests go at once.
    f.update(settings(), vec![EndpointInfo::ready(pod(1))]);
    let first = handed(&mut tickets);
    assert_eq!((first.len(), on(&first, pod(1))), (10, 10));
    assert_eq!(f.queued(), 90);

    // A second pod: its ten at once, the first pod still full.
    f.update(
        settings(),
        vec![EndpointInfo::ready(pod(1)), EndpointInfo::ready(pod(2))],
    );
    let second = handed(&mut tickets);
    assert_eq!((second.len(), on(&second, pod(2))), (10, 10));
    assert_eq!(f.queued(), 80);

    // A third pod found by the activator's own probe before its EndpointSlice says ready.
    f.update(
        settings(),
        vec![
            EndpointInfo::ready(pod(1)),
            EndpointInfo::ready(pod(2)),
            EndpointInfo::starting(pod(3)),
        ],
    );
    assert!(handed(&mut tickets).is_empty(), "a starting pod takes nothing");
    f.mark_answering(pod(3));
    let third = handed(&mut tickets);
    assert_eq!((third.len(), on(&third, pod(3))), (10, 10));

    // Finished requests hand their slots on at once, oldest waiter first, one each.
    drop(first);
    let next = handed(&mut tickets);
    assert_eq!((next.len(), on(&next, pod(1))), (10, 10));
    assert_eq!(f.queued(), 60);
    assert_eq!(Instant::now(), t0, "no time passed: nothing waited for a tick");
}

#[tokio::test(start_paused = true)]
async fn a_pod_with_no_limit_takes_the_whole_backlog_at_once() {
    let f = function();
    let mut tickets = park(&f, 100);
    f.update(FunctionSettings::default(), vec![EndpointInfo::ready(pod(1))]);
    assert_eq!(handed(&mut tickets).len(), 100);
    assert!(tickets.is_empty());
    assert_eq!(f.queued(), 0);
}
