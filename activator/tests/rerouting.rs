//! A request waiting in an entry that another entry of the same Function replaces (its first
//! revision taking over from the Function's own entry) is routed again and served by the new entry,
//! on the first request of a connection (admitted from its head) as on a later one, and when it waits
//! to be sent again after its pod refused it.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

mod support;

use std::time::Duration;

use http::Request;
use http_body_util::BodyExt;
use support::*;
use zeroscale_activator::{
    Activator,
    settings::{EndpointInfo, FunctionSettings},
    split::{Routes, Split},
};
use zeroscale_common::signals::FunctionKey;

const REVISION: &str = "hello-aaaaaaaaaa";

fn at_zero() -> FunctionSettings {
    FunctionSettings {
        timeout: Duration::from_secs(300),
        response_start_timeout: Duration::from_secs(300),
        ..FunctionSettings::default()
    }
}

/// What the Function watch does when the operator names `hello`'s first revision: the revision's
/// entry (with its ready pod) and the routes go in, then the Function's own entry gives way.
fn first_revision(activator: &Activator, pod: std::net::SocketAddr) {
    let revision = FunctionKey::new("default", REVISION);
    activator
        .table
        .apply(&revision, at_zero(), vec![EndpointInfo::ready(pod)]);
    let routes = Routes {
        split: Split::new([(format!("{REVISION}.default").as_str(), 100)]),
        tags: Vec::new(),
    };
    activator.table.set_routes(&key(), Some(routes));
    activator.table.supersede(&key());
}

#[tokio::test(start_paused = true)]
async fn a_first_request_parked_in_the_functions_own_entry_is_served_by_its_first_revision() {
    let activator = activator(|_| {}).await;
    let pod = ok_upstream([127, 0, 0, 1]).await;
    set(&activator, at_zero(), vec![]);
    let own = activator.table.get(&key()).unwrap();
    let waiting = tokio::spawn(send(get(activator.internal_addr, "/")));
    until("queued", || own.queued() == 1).await;

    first_revision(&activator, pod);
    let (status, body, _) = waiting.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert_eq!(own.queued(), 0);
    let revision = activator
        .table
        .lookup_exact(&format!("{REVISION}.default"))
        .unwrap();
    assert_eq!(revision.present(), 0, "the revision served it and let it go");
}

#[tokio::test(start_paused = true)]
async fn a_later_request_on_a_kept_connection_is_routed_again_too() {
    let activator = activator(|_| {}).await;
    let pod = ok_upstream([127, 0, 0, 1]).await;
    let warm = FunctionKey::new("default", "warm");
    activator
        .table
        .apply(&warm, FunctionSettings::default(), vec![EndpointInfo::ready(pod)]);
    set(&activator, at_zero(), vec![]);
    let own = activator.table.get(&key()).unwrap();
    let mut connection = connection_from([127, 0, 0, 3], activator.internal_addr).await;
    // The connection's first request goes to another function, so the next one is read by hyper.
    let first = Request::get("/")
        .header("host", "warm.default.svc.cluster.local")
        .body(full(""))
        .unwrap();
    assert_eq!(connection.send_request(first).await.unwrap().status(), 200);
    let second = Request::get("/").header("host", HOST).body(full("")).unwrap();
    let waiting = tokio::spawn(async move {
        let response = connection.send_request(second).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    });
    until("queued", || own.queued() == 1).await;

    first_revision(&activator, pod);
    assert_eq!(waiting.await.unwrap(), (200, "ok".to_string()));
}

#[tokio::test(start_paused = true)]
async fn a_request_waiting_to_be_sent_again_is_routed_again_too() {
    let activator = activator(|_| {}).await;
    let pod = ok_upstream([127, 0, 0, 1]).await;
    // The Function's own entry has one pod, which refuses connections: the request is admitted to
    // it, is not sent, and waits at the front of the queue to be sent again.
    let refusing = {
        let listener = tokio::net::TcpListener::bind("127.0.0.4:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    set(&activator, at_zero(), vec![EndpointInfo::ready(refusing)]);
    let own = activator.table.get(&key()).unwrap();
    let waiting = tokio::spawn(send(get(activator.internal_addr, "/")));
    until("queued again after the refused connection", || own.queued() == 1).await;

    first_revision(&activator, pod);
    let (status, body, _) = waiting.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "ok"), "{body}");
}
