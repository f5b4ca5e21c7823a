//! A split function behind two peered activators: the revision a request is picked for where it
//! arrives is the one that serves it at the owner (the pick travels with the forward in
//! `zeroscale-peer-revision`, honoured only from a peer), and no client can choose a revision.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

mod support;

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use http::{HeaderMap, Request, Response};
use support::*;
use zeroscale_activator::{
    Activator,
    peers::{Outcome, PeerSet, PeerSource, PeersConfig},
    settings::{EndpointInfo, FunctionSettings},
    split::{Routes, Split},
};
use zeroscale_common::signals::FunctionKey;

async fn peered() -> Activator {
    activator(|c| {
        c.peers = Some(PeersConfig {
            source: PeerSource::Static(vec![]),
            pod_ip: [127, 0, 0, 1].into(),
        });
    })
    .await
}

/// A pod answering with `name`, counting its requests and keeping the last one's headers.
async fn pod(ip: [u8; 4], name: &'static str) -> (SocketAddr, Arc<AtomicUsize>, Arc<Mutex<HeaderMap>>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let headers = Arc::new(Mutex::new(HeaderMap::new()));
    let (h, seen) = (Arc::clone(&hits), Arc::clone(&headers));
    let addr = upstream(ip, move |req: Request<hyper::body::Incoming>| {
        h.fetch_add(1, Ordering::SeqCst);
        *seen.lock().unwrap() = req.headers().clone();
        async move { Response::new(full(name)) }
    })
    .await;
    (addr, hits, headers)
}

/// Two revisions of `default/hello` whose owners differ in `set`: (owned by `a`, owned by `b`).
fn revisions_owned_apart(set: &PeerSet, a: SocketAddr) -> (String, String) {
    let names: Vec<String> = (0..64u64).map(|i| format!("hello-{:010x}", i * 7919)).collect();
    let owner = |n: &String| set.owner(&format!("default/{n}"));
    let of_a = names.iter().find(|n| owner(n) == Some(a)).unwrap().clone();
    let of_b = names.iter().find(|n| owner(n) != Some(a)).unwrap().clone();
    (of_a, of_b)
}

/// Both activators know both revisions (each with its pod) and split `hello` 50/50 between them.
fn feed(x: &Activator, revisions: [(&str, SocketAddr); 2]) {
    let settings = FunctionSettings::default();
    for (name, pod) in revisions {
        x.table.apply(
            &FunctionKey::new("default", name),
            settings.clone(),
            vec![EndpointInfo::ready(pod)],
        );
    }
    let keys: Vec<String> = revisions.iter().map(|(n, _)| format!("{n}.default")).collect();
    let routes = Routes {
        split: Split::new(keys.iter().map(|k| (k.as_str(), 50))),
        tags: Vec::new(),
    };
    x.table.set_routes(&key(), Some(routes));
}

#[tokio::test(start_paused = true)]
async fn a_forwarded_request_is_served_by_the_revision_picked_where_it_arrived() {
    let (a, b) = (peered().await, peered().await);
    let set = PeerSet::new([a.internal_addr, b.internal_addr], []);
    let (of_a, of_b) = revisions_owned_apart(&set, a.internal_addr);
    let (pod_a, hits_a, seen_a) = pod([127, 0, 0, 2], "a").await;
    let (pod_b, hits_b, _) = pod([127, 0, 0, 4], "b").await;
    for x in [&a, &b] {
        x.peers.as_ref().unwrap().set(set.clone());
        feed(x, [(&of_a, pod_a), (&of_b, pod_b)]);
    }
    // Sent to `b`: a pick of `of_a` is forwarded to `a`, which must serve it with `of_a` (picking
    // again there would send about half of them to `of_b`); a pick of `of_b` stays at `b`.
    let n = 200;
    for _ in 0..n {
        let (status, body, _) = send(get(b.internal_addr, "/")).await;
        assert_eq!(status, 200);
        assert!(body == "a" || body == "b", "{body}");
    }
    let forwarded = forwards(&b);
    assert_eq!(
        hits_a.load(Ordering::SeqCst) as u64,
        forwarded,
        "every forward, and only those, reached of_a"
    );
    assert_eq!(hits_a.load(Ordering::SeqCst) + hits_b.load(Ordering::SeqCst), n);
    assert!(
        (70..130).contains(&forwarded),
        "about half were picked for of_a: {forwarded}"
    );
    assert!(
        !seen_a.lock().unwrap().contains_key("zeroscale-peer-revision"),
        "pods never see the pick"
    );
}

#[tokio::test(start_paused = true)]
async fn only_a_peer_can_name_the_revision() {
    let (a, b) = (peered().await, peered().await);
    let set = PeerSet::new([a.internal_addr, b.internal_addr], []);
    let (of_a, of_b) = revisions_owned_apart(&set, a.internal_addr);
    let (pod_a, hits_a, seen_a) = pod([127, 0, 0, 2], "a").await;
    let (pod_b, hits_b, seen_b) = pod([127, 0, 0, 4], "b").await;
    for x in [&a, &b] {
        x.peers.as_ref().unwrap().set(set.clone());
        feed(x, [(&of_a, pod_a), (&of_b, pod_b)]);
    }
    // From a peer's address with the hop marker: the named revision serves, every time.
    for _ in 0..20 {
        let mut request = get(a.internal_addr, "/");
        let h = request.headers_mut();
        h.insert("zeroscale-peer-hop", "peer".parse().unwrap());
        h.insert(
            "zeroscale-peer-revision",
            format!("{of_b}.default").parse().unwrap(),
        );
        let (status, body, _) = send(request).await;
        assert_eq!((status, body.as_str()), (200, "b"));
    }
    assert_eq!(hits_b.load(Ordering::SeqCst), 20);
    assert!(!seen_b.lock().unwrap().contains_key("zeroscale-peer-revision"));
    // From a client (127.0.0.3 is no peer): the header is dropped, requests are picked by weight.
    let mut sender = connection_from([127, 0, 0, 3], a.internal_addr).await;
    for _ in 0..100 {
        let request = Request::get("/")
            .header("host", HOST)
            .header("zeroscale-peer-revision", format!("{of_b}.default"))
            .body(full(""))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
    }
    assert!(hits_a.load(Ordering::SeqCst) > 0, "a client's pin is ignored");
    assert!(!seen_a.lock().unwrap().contains_key("zeroscale-peer-revision"));
    assert!(!seen_b.lock().unwrap().contains_key("zeroscale-peer-revision"));
}

fn forwards(activator: &Activator) -> u64 {
    activator.peers.as_ref().unwrap().forwards(Outcome::Forwarded)
}
