use super::*;

fn parse_all(bytes: &[u8]) -> (Parsed, BytesMut) {
    let mut buf = BytesMut::from(bytes);
    let parsed = parse(&mut buf, 100, 64 * 1024, &mut FieldSpans::new());
    (parsed, buf)
}

fn read_request(bytes: &[u8]) -> (ClientRequest, bool, BytesMut) {
    match parse_all(bytes) {
        (Parsed::Request { request, close }, rest) => (request, close, rest),
        (other, _) => panic!("not a request: {other:?}"),
    }
}

#[test]
fn a_get_is_read_with_its_fields_and_the_next_request_stays_in_the_buffer() {
    let (mut request, close, rest) = read_request(
        b"GET /a?b=1 HTTP/1.1\r\nHost: f.ns\r\nX-Two: 1\r\nx-two: 2\r\n\r\nGET /next HTTP/1.1\r\n",
    );
    assert_eq!(request.method(), Method::GET);
    assert_eq!(request.uri(), "/a?b=1");
    assert_eq!(request.version(), Version::HTTP_11);
    assert_eq!(request.headers()["host"], "f.ns");
    let twos: Vec<_> = request.headers().get_all("x-two").iter().collect();
    assert_eq!(twos, ["1", "2"], "repeated fields are kept in order");
    assert!(!close);
    assert_eq!(request.body_mut().take_read(), Some(Bytes::new()));
    assert_eq!(&rest[..], b"GET /next HTTP/1.1\r\n");
}

#[test]
fn a_body_that_arrived_with_its_head_is_read_whole() {
    let (mut request, _, rest) =
        read_request(b"POST / HTTP/1.1\r\nHost: f\r\nContent-Length: 5\r\nConnection: Close\r\n\r\nhelloGET");
    assert_eq!(request.body_mut().take_read(), Some(Bytes::from_static(b"hello")));
    assert_eq!(&rest[..], b"GET");
    let (_, close, _) = read_request(b"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n");
    assert!(close, "`Connection: close` is honoured");
}

#[test]
fn a_partial_head_waits_for_more() {
    let (parsed, rest) = parse_all(b"GET / HTTP/1.1\r\nHost: f");
    assert!(matches!(parsed, Parsed::Partial));
    assert_eq!(&rest[..], b"GET / HTTP/1.1\r\nHost: f");
}

#[test]
fn a_small_body_still_on_its_way_is_waited_for() {
    let head = b"POST / HTTP/1.1\r\nHost: f\r\nContent-Length: 10\r\n\r\n";
    let sent = [&head[..], b"only5"].concat();
    let (parsed, rest) = parse_all(&sent);
    assert!(matches!(parsed, Parsed::Body), "{parsed:?}");
    assert_eq!(&rest[..], &sent[..], "nothing is taken before the body is whole");
    let (mut request, _, rest) = read_request(&[&sent[..], b"12345GET"].concat());
    assert_eq!(
        request.body_mut().take_read(),
        Some(Bytes::from_static(b"only512345"))
    );
    assert_eq!(&rest[..], b"GET");
}

#[test]
fn what_hyper_serves_is_left_in_the_buffer_as_it_came() {
    for head in [
        &b"GET / HTTP/1.0\r\nHost: f\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 65537\r\n\r\nlarger than the pipeline keeps",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"\x16\x03\x01garbage\r\n\r\n",
        b"GET http://[::1 HTTP/1.1\r\n\r\n",
        b"CONNECT f.ns:443 HTTP/1.1\r\nHost: f.ns:443\r\n\r\n",
    ] {
        let (parsed, rest) = parse_all(head);
        assert!(
            matches!(parsed, Parsed::Unsuited),
            "{:?}",
            String::from_utf8_lossy(head)
        );
        assert_eq!(&rest[..], head, "{:?}", String::from_utf8_lossy(head));
    }
}

#[test]
fn heads_over_the_servers_limits_go_to_hyper_which_answers_them() {
    let many: String = (0..5).map(|i| format!("x-{i}: 1\r\n")).collect();
    let head = format!("GET / HTTP/1.1\r\n{many}\r\n");
    let mut buf = BytesMut::from(head.as_bytes());
    let parsed = parse(&mut buf, 4, 64 * 1024, &mut FieldSpans::new());
    assert!(matches!(parsed, Parsed::Unsuited), "too many fields");
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a-long-host-name\r\n"[..]);
    let parsed = parse(&mut buf, 100, 24, &mut FieldSpans::new());
    assert!(
        matches!(parsed, Parsed::Unsuited),
        "a head growing past the limit"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

    /// Any bytes: no panic; a request takes exactly its head and body out of the buffer, and what is
    /// left to hyper (or not complete yet) is left as it came.
    #[test]
    fn the_buffer_is_taken_exactly_or_left_as_it_came(
        head in "(GET|POST|HEAD|PUT|X) (/[a-z]{0,4}|\\*|http://h/) HTTP/1\\.[01]\r\n((Host|Content-Length|Connection|Expect|X-A): [ -~]{0,6}\r\n){0,4}(\r\n)?",
        tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
    ) {
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&tail);
        let (parsed, rest) = parse_all(&bytes);
        match parsed {
            Parsed::Request { mut request, .. } => {
                let body = request.body_mut().take_read().unwrap_or_default();
                let taken = bytes.len() - rest.len();
                let head_end = taken - body.len();
                proptest::prop_assert_eq!(&bytes[head_end..taken], &body[..], "the body follows the head");
                proptest::prop_assert_eq!(&bytes[taken..], &rest[..]);
                let head = &bytes[..head_end];
                proptest::prop_assert!(head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n"));
            }
            Parsed::Partial | Parsed::Body | Parsed::Unsuited => {
                proptest::prop_assert_eq!(&rest[..], &bytes[..]);
            }
        }
    }
}
