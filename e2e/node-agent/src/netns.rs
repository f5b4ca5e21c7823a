//! Pod network sandboxes: a network namespace per pod with a veth on the bridge, set up with `ip`.

use std::net::Ipv4Addr;

use tokio::process::Command;

/// Errors of sandbox setup.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// `ip` could not be run.
    #[error("cannot run ip: {0}")]
    Spawn(#[source] std::io::Error),
    /// `ip` failed.
    #[error("`ip {args}` failed: {stderr}")]
    Failed {
        /// The arguments.
        args: String,
        /// Its standard error.
        stderr: String,
    },
}

/// A pod's network: its namespace, the host end of its veth, and its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// The network namespace (`/run/netns/<name>`).
    pub netns: String,
    /// The host-side veth, attached to the bridge.
    pub veth: String,
    /// The pod IP (on `eth0` inside the namespace).
    pub ip: Ipv4Addr,
}

/// Names of a pod's namespace and host veth, from its uid (interface names have at most 15 bytes).
pub fn sandbox_names(prefix: &str, uid: &str) -> (String, String) {
    let id: String = uid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(10)
        .collect();
    (format!("{prefix}{id}"), format!("zsv{id}"))
}

async fn ip(args: &[&str]) -> Result<String, NetError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(NetError::Spawn)?;
    if !out.status.success() {
        return Err(NetError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where a sandbox is attached: the bridge, its address, and the service CIDR routed through it.
#[derive(Debug, Clone, Copy)]
pub struct Attach<'a> {
    /// The bridge the host veth joins.
    pub bridge: &'a str,
    /// The bridge's address (the host, where the agent proxies ClusterIPs).
    pub gateway: Ipv4Addr,
    /// The service CIDR, e.g. `10.96.0.0/16`.
    pub service_cidr: &'a str,
}

/// Creates the namespace, the veth pair (`eth0` inside), attaches it to the bridge and assigns
/// `ip/len`, plus a route for the service CIDR via the bridge address (ClusterIPs live on the host).
/// There is deliberately no default route: a pod reaches the bridge subnet (other pods, the API server
/// on the bridge address), the ClusterIPs, and nothing else.
pub async fn create(
    netns: &str,
    veth: &str,
    at: Attach<'_>,
    addr: Ipv4Addr,
    prefix_len: u32,
) -> Result<Sandbox, NetError> {
    let (bridge, gateway) = (at.bridge, at.gateway.to_string());
    delete(netns, veth).await;
    ip(&["netns", "add", netns]).await?;
    let cidr = format!("{addr}/{prefix_len}");
    let steps: [&[&str]; 7] = [
        &[
            "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns,
        ],
        &["link", "set", veth, "master", bridge],
        &["link", "set", veth, "up"],
        &["-n", netns, "addr", "add", &cidr, "dev", "eth0"],
        &["-n", netns, "link", "set", "eth0", "up"],
        &["-n", netns, "link", "set", "lo", "up"],
        &[
            "-n",
            netns,
            "route",
            "add",
            at.service_cidr,
            "via",
            &gateway,
            "dev",
            "eth0",
        ],
    ];
    for step in steps {
        if let Err(e) = ip(step).await {
            delete(netns, veth).await;
            return Err(e);
        }
    }
    Ok(Sandbox {
        netns: netns.to_string(),
        veth: veth.to_string(),
        ip: addr,
    })
}

/// Kills whatever still runs in the namespace and deletes it and the veth; missing parts are fine.
pub async fn delete(netns: &str, veth: &str) {
    if let Ok(pids) = ip(&["netns", "pids", netns]).await {
        for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
    let _ = ip(&["netns", "delete", netns]).await;
    let _ = ip(&["link", "delete", veth]).await;
}

/// The network namespaces whose names start with `prefix`.
pub async fn list(prefix: &str) -> Vec<String> {
    match ip(&["netns", "list"]).await {
        Ok(out) => out
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(prefix))
            .map(str::to_string)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Host veths left behind by pods (`zsv*`).
pub async fn stray_veths() -> Vec<String> {
    match ip(&["-o", "link", "show"]).await {
        Ok(out) => out
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .filter(|n| n.starts_with("zsv"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_interface_limits() {
        let (ns, veth) = sandbox_names("zs-", "3f2b8c1e-aaaa-bbbb-cccc-123456789abc");
        assert_eq!(ns, "zs-3f2b8c1eaa");
        assert_eq!(veth, "zsv3f2b8c1eaa");
        assert!(veth.len() <= 15);
    }
}
