//! The automated canary (`spec.rollout`, docs/canary.md) on the installed Zeroscale: a new revision
//! that fails a share of its requests is rolled back within one interval, with no failed request to
//! the old revision; a healthy one is promoted through every step. Traffic goes through the
//! activator's external port while the test watches `status.rollout`; each echo answer names its pod,
//! whose name starts with its revision's (`<revision>-<replicaset>-<id>`).
//!
//! Installed suite: run with `ZEROSCALE_E2E_INSTALLED=1` after `scripts/install.sh` (see
//! `scripts/e2e.sh`).

// Shared with the scenario suite, which uses all of it; this suite only part.
#[allow(dead_code)]
#[path = "scenarios/support.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Scenario, echo_pod, echo_spec};
use zeroscale_crds::function::{RolloutPhase, RolloutStatus};
use zeroscale_e2e::wait_for;

/// The canary's step interval in these tests.
const INTERVAL: Duration = Duration::from_secs(10);
/// Time from the breach's evaluation to the status (a reconcile every second, a status write, the
/// watch): what "within one interval" is allowed on a busy 2-core machine.
const SLACK: Duration = Duration::from_secs(5);

/// One answer seen by the traffic loop: status, the pod that answered (empty when the body is not
/// echo's JSON) and the body.
type Seen = (u16, String, String);

/// Sends requests to `host` (about 50 a second) until `stop`, recording every answer.
fn traffic(
    scenario: Arc<Scenario>,
    host: String,
    stop: Arc<AtomicBool>,
) -> (tokio::task::JoinHandle<()>, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let answer = match scenario.get(&host, "/", Duration::from_secs(30)).await {
                Ok(r) => {
                    let body = r.text();
                    (r.status, echo_pod(&body), body)
                }
                Err(e) => (0, String::new(), e.to_string()),
            };
            record.lock().unwrap_or_else(|e| e.into_inner()).push(answer);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    (task, seen)
}

async fn rollout_status(scenario: &Scenario, name: &str) -> Option<RolloutStatus> {
    let f = scenario.functions.get_opt(name).await.ok().flatten()?;
    f.status?.rollout
}

async fn latest_ready(scenario: &Scenario, name: &str) -> Option<String> {
    let f = scenario.functions.get_opt(name).await.ok().flatten()?;
    f.status?.latest_ready_revision_name
}

fn spec(env: serde_json::Value) -> serde_json::Value {
    echo_spec(json!({
        "env": env,
        "scale": {"min": 1, "initial": 1},
        "rollout": {"steps": [10, 50, 100], "interval": "10s", "maxErrorRate": "5%", "minRequests": 20},
    }))
}

/// Applies the first revision, waits until it serves, and returns the scenario, host and its name.
async fn first_revision(prefix: &str, name: &str) -> (Arc<Scenario>, String, String) {
    let scenario = Arc::new(Scenario::new(prefix).await);
    scenario
        .apply(name, spec(json!([{"name": "GENERATION", "value": "1"}])))
        .await;
    scenario.wait_ready(name).await;
    let host = scenario.host(name).await;
    let old = wait_for(
        Duration::from_secs(60),
        "the first revision to be latest ready",
        || latest_ready(&scenario, name),
    )
    .await;
    let (status, body) = scenario.get_ok(&host, "/", Duration::from_secs(60)).await;
    assert_eq!(status, 200, "{body}");
    (scenario, host, old)
}

#[tokio::test]
async fn a_failing_canary_is_rolled_back_within_one_interval() {
    let name = "canary-bad";
    let (scenario, host, old) = first_revision("rollout-bad", name).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (task, seen) = traffic(Arc::clone(&scenario), host.clone(), Arc::clone(&stop));
    // The bad revision: 20 % of its answers are 500.
    scenario
        .apply(
            name,
            spec(json!([{"name": "GENERATION", "value": "2"}, {"name": "ECHO_FAIL_PERCENT", "value": "20"}])),
        )
        .await;
    let started = wait_for(Duration::from_secs(90), "the canary to start", || async {
        let s = rollout_status(&scenario, name).await?;
        (s.revision != old && s.phase == RolloutPhase::Progressing).then(Instant::now)
    })
    .await;
    let rolled = wait_for(INTERVAL * 3, "the canary to be rolled back", || async {
        let s = rollout_status(&scenario, name).await?;
        (s.phase == RolloutPhase::RolledBack).then_some(s)
    })
    .await;
    let took = started.elapsed();
    // A few more requests after the rollback: all to the old revision.
    let after = seen.lock().unwrap_or_else(|e| e.into_inner()).len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    task.await.expect("traffic task");
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();

    let canary = rolled.revision.clone();
    assert_eq!(rolled.stable.as_deref(), Some(old.as_str()));
    assert!(
        took <= INTERVAL + SLACK,
        "rolled back {took:?} after the canary started"
    );
    let message = rolled.message.clone().unwrap_or_default();
    assert!(
        message.contains("error rate") && message.contains("above maxErrorRate 5%"),
        "{message}"
    );
    let ready = scenario.condition(name, "Ready").await.expect("Ready condition");
    assert_eq!(
        (ready.0.as_str(), ready.1.as_str()),
        ("False", "RolledBack"),
        "{ready:?}"
    );
    assert!(ready.2.contains("error rate"), "{ready:?}");
    let f = scenario.functions.get(name).await.expect("function");
    let traffic = f.status.expect("status").traffic;
    let routed: Vec<_> = traffic.iter().filter(|t| t.percent > 0).collect();
    assert_eq!(routed.len(), 1, "{traffic:?}");
    assert_eq!(
        (routed[0].revision_name.as_str(), routed[0].percent),
        (old.as_str(), 100)
    );

    let of = |rev: &str, s: &Seen| s.1.starts_with(&format!("{rev}-"));
    let old_failed = seen.iter().filter(|s| of(&old, s) && s.0 != 200).count();
    let old_ok = seen.iter().filter(|s| of(&old, s) && s.0 == 200).count();
    let injected = seen
        .iter()
        .filter(|s| s.0 == 500 && s.2.contains("injected failure"))
        .count();
    let other = seen
        .iter()
        .filter(|s| s.0 != 200 && !s.2.contains("injected failure"))
        .count();
    println!(
        "rollback after {took:?}: {} requests, {old_ok} to {old} (0 failed), {} answered by {canary}, {injected} injected failures; {message}",
        seen.len(),
        seen.iter().filter(|s| of(&canary, s)).count(),
    );
    assert_eq!(old_failed, 0);
    assert_eq!(
        other, 0,
        "requests failed other than by the canary's injected 500s"
    );
    assert!(injected > 0, "the canary took no traffic");
    assert!(
        seen[after..].iter().all(|s| of(&old, s)),
        "traffic reached the canary after the rollback"
    );
}

#[tokio::test]
async fn a_healthy_canary_is_promoted_through_every_step() {
    let name = "canary-good";
    let (scenario, host, old) = first_revision("rollout-good", name).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (task, seen) = traffic(Arc::clone(&scenario), host, Arc::clone(&stop));
    scenario
        .apply(name, spec(json!([{"name": "GENERATION", "value": "2"}])))
        .await;
    let percents: Arc<Mutex<Vec<i32>>> = Arc::default();
    let promoted = wait_for(INTERVAL * 6, "the canary to be promoted", || {
        let (scenario, old, percents) = (Arc::clone(&scenario), old.clone(), Arc::clone(&percents));
        async move {
            let s = rollout_status(&scenario, name).await?;
            if s.revision == old {
                return None;
            }
            let mut percents = percents.lock().unwrap_or_else(|e| e.into_inner());
            if s.phase == RolloutPhase::Progressing && percents.last() != Some(&s.percent) {
                percents.push(s.percent);
            }
            assert_ne!(s.phase, RolloutPhase::RolledBack, "{s:?}");
            (s.phase == RolloutPhase::Promoted).then_some(s)
        }
    })
    .await;
    let percents = percents.lock().unwrap_or_else(|e| e.into_inner()).clone();
    stop.store(true, Ordering::Relaxed);
    task.await.expect("traffic task");
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    println!(
        "promoted through {percents:?}: {} requests; {:?}",
        seen.len(),
        promoted.message
    );
    assert_eq!(percents, [10, 50, 100]);
    assert!(seen.iter().all(|s| s.0 == 200), "a request failed");
    let new = promoted.revision.clone();
    assert!(
        seen.iter().any(|s| s.1.starts_with(&format!("{new}-"))),
        "the canary took no traffic"
    );
    let f = scenario.functions.get(name).await.expect("function");
    let status = f.status.expect("status");
    let routed: Vec<_> = status.traffic.iter().filter(|t| t.percent > 0).collect();
    assert_eq!(routed.len(), 1);
    assert_eq!(
        (routed[0].revision_name.as_str(), routed[0].percent),
        (new.as_str(), 100)
    );
    // The old revision is kept (revisionHistoryLimit), only no longer routed.
    assert!(status.revisions.iter().any(|r| r.name == old));
}
