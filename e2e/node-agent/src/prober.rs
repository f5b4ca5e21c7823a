//! Running one probe (IO). Probes are sent from the host to the pod IP over the bridge.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::probe::ProbeAction;

/// Runs `action` once against a pod; `true` on success. Every failure (refused, timeout, bad status)
/// is just `false`, as for the kubelet.
pub async fn probe_once(action: &ProbeAction, pod_ip: &str, netns: &str, timeout: Duration) -> bool {
    let attempt = async {
        match action {
            ProbeAction::Tcp { host, port } => TcpStream::connect((host.as_deref().unwrap_or(pod_ip), *port))
                .await
                .is_ok(),
            ProbeAction::Http {
                host,
                port,
                path,
                headers,
            } => http_ok(host.as_deref().unwrap_or(pod_ip), *port, path, headers)
                .await
                .unwrap_or(false),
            ProbeAction::Exec { command } => {
                let Some((program, args)) = command.split_first() else {
                    return false;
                };
                Command::new("ip")
                    .args(["netns", "exec", netns, program])
                    .args(args)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .status()
                    .await
                    .map(|s| s.success())
                    .unwrap_or(false)
            }
        }
    };
    tokio::time::timeout(timeout, attempt).await.unwrap_or(false)
}

/// A minimal HTTP/1.1 GET reading only the status line: the kubelet counts 200–399 as success.
async fn http_ok(host: &str, port: u16, path: &str, headers: &[(String, String)]) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect((host, port)).await?;
    let mut request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.34\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut buf = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            break;
        }
        len += n;
    }
    Ok(parse_status(&buf[..len]).is_some_and(|code| (200..400).contains(&code)))
}

/// The status code of an HTTP/1.x status line.
fn parse_status(head: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(head).ok()?;
    let mut parts = text.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.get(..3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(parse_status(b"HTTP/1.0 500"), Some(500));
        assert_eq!(parse_status(b"SSH-2.0"), None);
    }

    #[tokio::test]
    async fn probes_a_local_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
            }
        });
        let http = ProbeAction::Http {
            host: None,
            port,
            path: "/".into(),
            headers: vec![],
        };
        assert!(probe_once(&http, "127.0.0.1", "none", Duration::from_secs(2)).await);
        let tcp = ProbeAction::Tcp { host: None, port };
        assert!(probe_once(&tcp, "127.0.0.1", "none", Duration::from_secs(2)).await);
    }
}
