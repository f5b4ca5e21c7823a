use super::*;

fn map(fields: &[(&str, &[u8])]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in fields {
        h.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    h
}

fn lines(headers: &HeaderMap, forwarding: Option<&Forwarding>) -> String {
    let mut out = Vec::new();
    let mut writer = FieldWriter::new(forwarding);
    for (name, value) in headers {
        writer.field(name, value, &mut out);
    }
    writer.finish(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn forwarding_headers_are_appended() {
    let mut h = map(&[("x-forwarded-for", b"10.0.0.1")]);
    Forwarding::new(
        "127.0.0.2".parse().unwrap(),
        HeaderValue::from_static("f.ns:8080"),
    )
    .add_to(&mut h);
    assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.2");
    assert_eq!(
        h[header::FORWARDED],
        "for=127.0.0.2;host=\"f.ns:8080\";proto=http"
    );
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "f.ns:8080");
    let mut h = HeaderMap::new();
    Forwarding::new("::1".parse().unwrap(), HeaderValue::from_static("f.ns")).add_to(&mut h);
    assert!(
        h[header::FORWARDED]
            .to_str()
            .unwrap()
            .starts_with("for=\"[::1]\"")
    );
}

#[test]
fn addresses_are_written_as_display_writes_them() {
    for ip in [
        "0.0.0.0",
        "255.255.255.255",
        "10.0.100.7",
        "192.168.9.10",
        "1.20.3.99",
        "::1",
        "fe80::1:2:3:4",
        "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
    ] {
        let parsed: IpAddr = ip.parse().unwrap();
        let mut text = IpText::default();
        text.write(parsed);
        assert_eq!(text.as_bytes(), parsed.to_string().as_bytes(), "{ip}");
    }
}

#[test]
fn forwarding_headers_without_previous_values_or_a_valid_host() {
    let mut h = map(&[("x-forwarded-for", b"")]);
    let host = HeaderValue::from_bytes(b"caf\xc3\xa9.ns").unwrap();
    Forwarding::new("10.1.2.3".parse().unwrap(), host.clone()).add_to(&mut h);
    assert_eq!(h["x-forwarded-for"], "10.1.2.3");
    assert_eq!(h[header::FORWARDED], "for=10.1.2.3;host=\"\";proto=http");
    assert_eq!(h["x-forwarded-host"], host);
    let mut h = map(&[("forwarded", b"for=1.1.1.1")]);
    Forwarding::new("::1".parse().unwrap(), HeaderValue::from_static("f.ns")).add_to(&mut h);
    assert_eq!(
        h[header::FORWARDED],
        "for=1.1.1.1, for=\"[::1]\";host=\"f.ns\";proto=http"
    );
    assert_eq!(h["x-forwarded-for"], "::1");
}

/// The head written with the fields added as it is encoded is the head written from the map they
/// were added to, byte for byte, whatever forwarding fields the client sent.
#[test]
fn written_at_the_encoder_they_are_what_the_map_would_hold() {
    let cases: [&[(&str, &[u8])]; 7] = [
        &[("host", b"f.ns"), ("accept", b"*/*")],
        &[("x-forwarded-for", b"10.0.0.1"), ("host", b"f.ns")],
        &[
            ("x-forwarded-for", b"10.0.0.1"),
            ("x-a", b"1"),
            ("x-forwarded-for", b"10.0.0.2"),
            ("forwarded", b"for=9.9.9.9"),
            ("forwarded", b"for=8.8.8.8"),
        ],
        &[
            ("x-forwarded-proto", b"https"),
            ("x-forwarded-host", b"outside.example"),
        ],
        &[("x-forwarded-for", b""), ("forwarded", b"")],
        &[("x-forwarded-for", b"caf\xc3\xa9"), ("user-agent", b"t")],
        &[],
    ];
    let hosts = [
        HeaderValue::from_static("f.ns:8080"),
        HeaderValue::from_bytes(b"caf\xc3\xa9.ns").unwrap(),
    ];
    for fields in cases {
        for client in ["127.0.0.2", "fe80::1"] {
            for host in &hosts {
                let forwarding = Forwarding::new(client.parse().unwrap(), host.clone());
                let mut added = map(fields);
                forwarding.add_to(&mut added);
                let expected = lines(&added, None);
                let written = lines(&map(fields), Some(&forwarding));
                assert_eq!(written, expected, "{fields:?} from {client} for {host:?}");
            }
        }
    }
}
