use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};
use tokio::net::TcpListener;
use zeroscale_common::revision_stats::{Counts, RevisionCounts};

use super::*;

fn slice(port: i32, endpoints: &[(&str, Option<bool>)]) -> EndpointSlice {
    EndpointSlice {
        address_type: "IPv4".into(),
        ports: Some(vec![
            EndpointPort {
                name: Some("http".into()),
                port: Some(8080),
                ..EndpointPort::default()
            },
            EndpointPort {
                name: Some("admin".into()),
                port: Some(port),
                ..EndpointPort::default()
            },
        ]),
        endpoints: endpoints
            .iter()
            .map(|(address, ready)| Endpoint {
                addresses: vec![address.to_string()],
                conditions: Some(EndpointConditions {
                    ready: *ready,
                    ..EndpointConditions::default()
                }),
                ..Endpoint::default()
            })
            .collect(),
        ..EndpointSlice::default()
    }
}

#[test]
fn the_service_host_names_service_and_namespace() {
    assert_eq!(
        service_of("zeroscale-activator.zeroscale-system.svc.cluster.local").unwrap(),
        ("zeroscale-activator", "zeroscale-system")
    );
    assert!(matches!(service_of("activator"), Err(ScrapeError::Service(_))));
}

#[test]
fn every_ready_activator_is_read_on_its_admin_port() {
    let slices = [
        slice(
            9090,
            &[
                ("10.0.0.1", Some(true)),
                ("10.0.0.2", None),
                ("10.0.0.3", Some(false)),
            ],
        ),
        slice(9090, &[("fd00::4", Some(true)), ("10.0.0.1", Some(true))]),
    ];
    assert_eq!(
        stats_urls(&slices),
        [
            "http://10.0.0.1:9090/revisions/stats",
            "http://10.0.0.2:9090/revisions/stats",
            "http://[fd00::4]:9090/revisions/stats",
        ]
    );
}

#[tokio::test]
async fn a_report_is_read_over_http() {
    let report = StatsReport {
        activator: "a0".into(),
        instance: "i0".into(),
        latency_bounds_ms: vec![1],
        revisions: vec![RevisionCounts {
            namespace: "default".into(),
            function: "echo".into(),
            revision: "echo-bbbbbbbbbb".into(),
            counts: Counts {
                requests: 3,
                errors: 1,
                latency_ms: vec![3, 0],
            },
        }],
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = report.clone();
    let app = axum::Router::new().route(
        STATS_PATH,
        axum::routing::get(move || async move { axum::Json(served) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let scraper = Scraper::default();
    let read = scraper.read(&format!("http://{addr}{STATS_PATH}")).await.unwrap();
    assert_eq!(read, report);
    let missing = scraper.read(&format!("http://{addr}/nothing")).await.unwrap_err();
    assert!(missing.contains("404"), "{missing}");
}
