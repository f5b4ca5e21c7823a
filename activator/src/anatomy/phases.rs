//! The phases of a cold start, made to telescope: each phase is the next stamp minus the previous
//! one, every stamp clamped between the previous stamp and the first byte, so no phase is negative
//! and the phases add up exactly to arrival → first byte, whatever the stamps' precision (the pod's
//! conditions are whole seconds) or the clocks' disagreement.

/// The phases, in order, as the `phase` label and in the Event.
pub const PHASES: [&str; 8] = [
    "queued",            // arrival → demand sent
    "decision",          // demand sent → autoscaler decision
    "scale-patch",       // decision → /scale patch answered
    "scheduled",         // patch → PodScheduled
    "container-started", // scheduled → container startedAt
    "ready",             // started → pod Ready
    "forwarded",         // Ready → request handed to the pod
    "first-byte",        // forwarded → response head
];

/// A cold request's stamps, in microseconds on one wall clock; `None` when unknown (its phase is
/// then zero and the time goes to the next known one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamps {
    /// The request's head was read.
    pub arrived: i64,
    /// The demand signal was sent.
    pub demand_sent: Option<i64>,
    /// The autoscaler decided to scale from zero.
    pub decided: Option<i64>,
    /// The `/scale` patch was answered.
    pub patched: Option<i64>,
    /// The pod's `PodScheduled` condition turned true.
    pub scheduled: Option<i64>,
    /// The function's container started.
    pub started: Option<i64>,
    /// The pod's `Ready` condition turned true.
    pub ready: Option<i64>,
    /// The request was handed to the pod.
    pub forwarded: Option<i64>,
    /// The pod's response head came back.
    pub first_byte: i64,
}

impl Stamps {
    /// The phases in [`PHASES`] order, in microseconds: each non-negative, their sum exactly
    /// `first_byte - arrived` (0 if the first byte is stamped before the arrival).
    pub fn phases(&self) -> [u64; 8] {
        let end = self.first_byte.max(self.arrived);
        let points = [
            self.demand_sent,
            self.decided,
            self.patched,
            self.scheduled,
            self.started,
            self.ready,
            self.forwarded,
            Some(end),
        ];
        let mut previous = self.arrived;
        points.map(|point| {
            let at = point.unwrap_or(previous).clamp(previous, end);
            let phase = at - previous;
            previous = at;
            phase.unsigned_abs()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn exact_stamps_give_their_differences() {
        let s = Stamps {
            arrived: 100,
            demand_sent: Some(150),
            decided: Some(400),
            patched: Some(9_000),
            scheduled: Some(20_000),
            started: Some(500_000),
            ready: Some(900_000),
            forwarded: Some(905_000),
            first_byte: 910_000,
        };
        assert_eq!(
            s.phases(),
            [50, 250, 8_600, 11_000, 480_000, 400_000, 5_000, 5_000]
        );
        assert_eq!(s.phases().iter().sum::<u64>(), 909_900);
    }

    #[test]
    fn second_precision_conditions_are_clamped_into_order() {
        // The pod was scheduled and started within the second the patch was answered: its
        // truncated stamps fall before the patch and are moved up to it.
        let arrived = 10 * S + 300_000;
        let s = Stamps {
            arrived,
            demand_sent: Some(arrived + 200),
            decided: Some(arrived + 1_000),
            patched: Some(arrived + 20_000),
            scheduled: Some(10 * S),
            started: Some(10 * S),
            ready: Some(12 * S),
            forwarded: Some(11 * S + 900_000), // probed ready before the condition said so
            first_byte: 11 * S + 950_000,
        };
        let phases = s.phases();
        assert_eq!(phases[3..5], [0, 0]);
        // Ready is clamped to the first byte, so forwarded and first byte take nothing.
        assert_eq!(phases[5], 11 * S as u64 + 950_000 - (arrived + 20_000) as u64);
        assert_eq!(phases[6..], [0, 0]);
        assert_eq!(phases.iter().sum::<u64>(), (s.first_byte - arrived) as u64);
    }

    #[test]
    fn missing_stamps_give_empty_phases_and_the_sum_holds() {
        let s = Stamps {
            arrived: 5,
            forwarded: Some(905),
            first_byte: 1_000,
            ..Stamps::default()
        };
        assert_eq!(s.phases(), [0, 0, 0, 0, 0, 0, 900, 95]);
        let backwards = Stamps {
            arrived: 50,
            first_byte: 10,
            ..Stamps::default()
        };
        assert_eq!(backwards.phases(), [0; 8]);
    }
}
