use super::*;

fn query(name: &str, qtype: u16) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    q
}

fn names() -> Names {
    Names::from([(
        "web.a.svc.cluster.local".to_string(),
        Ipv4Addr::new(10, 96, 0, 10),
    )])
}

fn rcode(a: &[u8]) -> u8 {
    a[3] & 0xf
}

fn ancount(a: &[u8]) -> u16 {
    u16::from_be_bytes([a[6], a[7]])
}

#[test]
fn known_names_get_their_address() {
    let q = query("Web.A.svc.cluster.local.", TYPE_A);
    let a = answer(&q, &names()).unwrap();
    assert_eq!(&a[..2], &[0x12, 0x34], "same id");
    assert_eq!(a[2] & 0x80, 0x80, "a response");
    assert_eq!(a[2] & 0x01, 0x01, "recursion desired is echoed");
    assert_eq!((rcode(&a), ancount(&a)), (0, 1));
    assert_eq!(&a[12..q.len()], &q[12..], "the question is repeated");
    assert_eq!(&a[a.len() - 4..], &[10, 96, 0, 10]);
    assert_eq!(&a[a.len() - 10..a.len() - 6], &TTL.to_be_bytes());
}

#[test]
fn other_types_and_names() {
    let aaaa = answer(&query("web.a.svc.cluster.local", 28), &names()).unwrap();
    assert_eq!(
        (rcode(&aaaa), ancount(&aaaa)),
        (0, 0),
        "the name exists, without IPv6"
    );
    let missing = answer(&query("web.b.svc.cluster.local", TYPE_A), &names()).unwrap();
    assert_eq!((rcode(&missing), ancount(&missing)), (3, 0), "NXDOMAIN");
    let outside = answer(&query("example.org", TYPE_A), &names()).unwrap();
    assert_eq!(rcode(&outside), 3);
}

#[test]
fn malformed_queries() {
    assert_eq!(answer(&[0; 5], &names()), None, "no id to answer");
    let mut response = query("web.a.svc.cluster.local", TYPE_A);
    response[2] |= 0x80;
    assert_eq!(answer(&response, &names()), None, "responses are not answered");
    let mut truncated = query("web.a.svc.cluster.local", TYPE_A);
    truncated.truncate(20);
    assert_eq!(rcode(&answer(&truncated, &names()).unwrap()), RCODE_FORMERR as u8);
    let mut pointer = query("web", TYPE_A);
    pointer[12] = 0xc0;
    assert_eq!(rcode(&answer(&pointer, &names()).unwrap()), RCODE_FORMERR as u8);
    let mut notify = query("web", TYPE_A);
    notify[2] |= 4 << 3;
    assert_eq!(rcode(&answer(&notify, &names()).unwrap()), RCODE_NOTIMP as u8);
}

#[test]
fn resolv_conf_searches_the_pod_namespace_first() {
    let conf = resolv_conf(Ipv4Addr::new(10, 244, 0, 1), "fns", "cluster.local");
    assert!(conf.contains("nameserver 10.244.0.1\n"));
    assert!(conf.contains("search fns.svc.cluster.local svc.cluster.local cluster.local\n"));
    assert!(conf.contains("ndots:5"));
}
