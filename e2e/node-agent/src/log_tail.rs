//! Which part of a container log a `kubectl logs` request wants (pure).

/// The query parameters of `GET /containerLogs/...` this agent honours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// `follow=true`: keep streaming what is appended.
    pub follow: bool,
    /// `tailLines=<n>`: only the last `n` lines.
    pub tail_lines: Option<usize>,
    /// `limitBytes=<n>`: at most `n` bytes.
    pub limit_bytes: Option<usize>,
}

/// Parses the query string; unknown or malformed parameters are ignored, like the kubelet does.
pub fn parse_query(query: Option<&str>) -> LogQuery {
    let mut q = LogQuery::default();
    for pair in query.unwrap_or_default().split('&') {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("follow", v) => q.follow = v == "true" || v == "1",
            ("tailLines", v) => q.tail_lines = v.parse().ok(),
            ("limitBytes", v) => q.limit_bytes = v.parse().ok(),
            _ => {}
        }
    }
    q
}

/// The byte offset where the last `lines` lines of `data` start.
pub fn tail_offset(data: &[u8], lines: usize) -> usize {
    if lines == 0 {
        return data.len();
    }
    // A trailing newline ends the last line; it does not start another one.
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == lines {
                return i + 1;
            }
        }
    }
    0
}

/// `/containerLogs/<namespace>/<pod>/<container>` → its three parts (names never contain `/`).
pub fn parse_path(path: &str) -> Option<(&str, &str, &str)> {
    let rest = path.strip_prefix("/containerLogs/")?;
    let mut parts = rest.split('/');
    let (ns, pod, container) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = |s: &str| !s.is_empty() && !s.contains("..");
    (parts.next().is_none() && valid(ns) && valid(pod) && valid(container)).then_some((ns, pod, container))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_lines() {
        let data = b"a\nb\nc\n";
        assert_eq!(&data[tail_offset(data, 2)..], b"b\nc\n");
        assert_eq!(&data[tail_offset(data, 5)..], b"a\nb\nc\n");
        assert_eq!(&data[tail_offset(data, 0)..], b"");
        assert_eq!(&b"x\ny"[tail_offset(b"x\ny", 1)..], b"y");
    }

    #[test]
    fn parses_queries_and_paths() {
        let q = parse_query(Some("follow=true&tailLines=10&timestamps=true"));
        assert_eq!(
            q,
            LogQuery {
                follow: true,
                tail_lines: Some(10),
                limit_bytes: None
            }
        );
        assert_eq!(parse_path("/containerLogs/ns/p/c"), Some(("ns", "p", "c")));
        assert_eq!(parse_path("/containerLogs/ns/p"), None);
        assert_eq!(parse_path("/containerLogs/../p/c"), None);
    }
}
