//! Validate: a Trigger's identity and its spec check ([`SpecCheck`], pure), in one typed value the later
//! phases (look-ups, status) read.

use zeroscale_crds::trigger::Trigger;
use zeroscale_eventing::outbound::AllowedHosts;

use super::check::SpecCheck;
use super::error::TriggerError;

/// A Trigger with its name, namespace and what its spec says.
#[derive(Clone, Debug)]
pub struct ValidatedTrigger<'a> {
    /// The object as read: its stored status is compared with the next one.
    pub trigger: &'a Trigger,
    /// `metadata.name`.
    pub name: &'a str,
    /// `metadata.namespace`: where the Functions it names live.
    pub namespace: &'a str,
    /// What the spec says, and what is left to look up.
    pub check: SpecCheck,
}

/// Reads the identity of `trigger` and checks its spec; `uri` destinations must name a host in `allowed`.
/// A spec problem is not an error: it is carried in [`ValidatedTrigger::check`] into the status.
pub fn validate<'a>(
    trigger: &'a Trigger,
    allowed: &AllowedHosts,
) -> Result<ValidatedTrigger<'a>, TriggerError> {
    let name = trigger
        .metadata
        .name
        .as_deref()
        .ok_or(TriggerError::MissingMetadata("name"))?;
    let namespace = trigger
        .metadata
        .namespace
        .as_deref()
        .ok_or(TriggerError::MissingMetadata("namespace"))?;
    Ok(ValidatedTrigger {
        trigger,
        name,
        namespace,
        check: SpecCheck::with_hosts(trigger, namespace, allowed),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::trigger::check::CLUSTER_DOMAIN;

    #[test]
    fn a_trigger_needs_a_name_and_a_namespace() {
        let mut t: Trigger = serde_json::from_value(json!({
            "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Trigger",
            "metadata": {"namespace": "shop", "name": "t"},
            "spec": {"source": {"broker": {}}, "subscriber": {"function": "f"}},
        }))
        .expect("trigger");
        let allowed = AllowedHosts::new(CLUSTER_DOMAIN);
        let validated = validate(&t, &allowed).expect("valid");
        assert_eq!((validated.name, validated.namespace), ("t", "shop"));
        assert_eq!(validated.check, SpecCheck::of(&t));
        t.metadata.namespace = None;
        assert!(matches!(
            validate(&t, &allowed),
            Err(TriggerError::MissingMetadata("namespace"))
        ));
    }
}
