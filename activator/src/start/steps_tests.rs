//! Tests of the start steps: when `/ready` turns on.

use super::*;

#[tokio::test]
async fn without_watches_the_activator_is_ready_at_once() {
    let mut wiring = Wiring::new(ActivatorConfig::default()).await.expect("core");
    wiring.start_watches().await.expect("manual source");
    assert!(wiring.synced.is_empty());
    wiring.signal_readiness();
    assert!(wiring.readiness.get());
}

#[tokio::test]
async fn ready_only_once_every_watch_reports_its_first_list() {
    let mut wiring = Wiring::new(ActivatorConfig::default()).await.expect("core");
    let (functions, peers) = (Readiness::default(), Readiness::default());
    wiring.synced = vec![functions.clone(), peers.clone()];
    wiring.signal_readiness();
    functions.set(true);
    tokio::task::yield_now().await;
    assert!(!wiring.readiness.get(), "the peer list is still missing");
    peers.set(true);
    wiring.readiness.wait().await;
    assert!(wiring.readiness.get());
}

#[tokio::test]
async fn a_watch_that_syncs_after_shutdown_began_does_not_make_it_ready() {
    let mut wiring = Wiring::new(ActivatorConfig::default()).await.expect("core");
    let functions = Readiness::default();
    wiring.synced = vec![functions.clone()];
    wiring.signal_readiness();
    wiring.internal_stop.cancel();
    for task in std::mem::take(&mut wiring.tasks) {
        task.await.expect("gate ends");
    }
    functions.set(true);
    assert!(!wiring.readiness.get());
}
