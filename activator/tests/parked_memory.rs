//! What a parked request costs (issue #19, SPEC P6: 10,000 parked HTTP/1.1 requests in at most
//! 10 MiB, so at most 1 KiB each): requests park against a function at zero, and the bytes the
//! allocator hands out while they wait, divided by their number, must stay under the bound.
//!
//! Measured with jemalloc's own counters, the allocator the activator runs with,
//! in a process of its own (one test per file: other tests' allocations would count).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

mod support;

use std::{
    io::Write,
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use support::*;
use zeroscale_activator::settings::FunctionSettings;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// P6's bound on what one parked HTTP/1.1 request may hold.
const MAX_BYTES_PER_PARKED_REQUEST: usize = 1024;

/// Parked at once; each is two sockets of this process (the test's soft limit is at least 1,024).
const PARKED: usize = 400;

/// Bytes this thread has been handed by the allocator and not given back (jemalloc's per-thread
/// counters, exact to the size class). The activator runs on the test's one runtime thread, so every
/// allocation it makes for a parked request counts here, and nothing the client threads do.
fn held() -> i64 {
    let allocated = tikv_jemalloc_ctl::thread::allocatedp::read().unwrap().get();
    let deallocated = tikv_jemalloc_ctl::thread::deallocatedp::read().unwrap().get();
    i64::try_from(allocated).unwrap() - i64::try_from(deallocated).unwrap()
}

/// Opens `n` blocking connections (no async runtime state on the client side, so all the memory
/// counted is the activator's) and sends each a request head as a load generator would.
fn park(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).unwrap();
            let head =
                format!("GET / HTTP/1.1\r\nhost: {HOST}\r\nuser-agent: oha/1.16.0\r\naccept: */*\r\n\r\n");
            stream.write_all(head.as_bytes()).unwrap();
            stream
        })
        .collect()
}

/// Parks `n` requests, waits until the function queued them all, and returns the clients.
async fn parked(activator: &zeroscale_activator::Activator, n: usize) -> Vec<TcpStream> {
    let addr = activator.internal_addr;
    let clients = tokio::task::spawn_blocking(move || park(addr, n));
    let function = activator.table.get(&key()).unwrap();
    until("requests queued", || function.queued() == n).await;
    clients.await.unwrap()
}

#[tokio::test]
async fn a_parked_http1_request_holds_at_most_one_kib() {
    let activator = activator(|_| {}).await;
    let settings = FunctionSettings {
        timeout: Duration::from_secs(600),
        response_start_timeout: Duration::from_secs(600),
        ..FunctionSettings::default()
    };
    set(&activator, settings, vec![]);
    let function = activator.table.get(&key()).unwrap();

    // Once, so that what lives as long as the process (thread-local buffers, the queue's own
    // storage, the runtime's slabs) is in place before the measurement.
    let warm = parked(&activator, PARKED).await;
    drop(warm);
    until("queue empty", || function.queued() == 0).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let before = held();
    let clients = parked(&activator, PARKED).await;
    let after = held();
    let per_request = usize::try_from(after - before).unwrap_or(0) / PARKED;
    eprintln!("allocated per parked request: {per_request} bytes ({before} -> {after})");
    assert!(
        per_request <= MAX_BYTES_PER_PARKED_REQUEST,
        "a parked request holds {per_request} bytes"
    );

    // The clients going away frees their slots (and the memory with them).
    drop(clients);
    until("queue empty", || function.queued() == 0).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let freed = held();
    assert!(
        freed - before <= i64::try_from(PARKED * 64).unwrap(),
        "memory still held after the clients left: {before} -> {freed}"
    );
}
