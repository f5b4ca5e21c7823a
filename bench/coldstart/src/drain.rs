//! How a burst's backlog drained once its first pod could serve (pure, so the arithmetic is
//! unit-tested): when each pod joined, the rate of answers, and the longest stall.
//!
//! `burst.max_over_ready_ms` alone moves by tens of milliseconds between identical runs on a busy
//! node. These figures say why a run was slow: capacity that came late (`pods_serving_ms`), a drain
//! slow all along (`answers_per_s`), or a stall in which nothing was answered (`longest_gap_ms`).

use serde::Serialize;

use crate::stats::MS;

/// The drain of a burst's backlog after its first pod could serve.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Drain {
    /// Each pod's first moment able to serve, ms after the first pod's (0 for the first),
    /// ascending. Pods that served only after the last answer are not in it.
    pub pods_serving_ms: Vec<f64>,
    /// 2xx answers read after the first pod could serve, per second from then to the last of them.
    pub answers_per_s: Option<f64>,
    /// The longest time after the first pod could serve in which no 2xx answer was read, ms,
    /// counted from that moment to the first answer, between answers, and nothing after the last.
    pub longest_gap_ms: Option<f64>,
    /// When the longest gap began, ms after the first pod could serve: 0 when it is the wait for
    /// the first answer (the hand-over), later when the drain stalled.
    pub longest_gap_from_ms: Option<f64>,
    /// The first 2xx answer, ms after the first pod could serve.
    pub first_answer_ms: Option<f64>,
}

impl Drain {
    /// The drain of `answered` (the wall-clock times of the 2xx answers, any order), with the pods
    /// first able to serve at `serving` (wall clock, any order).
    pub fn of(answered: &[f64], serving: &[f64]) -> Self {
        let Some(first) = serving.iter().copied().min_by(f64::total_cmp) else {
            return Self::default();
        };
        let mut after: Vec<f64> = answered.iter().copied().filter(|&t| t >= first).collect();
        after.sort_by(f64::total_cmp);
        let last = after.last().copied();
        let mut pods_serving_ms: Vec<f64> = serving
            .iter()
            .filter(|&&s| last.is_some_and(|l| s <= l))
            .map(|s| (s - first) * MS)
            .collect();
        pods_serving_ms.sort_by(f64::total_cmp);
        let answers_per_s = last
            .map(|l| l - first)
            .filter(|&span| span > 0.0)
            .map(|span| after.len() as f64 / span);
        // The longest gap, and where it began; the first of equal gaps.
        let longest = std::iter::once(first)
            .chain(after.iter().copied())
            .zip(after.iter().copied())
            .map(|(a, b)| ((b - a) * MS, (a - first) * MS))
            .reduce(|best, gap| if gap.0 > best.0 { gap } else { best });
        Self {
            pods_serving_ms,
            answers_per_s,
            longest_gap_ms: longest.map(|(gap, _)| gap),
            longest_gap_from_ms: longest.map(|(_, from)| from),
            first_answer_ms: after.first().map(|&t| (t - first) * MS),
        }
    }

    /// The last pod to join, ms after the first: when the burst's whole capacity could serve.
    pub fn last_pod_ms(&self) -> Option<f64> {
        self.pods_serving_ms.last().copied()
    }
}

/// The activator's side of the wait for a burst's first answer, ms after the first pod could serve,
/// from its wall-clock stamps: when its cold episode first knew a pod's address, and when it handed
/// the episode's first request to a pod. Beside [`Drain::first_answer_ms`] they split that wait into
/// the address's way to the activator, the activator's own work, and the answer's way back.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct HandOver {
    /// The activator first knew a pod's address (negative: before the driver saw a pod serve).
    pub address_known_ms: Option<f64>,
    /// The activator handed the first request to a pod.
    pub first_forward_ms: Option<f64>,
}

impl HandOver {
    /// The stamps `address` and `forwarded` (Unix seconds) against the pods first able to serve at
    /// `serving` (wall clock, any order).
    pub fn of(address: Option<f64>, forwarded: Option<f64>, serving: &[f64]) -> Self {
        let first = serving.iter().copied().min_by(f64::total_cmp);
        let since = |stamp: Option<f64>| stamp.zip(first).map(|(s, f)| (s - f) * MS);
        Self {
            address_known_ms: since(address),
            first_forward_ms: since(forwarded),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-6)
    }

    #[test]
    fn a_drain_with_a_stall_and_a_late_pod() {
        // Pods serve at 10.0, 10.05 and 10.3 (after the last answer, so not counted); answers at
        // 10.01, 10.02, then nothing until 10.1 (80 ms), then 10.15. One answer before any pod
        // could serve (9.9) is not part of the drain.
        let d = Drain::of(&[10.15, 10.01, 9.9, 10.1, 10.02], &[10.3, 10.05, 10.0]);
        assert_eq!(d.pods_serving_ms.len(), 2);
        assert!(close(d.pods_serving_ms.first().copied(), 0.0));
        assert!(close(d.last_pod_ms(), 50.0));
        assert!(close(d.answers_per_s, 4.0 / 0.15));
        assert!(close(d.longest_gap_ms, 80.0));
        assert!(close(d.longest_gap_from_ms, 20.0));
        assert!(close(d.first_answer_ms, 10.0));
    }

    #[test]
    fn the_wait_for_the_first_answer_is_a_gap() {
        let d = Drain::of(&[10.5, 10.6], &[10.0]);
        assert!(close(d.longest_gap_ms, 500.0));
        assert!(close(d.longest_gap_from_ms, 0.0));
        assert!(close(d.first_answer_ms, 500.0));
        assert!(close(d.answers_per_s, 2.0 / 0.6));
    }

    #[test]
    fn the_activator_stamps_against_the_first_pod_serving() {
        let h = HandOver::of(Some(10.002), Some(10.003), &[10.05, 10.0]);
        assert!(
            close(h.address_known_ms, 2.0) && close(h.first_forward_ms, 3.0),
            "{h:?}"
        );
        let early = HandOver::of(Some(9.999), None, &[10.0]);
        assert!(close(early.address_known_ms, -1.0));
        assert_eq!(early.first_forward_ms, None, "an activator without the stamp");
        assert_eq!(HandOver::of(Some(10.0), Some(10.0), &[]), HandOver::default());
    }

    #[test]
    fn nothing_to_measure() {
        assert_eq!(Drain::of(&[10.0], &[]), Drain::default());
        let none = Drain::of(&[9.0], &[10.0]);
        assert_eq!((none.answers_per_s, none.longest_gap_ms), (None, None));
        assert_eq!((none.longest_gap_from_ms, none.first_answer_ms), (None, None));
        assert!(none.pods_serving_ms.is_empty());
        // One answer at the very moment the pod could serve: no span to divide by.
        let instant = Drain::of(&[10.0], &[10.0]);
        assert_eq!(instant.answers_per_s, None);
        assert!(close(instant.longest_gap_ms, 0.0));
    }
}
