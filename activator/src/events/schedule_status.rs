//! `status.lastScheduleTime` of a schedule Trigger, written by the replica that fired it.
//!
//! The operator owns the rest of a Trigger's status and leaves this field out of its server-side apply;
//! the activator applies only this field under its own field manager, so neither removes the other's.

use jiff::Timestamp;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;
use zeroscale_crds::Trigger;

/// Field manager of the activator's writes to Trigger status.
pub const FIELD_MANAGER: &str = "zeroscale-activator";

/// The apply patch that sets `status.lastScheduleTime` to `fired`.
pub fn last_schedule_patch(fired: Timestamp) -> serde_json::Value {
    json!({
        "apiVersion": "zeroscale.dev/v1alpha1",
        "kind": "Trigger",
        "status": { "lastScheduleTime": fired.to_string() },
    })
}

/// Records `fired` on the Trigger in the background; a failure is logged, never retried (the next
/// fire writes a newer time anyway, and the event itself has already been accepted by the broker).
pub fn record(client: kube::Client, namespace: String, trigger: String, fired: Timestamp) {
    tokio::spawn(async move {
        let api: Api<Trigger> = Api::namespaced(client, &namespace);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let patch = Patch::Apply(last_schedule_patch(fired));
        if let Err(error) = api.patch_status(&trigger, &params, &patch).await {
            tracing::warn!(%namespace, %trigger, %error, "cannot record status.lastScheduleTime");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_sets_only_the_schedule_time_in_rfc3339() {
        let fired: Timestamp = "2026-11-22T16:00:00Z".parse().expect("a timestamp");
        let patch = last_schedule_patch(fired);
        assert_eq!(patch["status"]["lastScheduleTime"], "2026-11-22T16:00:00Z");
        assert_eq!(patch["status"].as_object().map(|s| s.len()), Some(1));
        assert_eq!(patch["kind"], "Trigger");
    }
}
