//! Every Trigger in `examples/triggers/` decodes and compiles, and its source is valid.

use std::path::Path;

use serde::Deserialize;
use zeroscale_crds::trigger::Trigger;
use zeroscale_eventing::{
    delivery::DeliveryDefaults, kubernetes::WatchTarget, router::Route, schedule::Schedule,
};

#[test]
fn example_triggers_compile() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/triggers");
    let mut triggers = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(doc).unwrap();
            if value["kind"] != "Trigger" {
                continue;
            }
            let trigger: Trigger = serde_yaml::from_value(value).unwrap();
            let route = Route::compile(&trigger, &DeliveryDefaults::default())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if let Some(schedule) = &trigger.spec.source.schedule {
                Schedule::parse(schedule).unwrap();
            }
            if let Some(kube) = &trigger.spec.source.kubernetes {
                WatchTarget::resolve(&route.trigger.namespace, kube).unwrap();
            }
            triggers += 1;
        }
    }
    assert_eq!(triggers, 5, "one Trigger per example file");
}
