//! Conditions with a `lastTransitionTime` that moves only when a condition's status really changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// A condition as the reconciler wants it, before times are filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredCondition {
    /// Condition type, one of the `CONDITION_*` constants.
    pub type_: &'static str,
    /// `True`, `False` or `Unknown`.
    pub status: &'static str,
    /// CamelCase reason.
    pub reason: String,
    /// Message for people; may be empty.
    pub message: String,
}

impl DesiredCondition {
    /// A condition with `status: True`.
    pub fn yes(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: "True",
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A condition with `status: False`.
    pub fn no(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: "False",
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A condition with `status: Unknown`.
    pub fn unknown(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: "Unknown",
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// Whether the status is `True`.
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

/// Turns desired conditions into API conditions, keeping each previous `lastTransitionTime` when the
/// condition's status did not change (reason and message updates are not transitions).
pub fn merge(
    previous: &[Condition],
    desired: Vec<DesiredCondition>,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    desired
        .into_iter()
        .map(|d| {
            let last_transition_time = previous
                .iter()
                .find(|p| p.type_ == d.type_ && p.status == d.status)
                .map_or_else(|| now.clone(), |p| p.last_transition_time.clone());
            Condition {
                type_: d.type_.to_string(),
                status: d.status.to_string(),
                reason: d.reason,
                message: d.message,
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(second: i64) -> Time {
        Time(jiff::Timestamp::from_second(second).expect("valid time"))
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let first = merge(
            &[],
            vec![DesiredCondition::no("Ready", "Progressing", "")],
            Some(1),
            &time(10),
        );
        assert_eq!(first[0].last_transition_time, time(10));
        let same = merge(
            &first,
            vec![DesiredCondition::no("Ready", "ErrImagePull", "x")],
            Some(1),
            &time(20),
        );
        assert_eq!(same[0].last_transition_time, time(10));
        assert_eq!(same[0].reason, "ErrImagePull");
        let flipped = merge(
            &same,
            vec![DesiredCondition::yes("Ready", "Ready", "")],
            Some(2),
            &time(30),
        );
        assert_eq!(flipped[0].last_transition_time, time(30));
        assert_eq!(flipped[0].observed_generation, Some(2));
    }
}
