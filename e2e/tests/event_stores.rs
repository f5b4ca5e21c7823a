//! Issue #15's acceptance for the event stores, on Zeroscale installed from the chart
//! (`scripts/install.sh` with `ZEROSCALE_EVENT_STORE`; JetStream from the registry's `zeroscale/nats`
//! image, one replica with `sync_interval: always` and an emptyDir store).
//!
//! [`EVENTS`] events are posted to the broker, each retried until it is answered 202, for a Trigger
//! whose subscriber Function is at zero and whose dead-letter sink is another Function; both run the
//! echo image with `ECHO_RECORD_IDS=1` and are counted by the ids they received (`sinks`). Once
//! deliveries run, the activator replica holding the most events in memory (the first by name
//! when none does, as with JetStream) is `kill -9`ed (its container's process),
//! then, with JetStream, the NATS server's process. Every accepted event must reach the subscriber or
//! the dead-letter sink with JetStream (0 lost); with the memory store the loss is recorded as a
//! figure (`.zeroscale/logs/timings.log`). Before the flood, each run checks retries, the dead-letter
//! sink and duplicates (`delivery`). The two tests switch the install between the stores (a
//! `helm upgrade`), so they run one at a time, after the other installed suites (`scripts/e2e.sh`);
//! the memory test leaves the default install behind.

#[path = "event_stores/async_invocation.rs"]
mod async_invocation;
#[path = "event_stores/chaos.rs"]
mod chaos;
#[path = "event_stores/delivery.rs"]
mod delivery;
#[path = "event_stores/producer.rs"]
mod producer;
#[path = "event_stores/sinks.rs"]
mod sinks;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use zeroscale_e2e::installed::install_with_event_store;
use zeroscale_e2e::{ECHO_IMAGE, TestNamespace, apply_yaml, client, kubectl_ok, record_figure, wait_for};

use producer::{Producer, event_id};
use sinks::{POLL, Sinks};

/// Events posted per run.
const EVENTS: usize = 10_000;
/// Publishes in flight at once.
const PARALLEL: usize = 32;
/// Unique deliveries before the activator is killed.
const KILL_ACTIVATOR_AT: usize = 1_500;
/// Unique deliveries before NATS is killed (JetStream).
const KILL_NATS_AT: usize = 4_000;
/// Longest wait for a kill's threshold.
const PHASE_TIMEOUT: Duration = Duration::from_secs(240);
/// Longest wait, after the last kill, for every accepted event to arrive (JetStream redelivers a
/// killed replica's messages after `AckWait`: the Trigger's 30 s + the install's 20 s budget + 30 s).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);
/// With the memory store nothing is redelivered: it has settled once no new id arrived this long.
const QUIET: Duration = Duration::from_secs(30);

/// The subscriber and the dead-letter sink.
const SUBSCRIBER: &str = "counter";
const DEAD_LETTER: &str = "dead";

fn manifests() -> String {
    let env = r#"env: [{name: ECHO_RECORD_IDS, value: "1"}]"#;
    // A slow subscriber (4 at a time, 20 ms each: at most 200 events/s) against a producer several
    // times faster: a backlog builds, so the killed activator holds events when it dies.
    let slow = r#"env: [{name: ECHO_RECORD_IDS, value: "1"}, {name: ECHO_SLEEP_MS, value: "20"}]"#;
    format!(
        "apiVersion: zeroscale.dev/v1alpha1\nkind: Function\nmetadata: {{name: {SUBSCRIBER}}}\n\
         spec: {{image: {ECHO_IMAGE}, {slow}, timeoutSeconds: 60, concurrency: 4, scale: {{initial: 0, max: 1, window: 60s}}}}\n\
         ---\napiVersion: zeroscale.dev/v1alpha1\nkind: Function\nmetadata: {{name: {DEAD_LETTER}}}\n\
         spec: {{image: {ECHO_IMAGE}, {env}, scale: {{initial: 1, min: 1, max: 1}}}}\n\
         ---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: producer}}\n\
         ---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: broker-producer}}\n\
         rules: [{{apiGroups: [zeroscale.dev], resources: [brokers], verbs: [create]}}]\n\
         ---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: producer-broker}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: broker-producer}}\n\
         subjects: [{{kind: ServiceAccount, name: producer}}]\n"
    )
}

fn trigger() -> String {
    format!(
        "apiVersion: zeroscale.dev/v1alpha1\nkind: Trigger\nmetadata: {{name: to-counter}}\n\
         spec: {{source: {{broker: {{}}}}, filters: [{{exact: {{type: {ty}}}}}], subscriber: {{function: {SUBSCRIBER}}},\n\
         \x20 delivery: {{retries: 3, backoffDelay: 200ms, timeout: 30s, deadLetterSink: {{function: {DEAD_LETTER}}}}}}}\n",
        ty = producer::TYPE
    )
}

/// What one run saw.
struct Outcome {
    accepted: usize,
    delivered: usize,
    dead_lettered: usize,
    lost: usize,
}

/// One run against `store`: install, post, kill, count; records the figures and returns them.
async fn run(store: &str, kill_nats: bool) -> Outcome {
    let begun = Instant::now();
    let installed = match install_with_event_store(store).await {
        Ok(installed) => installed,
        Err(e) => panic!("install with event store {store}: {e}"),
    };
    installed.require_chart("killing the activator");
    let broker = installed
        .broker_url
        .clone()
        .expect("the install exposes the broker (ZEROSCALE_BROKER)");
    let client = client().await;
    let ns = TestNamespace::new(&client, &format!("store-{store}")).await;
    let namespace = ns.name().to_string();
    apply_yaml(&namespace, &manifests()).await;
    apply_yaml(
        &namespace,
        &delivery::manifests(&delivery::echo_by_digest().await),
    )
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    wait_for(
        Duration::from_secs(90),
        "the subscriber's Deployment at zero",
        || async {
            let d = zeroscale_e2e::function_deployment(&deployments, SUBSCRIBER).await?;
            (d.spec?.replicas == Some(0)).then_some(())
        },
    )
    .await;
    apply_yaml(&namespace, &trigger()).await;
    let token = kubectl_ok(&[
        "-n",
        &namespace,
        "create",
        "token",
        "producer",
        "--audience",
        "zeroscale-broker",
        "--duration",
        "30m",
    ])
    .await
    .trim()
    .to_string();
    let producer = Producer {
        broker,
        namespace: namespace.clone(),
        token,
    };
    // Every replica routes the Trigger from its own watch: 10 probes in a row answered 202 (a type no
    // filter wants, so they are not delivered).
    let probing = Instant::now();
    let mut in_a_row = 0;
    for probe in 0.. {
        let accepted = producer.post(&format!("probe-{probe}"), "e2e.probe").await == Ok(202);
        in_a_row = if accepted { in_a_row + 1 } else { 0 };
        if in_a_row >= 10 {
            break;
        }
        assert!(
            probing.elapsed() < Duration::from_secs(90),
            "the broker of {namespace} did not accept the producer within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Retries, dead letters and duplicates first, while the store is quiet.
    delivery::check(store, &producer, &namespace).await;
    let replicas = zeroscale_e2e::function_deployment(&deployments, SUBSCRIBER)
        .await
        .and_then(|d| d.spec?.replicas);
    assert_eq!(
        replicas,
        Some(0),
        "the subscriber is at zero before the first event"
    );

    let sending = tokio::spawn(producer.clone().produce(EVENTS, PARALLEL));
    let mut sinks = Sinks::default();
    wait_delivered(&mut sinks, &namespace, KILL_ACTIVATOR_AT).await;
    let (activator, held_bytes) = chaos::fullest_activator().await;
    let activator_restarts = chaos::kill_container(&activator, "activator").await;
    let activator_killed = Instant::now();
    let at_activator_kill = sinks.delivered.ids.len();
    let mut nats_restart = None;
    if kill_nats {
        wait_delivered(&mut sinks, &namespace, KILL_NATS_AT).await;
        let before = chaos::kill_container("zeroscale-nats-0", "nats").await;
        let killed = Instant::now();
        chaos::wait_restarted("zeroscale-nats-0", "nats", before).await;
        nats_restart = Some(killed.elapsed());
    }
    chaos::wait_restarted(&activator, "activator", activator_restarts).await;
    // At most this long: the wait may start after the NATS kill.
    let activator_restart = activator_killed.elapsed();
    let produced = sending.await.expect("the producer finished");
    let settling = Instant::now();
    let mut last_new = Instant::now();
    let mut seen = 0;
    while settling.elapsed() < SETTLE_TIMEOUT {
        sinks.poll(&namespace, SUBSCRIBER, DEAD_LETTER).await;
        if sinks.missing(&produced.accepted) == 0 {
            break;
        }
        let now_seen = sinks.delivered.ids.len() + sinks.dead.ids.len();
        if now_seen != seen {
            (seen, last_new) = (now_seen, Instant::now());
        }
        if !kill_nats && last_new.elapsed() > QUIET {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let accepted = produced.accepted.len();
    let lost = sinks.missing(&produced.accepted);
    let dead_lettered = produced
        .accepted
        .iter()
        .filter(|id| sinks.dead.ids.contains(*id) && !sinks.delivered.ids.contains(*id))
        .count();
    let delivered = produced
        .accepted
        .iter()
        .filter(|id| sinks.delivered.ids.contains(*id))
        .count();
    let nats = nats_restart.map_or(String::new(), |d| format!(", NATS back in {d:.1?}"));
    record_figure(&format!(
        "event stores: {store}: {EVENTS} events posted, {accepted} accepted (202; {} refusals retried, \
         {} abandoned) in {:.1?}; activator {activator} killed at {at_activator_kill} delivered (holding {held_bytes} bytes of events in memory), ready again \
         within {activator_restart:.1?}{nats}; {delivered} delivered ({} requests), {dead_lettered} dead-lettered \
         ({} requests), {lost} lost; run {:.1?}",
        produced.refused,
        produced.abandoned.len(),
        produced.took,
        sinks.delivered.requests,
        sinks.dead.requests,
        begun.elapsed(),
    ));
    if let Some(sample) = produced.samples.first() {
        println!("event stores: first refusals: {:?} ({sample})", produced.samples);
    }
    let phantom: Vec<_> = sinks
        .delivered
        .ids
        .iter()
        .chain(&sinks.dead.ids)
        .filter(|id| !id.starts_with("probe-") && !produced.accepted.contains(*id))
        .take(5)
        .collect();
    assert!(
        phantom.is_empty(),
        "ids delivered that were never accepted: {phantom:?}"
    );
    assert!(
        (0..EVENTS).all(|i| produced.accepted.contains(&event_id(i))),
        "every event was accepted in the end ({accepted} of {EVENTS}; abandoned {:?})",
        produced.abandoned.iter().take(5).collect::<Vec<_>>()
    );
    // Dropping it deletes the namespace in the background (a foreground delete outlasts a minute).
    drop(ns);
    Outcome {
        accepted,
        delivered,
        dead_lettered,
        lost,
    }
}

/// Polls the sinks until the subscriber received `at_least` distinct ids.
async fn wait_delivered(sinks: &mut Sinks, namespace: &str, at_least: usize) {
    let started = Instant::now();
    loop {
        sinks.poll(namespace, SUBSCRIBER, DEAD_LETTER).await;
        let delivered = sinks.delivered.ids.len();
        if delivered >= at_least {
            return;
        }
        assert!(
            started.elapsed() < PHASE_TIMEOUT,
            "only {delivered} events delivered after {PHASE_TIMEOUT:?} (waiting for {at_least})"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Asynchronous invocation on the JetStream store (`event_stores/async_invocation.rs`).
#[tokio::test]
async fn async_invocation_on_jetstream() {
    async_invocation::run("jetstream").await;
}

/// Asynchronous invocation on the memory store.
#[tokio::test]
async fn async_invocation_on_memory() {
    async_invocation::run("memory").await;
}

/// JetStream: an activator replica and then the NATS server are killed mid-delivery, and not one
/// accepted event is lost.
#[tokio::test]
async fn jetstream_loses_no_accepted_event_when_the_activator_and_nats_are_killed() {
    let outcome = run("jetstream", true).await;
    assert_eq!(outcome.accepted, EVENTS);
    assert_eq!(
        outcome.lost, 0,
        "{} of {} accepted events reached neither the subscriber nor the dead-letter sink",
        outcome.lost, outcome.accepted
    );
    assert_eq!(outcome.delivered + outcome.dead_lettered, EVENTS);
}

/// The memory store under the same activator kill: the events the killed replica held are lost, and
/// the test records how many (a figure, not an assertion: it depends on how far delivery got).
#[tokio::test]
async fn memory_store_loss_when_the_activator_is_killed_is_recorded() {
    let outcome = run("memory", false).await;
    assert_eq!(outcome.accepted, EVENTS);
    assert_eq!(
        outcome.delivered + outcome.dead_lettered + outcome.lost,
        EVENTS,
        "each accepted event is counted once"
    );
}
