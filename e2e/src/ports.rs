//! Free local ports for host processes a test starts (admin, data and event listeners).

/// A TCP port on 127.0.0.1 that was free a moment ago: the OS picks it, the probe socket is closed
/// again, and the caller hands it to a process. Another process may take it in between; tests accept
/// that small race because the alternative (passing open sockets to child processes) needs `unsafe`.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// `127.0.0.1:<port>` for a [`free_port`].
pub fn free_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_addr_can_be_bound() {
        let addr = free_addr();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        assert!(std::net::TcpListener::bind(&addr).is_ok(), "{addr} is free");
    }
}
