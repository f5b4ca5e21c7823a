//! SIGTERM behaviour: not ready at once, no new connections, in-flight and queued requests finish.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

mod support;

use std::time::Duration;

use http::Response;
use support::*;
use zeroscale_activator::settings::{EndpointInfo, FunctionSettings};

#[tokio::test(start_paused = true)]
async fn drain_finishes_in_flight_and_queued_requests() {
    let activator = activator(|c| c.drain_timeout = Duration::from_secs(10)).await;
    let slow = upstream([127, 0, 0, 2], |_req| async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        Response::new(full("done"))
    })
    .await;
    let settings = FunctionSettings {
        concurrency: 1,
        ..FunctionSettings::default()
    };
    set(&activator, settings.clone(), vec![EndpointInfo::ready(slow)]);
    let function = activator.table.get(&key()).unwrap();
    let in_flight = tokio::spawn(send(get(activator.internal_addr, "/")));
    until("in flight", || function.present() == 1).await;
    let queued = tokio::spawn(send(get(activator.internal_addr, "/")));
    until("queued", || function.queued() == 1).await;

    let admin = activator.admin_addr;
    let addr = activator.internal_addr;
    activator.shutdown();
    assert!(!activator.readiness.get());
    let (status, _, _) = send(
        http::Request::get(format!("http://{admin}/ready"))
            .body(full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(status, 503);

    let (status, body, _) = in_flight.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "done"));
    let (status, body, _) = queued.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "done"));
    tokio::time::timeout(Duration::from_secs(10), activator.wait())
        .await
        .expect("drained in time");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no new connections after the drain"
    );
}
