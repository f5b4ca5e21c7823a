//! Hostile input, by machine: host routing over arbitrary `Host` values, and arbitrary request heads
//! sent to a running activator. Nothing panics; a host that cannot name a function is a 400 or 404;
//! a malformed head gets a 4xx or a closed connection, never a 5xx, and never reaches the pod.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

mod support;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use http::Response;
use proptest::prelude::*;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroscale_activator::{
    Activator,
    error::ProxyError,
    host::Domains,
    settings::{EndpointInfo, FunctionSettings},
};

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._-]{0,40}",
        "[a-z]{1,8}\\.[a-z]{1,8}(\\.svc(\\.cluster\\.local)?)?(:[0-9]{0,6})?\\.?",
        "[ -~]{0,40}",
        "\\[[0-9a-f:]{0,20}\\](:[0-9]{1,5})?",
        any::<Vec<u8>>().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn routing_keys_are_name_dot_namespace_or_a_4xx(host in host()) {
        match Domains::default().route_key(&host) {
            Ok(Some(key)) => {
                let (name, namespace) = key.split_once('.').unwrap();
                prop_assert!(!name.is_empty() && !namespace.is_empty() && !namespace.contains('.'));
                prop_assert!(!key.bytes().any(|b| b.is_ascii_uppercase()));
                prop_assert!(host.to_ascii_lowercase().starts_with(key.as_ref()));
            }
            Ok(None) => {}
            Err(e) => {
                let status = ProxyError::Host(e).status();
                prop_assert!(status.is_client_error(), "{status}");
            }
        }
    }
}

/// Raw bytes in, everything the activator wrote back out (until it closed, or 2 s).
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = connect(addr).await;
    let _ = stream.write_all(bytes).await;
    let _ = stream.shutdown().await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

struct Live {
    runtime: tokio::runtime::Runtime,
    activator: Activator,
    pod_requests: Arc<AtomicUsize>,
}

fn live() -> Live {
    // Paused time: the header read timeout and the 2 s bound in `exchange` run on the virtual clock.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let pod_requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&pod_requests);
    let activator = runtime.block_on(async {
        let activator = activator(|c| c.server_limits.header_read_timeout = Duration::from_millis(300)).await;
        let pod = upstream([127, 0, 0, 2], move |_req| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Response::new(full("ok")) }
        })
        .await;
        set(
            &activator,
            FunctionSettings::default(),
            vec![EndpointInfo::ready(pod)],
        );
        activator
    });
    Live {
        runtime,
        activator,
        pod_requests,
    }
}

/// A head that is malformed in one of several ways, always ending in an empty line.
fn malformed_head() -> impl Strategy<Value = Vec<u8>> {
    let junk = prop::collection::vec(any::<u8>(), 1..64);
    prop_oneof![
        // Garbage request line.
        junk.clone().prop_map(|mut b| {
            b.retain(|c| *c != b'\n');
            b.insert(0, b'\x01');
            b.extend_from_slice(b"\r\nHost: hello.default\r\n\r\n");
            b
        }),
        // Control bytes in a header name.
        junk.clone().prop_map(|b| {
            let mut out = b"GET / HTTP/1.1\r\nHost: hello.default\r\nX\x00".to_vec();
            out.extend(b.iter().filter(|c| **c != b'\n'));
            out.extend_from_slice(b": 1\r\n\r\n");
            out
        }),
        // A host that names no function in the accepted forms.
        "[ -~&&[^\r\n]]{1,30}".prop_map(|h| format!("GET / HTTP/1.1\r\nHost: {h}\r\n\r\n").into_bytes()),
        // Conflicting lengths.
        (0u32..100, 100u32..200).prop_map(|(a, b)| {
            format!(
                "POST / HTTP/1.1\r\nHost: hello.default\r\nContent-Length: {a}\r\nContent-Length: {b}\r\n\r\n"
            )
            .into_bytes()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn malformed_heads_get_a_4xx_or_a_close_and_never_reach_the_pod(head in malformed_head()) {
        thread_local! {
            static LIVE: Live = live();
        }
        LIVE.with(|live| {
            let before = live.pod_requests.load(Ordering::SeqCst);
            let answer = live.runtime.block_on(exchange(live.activator.internal_addr, &head));
            let status = answer.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok());
            if answer.starts_with("HTTP/1.1 ") {
                let status = status.unwrap();
                // A host that happens to be well formed but unknown is a 404; all else 400/4xx.
                prop_assert!((400..500).contains(&status), "{head:?} -> {answer:?}");
            } else {
                prop_assert!(answer.is_empty(), "{head:?} -> {answer:?}");
            }
            prop_assert_eq!(live.pod_requests.load(Ordering::SeqCst), before, "{:?}", head);
            Ok(())
        })?;
    }
}
