//! Load balancing: per-pod concurrency limits, even spread without a limit, terminating pods.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use http::Response;
use support::*;
use zeroscale_activator::settings::{EndpointInfo, FunctionSettings};

/// An upstream that counts requests and records the most it ever had in flight at once.
async fn counting_upstream(
    ip: [u8; 4],
    delay: Duration,
) -> (std::net::SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let count = Arc::new(AtomicUsize::new(0));
    let (i, m, c) = (Arc::clone(&in_flight), Arc::clone(&max_seen), Arc::clone(&count));
    let addr = upstream(ip, move |_req| {
        let (i, m, c) = (Arc::clone(&i), Arc::clone(&m), Arc::clone(&c));
        async move {
            let now = i.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            c.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            i.fetch_sub(1, Ordering::SeqCst);
            Response::new(full("ok"))
        }
    })
    .await;
    (addr, max_seen, count)
}

#[tokio::test(start_paused = true)]
async fn concurrency_one_is_never_exceeded_with_50_clients() {
    let activator = activator(|_| {}).await;
    let (pod, max_seen, count) = counting_upstream([127, 0, 0, 2], Duration::from_millis(2)).await;
    let settings = FunctionSettings {
        concurrency: 1,
        ..FunctionSettings::default()
    };
    set(&activator, settings, vec![EndpointInfo::ready(pod)]);
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let addr = activator.internal_addr;
            tokio::spawn(async move {
                for _ in 0..4 {
                    let (status, _, _) = send(get(addr, "/")).await;
                    assert_eq!(status, 200);
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(count.load(Ordering::SeqCst), 200);
    assert_eq!(
        max_seen.load(Ordering::SeqCst),
        1,
        "the pod saw overlapping requests"
    );
}

#[tokio::test(start_paused = true)]
async fn four_pods_without_limit_share_evenly() {
    let activator = activator(|_| {}).await;
    let mut pods = Vec::new();
    for i in 0..4u8 {
        pods.push(counting_upstream([127, 0, 0, 10 + i], Duration::ZERO).await);
    }
    let endpoints = pods.iter().map(|(a, _, _)| EndpointInfo::ready(*a)).collect();
    set(&activator, FunctionSettings::default(), endpoints);
    // 8,000 requests: a pod's share then has a standard deviation of about 1.5% of even, so the 10%
    // bound fails only on a real imbalance, not on chance.
    let total = 8000;
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let addr = activator.internal_addr;
            tokio::spawn(async move {
                let client = client();
                for _ in 0..total / 8 {
                    assert_eq!(client.request(get(addr, "/")).await.unwrap().status(), 200);
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    let counts: Vec<usize> = pods.iter().map(|(_, _, c)| c.load(Ordering::SeqCst)).collect();
    let even = total / 4;
    for c in &counts {
        let off = (*c as f64 - even as f64).abs() / even as f64;
        assert!(
            off <= 0.10,
            "share {c} of {total} is {:.0}% off even: {counts:?}",
            off * 100.0
        );
    }
}

#[tokio::test(start_paused = true)]
async fn terminating_pod_gets_no_new_request_but_finishes_its_own() {
    let activator = activator(|_| {}).await;
    let (old, _, old_count) = counting_upstream([127, 0, 0, 20], Duration::from_millis(300)).await;
    let (new, _, new_count) = counting_upstream([127, 0, 0, 21], Duration::ZERO).await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::ready(old)],
    );
    let in_flight = tokio::spawn(send(get(activator.internal_addr, "/")));
    until("request at the old pod", || old_count.load(Ordering::SeqCst) == 1).await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::terminating(old), EndpointInfo::ready(new)],
    );
    for _ in 0..50 {
        assert_eq!(send(get(activator.internal_addr, "/")).await.0, 200);
    }
    assert_eq!(in_flight.await.unwrap().0, 200, "the in-flight request finished");
    assert_eq!(old_count.load(Ordering::SeqCst), 1);
    assert_eq!(new_count.load(Ordering::SeqCst), 50);
}
