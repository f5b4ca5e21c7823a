//! Buffering at zero: FIFO release, demand as the queue grows in a cold episode, overflow, deadlines, failed and
//! deleted functions, direct probing.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

mod support;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use http::Response;
use support::*;
use tokio::time::Instant;
use zeroscale_activator::settings::{EndpointInfo, FunctionSettings, StartupFailure};
use zeroscale_common::signals::DEMAND_TYPE;

fn settings(concurrency: u32, timeout_secs: u64) -> FunctionSettings {
    FunctionSettings {
        concurrency,
        timeout: Duration::from_secs(timeout_secs),
        response_start_timeout: Duration::from_secs(timeout_secs),
        ..FunctionSettings::default()
    }
}

#[tokio::test(start_paused = true)]
async fn waiting_requests_leave_in_fifo_order_and_demand_follows_the_queue() {
    let recorder = SignalRecorder::default();
    let url = recorder.start().await;
    let activator = activator(|c| c.autoscaler_url = url).await;
    set(&activator, settings(1, 30), vec![]);
    let function = activator.table.get(&key()).unwrap();

    let order = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&order);
    let pod = upstream([127, 0, 0, 2], move |req| {
        let seen = Arc::clone(&seen);
        async move {
            let seq = req.headers()["x-seq"].to_str().unwrap().to_string();
            seen.lock().unwrap().push(seq.clone());
            Response::new(full(seq))
        }
    })
    .await;

    let mut clients = Vec::new();
    for i in 0..20 {
        let mut request = get(activator.internal_addr, "/");
        request
            .headers_mut()
            .insert("x-seq", i.to_string().parse().unwrap());
        clients.push(tokio::spawn(send(request)));
        // Each request joins the queue before the next is sent, so the queue order is known.
        until("request queued", || function.queued() == i + 1).await;
        if i == 0 {
            // The first waiting request alone sends the demand: it does not wait for a batch. (How
            // fast it arrives is a benchmark's business, not a test's.)
            until("demand received", || !recorder.of_type(DEMAND_TYPE).is_empty()).await;
        }
    }

    set(&activator, settings(1, 30), vec![EndpointInfo::ready(pod)]);
    for (i, c) in clients.into_iter().enumerate() {
        let (status, body, _) = c.await.unwrap();
        assert_eq!((status, body), (200, i.to_string()));
    }
    let expected: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    assert_eq!(*order.lock().unwrap(), expected);

    // `concurrency: 1`: demand again each time the queue needs twice the pods (1, 2, 4, 8, 16).
    until("five demands", || recorder.of_type(DEMAND_TYPE).len() == 5).await;
    let demands = recorder.of_type(DEMAND_TYPE);
    let mut sent: Vec<u64> = demands
        .iter()
        .map(|d| d.body["queued"].as_u64().unwrap_or(0))
        .collect();
    // Each is posted on a task of its own, so they may arrive in any order.
    sent.sort_unstable();
    assert_eq!(sent, vec![1, 2, 4, 8, 16]);
    assert!(demands.iter().all(|d| d.body["function"]["name"] == "hello"));

    // A second cold episode starts again at one.
    set(&activator, settings(1, 30), vec![]);
    let late = tokio::spawn(send(get(activator.internal_addr, "/")));
    until("second episode's demand", || {
        recorder.of_type(DEMAND_TYPE).len() == 6
    })
    .await;
    late.abort();
}

#[tokio::test(start_paused = true)]
async fn overflow_gives_503_with_retry_after() {
    let activator = activator(|c| c.queue_limits.max_requests = 3).await;
    set(&activator, settings(0, 30), vec![]);
    let function = activator.table.get(&key()).unwrap();
    let waiting: Vec<_> = (0..3)
        .map(|_| tokio::spawn(send(get(activator.internal_addr, "/"))))
        .collect();
    until("three queued", || function.queued() == 3).await;
    let (status, body, headers) = send(get(activator.internal_addr, "/")).await;
    assert_eq!(status, 503);
    assert!(body.contains("queue-max-requests"), "{body}");
    // Nothing has drained yet (no pod): the longest answer, since no sooner time can be promised.
    assert_eq!(
        headers["retry-after"],
        zeroscale_activator::function::core::drain::MAX_RETRY_AFTER_SECS.to_string()
    );
    assert!(
        metrics(&activator)
            .await
            .contains("reason=\"queue-max-requests\"")
    );
    drop(waiting);
}

#[tokio::test(start_paused = true)]
async fn global_memory_limit_overflows_too() {
    // One parked GET accounts about 560 bytes (512 of overhead plus its head): one fits, two do not.
    let activator = activator(|c| c.buffer_memory_limit = 800).await;
    set(&activator, settings(0, 30), vec![]);
    let function = activator.table.get(&key()).unwrap();
    let first = tokio::spawn(send(get(activator.internal_addr, "/")));
    until("one queued", || function.queued() == 1).await;
    let (status, body, _) = send(get(activator.internal_addr, "/")).await;
    assert_eq!(status, 503);
    assert!(body.contains("buffer-memory-limit"), "{body}");
    drop(first);
}

#[tokio::test(start_paused = true)]
async fn deadline_counts_queue_time() {
    let activator = activator(|_| {}).await;
    // 1 s in the queue, then a pod that answers after 800 ms: 1.8 s > 1 s total.
    set(&activator, settings(0, 1), vec![]);
    let started = Instant::now();
    let (status, body, _) = send(get(activator.internal_addr, "/")).await;
    assert_eq!(status, 504, "{body}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        activator.table.get(&key()).unwrap().queued(),
        0,
        "the timed-out request left the queue"
    );

    let slow = upstream([127, 0, 0, 3], |_| async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Response::new(full("late"))
    })
    .await;
    set(&activator, settings(0, 2), vec![]);
    let function = activator.table.get(&key()).unwrap();
    let waiting = tokio::spawn(send(get(activator.internal_addr, "/")));
    until("queued", || function.queued() == 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    set(&activator, settings(0, 2), vec![EndpointInfo::ready(slow)]);
    let (status, _, _) = waiting.await.unwrap();
    assert_eq!(
        status, 504,
        "800 ms queued + 1500 ms upstream passes the 2 s timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn failed_function_releases_waiters_with_the_reason() {
    let activator = activator(|_| {}).await;
    set(&activator, settings(0, 300), vec![]);
    let function = activator.table.get(&key()).unwrap();
    let started = Instant::now();
    let waiting: Vec<_> = (0..5)
        .map(|_| tokio::spawn(send(get(activator.internal_addr, "/"))))
        .collect();
    until("queued", || function.queued() == 5).await;
    let failure = StartupFailure {
        reason: "ImagePullBackOff".into(),
        message: "image not found".into(),
    };
    set(
        &activator,
        FunctionSettings {
            failure: Some(failure),
            ..settings(0, 300)
        },
        vec![],
    );
    for w in waiting {
        let (status, body, _) = w.await.unwrap();
        assert_eq!(status, 503);
        assert!(body.contains("ImagePullBackOff"), "{body}");
    }
    // New requests are answered at once too.
    let (status, body, _) = send(get(activator.internal_addr, "/")).await;
    assert_eq!(status, 503);
    // The reason only: the condition's message can name pods (`kubectl get function` shows it).
    assert!(
        body.contains("ImagePullBackOff") && !body.contains("image not found"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "well before the 300 s deadline"
    );
}

/// A Function as the operator reports one whose pods keep being OOMKilled.
fn oom_killed_function() -> zeroscale_crds::Function {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Function",
        "metadata": { "name": "f", "namespace": "ns" },
        "spec": { "image": "echo", "timeoutSeconds": 300 },
        "status": { "conditions": [{
            "type": "Ready", "status": "False", "reason": "OOMKilled",
            "message": "pod f-1: container function keeps being OOMKilled: it exceeds its memory limit of 64Mi (CrashLoopBackOff)",
            "lastTransitionTime": "2026-01-01T00:00:00Z"
        }]}
    }))
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn oom_killed_function_releases_waiters_with_503_naming_oom_killed() {
    let activator = activator(|_| {}).await;
    set(&activator, settings(0, 300), vec![]);
    let function = activator.table.get(&key()).unwrap();
    let waiting: Vec<_> = (0..3)
        .map(|_| tokio::spawn(send(get(activator.internal_addr, "/"))))
        .collect();
    until("queued", || function.queued() == 3).await;
    // The same path as the Function watch: the status's Ready reason becomes the settings' failure.
    let from_status = FunctionSettings::from_function(&oom_killed_function());
    assert_eq!(
        from_status.failure.as_ref().map(|f| f.reason.as_str()),
        Some("OOMKilled")
    );
    set(&activator, from_status, vec![]);
    for w in waiting {
        let (status, body, _) = w.await.unwrap();
        assert_eq!(status, 503);
        assert!(body.contains("OOMKilled"), "{body}");
    }
    assert_eq!(function.queued(), 0);
}

#[tokio::test(start_paused = true)]
async fn deleted_function_answers_404_to_its_waiters() {
    let activator = activator(|_| {}).await;
    set(&activator, settings(0, 300), vec![]);
    let function = activator.table.get(&key()).unwrap();
    let waiting = tokio::spawn(send(get(activator.internal_addr, "/")));
    until("queued", || function.queued() == 1).await;
    activator.table.remove(&key());
    let (status, body, _) = waiting.await.unwrap();
    assert_eq!(status, 404, "{body}");
    let (status, _, _) = send(get(activator.internal_addr, "/")).await;
    assert_eq!(status, 404);
}

#[tokio::test(start_paused = true)]
async fn a_starting_pod_is_used_as_soon_as_it_answers_a_probe() {
    let activator = activator(|_| {}).await;
    // The pod is known but reported not ready, and nothing listens yet.
    let probe_target = std::net::TcpListener::bind("127.0.0.4:0").unwrap();
    let addr = probe_target.local_addr().unwrap();
    drop(probe_target);
    set(&activator, settings(0, 30), vec![EndpointInfo::starting(addr)]);
    let function = activator.table.get(&key()).unwrap();
    let waiting = tokio::spawn(send(get(activator.internal_addr, "/")));
    until("queued", || function.queued() == 1).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(function.queued(), 1, "nothing answers yet");
    // The pod starts listening; its EndpointSlice still says not ready.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let served = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let service = hyper::service::service_fn(|_req| async {
            Ok::<_, std::convert::Infallible>(Response::new(full("probed")))
        });
        // The first connection is the TCP probe itself; serve whatever connects next too.
        drop(stream);
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let _ = stream.set_nodelay(true); // paused time: see support::upstream
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    let (status, body, _) = waiting.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "probed"));
    assert_eq!(function.routable(), vec![addr]);
    served.abort();
}
