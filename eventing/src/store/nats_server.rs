//! A real nats-server for the JetStream tests: the binary `e2e/cluster/build.sh nats` builds from the
//! pinned module, run as a host process on a free loopback port with its store in a temporary
//! directory, `sync_interval: always` as the chart's development server.

use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::process::{Child, Command};

/// The binary: `$NATS_SERVER`, else `$ZEROSCALE_CACHE/k8s-<version>/bin/nats-server` as
/// `e2e/cluster/lib.sh` computes `$ZS_BIN`.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return PathBuf::from(path);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let go_mod =
        std::fs::read_to_string(root.join("e2e/cluster/k8s/go.mod")).expect("read e2e/cluster/k8s/go.mod");
    let version = go_mod
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .collect::<Vec<_>>()
                .get(..2)
                .map(|w| (w[0], w[1]))
        })
        .find(|(m, v)| *m == "k8s.io/kubernetes" && v.starts_with('v'))
        .map(|(_, v)| v.to_string())
        .expect("k8s.io/kubernetes version in e2e/cluster/k8s/go.mod");
    let cache = std::env::var_os("ZEROSCALE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/zeroscale")
        });
    cache.join(format!("k8s-{version}/bin/nats-server"))
}

/// A running nats-server with JetStream.
pub struct NatsServer {
    pub addr: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server with its store under a new temporary directory.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("zs-nats-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the store directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            child: None,
        };
        server.run().await;
        server
    }

    /// `nats://` URL of the server.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// Kills the server (SIGKILL: nothing is flushed beyond what `sync_interval: always` wrote).
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill nats-server");
        }
    }

    /// Starts the server again on the same port and store.
    pub async fn run(&mut self) {
        let binary = binary();
        assert!(
            binary.is_file(),
            "nats-server not found at {}: build it with `bash e2e/cluster/build.sh nats` (or set NATS_SERVER)",
            binary.display()
        );
        let config = self.dir.join("nats.conf");
        let store = self.dir.join("store");
        std::fs::write(
            &config,
            format!(
                "listen: {}\njetstream {{\n  store_dir: {:?}\n  sync_interval: always\n}}\n",
                self.addr,
                store.display().to_string()
            ),
        )
        .expect("write nats.conf");
        let child = Command::new(&binary)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nats-server did not listen on {} within 5 s", self.addr);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
