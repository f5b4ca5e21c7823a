//! Which `schedule` and `kubernetes` source tasks run: one per such Trigger, and only while this
//! replica leads (sources must fire once per cluster, not once per activator). The decision
//! ([`plan`]) is pure; [`Supervisor`] applies it with a spawn function it is given.

use std::{collections::HashMap, sync::Arc};

use tokio::task::JoinHandle;
use zeroscale_crds::trigger::ScheduleSource;
use zeroscale_eventing::{kubernetes::WatchTarget, router::Route};

/// A Trigger's identity: namespace and name.
pub type TriggerKey = (String, String);

/// What a source task runs.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceSpec {
    /// A cron schedule.
    Schedule(ScheduleSource),
    /// A watch of Kubernetes objects.
    Kubernetes(WatchTarget),
}

/// One source task's work: the route its events go to and what produces them.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceJob {
    /// The Trigger's compiled route.
    pub route: Arc<Route>,
    /// The source.
    pub spec: SourceSpec,
}

/// Tasks to stop and to start so that what runs matches what is wanted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Running tasks to abort (gone, changed, or no longer leading).
    pub stop: Vec<TriggerKey>,
    /// Tasks to spawn (new, changed, or newly leading).
    pub start: Vec<TriggerKey>,
}

/// Compares the wanted jobs with the running ones. A changed job is stopped and started again.
pub fn plan(
    wanted: &HashMap<TriggerKey, SourceJob>,
    running: &HashMap<TriggerKey, SourceJob>,
    leader: bool,
) -> Plan {
    let mut plan = Plan::default();
    for (key, job) in running {
        if !leader || wanted.get(key) != Some(job) {
            plan.stop.push(key.clone());
        }
    }
    if leader {
        for (key, job) in wanted {
            if running.get(key) != Some(job) {
                plan.start.push(key.clone());
            }
        }
    }
    plan.stop.sort();
    plan.start.sort();
    plan
}

/// Spawns the task of one job.
pub type Spawn = Box<dyn Fn(&SourceJob) -> JoinHandle<()> + Send>;

/// Keeps the running source tasks equal to the wanted ones while leading.
pub struct Supervisor {
    wanted: HashMap<TriggerKey, SourceJob>,
    running: HashMap<TriggerKey, (SourceJob, JoinHandle<()>)>,
    leader: bool,
    spawn: Spawn,
}

impl Supervisor {
    /// A supervisor that starts tasks with `spawn`, not leading yet.
    pub fn new(spawn: Spawn) -> Self {
        Self {
            wanted: HashMap::new(),
            running: HashMap::new(),
            leader: false,
            spawn,
        }
    }

    /// Sets (or, with `None`, clears) the job of one Trigger.
    pub fn set(&mut self, key: TriggerKey, job: Option<SourceJob>) {
        match job {
            Some(job) => self.wanted.insert(key, job),
            None => self.wanted.remove(&key),
        };
        self.sync();
    }

    /// Keys of every wanted job.
    pub fn keys(&self) -> Vec<TriggerKey> {
        self.wanted.keys().cloned().collect()
    }

    /// Records whether this replica leads.
    pub fn set_leader(&mut self, leader: bool) {
        self.leader = leader;
        self.sync();
    }

    /// Keys of the running tasks, sorted.
    pub fn running(&self) -> Vec<TriggerKey> {
        let mut keys: Vec<_> = self.running.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Aborts every task (shutdown).
    pub fn stop_all(&mut self) {
        for (_, (_, task)) in self.running.drain() {
            task.abort();
        }
    }

    fn sync(&mut self) {
        let running: HashMap<_, _> = self
            .running
            .iter()
            .map(|(k, (job, _))| (k.clone(), job.clone()))
            .collect();
        let plan = plan(&self.wanted, &running, self.leader);
        for key in plan.stop {
            if let Some((_, task)) = self.running.remove(&key) {
                task.abort();
            }
        }
        for key in plan.start {
            if let Some(job) = self.wanted.get(&key) {
                let task = (self.spawn)(job);
                self.running.insert(key, (job.clone(), task));
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;
    use zeroscale_crds::trigger::Trigger;
    use zeroscale_eventing::delivery::DeliveryDefaults;

    use super::*;

    fn job(name: &str, cron: &str) -> SourceJob {
        let trigger: Trigger = serde_json::from_value(json!({
            "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Trigger",
            "metadata": {"namespace": "ns", "name": name},
            "spec": {"source": {"schedule": {"cron": cron}}, "subscriber": {"function": "f"}},
        }))
        .unwrap();
        let route = Route::compile(&trigger, &DeliveryDefaults::default()).unwrap();
        let source = trigger.spec.source.schedule.clone().unwrap();
        SourceJob {
            route: Arc::new(route),
            spec: SourceSpec::Schedule(source),
        }
    }

    fn key(name: &str) -> TriggerKey {
        ("ns".into(), name.into())
    }

    #[test]
    fn plan_starts_new_restarts_changed_and_stops_gone_jobs() {
        let wanted = HashMap::from([
            (key("a"), job("a", "* * * * *")),
            (key("b"), job("b", "0 * * * *")),
        ]);
        let running = HashMap::from([
            (key("b"), job("b", "5 * * * *")),
            (key("c"), job("c", "* * * * *")),
        ]);
        assert_eq!(
            plan(&wanted, &running, true),
            Plan {
                stop: vec![key("b"), key("c")],
                start: vec![key("a"), key("b")]
            }
        );
        assert_eq!(plan(&wanted, &wanted, true), Plan::default());
    }

    #[test]
    fn plan_runs_nothing_without_leadership() {
        let wanted = HashMap::from([(key("a"), job("a", "* * * * *"))]);
        assert_eq!(
            plan(&wanted, &wanted, false),
            Plan {
                stop: vec![key("a")],
                start: vec![]
            }
        );
        assert_eq!(plan(&wanted, &HashMap::new(), false), Plan::default());
    }

    #[tokio::test]
    async fn supervisor_spawns_on_leadership_and_aborts_on_loss_and_removal() {
        let spawned = Arc::new(AtomicUsize::new(0));
        let counter = spawned.clone();
        let mut supervisor = Supervisor::new(Box::new(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(std::future::pending())
        }));
        supervisor.set(key("a"), Some(job("a", "* * * * *")));
        assert!(supervisor.running().is_empty());
        supervisor.set_leader(true);
        assert_eq!(supervisor.running(), [key("a")]);
        supervisor.set(key("a"), Some(job("a", "* * * * *")));
        assert_eq!(
            spawned.load(Ordering::SeqCst),
            1,
            "an unchanged job keeps its task"
        );
        supervisor.set(key("a"), Some(job("a", "1 * * * *")));
        assert_eq!(spawned.load(Ordering::SeqCst), 2, "a changed job restarts");
        supervisor.set_leader(false);
        assert!(supervisor.running().is_empty());
        supervisor.set_leader(true);
        supervisor.set(key("a"), None);
        assert!(supervisor.running().is_empty());
        assert_eq!(spawned.load(Ordering::SeqCst), 3);
    }
}
