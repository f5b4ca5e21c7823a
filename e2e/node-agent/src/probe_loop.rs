//! Running a container's readiness and liveness probes for as long as the container runs.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::pod_ctx::PodCtx;
use crate::probe::{ProbeSpec, ProbeTracker};
use crate::prober::probe_once;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// Drives the container's `ready` flag (and so the pod's Ready condition).
    Readiness,
    /// Restarts the container when it fails.
    Liveness,
}

/// Probes until `cancel`. Readiness flips are written to the pod state at once (the status writer
/// patches right away); a liveness failure is reported on `failed`.
pub async fn probe_loop(
    ctx: Arc<PodCtx>,
    idx: usize,
    spec: ProbeSpec,
    kind: ProbeKind,
    cancel: CancellationToken,
    failed: mpsc::Sender<()>,
) {
    let pause = |d: Duration| {
        let cancel = cancel.clone();
        async move {
            tokio::select! {
                _ = tokio::time::sleep(d) => false,
                _ = cancel.cancelled() => true,
            }
        }
    };
    if pause(spec.initial_delay).await {
        return;
    }
    let startup_interval = Duration::from_millis(ctx.agent.args.startup_probe_interval_ms);
    let pod_ip = ctx.sandbox.ip.to_string();
    let mut tracker = ProbeTracker::new(kind == ProbeKind::Liveness);
    let mut ever_passed = false;
    loop {
        let ok = probe_once(&spec.action, &pod_ip, &ctx.sandbox.netns, spec.timeout).await;
        if cancel.is_cancelled() {
            return;
        }
        if let Some(passing) = tracker.record(ok, &spec) {
            match kind {
                ProbeKind::Readiness => {
                    ever_passed |= passing;
                    tracing::info!(pod = %ctx.name, container = idx, passing, "readiness changed");
                    ctx.update(|s| {
                        if let Some(c) = s.containers.get_mut(idx) {
                            c.ready = passing;
                        }
                    });
                }
                ProbeKind::Liveness if !passing => {
                    tracing::info!(pod = %ctx.name, container = idx, "liveness probe failed");
                    let _ = failed.send(()).await;
                    return;
                }
                ProbeKind::Liveness => {}
            }
        }
        // Before the first success, retry quickly so a pod is Ready the moment it listens.
        let wait = if kind == ProbeKind::Readiness && !ever_passed && !startup_interval.is_zero() {
            spec.period.min(startup_interval)
        } else {
            spec.period
        };
        if pause(wait).await {
            return;
        }
    }
}
