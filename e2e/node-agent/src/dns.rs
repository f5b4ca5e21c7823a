//! A tiny cluster DNS (pure part): answers `A` queries for Service names from the same table as the
//! hosts file, so resolvers that do not read `/etc/hosts` first, and short names through the pods'
//! search domains (`<svc>`, `<svc>.<ns>`), work too. One question per query, UDP only (answers are
//! small), no recursion: every other name is NXDOMAIN, at once.

use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Seconds a client may cache an answer: short, Services come and go in tests.
const TTL: u32 = 5;
const TYPE_A: u16 = 1;
const TYPE_ANY: u16 = 255;
const CLASS_IN: u16 = 1;
const RCODE_FORMERR: u16 = 1;
const RCODE_NXDOMAIN: u16 = 3;
const RCODE_NOTIMP: u16 = 4;

/// Fully qualified names (lowercase, no trailing dot) → address.
pub type Names = HashMap<String, Ipv4Addr>;

/// Reads the question: (name, type, class, end offset). `None` when malformed or compressed.
fn question(query: &[u8]) -> Option<(String, u16, u16, usize)> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        // Compression pointers (top bits set) have no place in a question.
        if len > 63 {
            return None;
        }
        let label = query.get(at..at + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += len;
    }
    let field = |at: usize| Some(u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]));
    Some((labels.join("."), field(at)?, field(at + 2)?, at + 4))
}

/// The answer to `query`, or `None` when it is not worth one (too short to carry an id, or a
/// response itself).
pub fn answer(query: &[u8], names: &Names) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    let flags = u16::from_be_bytes([query[2], query[3]]);
    let opcode = (flags >> 11) & 0xf;
    let qdcount = u16::from_be_bytes([query[4], query[5]]);
    // QR, AA, the client's RD, RA (we "recurse" as far as there is anything to know).
    let base = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080;
    let header = |rcode: u16, qd: u16, an: u16| {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&query[..2]);
        out.extend_from_slice(&(base | rcode).to_be_bytes());
        for count in [qd, an, 0, 0] {
            out.extend_from_slice(&count.to_be_bytes());
        }
        out
    };
    if opcode != 0 {
        return Some(header(RCODE_NOTIMP, 0, 0));
    }
    let Some((name, qtype, qclass, end)) = question(query).filter(|_| qdcount == 1) else {
        return Some(header(RCODE_FORMERR, 0, 0));
    };
    let found = names.get(&name);
    let ip = found.filter(|_| qclass == CLASS_IN && matches!(qtype, TYPE_A | TYPE_ANY));
    let rcode = if found.is_some() { 0 } else { RCODE_NXDOMAIN };
    let mut out = header(rcode, 1, u16::from(ip.is_some()));
    out.extend_from_slice(&query[12..end]);
    if let Some(ip) = ip {
        // The name by pointer to the question (offset 12), type A, class IN, TTL, 4 bytes of address.
        out.extend_from_slice(&[0xc0, 12]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&ip.octets());
    }
    Some(out)
}

/// A pod's `/etc/resolv.conf`: the agent's DNS, and the search list of a pod in `namespace`.
pub fn resolv_conf(server: Ipv4Addr, namespace: &str, domain: &str) -> String {
    format!(
        "# Written by zeroscale-node-agent (see docs/local-cluster.md).\nnameserver {server}\n\
         search {namespace}.svc.{domain} svc.{domain} {domain}\noptions ndots:5 attempts:2 timeout:1\n"
    )
}

#[cfg(test)]
#[path = "dns_tests.rs"]
mod tests;
