//! Our binaries as host processes for the length of a test.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::paths::{bin_path, kube_bin_dir, kubeconfig_path, logs_dir};

/// Errors while starting a process.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The binary does not exist.
    #[error("binary {0} not found; build it first (`make build` / `cargo build --workspace --bins`)")]
    NotBuilt(String),
    /// The log file could not be created.
    #[error("cannot create log file {path}: {source}")]
    Log {
        /// The log path.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The process could not be started.
    #[error("cannot start {bin}: {source}")]
    Spawn {
        /// The binary.
        bin: String,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// A running host process, killed (SIGKILL) and reaped when dropped. Standard output and error go to
/// [`ProcessGuard::log_path`].
#[derive(Debug)]
pub struct ProcessGuard {
    child: Child,
    name: String,
    log_path: PathBuf,
}

impl ProcessGuard {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The file that receives the process's standard output and error.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The log so far (empty when unreadable).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Whether the process is still running (reaps it if it has exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`, ...) with `kill(1)`; the workspace forbids the
    /// `unsafe` a direct `kill(2)` would need.
    pub fn signal(&self, signal: &str) -> bool {
        Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Sends SIGTERM and waits up to `grace` for the process to exit; returns whether it did.
    pub async fn terminate(&mut self, grace: std::time::Duration) -> bool {
        self.signal("TERM");
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline {
            if !self.is_running() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        !self.is_running()
    }

    /// The component's name, as given to [`spawn_component`].
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts one of our binaries on the host, with `KUBECONFIG` pointing at the local cluster's admin
/// kubeconfig and the pinned kubectl first on `PATH`, plus `env`. `bin` is a workspace binary name
/// (resolved with [`bin_path`]) or a path. Output goes to `.zeroscale/logs/<name>-<millis>.log`.
pub fn try_spawn_component(
    bin: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<ProcessGuard, ProcessError> {
    let path = if bin.contains('/') {
        PathBuf::from(bin)
    } else {
        bin_path(bin)
    };
    if !path.is_file() {
        return Err(ProcessError::NotBuilt(path.display().to_string()));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = logs_dir();
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let log_path = dir.join(format!("{name}-{millis}.log"));
    let log_err = |source| ProcessError::Log {
        path: log_path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(log_err)?;
    let log: File = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(log_err)?;
    let log2 = log.try_clone().map_err(log_err)?;
    let path_var = format!(
        "{}:{}",
        kube_bin_dir().display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_string())
    );
    let child = Command::new(&path)
        .args(args)
        .env("KUBECONFIG", kubeconfig_path())
        .env("PATH", path_var)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|source| ProcessError::Spawn {
            bin: path.display().to_string(),
            source,
        })?;
    Ok(ProcessGuard {
        child,
        name,
        log_path,
    })
}

/// Like [`try_spawn_component`] but panics on failure.
pub fn spawn_component(bin: &str, args: &[&str], env: &[(&str, &str)]) -> ProcessGuard {
    match try_spawn_component(bin, args, env) {
        Ok(guard) => guard,
        Err(e) => panic!("{e}"),
    }
}
