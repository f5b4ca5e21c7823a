//! One container's lifecycle: resolve the image, build the environment, start the process, probe it,
//! restart it under the restart policy with crash-loop back-off, stop it when the pod terminates.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Container;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::backoff::{Backoff, BackoffPolicy, should_restart};
use crate::env::{PodFacts, container_env, expand};
use crate::pod_ctx::PodCtx;
use crate::pod_state::ContainerPhase;
use crate::probe::{ProbeSpec, period_override};
use crate::probe_loop::{ProbeKind, probe_loop};
use crate::process::{Launch, find_executable, spawn, stop};

/// Tells container workers to stop: `None` while the pod runs, `Some(grace)` once it terminates.
pub type StopSignal = watch::Receiver<Option<Duration>>;

/// Image "pulls" are retried with their own, shorter back-off.
const PULL_BACKOFF: BackoffPolicy = BackoffPolicy {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(10),
    reset_after: Duration::MAX,
};

/// Waits `d`; returns the grace period if the pod was told to stop meanwhile.
async fn sleep_or_stop(d: Duration, stop: &mut StopSignal) -> Option<Duration> {
    if let Some(grace) = *stop.borrow() {
        return Some(grace);
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => None,
        grace = wait_stop(stop) => Some(grace),
    }
}

/// Resolves once a stop is requested, with its grace period.
async fn wait_stop(stop: &mut StopSignal) -> Duration {
    loop {
        if let Some(grace) = *stop.borrow_and_update() {
            return grace;
        }
        if stop.changed().await.is_err() {
            return Duration::ZERO;
        }
    }
}

fn spec_of(ctx: &PodCtx, idx: usize) -> Option<Container> {
    ctx.pod.spec.as_ref()?.containers.get(idx).cloned()
}

/// Prepares the process launch: image, environment, command and arguments with `$(VAR)` expansion.
/// Writes the pod's resolv.conf when the cluster DNS runs; `None` leaves the host's in place.
fn write_resolv_conf(ctx: &PodCtx) -> Option<std::path::PathBuf> {
    let server = ctx.agent.dns?;
    let path = ctx.pod_dir.join("resolv.conf");
    let conf = crate::dns::resolv_conf(server, &ctx.namespace, &ctx.agent.args.cluster_domain);
    match std::fs::write(&path, conf) {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!(pod = %ctx.name, "cannot write {}: {e}", path.display());
            None
        }
    }
}

async fn prepare(ctx: &PodCtx, idx: usize, c: &Container) -> Result<Launch, (&'static str, String)> {
    let image = c.image.clone().unwrap_or_default();
    let image_exe = ctx
        .agent
        .images
        .resolve(&image)
        .map_err(|e| ("ErrImagePull", e.to_string()))?;
    let sources = ctx
        .env_sources(idx)
        .await
        .map_err(|e| ("CreateContainerConfigError", e.to_string()))?;
    let facts = PodFacts {
        pod_ip: ctx.sandbox.ip.to_string(),
        host_ip: ctx.agent.args.bridge_ip.to_string(),
        api_host: ctx.agent.args.bridge_ip.to_string(),
        api_port: ctx.agent.args.api_port,
        home: ctx.pod_dir.display().to_string(),
    };
    let env = container_env(&ctx.pod, c, &facts, &sources)
        .map_err(|e| ("CreateContainerConfigError", e.to_string()))?;
    let vars: HashMap<String, String> = env.iter().cloned().collect();
    let args: Vec<String> = c.args.iter().flatten().map(|a| expand(a, &vars)).collect();
    let (exe, args) = match c.command.as_deref() {
        Some([first, rest @ ..]) => {
            let exe = find_executable(&expand(first, &vars), &image_exe)
                .map_err(|e| ("CreateContainerError", e.to_string()))?;
            (exe, rest.iter().map(|a| expand(a, &vars)).chain(args).collect())
        }
        _ => (image_exe, args),
    };
    Ok(Launch {
        exe,
        args,
        env,
        working_dir: c
            .working_dir
            .clone()
            .map(Into::into)
            .unwrap_or_else(|| ctx.pod_dir.clone()),
        netns: ctx.sandbox.netns.clone(),
        sa_dir: ctx.sa_dir.clone(),
        hosts_file: Some(ctx.agent.args.hosts_file()).filter(|p| p.is_file()),
        resolv_conf: write_resolv_conf(ctx),
        log_file: ctx.log_file(&c.name),
    })
}

fn start_probes(
    ctx: &Arc<PodCtx>,
    idx: usize,
    c: &Container,
    cancel: &CancellationToken,
) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    let period = period_override(ctx.pod.metadata.annotations.as_ref());
    for (probe, kind) in [
        (&c.readiness_probe, ProbeKind::Readiness),
        (&c.liveness_probe, ProbeKind::Liveness),
    ] {
        let Some(probe) = probe else { continue };
        match ProbeSpec::from_k8s(probe, c, period) {
            Ok(spec) => {
                tokio::spawn(probe_loop(
                    ctx.clone(),
                    idx,
                    spec,
                    kind,
                    cancel.clone(),
                    tx.clone(),
                ));
            }
            Err(e) => tracing::warn!(pod = %ctx.name, container = %c.name, "{kind:?} probe ignored: {e}"),
        }
    }
    rx
}

fn terminated(status: Option<std::process::ExitStatus>, started_at: Timestamp) -> (ContainerPhase, i32) {
    let signal = status.and_then(|s| s.signal());
    let exit_code = status.and_then(|s| s.code()).unwrap_or(128 + signal.unwrap_or(9));
    let reason = if exit_code == 0 { "Completed" } else { "Error" };
    let phase = ContainerPhase::Terminated {
        exit_code,
        signal,
        reason: reason.into(),
        started_at,
        finished_at: Timestamp::now(),
    };
    (phase, exit_code)
}

/// Runs container `idx` until the pod stops or the restart policy says it is done.
pub async fn run_container(ctx: Arc<PodCtx>, idx: usize, mut stop_rx: StopSignal) {
    let Some(c) = spec_of(&ctx, idx) else { return };
    let policy = ctx
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_else(|| "Always".into());
    let pod_grace = ctx
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    let pod_grace = Duration::from_secs(u64::try_from(pod_grace).unwrap_or(30));
    let (mut crash_backoff, mut pull_backoff) = (Backoff::default(), Backoff::default());
    let mut pull_failures = 0u32;
    let mut restarting = false;
    loop {
        if stop_rx.borrow().is_some() {
            return;
        }
        let launch = match prepare(&ctx, idx, &c).await {
            Ok(launch) => launch,
            Err((reason, message)) => {
                // The first failed pull shows ErrImagePull, later ones ImagePullBackOff, as on a real node.
                let reason = if reason == "ErrImagePull" && pull_failures > 0 {
                    "ImagePullBackOff"
                } else {
                    reason
                };
                pull_failures += 1;
                ctx.set_waiting(idx, reason, message);
                if sleep_or_stop(
                    pull_backoff.next_delay(&PULL_BACKOFF, Duration::ZERO),
                    &mut stop_rx,
                )
                .await
                .is_some()
                {
                    return;
                }
                continue;
            }
        };
        pull_failures = 0;
        let mut child = match spawn(&launch) {
            Ok(child) => child,
            Err(e) => {
                ctx.set_waiting(idx, "RunContainerError", e.to_string());
                let delay = crash_backoff.next_delay(&ctx.agent.backoff, Duration::ZERO);
                if sleep_or_stop(delay, &mut stop_rx).await.is_some() {
                    return;
                }
                continue;
            }
        };
        let pid = child.id();
        let pid_file = ctx.pid_file(&c.name);
        if let Some(pid) = pid {
            let _ = std::fs::write(&pid_file, pid.to_string());
        }
        let started_at = Timestamp::now();
        let started = Instant::now();
        ctx.update(|s| {
            if let Some(cs) = s.containers.get_mut(idx) {
                if restarting {
                    cs.restart_count += 1;
                }
                cs.phase = ContainerPhase::Running { started_at };
                cs.pid = pid;
                cs.ever_started = true;
                cs.ready = c.readiness_probe.is_none();
            }
        });
        tracing::info!(pod = %ctx.name, container = %c.name, ?pid, exe = %launch.exe.display(), "started");
        let probes = CancellationToken::new();
        let mut liveness_failed = start_probes(&ctx, idx, &c, &probes);
        let (status, stopping) = tokio::select! {
            status = child.wait() => (status.ok(), false),
            Some(()) = liveness_failed.recv() => (stop(&mut child, pod_grace).await, false),
            grace = wait_stop(&mut stop_rx) => (stop(&mut child, grace).await, true),
        };
        probes.cancel();
        let _ = std::fs::remove_file(&pid_file);
        let (finished, exit_code) = terminated(status, started_at);
        tracing::info!(pod = %ctx.name, container = %c.name, exit_code, "exited");
        let restart = !stopping && should_restart(&policy, exit_code);
        if !restart {
            ctx.update(|s| {
                if let Some(cs) = s.containers.get_mut(idx) {
                    cs.phase = finished;
                    cs.ready = false;
                    cs.pid = None;
                }
            });
            return;
        }
        let delay = crash_backoff.next_delay(&ctx.agent.backoff, started.elapsed());
        let message = format!(
            "back-off {delay:?} restarting failed container={} pod={}",
            c.name, ctx.name
        );
        ctx.update(|s| {
            if let Some(cs) = s.containers.get_mut(idx) {
                cs.phase = ContainerPhase::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: Some(message),
                };
                cs.last_terminated = Some(finished);
                cs.ready = false;
                cs.pid = None;
            }
        });
        restarting = true;
        if sleep_or_stop(delay, &mut stop_rx).await.is_some() {
            return;
        }
    }
}
