//! From raw observations to the benchmark's figures (pure, so the arithmetic is unit-tested).

use serde::Serialize;

use crate::api_load::ApiLoad;
use crate::drain::{Drain, HandOver};
use crate::stats::{MS, percentile};

/// What one cold start left behind, in wall-clock seconds and metric deltas.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Client: request sent, answer fully read.
    pub sent: f64,
    /// Client: answer fully read.
    pub answered: f64,
    /// Client: status code (0 when the request failed).
    pub status: u16,
    /// Host probe: the pod could serve (lower bound), if seen.
    pub serving: Option<f64>,
    /// Activator: the cold episode started (first request admitted).
    pub episode_started: Option<f64>,
    /// Activator: the latest cold episode first knew a pod's address.
    pub address_known: Option<f64>,
    /// Activator: the latest cold request was handed to a pod.
    pub forwarded: Option<f64>,
    /// Activator: cold episodes of this function during the run.
    pub episodes: f64,
    /// Autoscaler: accepted demand events during the run (every function).
    pub demands: f64,
    /// Autoscaler: the latest demand event was accepted.
    pub demand_accepted: Option<f64>,
    /// Autoscaler: demand-driven `/scale` patches during the run (every function).
    pub patches: f64,
    /// Autoscaler: sum of their demand-arrival → patch-sent times, seconds.
    pub patch_seconds: f64,
}

/// One cold start's figures, in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ColdStart {
    /// The function.
    pub function: String,
    /// Status code of the answer (0 = transport error).
    pub status: u16,
    /// Request sent → answer read, at the client.
    pub e2e_ms: f64,
    /// Request sent → the pod could serve.
    pub serving_ms: Option<f64>,
    /// Request arrival at the activator → the autoscaler's `/scale` patch sent.
    pub arrival_to_patch_ms: Option<f64>,
    /// Its first part: arrival at the activator → demand event accepted by the autoscaler.
    pub arrival_to_demand_ms: Option<f64>,
    /// Its second part: demand event accepted → `/scale` patch sent (the autoscaler's own measure).
    pub demand_to_patch_ms: Option<f64>,
    /// The pod could serve → the buffered request forwarded to it.
    pub ready_to_forward_ms: Option<f64>,
    /// Its first part: the pod could serve → the activator knew its address (the address's way from
    /// the kubelet through the API server's watch; negative when the activator's watch was earlier
    /// than the benchmark's).
    pub ready_to_address_ms: Option<f64>,
    /// Its second part: the activator knew the address → forwarded (its probe and hand-over).
    pub address_to_forward_ms: Option<f64>,
    /// The runtime's share: pod scheduled → container running, from the pod status (whole seconds).
    pub container_start_ms: Option<f64>,
    /// The same span as the benchmark's pod watch saw it (millisecond resolution).
    pub container_start_watched_ms: Option<f64>,
    /// Why a platform figure is missing, if one is.
    pub excluded: Option<String>,
}

impl ColdStart {
    /// Derives the figures. The cross-process ones need exactly one episode, one demand and one
    /// demand-driven patch in the window: anything else (another client's cold start at the same moment
    /// on the shared cluster, a missing stamp) leaves them out, with the reason.
    pub fn from_observed(function: &str, o: &Observed) -> Self {
        let mut excluded = Vec::new();
        if o.episodes != 1.0 {
            excluded.push(format!("{} cold episodes at the activator", o.episodes));
        }
        if o.demands != 1.0 || o.patches != 1.0 {
            excluded.push(format!(
                "{} demands and {} demand patches at the autoscaler",
                o.demands, o.patches
            ));
        }
        if o.episode_started.is_none() || o.forwarded.is_none() {
            excluded.push("the activator exports no cold-start stamps (an older build?)".into());
        }
        if o.demand_accepted.is_none() {
            excluded.push("the autoscaler exports no demand stamp (an older build?)".into());
        }
        let clean_episode = o.episodes == 1.0;
        let clean_autoscaler = o.demands == 1.0 && o.patches == 1.0;
        let arrival_to_demand = match (
            clean_episode && clean_autoscaler,
            o.episode_started,
            o.demand_accepted,
        ) {
            (true, Some(started), Some(accepted)) => Some((accepted - started) * MS),
            _ => None,
        };
        let demand_to_patch = arrival_to_demand.map(|_| o.patch_seconds * MS);
        let ready_to_forward = match (clean_episode, o.serving, o.forwarded) {
            (true, Some(serving), Some(forwarded)) => Some((forwarded - serving) * MS),
            (true, None, _) => {
                excluded.push("the pod was never seen serving".into());
                None
            }
            _ => None,
        };
        // Split only where the whole is known, so the parts add up to it.
        let address = o.address_known.filter(|_| ready_to_forward.is_some());
        Self {
            function: function.to_string(),
            status: o.status,
            e2e_ms: (o.answered - o.sent) * MS,
            serving_ms: o.serving.map(|s| (s - o.sent) * MS),
            arrival_to_patch_ms: arrival_to_demand.zip(demand_to_patch).map(|(a, b)| a + b),
            arrival_to_demand_ms: arrival_to_demand,
            demand_to_patch_ms: demand_to_patch,
            ready_to_forward_ms: ready_to_forward,
            ready_to_address_ms: address.zip(o.serving).map(|(a, s)| (a - s) * MS),
            address_to_forward_ms: address.zip(o.forwarded).map(|(a, f)| (f - a) * MS),
            container_start_ms: None,
            container_start_watched_ms: None,
            excluded: (!excluded.is_empty()).then(|| excluded.join("; ")),
        }
    }
}

/// One request of the burst: sent, answered (wall-clock seconds) and whether it got a 2xx.
#[derive(Debug, Clone, Copy)]
pub struct Shot {
    /// Request sent.
    pub sent: f64,
    /// Answer read, or the failure noticed.
    pub done: f64,
    /// A 2xx answer.
    pub ok: bool,
}

/// The burst's figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Burst {
    /// Requests sent.
    pub requests: usize,
    /// Requests without a 2xx answer.
    pub errors: usize,
    /// Largest latency, ms.
    pub max_latency_ms: f64,
    /// First request sent → first pod able to serve, ms.
    pub ready_ms: Option<f64>,
    /// First pod able to serve → the last answer, ms: what the platform adds to the slowest request
    /// once there is somewhere to send it (≥ max latency − ready, since every request started at or
    /// after the first).
    pub max_over_ready_ms: Option<f64>,
    /// First pod able to serve → the median 2xx answer, ms. With `over_ready_p90_ms` it shows where
    /// the backlog spends its time: a steady drain after ready (throughput-bound) or a late tail.
    pub over_ready_p50_ms: Option<f64>,
    /// First pod able to serve → the 90th-percentile 2xx answer, ms.
    pub over_ready_p90_ms: Option<f64>,
    /// When the last request finished (answer read or failure noticed), Unix seconds: the footprint
    /// (P9) is measured a fixed time after this.
    pub ended_unix: Option<f64>,
    /// How the backlog drained after the first pod could serve.
    pub drain: Drain,
    /// The activator's side of the wait for the first answer (set from its metrics after the burst).
    pub hand_over: HandOver,
    /// What the burst cost the API server, from the first request sent to the last answer.
    pub api_load: ApiLoad,
    /// Why the figures counted from ready are missing, if they are.
    pub excluded: Option<String>,
}

impl Burst {
    /// Figures of `shots`, the function's pods being first able to serve at `pods_serving` (wall
    /// clock, any order; empty when none was seen serving).
    ///
    /// A first pod seen serving only after the first 2xx answer came back was seen late (the
    /// benchmark's pod watch or its probe lagged): then the moment it could serve is unknown, and
    /// the figures counted from it are left out, with the reason, rather than reported too small
    /// (or negative).
    pub fn from_shots(shots: &[Shot], pods_serving: &[f64]) -> Self {
        let first_sent = shots.iter().map(|s| s.sent).fold(f64::INFINITY, f64::min);
        let last_done = shots.iter().map(|s| s.done).fold(f64::NEG_INFINITY, f64::max);
        let max_latency = shots.iter().map(|s| s.done - s.sent).fold(0.0, f64::max);
        let mut answered: Vec<f64> = shots.iter().filter(|s| s.ok).map(|s| s.done).collect();
        answered.sort_by(f64::total_cmp);
        let first = pods_serving.iter().copied().min_by(f64::total_cmp);
        let seen_late = first
            .zip(answered.first().copied())
            .filter(|(serving, answer)| serving > answer)
            .map(|(serving, answer)| (serving - answer) * MS);
        let (pods_serving, serving) = match seen_late {
            Some(_) => (&[][..], None),
            None => (pods_serving, first),
        };
        let over_ready = |p: f64| {
            let serving = serving?;
            percentile(&answered, p).map(|done| (done - serving) * MS)
        };
        Self {
            requests: shots.len(),
            errors: shots.iter().filter(|s| !s.ok).count(),
            max_latency_ms: max_latency * MS,
            ready_ms: serving
                .filter(|_| !shots.is_empty())
                .map(|s| (s - first_sent) * MS),
            max_over_ready_ms: serving
                .filter(|_| !shots.is_empty())
                .map(|s| (last_done - s) * MS),
            over_ready_p50_ms: over_ready(50.0),
            over_ready_p90_ms: over_ready(90.0),
            ended_unix: (!shots.is_empty()).then_some(last_done),
            drain: Drain::of(&answered, pods_serving),
            hand_over: HandOver::default(),
            api_load: ApiLoad::default(),
            excluded: seen_late.map(|ms| {
                format!(
                    "the benchmark's pod watch saw the first pod serve {ms:.1} ms after the first \
                     answer: when it could serve is unknown"
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean() -> Observed {
        Observed {
            sent: 100.0,
            answered: 100.8,
            status: 200,
            serving: Some(100.6),
            episode_started: Some(100.001),
            address_known: Some(100.607),
            forwarded: Some(100.61),
            episodes: 1.0,
            demands: 1.0,
            demand_accepted: Some(100.0015),
            patches: 1.0,
            patch_seconds: 0.002,
        }
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-6)
    }

    #[test]
    fn a_clean_cold_start() {
        let c = ColdStart::from_observed("f", &clean());
        assert!((c.e2e_ms - 800.0).abs() < 1e-6);
        assert!(close(c.serving_ms, 600.0));
        assert!(close(c.arrival_to_patch_ms, 2.5), "{c:?}");
        assert!(
            close(c.arrival_to_demand_ms, 0.5) && close(c.demand_to_patch_ms, 2.0),
            "{c:?}"
        );
        assert!(close(c.ready_to_forward_ms, 10.0), "{c:?}");
        assert!(
            close(c.ready_to_address_ms, 7.0) && close(c.address_to_forward_ms, 3.0),
            "{c:?}"
        );
        assert_eq!(c.excluded, None);
    }

    #[test]
    fn a_concurrent_demand_excludes_only_the_autoscaler_figure() {
        let o = Observed {
            demands: 2.0,
            patches: 2.0,
            ..clean()
        };
        let c = ColdStart::from_observed("f", &o);
        assert_eq!(c.arrival_to_patch_ms, None);
        assert!(close(c.ready_to_forward_ms, 10.0));
        assert!(c.excluded.is_some_and(|e| e.contains("2 demands")));
    }

    #[test]
    fn no_episode_or_no_pod_leaves_figures_out() {
        let c = ColdStart::from_observed(
            "f",
            &Observed {
                episodes: 0.0,
                ..clean()
            },
        );
        assert_eq!((c.arrival_to_patch_ms, c.ready_to_forward_ms), (None, None));
        assert_eq!(
            (c.ready_to_address_ms, c.address_to_forward_ms),
            (None, None),
            "no whole, no parts"
        );
        let c = ColdStart::from_observed(
            "f",
            &Observed {
                address_known: None,
                ..clean()
            },
        );
        assert!(
            close(c.ready_to_forward_ms, 10.0),
            "an activator without the stamp: the whole only"
        );
        assert_eq!((c.ready_to_address_ms, c.address_to_forward_ms), (None, None));
        let c = ColdStart::from_observed(
            "f",
            &Observed {
                serving: None,
                ..clean()
            },
        );
        assert_eq!((c.serving_ms, c.ready_to_forward_ms), (None, None));
        assert!(c.excluded.is_some_and(|e| e.contains("never seen serving")));
        let c = ColdStart::from_observed(
            "f",
            &Observed {
                demand_accepted: None,
                ..clean()
            },
        );
        assert_eq!(c.arrival_to_patch_ms, None);
        assert!(c.excluded.is_some_and(|e| e.contains("no demand stamp")));
    }

    fn shot(sent: f64, done: f64, ok: bool) -> Shot {
        Shot { sent, done, ok }
    }

    #[test]
    fn burst_figures() {
        let shots = [
            shot(10.0, 10.9, true),
            shot(10.05, 11.0, true),
            shot(10.1, 10.2, false),
        ];
        let b = Burst::from_shots(&shots, &[10.8, 10.7]);
        assert_eq!((b.requests, b.errors), (3, 1));
        assert!((b.max_latency_ms - 950.0).abs() < 1e-6);
        assert!(close(b.ready_ms, 700.0));
        assert!(close(b.max_over_ready_ms, 300.0));
        // Only the 2xx answers (10.9 and 11.0) count for the percentiles over ready.
        assert!(close(b.over_ready_p50_ms, 200.0));
        assert!(close(b.over_ready_p90_ms, 300.0));
        // The burst ends with its last request, whatever its outcome.
        assert!(close(b.ended_unix, 11.0));
        // The drain counts from the first pod (10.7): the second joined 100 ms later.
        assert!(close(b.drain.last_pod_ms(), 100.0));
        assert!(close(b.drain.longest_gap_ms, 200.0));
        assert_eq!(Burst::from_shots(&[], &[]).ended_unix, None);
        assert_eq!(b.excluded, None);
        let none = Burst::from_shots(&shots, &[]);
        assert_eq!((none.ready_ms, none.max_over_ready_ms), (None, None));
        assert_eq!(none.over_ready_p90_ms, None);
        assert_eq!(Burst::from_shots(&[], &[1.0]).max_over_ready_ms, None);
    }

    #[test]
    fn a_pod_seen_serving_after_the_first_answer_leaves_the_ready_figures_out() {
        // The pod watch saw the first pod at 10.95, but an answer had come back at 10.9: the
        // figures would read 50 ms over ready, and a pod seen at 11.1 a negative one.
        let shots = [shot(10.0, 10.9, true), shot(10.0, 11.0, true)];
        for serving in [10.95, 11.1] {
            let b = Burst::from_shots(&shots, &[serving, 11.2]);
            assert_eq!((b.ready_ms, b.max_over_ready_ms), (None, None));
            assert_eq!((b.over_ready_p50_ms, b.drain.first_answer_ms), (None, None));
            assert!(b.drain.pods_serving_ms.is_empty());
            assert!(b.excluded.is_some_and(|e| e.contains("after the first answer")));
            // What does not depend on ready stays.
            assert!(close(b.ended_unix, 11.0) && (b.max_latency_ms - 1000.0).abs() < 1e-6);
        }
        // Seen at the very moment of the first answer is not late.
        assert_eq!(Burst::from_shots(&shots, &[10.9]).excluded, None);
    }
}
