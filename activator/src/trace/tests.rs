use http::{HeaderValue, Request};

use super::*;

const INCOMING: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn request(traceparent: Option<&'static str>) -> Request<()> {
    let mut builder = Request::get("/").header("host", "f.ns");
    if let Some(tp) = traceparent {
        builder = builder.header("traceparent", tp);
    }
    builder.body(()).expect("request")
}

fn traceparent(request: &Request<()>) -> String {
    request.headers()[&TRACEPARENT]
        .to_str()
        .expect("ascii")
        .to_string()
}

#[test]
fn a_callers_trace_is_continued_with_the_activators_span() {
    let mut r = request(Some(INCOMING));
    let trace = start(
        &mut r,
        "127.0.0.1:1".parse().expect("addr"),
        &HeaderValue::from_static("id"),
    );
    assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(trace.span_id().len(), 16);
    assert_ne!(
        trace.span_id(),
        "00f067aa0ba902b7",
        "the activator's hop has a span of its own"
    );
    assert_eq!(
        traceparent(&r),
        format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", trace.span_id()),
        "the pod's parent is the activator's span; the sampled flag is kept"
    );
}

#[test]
fn a_request_without_a_valid_trace_starts_an_unsampled_one() {
    for given in [
        None,
        Some("garbage"),
        Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
    ] {
        let mut r = request(given);
        let trace = start(
            &mut r,
            "127.0.0.1:1".parse().expect("addr"),
            &HeaderValue::from_static("id"),
        );
        assert_eq!(trace.trace_id().len(), 32);
        assert_ne!(trace.trace_id(), "00000000000000000000000000000000");
        assert!(
            Hex::<32>::parse(trace.trace_id()).is_some(),
            "{}",
            trace.trace_id()
        );
        assert_eq!(
            traceparent(&r),
            format!("00-{}-{}-00", trace.trace_id(), trace.span_id())
        );
    }
}

#[test]
fn the_hop_keeps_the_activators_span_and_fills_in_what_is_missing() {
    let mut r = request(Some(INCOMING));
    r.headers_mut()
        .insert(&headers::X_REQUEST_ID, HeaderValue::from_static("abc"));
    let trace = start(
        &mut r,
        "127.0.0.1:1".parse().expect("addr"),
        &HeaderValue::from_static("abc"),
    );
    let before = traceparent(&r);
    hop(&mut r);
    assert_eq!(
        traceparent(&r),
        before,
        "the pod sees the span the log lines name"
    );
    assert!(before.contains(trace.span_id()));
    // A request that did not come in through `start` (no request id yet) gets both ids.
    let mut r = request(None);
    hop(&mut r);
    assert_eq!(r.headers()[&headers::X_REQUEST_ID].len(), 32);
    assert!(headers::parse_traceparent(&traceparent(&r)).is_some());
}

#[test]
fn hex_ids_round_trip() {
    let id = Hex::<16>::of_bytes(&[0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
    assert_eq!(id.as_str(), "00f067aa0ba902b7");
    assert_eq!(Hex::<16>::parse("00f067aa0ba902b7"), Some(id));
    assert_eq!(
        Hex::<16>::parse("00F067AA0BA902B7"),
        None,
        "upper case is not W3C"
    );
    assert_eq!(Hex::<16>::parse("00f067aa0ba902b"), None);
    let mut rng = rand::rng();
    let a: Hex<32> = crate::trace_ids::new_hex(&mut rng);
    let b: Hex<32> = crate::trace_ids::new_hex(&mut rng);
    assert_ne!(a, b);
}
