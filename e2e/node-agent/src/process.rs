//! Container processes (IO): launching one in the pod's network namespace, signalling its process group.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// Where the standard service-account mount lives; created empty on the host once, and bind-mounted
/// over with the pod's own directory inside each pod's private mount namespace.
pub const SA_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Errors starting a container.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The log file could not be opened.
    #[error("cannot open log file {path}: {source}")]
    Log {
        /// The log path.
        path: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The working directory does not exist.
    #[error("working directory {0} does not exist")]
    WorkingDir(String),
    /// The executable of `command[0]` was not found.
    #[error("executable {0:?} not found in the image directory or $PATH")]
    NotFound(String),
    /// The process could not be started.
    #[error("cannot start the container process: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Everything needed to start one container.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The executable.
    pub exe: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// The working directory.
    pub working_dir: PathBuf,
    /// The pod's network namespace.
    pub netns: String,
    /// The pod's service-account directory, bind-mounted at [`SA_MOUNT`] when set.
    pub sa_dir: Option<PathBuf>,
    /// The agent's hosts file (Service names), bind-mounted at `/etc/hosts` when set.
    pub hosts_file: Option<PathBuf>,
    /// The pod's resolv.conf (the cluster DNS), bind-mounted at `/etc/resolv.conf` when set.
    pub resolv_conf: Option<PathBuf>,
    /// The log file receiving standard output and error.
    pub log_file: PathBuf,
}

/// Finds `command[0]`: a path is used as given; a bare name is looked up in the image's directory (so
/// `zeroscale/echo` with `command: [zeroscale-echo]` works), then in `$PATH`.
pub fn find_executable(name: &str, image_exe: &Path) -> Result<PathBuf, LaunchError> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let image_dir = image_exe.parent().map(Path::to_path_buf);
    let path_dirs = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    image_dir
        .into_iter()
        .chain(std::env::split_paths(&path_dirs))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| LaunchError::NotFound(name.to_string()))
}

/// The bind mounts a container gets in its private mount namespace, as (source, target).
fn mounts(launch: &Launch) -> Vec<(&Path, &Path)> {
    let sa = launch.sa_dir.as_deref().map(|d| (d, Path::new(SA_MOUNT)));
    let hosts = launch.hosts_file.as_deref().map(|f| (f, Path::new("/etc/hosts")));
    let resolv = launch
        .resolv_conf
        .as_deref()
        .map(|f| (f, Path::new("/etc/resolv.conf")));
    sa.into_iter().chain(hosts).chain(resolv).collect()
}

/// Starts the container: `ip netns exec <netns>` gives it the pod's network and a private mount
/// namespace, in which a shell bind-mounts the service-account directory and the hosts file and then
/// execs the executable, so the returned child's pid is the container's main process and leads its
/// own group. The paths reach the shell as positional parameters, never as script text.
pub fn spawn(launch: &Launch) -> Result<Child, LaunchError> {
    if !launch.working_dir.is_dir() {
        return Err(LaunchError::WorkingDir(launch.working_dir.display().to_string()));
    }
    let log_err = |source| LaunchError::Log {
        path: launch.log_file.display().to_string(),
        source,
    };
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&launch.log_file)
        .map_err(log_err)?;
    let log2 = log.try_clone().map_err(log_err)?;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &launch.netns]);
    let mounts = mounts(launch);
    if !mounts.is_empty() {
        // `sh -c script sh <src> <dst> ... -- <exe> <args>`: mounts pairs up to `--`, then execs the rest.
        cmd.args([
            "/bin/sh",
            "-c",
            r#"set -e; while [ "$1" != -- ]; do mount --bind "$1" "$2"; shift 2; done; shift; exec "$@""#,
            "sh",
        ]);
        for (src, dst) in mounts {
            cmd.arg(src).arg(dst);
        }
        cmd.arg("--");
    }
    cmd.arg(&launch.exe)
        .args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(&launch.working_dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .kill_on_drop(false);
    cmd.spawn().map_err(LaunchError::Spawn)
}

/// Sends `signal` to the container's process group (the leader and anything it started).
pub fn signal_group(pid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = killpg(Pid::from_raw(pid), signal);
    }
}

/// SIGTERM, then SIGKILL if the process has not exited after `grace`; returns its exit status.
pub async fn stop(child: &mut Child, grace: Duration) -> Option<std::process::ExitStatus> {
    let Some(pid) = child.id() else {
        return child.wait().await.ok();
    };
    signal_group(pid, Signal::SIGTERM);
    let status = match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            signal_group(pid, Signal::SIGKILL);
            child.wait().await.ok()
        }
    };
    // Children the main process left behind in its group go too.
    signal_group(pid, Signal::SIGKILL);
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_executables_in_the_image_dir_then_path() {
        let sh = find_executable("sh", Path::new("/nonexistent/zeroscale-echo")).unwrap();
        assert!(sh.is_file());
        assert_eq!(
            find_executable("/x/y", Path::new("/b/e")).unwrap(),
            PathBuf::from("/x/y")
        );
        assert!(find_executable("no-such-binary-here", Path::new("/b/e")).is_err());
    }
}
