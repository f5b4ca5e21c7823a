//! The per-function state machine on its own, fed in memory: no sockets, no Kubernetes.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use prometheus_client::registry::Registry;
use zeroscale_activator::{
    function::{FunctionState, Wakeups},
    lease::Admission,
    metrics::Metrics,
    queue::{BufferBudget, QueueLimits},
    settings::{EndpointInfo, FunctionSettings, Port},
};
use zeroscale_common::signals::FunctionKey;

#[derive(Default)]
struct Recorded {
    demands: Mutex<Vec<u64>>,
    probes: Mutex<usize>,
}

impl Wakeups for Recorded {
    fn demand(&self, _: &Arc<FunctionState>, queued: u64) {
        self.demands.lock().unwrap().push(queued);
    }
    fn probe(&self, _: &Arc<FunctionState>) {
        *self.probes.lock().unwrap() += 1;
    }
}

fn function(concurrency: u32) -> (Arc<FunctionState>, Arc<Recorded>) {
    let wakeups = Arc::new(Recorded::default());
    let metrics = Arc::new(Metrics::register(&mut Registry::default()));
    let key = FunctionKey::new("ns", "f");
    let state = FunctionState::new(
        key.clone(),
        FunctionSettings {
            concurrency,
            ..FunctionSettings::default()
        },
        QueueLimits {
            max_requests: 100,
            max_bytes: 1 << 20,
        },
        BufferBudget::new(1 << 20),
        metrics.for_function(&key),
        wakeups.clone(),
    );
    (state, wakeups)
}

fn pod(n: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, n], 8080))
}

// TEMP: `admit` takes a std::time::Instant until helper A's core refactor moves it to tokio's clock;
// then this becomes `tokio::time::Instant::now()` and the allow goes.
#[allow(clippy::disallowed_types)]
fn admit(f: &Arc<FunctionState>) -> Admission {
    f.admit(Port::Internal, || 600, std::time::Instant::now())
        .unwrap()
}

#[tokio::test]
async fn one_demand_per_cold_episode() {
    let (f, rec) = function(0);
    let mut first = match admit(&f) {
        Admission::Wait(t) => t,
        Admission::Go(_) => panic!("no pod yet"),
    };
    let _second = admit(&f);
    assert_eq!(
        *rec.demands.lock().unwrap(),
        vec![1],
        "only the first waiter sends demand"
    );
    f.update(FunctionSettings::default(), vec![EndpointInfo::ready(pod(1))]);
    let lease = first.wait().await.unwrap();
    assert_eq!(lease.endpoint().address, pod(1));
    drop(lease);
    // Back at zero: the next waiter starts a new episode.
    f.update(FunctionSettings::default(), vec![]);
    let _third = admit(&f);
    assert_eq!(rec.demands.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn the_limit_holds_and_a_finished_request_hands_its_slot_on() {
    let (f, _) = function(1);
    f.update(
        FunctionSettings {
            concurrency: 1,
            ..FunctionSettings::default()
        },
        vec![EndpointInfo::ready(pod(1))],
    );
    let Admission::Go(lease) = admit(&f) else {
        panic!("the pod has room")
    };
    let Admission::Wait(mut next) = admit(&f) else {
        panic!("the pod is full")
    };
    assert_eq!(f.queued(), 1);
    drop(lease);
    let lease = next.wait().await.unwrap();
    assert_eq!(lease.endpoint().in_flight(), 1);
    assert_eq!(f.queued(), 0);
}

#[tokio::test]
async fn waiting_with_starting_pods_asks_for_one_prober() {
    let (f, rec) = function(0);
    f.update(FunctionSettings::default(), vec![EndpointInfo::starting(pod(2))]);
    let Admission::Wait(mut ticket) = admit(&f) else {
        panic!("nothing routable")
    };
    let _more = admit(&f);
    assert_eq!(
        *rec.probes.lock().unwrap(),
        1,
        "one prober per function at a time"
    );
    assert_eq!(f.probe_targets(), Some(vec![pod(2)]));
    f.mark_answering(pod(2));
    assert_eq!(ticket.wait().await.unwrap().endpoint().address, pod(2));
}

#[tokio::test]
async fn a_ticket_dropped_leaves_the_queue() {
    let (f, _) = function(0);
    let ticket = admit(&f);
    assert_eq!((f.queued(), f.present()), (1, 1));
    drop(ticket);
    assert_eq!((f.queued(), f.present()), (0, 0));
}
