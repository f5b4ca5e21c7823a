//! What the agent knows about one pod's containers, and the pod status it implies (pure).

use std::collections::HashMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    HostIP, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The state of one container, mirroring the API's `ContainerState`.
#[derive(Debug, Clone, PartialEq)]
pub enum ContainerPhase {
    /// Not running, with a reason (`ContainerCreating`, `ErrImagePull`, `CrashLoopBackOff`, ...).
    Waiting {
        /// The reason.
        reason: String,
        /// A human-readable message.
        message: Option<String>,
    },
    /// Running since `started_at`.
    Running {
        /// When the process started.
        started_at: Timestamp,
    },
    /// Exited.
    Terminated {
        /// The exit code (128 + signal when killed by a signal).
        exit_code: i32,
        /// The signal that killed it, if any.
        signal: Option<i32>,
        /// `Completed` (exit 0) or `Error`.
        reason: String,
        /// When the process started.
        started_at: Timestamp,
        /// When it exited.
        finished_at: Timestamp,
    },
}

/// One container as the agent runs it.
#[derive(Debug, Clone)]
pub struct ContainerRuntime {
    /// The container's name.
    pub name: String,
    /// The image reference.
    pub image: String,
    /// The current state.
    pub phase: ContainerPhase,
    /// The previous termination, if it was restarted.
    pub last_terminated: Option<ContainerPhase>,
    /// Restarts so far.
    pub restart_count: i32,
    /// Whether the readiness probe passes (or there is none and it runs).
    pub ready: bool,
    /// Whether the container has ever been started (decides `Pending` vs `Running`).
    pub ever_started: bool,
    /// The host pid of the running process.
    pub pid: Option<u32>,
}

impl ContainerRuntime {
    /// A container about to be created.
    pub fn new(name: &str, image: &str, restart_count: i32) -> Self {
        Self {
            name: name.to_string(),
            image: image.to_string(),
            phase: ContainerPhase::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            },
            last_terminated: None,
            restart_count,
            ready: false,
            ever_started: restart_count > 0,
            pid: None,
        }
    }
}

/// Everything the pod status is computed from.
#[derive(Debug, Clone, Default)]
pub struct PodRuntime {
    /// The containers, in spec order.
    pub containers: Vec<ContainerRuntime>,
    /// The pod IP once the sandbox exists.
    pub pod_ip: Option<String>,
    /// The node's IP.
    pub host_ip: String,
    /// Whether the network namespace is set up.
    pub sandbox_ready: bool,
    /// When the agent accepted the pod.
    pub start_time: Option<Timestamp>,
    /// `Always`, `OnFailure` or `Never`.
    pub restart_policy: String,
    /// Last status and transition time of each condition we own, to keep transition times stable.
    pub(crate) transitions: HashMap<&'static str, (bool, Timestamp)>,
}

fn time(t: Timestamp) -> Time {
    Time(t)
}

fn container_state(phase: &ContainerPhase) -> ContainerState {
    match phase.clone() {
        ContainerPhase::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason),
                message,
            }),
            ..Default::default()
        },
        ContainerPhase::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(time(started_at)),
            }),
            ..Default::default()
        },
        ContainerPhase::Terminated {
            exit_code,
            signal,
            reason,
            started_at,
            finished_at,
        } => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code,
                signal,
                reason: Some(reason),
                started_at: Some(time(started_at)),
                finished_at: Some(time(finished_at)),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

impl PodRuntime {
    /// The pod phase: `Pending` until every container has started once, `Succeeded`/`Failed` when all
    /// have terminated for good under the restart policy, else `Running`.
    pub fn phase(&self) -> &'static str {
        let all_terminated = !self.containers.is_empty()
            && self
                .containers
                .iter()
                .all(|c| matches!(c.phase, ContainerPhase::Terminated { .. }));
        if all_terminated && self.restart_policy != "Always" {
            let failed = self
                .containers
                .iter()
                .any(|c| matches!(c.phase, ContainerPhase::Terminated { exit_code, .. } if exit_code != 0));
            return if failed { "Failed" } else { "Succeeded" };
        }
        if self.containers.iter().all(|c| c.ever_started) && !self.containers.is_empty() {
            "Running"
        } else {
            "Pending"
        }
    }

    fn condition(&mut self, type_: &'static str, ok: bool, now: Timestamp) -> PodCondition {
        let since = match self.transitions.get(type_) {
            Some((was, since)) if *was == ok => *since,
            _ => {
                self.transitions.insert(type_, (ok, now));
                now
            }
        };
        PodCondition {
            type_: type_.to_string(),
            status: if ok { "True" } else { "False" }.to_string(),
            last_transition_time: Some(time(since)),
            ..Default::default()
        }
    }

    /// The status to write. `PodScheduled` is the scheduler's and is left out (a strategic merge patch
    /// keeps it).
    pub fn render(&mut self, now: Timestamp) -> PodStatus {
        let all_ready = self
            .containers
            .iter()
            .all(|c| c.ready && matches!(c.phase, ContainerPhase::Running { .. }));
        let sandbox = self.sandbox_ready;
        let conditions = vec![
            self.condition("PodReadyToStartContainers", sandbox, now),
            self.condition("Initialized", true, now),
            self.condition("ContainersReady", all_ready, now),
            self.condition("Ready", all_ready, now),
        ];
        let statuses = self
            .containers
            .iter()
            .map(|c| ContainerStatus {
                name: c.name.clone(),
                image: c.image.clone(),
                image_id: String::new(),
                container_id: c.pid.map(|pid| format!("process://{pid}")),
                ready: c.ready && matches!(c.phase, ContainerPhase::Running { .. }),
                started: Some(matches!(c.phase, ContainerPhase::Running { .. })),
                restart_count: c.restart_count,
                state: Some(container_state(&c.phase)),
                last_state: c.last_terminated.as_ref().map(container_state),
                ..Default::default()
            })
            .collect();
        PodStatus {
            phase: Some(self.phase().to_string()),
            conditions: Some(conditions),
            container_statuses: Some(statuses),
            pod_ip: self.pod_ip.clone(),
            pod_ips: self.pod_ip.clone().map(|ip| vec![PodIP { ip }]),
            host_ip: Some(self.host_ip.clone()),
            host_ips: Some(vec![HostIP {
                ip: self.host_ip.clone(),
            }]),
            start_time: self.start_time.map(time),
            // The API server computes the QoS class at creation and refuses to change it; leaving it out
            // of the strategic-merge patch keeps its value (a fixed "BestEffort" broke pods with resources).
            qos_class: None,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(policy: &str, phases: Vec<ContainerPhase>) -> PodRuntime {
        let mut p = PodRuntime {
            restart_policy: policy.into(),
            sandbox_ready: true,
            ..Default::default()
        };
        for (i, phase) in phases.into_iter().enumerate() {
            let mut c = ContainerRuntime::new(&format!("c{i}"), "img", 0);
            c.ever_started = !matches!(phase, ContainerPhase::Waiting { .. });
            c.phase = phase;
            p.containers.push(c);
        }
        p
    }

    fn exited(code: i32) -> ContainerPhase {
        let t = Timestamp::UNIX_EPOCH;
        ContainerPhase::Terminated {
            exit_code: code,
            signal: None,
            reason: "x".into(),
            started_at: t,
            finished_at: t,
        }
    }

    #[test]
    fn phases_follow_the_restart_policy() {
        let waiting = ContainerPhase::Waiting {
            reason: "ErrImagePull".into(),
            message: None,
        };
        let running = ContainerPhase::Running {
            started_at: Timestamp::UNIX_EPOCH,
        };
        assert_eq!(pod("Always", vec![waiting.clone()]).phase(), "Pending");
        assert_eq!(pod("Always", vec![running.clone(), waiting]).phase(), "Pending");
        assert_eq!(pod("Always", vec![running]).phase(), "Running");
        assert_eq!(pod("Always", vec![exited(1)]).phase(), "Running");
        assert_eq!(pod("Never", vec![exited(0), exited(0)]).phase(), "Succeeded");
        assert_eq!(pod("Never", vec![exited(0), exited(2)]).phase(), "Failed");
    }

    #[test]
    fn ready_needs_every_container_ready_and_keeps_transition_times() {
        let running = ContainerPhase::Running {
            started_at: Timestamp::UNIX_EPOCH,
        };
        let mut p = pod("Always", vec![running.clone(), running]);
        p.containers[0].ready = true;
        let t1 = Timestamp::from_second(100).unwrap();
        let s = p.render(t1);
        let ready = |s: &PodStatus| {
            s.conditions
                .as_ref()
                .unwrap()
                .iter()
                .find(|c| c.type_ == "Ready")
                .cloned()
                .unwrap()
        };
        assert_eq!(ready(&s).status, "False");
        p.containers[1].ready = true;
        let t2 = Timestamp::from_second(200).unwrap();
        let s = p.render(t2);
        assert_eq!(ready(&s).status, "True");
        let s = p.render(Timestamp::from_second(300).unwrap());
        assert_eq!(ready(&s).last_transition_time, Some(Time(t2)));
        assert_eq!(s.phase.as_deref(), Some("Running"));
    }
}
